package main

import (
	"bufio"
	"os"
	"strings"
)

func main() {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	out.WriteString(strings.Repeat("x", 10000000))
}
