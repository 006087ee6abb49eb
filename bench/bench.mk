# bench.mk — the benchmark suite (bench/): workloads, the collector replay benchmark and
# `make bench`, which runs bench/run.py and prints the table.  Included by the top-level
# Makefile (it uses CC, CFLAGS, LDLIBS, BUILD and LIB_OBJS from there).
#
# Workloads are never sanitized and always go to build/bench, even with SAN=1: -O2 with
# frame pointers, so heaptap and bpftrace walk the same real stacks.

BENCH_SRC := bench/workloads
BENCH_DIR := build/bench
CXX       ?= g++

BENCH_WFLAGS  := -O2 -g -fno-omit-frame-pointer -Wall -Wextra -Werror
BENCH_C_BINS  := $(BENCH_DIR)/malloc_pairs $(BENCH_DIR)/strtab
BENCH_CXX_BINS := $(BENCH_DIR)/cxx_growth
BENCH_BINS    := $(BENCH_C_BINS) $(BENCH_CXX_BINS) $(BENCH_DIR)/collector_bench \
	$(BENCH_DIR)/ring_bench $(BENCH_DIR)/gobench

# The Go workload (bench/go, std only) with Debian's Go (golang-go): offline, the cache
# under build/.  Without that Go it is not built and run.py reports the Go rows as such.
BENCH_GO     ?= /usr/bin/go
BENCH_GO_ENV := env -u GOROOT -u GOEXPERIMENT GOCACHE=$(CURDIR)/build/go-cache \
	GOPATH=$(CURDIR)/build/gopath GOFLAGS=-mod=mod GOTOOLCHAIN=local GO111MODULE=on \
	GOPROXY=off GOWORK=off CGO_ENABLED=0

bench-build: $(BENCH_BINS)

$(BENCH_C_BINS): $(BENCH_DIR)/%: $(BENCH_SRC)/%.c $(BENCH_SRC)/report.h | $(BENCH_DIR)
	$(CC) -std=gnu11 -D_GNU_SOURCE -Wmissing-prototypes $(BENCH_WFLAGS) -pthread -o $@ $<

$(BENCH_CXX_BINS): $(BENCH_DIR)/%: $(BENCH_SRC)/%.cpp $(BENCH_SRC)/report.h | $(BENCH_DIR)
	$(CXX) -std=c++17 $(BENCH_WFLAGS) -o $@ $<

# The build runs in the module's directory (go -C needs 1.20); -o is absolute.
$(BENCH_DIR)/gobench: bench/go/main.go bench/go/go.mod | $(BENCH_DIR)
	@if [ ! -x $(BENCH_GO) ]; then \
		echo "bench.mk: no $(BENCH_GO) (golang-go): the Go workload is not built" >&2; \
		exit 0; fi; set -x; cd bench/go && \
		$(BENCH_GO_ENV) $(BENCH_GO) build -buildvcs=false -o $(CURDIR)/$@ .

# Links the collector like the unit tests do (every src/ object but main.o).
$(BENCH_DIR)/collector_bench: bench/collector_bench.c $(LIB_OBJS) | $(BENCH_DIR)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The collector draining a real ring buffer, fed by a BPF record generator (ring_gen).
$(BENCH_DIR)/ring_gen.bpf.o: bench/ring_gen.bpf.c bpf/heaptap.h vmlinux/vmlinux.h | $(BENCH_DIR)
	$(BPF_CC) -c -o $@ $<

$(BENCH_DIR)/ring_gen.skel.h: $(BENCH_DIR)/ring_gen.bpf.o
	$(BPFTOOL) gen skeleton $< name ring_gen > $@

$(BENCH_DIR)/ring_bench: bench/ring_bench.c $(BENCH_DIR)/ring_gen.skel.h $(LIB_OBJS) | $(BENCH_DIR)
	$(CC) $(CFLAGS) -I$(BENCH_DIR) -pthread $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(BENCH_DIR):
	mkdir -p $@

# Benchmarks report; they never fail the test suite.  BENCH_ARGS passes options to run.py
# (python3 bench/run.py --help).
bench: heaptap bench-build
	HEAPTAP_BENCH_CMD='make bench$(if $(BENCH_ARGS), BENCH_ARGS="$(BENCH_ARGS)")' \
		python3 bench/run.py $(BENCH_ARGS)

.PHONY: bench bench-build
-include $(BENCH_DIR)/collector_bench.d $(BENCH_DIR)/ring_bench.d
