console.log("Hello, World!")
