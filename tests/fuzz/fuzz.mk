# fuzz.mk — libFuzzer harnesses, built with clang and ASan/UBSan in build-fuzz/.
# Included by the top-level Makefile; also usable alone (make -f tests/fuzz/fuzz.mk fuzz).
#   make fuzz                      build build-fuzz/fuzz_read_json
#   make fuzz-run FUZZ_SECONDS=300 fuzz it, new inputs in build-fuzz/corpus/, seeds from
#                                  tests/fuzz/corpus/ (real reports), crashes in build-fuzz/
# Needs clang's fuzzer runtime (Debian: libclang-rt-14-dev).  The report side of src/ (all
# but the tracing session: main, session, events, launch, cmd_report) is compiled with
# coverage instrumentation into an archive, so the writers a fuzzed report reaches are
# explored too and the linker takes only what the harness needs.  No -Werror here:
# clang's warnings are not the build's contract.

FUZZ_CC      ?= clang
FUZZ_DIR     := build-fuzz
FUZZ_SRC     := tests/fuzz
FUZZ_SECONDS ?= 60
# The BPF skeleton probes.c and session.c include: the main build's.
FUZZ_SKEL    := $(or $(SKEL),build/heaptap.skel.h)
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -Wall -Wextra -Wmissing-prototypes -MMD -MP -Isrc -Ibpf \
		-I$(dir $(FUZZ_SKEL)) -D_GNU_SOURCE -fno-omit-frame-pointer \
		-fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIBS    := -lbpf -ldw -lelf -lz -lcapstone -lstdc++ -lm
FUZZ_SESSION := main session events launch cmd_report
FUZZ_OBJS    := $(patsubst src/%.c,$(FUZZ_DIR)/src/%.o,\
		$(filter-out $(patsubst %,src/%.c,$(FUZZ_SESSION)),$(wildcard src/*.c)))
FUZZ_LIB     := $(FUZZ_DIR)/libheaptap.a

fuzz: $(FUZZ_DIR)/fuzz_read_json

$(FUZZ_DIR)/fuzz_read_json: $(FUZZ_SRC)/fuzz_read_json.c $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $(FUZZ_SRC)/fuzz_read_json.c \
		$(FUZZ_LIB) $(FUZZ_LIBS)

$(FUZZ_LIB): $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/src/%.o: src/%.c | $(FUZZ_DIR)/src
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/src/probes.o: $(FUZZ_SKEL)

# Alone, the skeleton is made by the main Makefile; included, it already has the rule.
ifndef SKEL
$(FUZZ_SKEL):
	$(MAKE) -f Makefile $@
endif

$(FUZZ_DIR)/src:
	mkdir -p $@

fuzz-run: $(FUZZ_DIR)/fuzz_read_json
	mkdir -p $(FUZZ_DIR)/corpus
	cd $(FUZZ_DIR) && ./fuzz_read_json -max_total_time=$(FUZZ_SECONDS) \
		-dict=../$(FUZZ_SRC)/read_json.dict corpus ../$(FUZZ_SRC)/corpus

fuzz-clean:
	rm -rf $(FUZZ_DIR)

.PHONY: fuzz fuzz-run fuzz-clean
-include $(FUZZ_OBJS:.o=.d)
