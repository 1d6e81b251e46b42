throw new Error("this program fails");
