package main

import (
	"fmt"
	"os"
	"syscall"
)

// Doubles its input; prints on stderr the identity of the binary that runs (same for every case = compiled once).
func main() {
	var n int64
	if _, err := fmt.Scan(&n); err != nil {
		os.Exit(1)
	}
	fmt.Println(n * 2)
	var st syscall.Stat_t
	if syscall.Stat("/proc/self/exe", &st) == nil {
		fmt.Fprintf(os.Stderr, "%d:%d.%d", st.Ino, st.Mtim.Sec, st.Mtim.Nsec)
	}
}
