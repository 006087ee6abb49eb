// Command gobench is the Go workload of heaptap's benchmark (bench/run.py): an
// allocation-heavy loop of a fixed amount of work, standard library only.
//
//	gobench ROUNDS
//
// Every round builds and drops the kind of garbage Go programs make: a map with
// string keys (strconv and concatenation), a slice of pointers to small structs
// grown by append, a byte buffer grown by append, a strings.Builder, and a
// closure-free record struct that holds them.  The last 64 rounds' records stay
// reachable (a ring), so the collector has a live heap to mark; GC runs normally
// (GOGC=100).
//
// One op is one heap allocation: the ops figure is the growth of
// runtime.MemStats.Mallocs across the loop (the runtime's own count, the same
// thing --go-exact records).  At exit it prints, on stderr, the line of
// bench/workloads/report.h:
//
//	heaptap-bench ops=N user_us=U sys_us=S maxrss_kb=R checksum=C
//
// (getrusage(RUSAGE_SELF): every thread of the process, so uprobe traps and the
// GC's workers are all counted) and nothing else.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

type node struct {
	id    int
	name  string
	next  *node
	score float64
}

type record struct {
	index map[string]int
	nodes []*node
	buf   []byte
	label string
}

const keep = 64

var ring [keep]*record

// xorshift64, as in report.h: the same sequence in every run.
func rnd(s *uint64) uint64 {
	x := *s
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*s = x
	return x
}

func round(r int, seed *uint64) uint64 {
	rec := &record{index: make(map[string]int)}
	nkeys := 16 + int(rnd(seed)%32)
	for i := 0; i < nkeys; i++ {
		k := "key-" + strconv.Itoa(r) + "-" + strconv.Itoa(i)
		rec.index[k] = i * r
	}
	var prev *node
	nn := 8 + int(rnd(seed)%24)
	for i := 0; i < nn; i++ {
		n := &node{id: i, name: strconv.Itoa(i * 31), next: prev, score: float64(i) / 3}
		rec.nodes = append(rec.nodes, n)
		prev = n
	}
	nb := 32 + int(rnd(seed)%512)
	for i := 0; i < nb; i++ {
		rec.buf = append(rec.buf, byte(i*7+r))
	}
	var sb strings.Builder
	for i := 0; i < 6; i++ {
		sb.WriteString(strconv.FormatUint(rnd(seed)%100000, 16))
		sb.WriteByte('/')
	}
	rec.label = sb.String()
	parts := strings.Split(rec.label, "/")

	sum := uint64(len(rec.index))*131 + uint64(len(parts))
	for _, n := range rec.nodes {
		sum = sum*31 + uint64(n.id) + uint64(len(n.name))
	}
	for _, c := range rec.buf {
		sum += uint64(c)
	}
	sum += uint64(len(rec.label))
	ring[r%keep] = rec
	return sum
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gobench ROUNDS")
		os.Exit(2)
	}
	rounds, err := strconv.Atoi(os.Args[1])
	if err != nil || rounds < 1 {
		fmt.Fprintln(os.Stderr, "gobench: ROUNDS must be a positive integer")
		os.Exit(2)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	seed := uint64(88172645463325252)
	var sum uint64
	for r := 0; r < rounds; r++ {
		sum = sum*1099511628211 ^ round(r, &seed)
	}
	runtime.ReadMemStats(&after)

	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Fprintf(os.Stderr, "heaptap-bench ops=%d user_us=%d sys_us=%d maxrss_kb=%d checksum=%x\n",
		after.Mallocs-before.Mallocs,
		ru.Utime.Sec*1000000+ru.Utime.Usec, ru.Stime.Sec*1000000+ru.Stime.Usec,
		ru.Maxrss, sum)
}
