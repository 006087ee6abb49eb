// Command gocgo is heaptap's cgo test target (CGO_ENABLED=1): a Go program
// whose C part calls malloc, so one process has both glibc allocations and Go
// heap allocations.  Usage: gocgo (no arguments).  Environment as for gotarget:
// HT_MEMRATE, HT_WAIT (ready/done handshake of tests/targets/handshake.h) and
// HT_RESULT (JSON result, written before "done").
//
// Ground truth, after the handshake:
//
//	c_alloc (C, noinline): 5000 malloc(100), all kept live in a static array;
//	    called from the cgo wrapper of main.cAlloc.
//	main.goAlloc: 1000 new([128]byte), kept live in a preallocated global.
//
// The cgo runtime itself mallocs too (thread start-up, environment), outside
// these two sites.  This program never references runtime.MemProfile, so the
// linker sets runtime.MemProfileRate to 0 (the JSON's mem_profile_rate says
// so): Go's own sampler is off unless HT_MEMRATE is given.
package main

/*
#include <stdlib.h>

#define C_MAX 100000
// Extern, not static: stores to a static array nobody reads let gcc -O2 drop
// the malloc calls altogether.
void *gocgo_c_keep[C_MAX];
int gocgo_c_count;

__attribute__((noinline)) static int c_alloc(int n)
{
	int i;

	for (i = 0; i < n && gocgo_c_count < C_MAX; i++)
		gocgo_c_keep[gocgo_c_count++] = malloc(100);
	return i;
}

// The number of live (non-NULL) blocks.
static int c_live(void)
{
	int i, n = 0;

	for (i = 0; i < gocgo_c_count; i++)
		n += gocgo_c_keep[i] != NULL;
	return n;
}
*/
import "C"

import (
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
)

const (
	cObjects  = 5000
	cSize     = 100
	goObjects = 1000
	goSize    = 128
)

var goKeep []*[goSize]byte

func main() {
	if v, ok := os.LookupEnv("HT_MEMRATE"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail("HT_MEMRATE must be a non-negative integer, not " + strconv.Quote(v))
		}
		runtime.MemProfileRate = n
	}
	if len(os.Args) != 1 {
		os.Stderr.Write([]byte("usage: gocgo\n"))
		os.Exit(2)
	}
	htInit()
	htReady()

	goKeep = make([]*[goSize]byte, goObjects)
	got := cAlloc(cObjects)
	if live := int(C.c_live()); got != cObjects || live != cObjects {
		fail("c_alloc made " + strconv.Itoa(got) + " blocks, " + strconv.Itoa(live) + " live")
	}
	goAlloc(goObjects)

	r := []byte("{")
	kv := func(k string, v []byte) {
		if len(r) > 1 {
			r = append(r, ',', ' ')
		}
		r = append(r, '"')
		r = append(r, k...)
		r = append(r, '"', ':', ' ')
		r = append(r, v...)
	}
	num := func(v int) []byte { return strconv.AppendInt(nil, int64(v), 10) }
	kv("mode", strconv.AppendQuote(nil, "cgo"))
	kv("go_version", strconv.AppendQuote(nil, runtime.Version()))
	kv("mem_profile_rate", num(runtime.MemProfileRate))
	kv("pid", num(os.Getpid()))
	kv("c_objects", num(cObjects))
	kv("c_size", num(cSize))
	kv("go_objects", num(goObjects))
	kv("go_size", num(goSize))
	r = append(r, '}', '\n')
	if path := os.Getenv("HT_RESULT"); path != "" {
		if err := os.WriteFile(path, r, 0o644); err != nil {
			fail("writing HT_RESULT: " + err.Error())
		}
	}
	htDone()
	runtime.KeepAlive(goKeep)
}

//go:noinline
func cAlloc(n int) int { return int(C.c_alloc(C.int(n))) }

//go:noinline
func goAlloc(n int) {
	for i := 0; i < n; i++ {
		p := new([goSize]byte)
		p[0] = byte(i)
		goKeep[i] = p
	}
}

func fail(msg string) {
	os.Stderr.Write([]byte("gocgo: " + msg + "\n"))
	os.Exit(1)
}

// ---- handshake (tests/targets/handshake.h) ----

var usr1 chan os.Signal

func htInit() {
	if os.Getenv("HT_WAIT") != "1" {
		return
	}
	usr1 = make(chan os.Signal, 2)
	signal.Notify(usr1, syscall.SIGUSR1)
}

func htReady() {
	if usr1 == nil {
		return
	}
	b := append([]byte("ready "), strconv.Itoa(os.Getpid())...)
	b = append(b, '\n')
	os.Stdout.Write(b)
	<-usr1
}

func htDone() {
	if usr1 == nil {
		return
	}
	os.Stdout.Write([]byte("done\n"))
	<-usr1
}
