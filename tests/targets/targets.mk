# targets.mk — the programs the end-to-end tests trace (see each source's header
# comment for its exact allocation ground truth).  Included by the top-level
# Makefile; also usable alone:  make -f tests/targets/targets.mk targets CC=gcc
#
# Targets are never sanitized and always go to build/targets, even with SAN=1.
# Every program is built twice:
#   NAME       -O1, frame pointers, no inlining, no sibling calls: the noinline
#              call chains in the sources are real frames, unwindable by FP.
#   NAME-nofp  -O2 without frame pointers (needs .eh_frame/DWARF unwinding);
#              sibling calls stay off so the chains are still real frames.
# plus leak-nopie, leak-static, leak-stripped (strip of leak) and
# leak-static-stripped (strip of leak-static: no symbols at all).

TARGETS_MK   := $(lastword $(MAKEFILE_LIST))
TARGET_SRC   := tests/targets
TARGET_DIR   := build/targets

CC           ?= gcc
CXX          ?= g++
TARGET_STRIP ?= strip

TARGET_WARN  := -Wall -Wextra -Werror
TARGET_FP    := -O1 -g -fno-omit-frame-pointer -fno-inline -fno-optimize-sibling-calls
TARGET_NOFP  := -O2 -g -fomit-frame-pointer -fno-optimize-sibling-calls
TARGET_CSTD  := -std=gnu11 -D_GNU_SOURCE -Wmissing-prototypes
TARGET_CXXSTD := -std=c++17

TARGET_C_PROGS   := leak churn apis threads ctor prefree exitcode demo deep libcalls sigalloc forker spawner
TARGET_CXX_PROGS := cxx cxxlib
TARGET_PROGS     := $(TARGET_C_PROGS) $(TARGET_CXX_PROGS)

# Extra link flags per program (TARGET_LIBS_<name>).
TARGET_LIBS_threads := -pthread

TARGET_C_FP     := $(addprefix $(TARGET_DIR)/,$(TARGET_C_PROGS))
TARGET_C_NOFP   := $(addsuffix -nofp,$(TARGET_C_FP))
TARGET_CXX_FP   := $(addprefix $(TARGET_DIR)/,$(TARGET_CXX_PROGS))
TARGET_CXX_NOFP := $(addsuffix -nofp,$(TARGET_CXX_FP))
TARGET_LEAK_EXTRA := $(addprefix $(TARGET_DIR)/leak-,nopie static stripped static-stripped)

TARGET_BINS := $(TARGET_C_FP) $(TARGET_C_NOFP) $(TARGET_CXX_FP) $(TARGET_CXX_NOFP) \
	$(TARGET_LEAK_EXTRA)
TARGET_DEPS := $(TARGET_SRC)/handshake.h $(TARGETS_MK)

targets: $(TARGET_BINS)

$(TARGET_C_FP): $(TARGET_DIR)/%: $(TARGET_SRC)/%.c $(TARGET_DEPS) | $(TARGET_DIR)
	$(CC) $(TARGET_CSTD) $(TARGET_WARN) $(TARGET_FP) -o $@ $< $(TARGET_LIBS_$*)

$(TARGET_C_NOFP): $(TARGET_DIR)/%-nofp: $(TARGET_SRC)/%.c $(TARGET_DEPS) | $(TARGET_DIR)
	$(CC) $(TARGET_CSTD) $(TARGET_WARN) $(TARGET_NOFP) -o $@ $< $(TARGET_LIBS_$*)

$(TARGET_CXX_FP): $(TARGET_DIR)/%: $(TARGET_SRC)/%.cpp $(TARGET_DEPS) | $(TARGET_DIR)
	$(CXX) $(TARGET_CXXSTD) $(TARGET_WARN) $(TARGET_FP) -o $@ $< $(TARGET_LIBS_$*)

$(TARGET_CXX_NOFP): $(TARGET_DIR)/%-nofp: $(TARGET_SRC)/%.cpp $(TARGET_DEPS) | $(TARGET_DIR)
	$(CXX) $(TARGET_CXXSTD) $(TARGET_WARN) $(TARGET_NOFP) -o $@ $< $(TARGET_LIBS_$*)

$(TARGET_DIR)/leak-nopie: $(TARGET_SRC)/leak.c $(TARGET_DEPS) | $(TARGET_DIR)
	$(CC) $(TARGET_CSTD) $(TARGET_WARN) $(TARGET_FP) -no-pie -o $@ $<

$(TARGET_DIR)/leak-static: $(TARGET_SRC)/leak.c $(TARGET_DEPS) | $(TARGET_DIR)
	$(CC) $(TARGET_CSTD) $(TARGET_WARN) $(TARGET_FP) -static -o $@ $<

$(TARGET_DIR)/leak-stripped: $(TARGET_DIR)/leak
	$(TARGET_STRIP) -o $@ $<

$(TARGET_DIR)/leak-static-stripped: $(TARGET_DIR)/leak-static
	$(TARGET_STRIP) -o $@ $<

$(TARGET_DIR):
	mkdir -p $@

.PHONY: targets
