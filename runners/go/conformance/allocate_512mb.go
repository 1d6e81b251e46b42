package main

import "fmt"

func main() {
	block := make([]byte, 512<<20)
	for i := range block {
		block[i] = 1
	}
	fmt.Println(block[12345])
}
