console.log(parseInt(require("fs").readFileSync(0, "utf8")) * 2)
