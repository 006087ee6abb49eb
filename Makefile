# heaptap — top-level build.  `make` builds ./heaptap; `make test` builds everything and
# runs the suite; `make demo` installs missing build deps, builds and traces the demo.
#   make SAN=1   collector and unit tests with ASan/UBSan (in build-san/)

CC      ?= gcc
CLANG   ?= clang
BPFTOOL ?= bpftool
SAN     ?= 0

BUILD   := $(if $(filter 1,$(SAN)),build-san,build)
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -MMD -MP -I$(BUILD) -Isrc -Ibpf -D_GNU_SOURCE
LDLIBS  := -lbpf -ldw -lelf -lz -lcapstone -lstdc++ -lm
ifeq ($(SAN),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=address,undefined
endif

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKEL     := $(BUILD)/heaptap.skel.h

SRCS     := $(wildcard src/*.c)
OBJS     := $(patsubst src/%.c,$(BUILD)/src/%.o,$(SRCS))
LIB_OBJS := $(filter-out $(BUILD)/src/main.o,$(OBJS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRCS))

ifeq ($(SAN),1)
all: $(BUILD)/heaptap $(UNIT_BINS)
else
all: heaptap $(UNIT_BINS) targets
endif

heaptap: $(BUILD)/heaptap
	cp $< $@

$(BUILD)/heaptap: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/src/%.o: src/%.c | $(BUILD)/src
	$(CC) $(CFLAGS) -c -o $@ $<

# Only the collector pieces that drive the skeleton need it generated first.
$(BUILD)/src/session.o $(BUILD)/src/probes.o $(BUILD)/src/goprobes.o \
	$(BUILD)/src/system.o: $(SKEL)

# BPF objects (also bench/'s record generator): CO-RE against the committed vmlinux.h.
BPF_CC := $(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_x86 -Wall -Werror -Ivmlinux -Ibpf

$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c bpf/heaptap.h vmlinux/vmlinux.h | $(BUILD)/bpf
	$(BPF_CC) -c -o $@ $<

$(BUILD)/heaptap.bpf.o: $(BPF_OBJS)
	$(BPFTOOL) gen object $@ $^

$(SKEL): $(BUILD)/heaptap.bpf.o
	$(BPFTOOL) gen skeleton $< name heaptap > $@

$(BUILD)/unit/%: tests/unit/%.c $(LIB_OBJS) | $(BUILD)/unit
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

$(BUILD)/src $(BUILD)/bpf $(BUILD)/unit:
	mkdir -p $@

# vmlinux.h is committed; regenerate it on purpose only.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h

-include tests/targets/targets.mk
# Go targets (Go 1.19 plus toolchains fetched on demand over the network): only
# `make go-targets[-VER]` builds them, never `all`.
-include tests/targets/go/go.mk
-include tests/fuzz/fuzz.mk
-include bench/bench.mk

deps:
	scripts/install-deps.sh build

test:
	scripts/install-deps.sh all
	$(MAKE) all
	$(MAKE) SAN=1 all
	python3 tests/run.py

demo:
	scripts/install-deps.sh build
	$(MAKE) heaptap targets
	./heaptap -o demo.folded -- $(TARGET_DIR)/demo

clean:
	rm -rf build build-san build-fuzz heaptap demo.folded

.PHONY: all deps test demo clean vmlinux targets
-include $(OBJS:.o=.d) $(patsubst %,%.d,$(UNIT_BINS))
