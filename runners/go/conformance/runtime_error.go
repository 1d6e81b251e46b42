package main

func main() {
	var values []int
	index := len(values) + 1
	println(values[index])
}
