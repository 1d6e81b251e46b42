package main

import (
	"fmt"
	"sync"
)

func main() {
	var wait sync.WaitGroup
	results := make([]int, 4)
	for i := range results {
		wait.Add(1)
		go func(index int) {
			defer wait.Done()
			results[index] = 6 * 7
		}(i)
	}
	wait.Wait()
	fmt.Println(results[3])
}
