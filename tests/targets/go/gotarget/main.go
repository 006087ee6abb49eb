// Command gotarget is heaptap's pure-Go test target (CGO_ENABLED=0, standard
// library only).  It reports its own allocation and GC figures, which the tracer
// tests compare with heaptap's.  Usage:
//
//	gotarget sampled | exact | gc | stress [SECONDS]
//
// Environment:
//
//	HT_MEMRATE=n  runtime.MemProfileRate = n, first thing in main.
//	HT_WAIT=1     handshake as in tests/targets/handshake.h: print "ready <pid>\n",
//	              wait for SIGUSR1; at the end print "done\n", wait for a second
//	              SIGUSR1, then exit.  Without it nothing is printed or awaited.
//	HT_RESULT=p   write the mode's JSON result to p (before "done").
//	HT_PROFILE=p  sampled mode: write the heap profile (pprof format) to p.
//
// Every HT_RESULT file is one JSON object that starts with mode, go_version,
// mem_profile_rate and pid; each run* function lists its other keys.
//
// Ground truth per mode:
//
//	sampled  main.hotAlloc: 20000 new(hotObj), 64 bytes, pointer-free, kept live
//	         in the global hotKeep (preallocated outside the window).
//	         main.tempAlloc: 5000 make([]byte, 1024) via runtime.makeslice, garbage.
//	         main.growSlice: 100000 appends of an int to a nil slice, i.e. the
//	         allocations of runtime.growslice called from main.growSlice (28 on
//	         1.19 and 1.23; 25 on 1.27, whose first capacities 1..4 live in a
//	         stack buffer: see growCaps); the final slice is stored in a
//	         global.  mallocs_work_delta covers these three calls; then two
//	         runtime.GC(), the heap profile, and the end MemStats read
//	         (mallocs_delta).  GC runs normally (GOGC=100) throughout.
//	exact    main.hotAlloc: 50000 new(exactT), 48 bytes, pointer-free;
//	         main.scanAlloc: 30000 new(exactU), 32 bytes, with a pointer; all
//	         kept live.  GC is off (SetGCPercent(-1)) from before the window to
//	         the exit, and the two MemStats reads enclose just these two calls,
//	         so mallocs_delta is 80000 unless the runtime allocates meanwhile.
//	gc       GOGC=10 (set before the window); then 7 runtime.GC(), then 64 KiB
//	         garbage until NumGC grew by >= 17; then GC is turned off
//	         (SetGCPercent(-1) waits for a running cycle) and MemStats read:
//	         no cycle can start after the end read.
//	stress   200 goroutines per round, deep recursion (1000..10000 levels of a
//	         ~300-byte frame: stacks grow and are copied), allocations at every
//	         8th level, panics recovered at various depths (explicit values and
//	         runtime errors), channels; a checksum checked against a closed form.
package main

import (
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	if v, ok := os.LookupEnv("HT_MEMRATE"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			fail("HT_MEMRATE must be a non-negative integer, not " + strconv.Quote(v))
		}
		runtime.MemProfileRate = n
	}
	if len(os.Args) < 2 {
		usage()
	}
	mode := os.Args[1]
	switch mode {
	case "sampled", "exact", "gc":
		if len(os.Args) != 2 {
			usage()
		}
	case "stress":
		if len(os.Args) > 3 {
			usage()
		}
	default:
		usage()
	}

	htInit()
	htReady()
	switch mode {
	case "sampled":
		runSampled()
	case "exact":
		runExact()
	case "gc":
		runGC()
	case "stress":
		secs := 30
		if len(os.Args) == 3 {
			n, err := strconv.Atoi(os.Args[2])
			if err != nil || n < 0 {
				usage()
			}
			secs = n
		}
		runStress(secs)
	}
	htDone()
}

func usage() {
	os.Stderr.Write([]byte("usage: gotarget sampled|exact|gc|stress [SECONDS]\n"))
	os.Exit(2)
}

func fail(msg string) {
	os.Stderr.Write([]byte("gotarget: " + msg + "\n"))
	os.Exit(1)
}

// ---- handshake (tests/targets/handshake.h) ----

var usr1 chan os.Signal

func htWaiting() bool { return os.Getenv("HT_WAIT") == "1" }

// htInit subscribes to SIGUSR1 before "ready" is printed, so a signal sent as
// soon as the line is read is queued, never fatal.  Room for both signals.
func htInit() {
	if !htWaiting() {
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

// ---- JSON result (keys in the order written) ----

type result struct{ b []byte }

func newResult(mode string) *result {
	r := &result{b: make([]byte, 0, 8192)}
	r.b = append(r.b, '{')
	r.str("mode", mode)
	r.str("go_version", runtime.Version())
	r.i64("mem_profile_rate", int64(runtime.MemProfileRate))
	r.i64("pid", int64(os.Getpid()))
	return r
}

func (r *result) key(k string) {
	if len(r.b) > 1 {
		r.b = append(r.b, ',', ' ')
	}
	r.b = append(r.b, '"')
	r.b = append(r.b, k...)
	r.b = append(r.b, '"', ':', ' ')
}

func (r *result) str(k, v string)        { r.key(k); r.b = strconv.AppendQuote(r.b, v) }
func (r *result) i64(k string, v int64)  { r.key(k); r.b = strconv.AppendInt(r.b, v, 10) }
func (r *result) u64(k string, v uint64) { r.key(k); r.b = strconv.AppendUint(r.b, v, 10) }

func (r *result) u64s(k string, v []uint64) {
	r.key(k)
	r.b = append(r.b, '[')
	for i, x := range v {
		if i > 0 {
			r.b = append(r.b, ',', ' ')
		}
		r.b = strconv.AppendUint(r.b, x, 10)
	}
	r.b = append(r.b, ']')
}

func (r *result) write() {
	path := os.Getenv("HT_RESULT")
	if path == "" {
		return
	}
	r.b = append(r.b, '}', '\n')
	if err := os.WriteFile(path, r.b, 0o644); err != nil {
		fail("writing HT_RESULT: " + err.Error())
	}
}

// ---- sampled / exact ----

type hotObj struct{ a [8]uint64 } // 64 bytes, no pointers

type exactT struct{ a [6]uint64 } // 48 bytes, no pointers

type exactU struct { // 32 bytes, one pointer
	p    *exactU
	a, b uint64
	c    uint32
	d    uint32
}

const (
	sampledHotN = 20000
	tempN       = 5000
	tempSize    = 1024
	growN       = 100000
	exactHotN   = 50000
	exactScanN  = 30000
)

var (
	hotKeep   []*hotObj
	exactKeep []*exactT
	scanKeep  []*exactU
	tempSink  []byte
	growSink  []int
)

// hotAlloc is the main.hotAlloc site of both modes: sampled mode (exact=false)
// allocates n 64-byte hotObj into hotKeep, exact mode n 48-byte exactT into
// exactKeep.  The slices are preallocated by the caller.
//
//go:noinline
func hotAlloc(n int, exact bool) {
	if exact {
		for i := 0; i < n; i++ {
			o := new(exactT)
			o.a[0] = uint64(i)
			exactKeep[i] = o
		}
		return
	}
	for i := 0; i < n; i++ {
		o := new(hotObj)
		o.a[0] = uint64(i)
		hotKeep[i] = o
	}
}

//go:noinline
func scanAlloc(n int) {
	var prev *exactU
	for i := 0; i < n; i++ {
		o := new(exactU)
		o.p = prev
		o.a = uint64(i)
		scanKeep[i] = o
		prev = o
	}
}

//go:noinline
func tempAlloc(n int) {
	for i := 0; i < n; i++ {
		b := make([]byte, tempSize)
		b[0] = byte(i)
		tempSink = b
	}
}

// growCaps records growSlice's capacities, one per growslice call (no
// allocation: a fixed array).  Every one is a heap allocation on Go 1.19 and
// 1.23 (28 calls); Go 1.27 serves capacities 1..4 from a 32-byte buffer in
// growSlice's frame (29 calls, of which 25 allocate on the heap).
var (
	growCaps  [64]uint64
	growCapsN int
)

//go:noinline
func growSlice(n int) {
	var s []int
	for i := 0; i < n; i++ {
		c := cap(s)
		s = append(s, i)
		if cap(s) != c && growCapsN < len(growCaps) {
			growCaps[growCapsN] = uint64(cap(s))
			growCapsN++
		}
	}
	growSink = s
}

func runSampled() {
	var start, work, end runtime.MemStats
	hotKeep = make([]*hotObj, sampledHotN)
	runtime.GC() // background mark workers exist before the window
	runtime.ReadMemStats(&start)
	hotAlloc(sampledHotN, false)
	tempAlloc(tempN)
	growSlice(growN)
	runtime.ReadMemStats(&work)
	runtime.GC()
	runtime.GC()
	if path := os.Getenv("HT_PROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fail("HT_PROFILE: " + err.Error())
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			fail("HT_PROFILE: " + err.Error())
		}
		if err := f.Close(); err != nil {
			fail("HT_PROFILE: " + err.Error())
		}
	}
	runtime.ReadMemStats(&end)
	runtime.KeepAlive(hotKeep)

	r := newResult("sampled")
	r.u64("mallocs_delta", end.Mallocs-start.Mallocs)       // start .. after the profile
	r.u64("mallocs_work_delta", work.Mallocs-start.Mallocs) // the three functions only
	r.u64("numgc_delta", uint64(end.NumGC-start.NumGC))
	r.u64("pause_total_ns_delta", end.PauseTotalNs-start.PauseTotalNs)
	r.i64("hot_objects", sampledHotN)
	r.i64("hot_size", int64(unsafe.Sizeof(hotObj{})))
	r.i64("temp_objects", tempN)
	r.i64("temp_size", tempSize)
	r.i64("grow_len", growN)
	r.i64("grow_final_cap", int64(cap(growSink)))
	r.u64s("grow_caps", growCaps[:growCapsN])
	r.write()
	runtime.KeepAlive(hotKeep)
}

func runExact() {
	var start, end runtime.MemStats
	exactKeep = make([]*exactT, exactHotN)
	scanKeep = make([]*exactU, exactScanN)
	runtime.GC() // background mark workers exist before the window
	// No cycle in the window: a cycle's own bookkeeping (mark workers' sudogs,
	// a new M) would otherwise add a few mallocs now and then.  SetGCPercent(-1)
	// also waits for a running cycle to finish.
	debug.SetGCPercent(-1)
	runtime.ReadMemStats(&start)
	hotAlloc(exactHotN, true)
	scanAlloc(exactScanN)
	runtime.ReadMemStats(&end)

	r := newResult("exact")
	r.u64("mallocs_delta", end.Mallocs-start.Mallocs)
	r.u64("frees_delta", end.Frees-start.Frees)
	r.u64("numgc_delta", uint64(end.NumGC-start.NumGC))
	r.i64("hot_objects", exactHotN)
	r.i64("hot_size", int64(unsafe.Sizeof(exactT{})))
	r.i64("scan_objects", exactScanN)
	r.i64("scan_size", int64(unsafe.Sizeof(exactU{})))
	r.write()
	runtime.KeepAlive(exactKeep)
	runtime.KeepAlive(scanKeep)
}

// ---- gc ----

const (
	gcForced     = 7
	gcHeapMin    = 10
	gcGarbage    = 64 << 10
	gcCheckEvery = 4
)

var gcSink []byte

func runGC() {
	var start, cur, end runtime.MemStats
	pauses := make([]uint64, 0, 256)
	r := newResult("gc")   // prepared before the window
	debug.SetGCPercent(10) // frequent heap-triggered cycles
	runtime.GC()           // mark workers exist; the GOGC change is settled
	runtime.ReadMemStats(&start)
	for i := 0; i < gcForced; i++ {
		runtime.GC()
	}
	target := start.NumGC + gcForced + gcHeapMin
	allocs := 0
	for {
		gcSink = make([]byte, gcGarbage)
		allocs++
		if allocs%gcCheckEvery == 0 {
			runtime.ReadMemStats(&cur)
			if cur.NumGC >= target {
				break
			}
		}
	}
	debug.SetGCPercent(-1) // waits for a running cycle; none starts after this
	runtime.ReadMemStats(&end)

	n := end.NumGC - start.NumGC
	var sum uint64
	for c := start.NumGC + 1; c <= end.NumGC && len(pauses) < cap(pauses); c++ {
		p := end.PauseNs[(c+255)%256]
		pauses = append(pauses, p)
		sum += p
	}
	r.u64("numgc_delta", uint64(n))
	r.i64("forced", gcForced)
	r.u64("num_forced_gc_delta", uint64(end.NumForcedGC-start.NumForcedGC))
	r.u64("pause_total_ns_delta", end.PauseTotalNs-start.PauseTotalNs)
	r.u64("pause_ns_sum", sum)
	r.u64s("pause_ns", pauses)
	r.u64("numgc_start", uint64(start.NumGC))
	r.u64("numgc_end", uint64(end.NumGC))
	r.i64("garbage_allocs", int64(allocs))
	r.i64("garbage_size", gcGarbage)
	r.write()
}

// ---- stress ----

const (
	stressG   = 200 // goroutines per round
	stressSem = 32  // of which at most this many recurse at once (stack memory)
	fnvPrime  = 1099511628211
)

type node struct {
	v    uint64
	next *node
	b    []byte
}

// gstate is one goroutine's work description and, for runtime-error panics,
// the value to resume with.
type gstate struct {
	d, catch int
	kind     int // 0, 3: no panic; 1: panic(value); 2: runtime error
	total    uint64
	bottom   chan<- int
}

type panicVal uint64

func stressDepth(r, i int) int { return 1000 + (r*7919+i*104729)%9001 }
func stressKind(r, i int) int  { return (r + i) % 4 }

// closedForm is what one goroutine returns: every level adds 33*level+496
// (level plus its 32-word frame array), the list holds the multiples of 8
// below d, a value panic adds 1 on recovery and a runtime error 2.
func closedForm(d, kind int) uint64 {
	D := uint64(d)
	m := (D + 7) / 8
	t := 33*D*(D-1)/2 + 496*D + 4*m*(m-1)
	switch kind {
	case 1:
		t++
	case 2:
		t += 2
	}
	return t
}

//go:noinline
func recurse(st *gstate, level int, head *node, acc uint64) uint64 {
	var buf [32]uint64
	for j := range buf {
		buf[j] = uint64(level + j)
	}
	var s uint64
	for j := len(buf) - 1; j >= 0; j-- {
		s += buf[j]
	}
	acc += uint64(level) + s
	if level%8 == 0 {
		head = &node{v: uint64(level), next: head, b: make([]byte, 1+level%100)}
		head.b[0] = byte(level)
	}
	if level == st.d-1 {
		return bottom(st, level, head, acc)
	}
	if level == st.catch {
		return protect(st, level+1, head, acc)
	}
	return recurse(st, level+1, head, acc)
}

//go:noinline
func protect(st *gstate, level int, head *node, acc uint64) (res uint64) {
	defer func() {
		switch e := recover().(type) {
		case nil:
		case panicVal:
			res = uint64(e) + 1
		case runtime.Error:
			res = st.total + 2
		default:
			panic(e)
		}
	}()
	return recurse(st, level, head, acc)
}

//go:noinline
func bottom(st *gstate, level int, head *node, acc uint64) uint64 {
	var sum uint64
	for n := head; n != nil; n = n.next {
		if n.b[0] != byte(n.v) || len(n.b) != 1+int(n.v)%100 {
			panic("stress: corrupt list node")
		}
		sum += n.v
	}
	st.bottom <- level
	total := acc + sum
	switch st.kind {
	case 1:
		panic(panicVal(total))
	case 2:
		st.total = total
		z := st.d - 1 - level    // 0
		return total / uint64(z) // integer divide by zero
	}
	return total
}

type stressRes struct {
	i int
	v uint64
}

func runStress(secs int) {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	results := make(chan stressRes, stressG)
	sem := make(chan struct{}, stressSem)
	bottomCh := make(chan int)
	bottomCount := make(chan int)
	go func() { // counts the bottoms reached, on demand
		n := 0
		for {
			select {
			case <-bottomCh:
				n++
			case bottomCount <- n:
				n = 0
			}
		}
	}()

	var got, want uint64
	rounds := 0
	for rounds == 0 || time.Now().Before(deadline) {
		r := rounds
		for i := 0; i < stressG; i++ {
			st := &gstate{d: stressDepth(r, i), kind: stressKind(r, i), bottom: bottomCh}
			st.catch = (i*131 + r) % st.d
			if st.catch == st.d-1 {
				st.catch--
			}
			go func(i int, st *gstate) {
				sem <- struct{}{}
				v := recurse(st, 0, nil, 0)
				<-sem
				results <- stressRes{i, v}
			}(i, st)
		}
		var roundGot uint64
		for k := 0; k < stressG; k++ {
			res := <-results
			roundGot += res.v * uint64(res.i+1)
		}
		if n := <-bottomCount; n != stressG {
			fail("stress: " + strconv.Itoa(n) + " bottoms reached in round " + strconv.Itoa(r))
		}
		var roundWant uint64
		for i := 0; i < stressG; i++ {
			roundWant += closedForm(stressDepth(r, i), stressKind(r, i)) * uint64(i+1)
		}
		got = (got ^ roundGot) * fnvPrime
		want = (want ^ roundWant) * fnvPrime
		rounds++
		if got != want {
			fail("stress FAIL round=" + strconv.Itoa(r) +
				" checksum=" + strconv.FormatUint(got, 16) +
				" expected=" + strconv.FormatUint(want, 16))
		}
	}
	os.Stdout.Write([]byte("stress expected=" + strconv.FormatUint(want, 16) + "\n"))
	line := "stress ok rounds=" + strconv.Itoa(rounds) +
		" checksum=" + strconv.FormatUint(got, 16) + "\n"
	os.Stdout.Write([]byte(line))

	res := newResult("stress")
	res.i64("rounds", int64(rounds))
	res.i64("goroutines_per_round", stressG)
	res.str("checksum", strconv.FormatUint(got, 16))
	res.str("expected", strconv.FormatUint(want, 16))
	res.write()
}
