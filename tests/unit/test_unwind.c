// SPDX-License-Identifier: GPL-2.0
/*
 * Unit test for fp_detect and unwind: the frame-pointer verdicts of the test targets (built
 * with and without frame pointers) and of libc; then this process unwinds a copy of its
 * own stack, taken the way the entry probe takes it (registers and stack bytes at a point
 * inside a function), through a known chain of its functions: the fast path and libdwfl
 * must both find the chain, frame for frame alike; a copy cut short must be marked
 * truncated, with only true frames.  Run from the repository root (make all builds the
 * targets first).  Exit status 0 on success; every failed check is printed to stderr.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp_detect.h"
#include "heaptap.h"
#include "procs.h"
#include "symbolize.h"
#include "unwind.h"

static int failures;

#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
			failures++;                                                    \
		}                                                                      \
	} while (0)

#ifdef __clang__
#define NOINL __attribute__((noinline))
#else
#define NOINL __attribute__((noinline, noclone))
#endif

static void check_verdict(const char *path, int want)
{
	struct ht_fp_sample s;
	int fd = open(path, O_RDONLY | O_CLOEXEC), r;

	CHECK(fd >= 0, "%s: cannot open (make targets)", path);
	if (fd < 0)
		return;
	r = fp_detect__fd(fd, 256, &s);
	close(fd);
	CHECK(r == want, "%s: verdict %d (%u of %u prologues), want %d", path, r, s.with_fp,
	      s.sampled, want);
}

/* ---- a stack copy of our own ---- */

#define COPY_BYTES 8192

static struct {
	struct ht_ustack us;
	uint8_t stack[COPY_BYTES];
} g_copy;

/*
 * Takes the registers at a point inside this function (rip is an address in the asm),
 * as the entry probe would, then the stack from there up.  Everything above %rsp is the
 * callers' frames, which nothing below touches; the copy is made with memcpy, whose own
 * frame lies below %rsp.
 */
NOINL void take_copy(void);
NOINL void take_copy(void)
{
	__u64 *r = g_copy.us.regs;

	__asm__ volatile("lea 0(%%rip), %%rax\n\t"
			 "mov %%rax, 0(%0)\n\t"
			 "mov %%rsp, 8(%0)\n\t"
			 "mov %%rbp, 16(%0)\n\t"
			 "mov %%rbx, 24(%0)\n\t"
			 "mov %%r12, 32(%0)\n\t"
			 "mov %%r13, 40(%0)\n\t"
			 "mov %%r14, 48(%0)\n\t"
			 "mov %%r15, 56(%0)\n\t"
			 :
			 : "r"(r)
			 : "rax", "memory");
	_Static_assert(HT_REG_RIP == 0 && HT_REG_RSP == 1 && HT_REG_RBP == 2 && HT_REG_RBX == 3 &&
			       HT_REG_R12 == 4 && HT_REG_R15 == 7,
		       "register order of the asm above");
	g_copy.us.len = COPY_BYTES;
	g_copy.us.flags = HT_US_IN_CALLEE;
	memcpy(g_copy.stack, (const void *)(uintptr_t)r[HT_REG_RSP], COPY_BYTES);
}

static volatile int g_sink;

NOINL void chain_3(int x);
NOINL void chain_3(int x)
{
	volatile char pad[300];

	pad[0] = (char)x;
	take_copy();
	g_sink += pad[0];
}

NOINL void chain_2(int x);
NOINL void chain_2(int x)
{
	volatile char pad[700];

	pad[0] = (char)x;
	chain_3(x + 1);
	g_sink += pad[0];
}

NOINL void chain_1(int x);
NOINL void chain_1(int x)
{
	chain_2(x + 1);
	g_sink += x;
}

static const char *const chain[] = { "chain_3", "chain_2", "chain_1", "check_own_stack",
				     "main" };
#define CHAIN_LEN (sizeof(chain) / sizeof(chain[0]))

/* The functions of frames[0..n), innermost first, into names (inline frames left out). */
static void names_of(struct ht_symbolizer *sym, const uint64_t *frames, uint32_t n,
		     const char **names)
{
	for (uint32_t i = 0; i < n; i++) {
		struct ht_frame_info fi[8];
		int k = symbolizer__lookup(sym, frames[i], true, fi, 8);

		names[i] = k > 0 && fi[k - 1].function ? fi[k - 1].function : "?";
	}
}

static uint32_t unwind_own(struct ht_proc_info *info, bool libdwfl_only, uint32_t len,
			   uint64_t *out, bool *truncated)
{
	struct ht_unwinder *u = unwinder__new(HT_UNWIND_MODE_DWARF, 64, -1);
	struct ht_unwind_input in = { .us = &g_copy.us, .stack = g_copy.stack };
	uint32_t saved = g_copy.us.len, n;
	bool unmapped;

	CHECK(u, "unwinder__new");
	if (!u)
		return 0;
	unwinder__set_libdwfl_only(u, libdwfl_only);
	g_copy.us.len = len;
	n = unwinder__frames(u, info, &in, out, truncated, &unmapped);
	g_copy.us.len = saved;
	CHECK(!unmapped, "unwinding left the known modules");
	CHECK(unwinder__stats(u)->slow == (libdwfl_only ? 1 : 0), "slow %lu",
	      (unsigned long)unwinder__stats(u)->slow);
	unwinder__free(u);
	return n;
}

NOINL void check_own_stack(void);
NOINL void check_own_stack(void)
{
	struct ht_procs *procs = procs__new();
	struct ht_proc_info *info = procs ? procs__get(procs, getpid()) : NULL;
	uint64_t fast[HT_MAX_FRAMES], slow[HT_MAX_FRAMES], cut[HT_MAX_FRAMES];
	const char *names[HT_MAX_FRAMES];
	struct ht_symbolizer *sym;
	bool fast_trunc, slow_trunc, cut_trunc;
	uint32_t nf, ns, nc;

	CHECK(info && info->map_read, "cannot read our own map");
	if (!info || !info->map_read)
		return;
	sym = symbolizer__new(&info->map);
	CHECK(sym, "symbolizer__new");
	chain_1(1);

	nf = unwind_own(info, false, COPY_BYTES, fast, &fast_trunc);
	ns = unwind_own(info, true, COPY_BYTES, slow, &slow_trunc);
	CHECK(nf == ns && !memcmp(fast, slow, nf * sizeof(*fast)) && fast_trunc == slow_trunc,
	      "fast path %u frames, libdwfl %u", nf, ns);
	/* Complete: down through libc's start code to _start. */
	CHECK(!fast_trunc && nf > CHAIN_LEN, "%u frames, truncated %d", nf, fast_trunc);
	if (sym && nf >= CHAIN_LEN) {
		names_of(sym, fast, nf, names);
		for (size_t i = 0; i < CHAIN_LEN; i++)
			CHECK(!strcmp(names[i], chain[i]), "frame %zu: %s, want %s", i, names[i],
			      chain[i]);
		CHECK(!strcmp(names[nf - 1], "_start"), "outermost frame %s", names[nf - 1]);
	}

	/* 512 bytes do not reach past chain_2's 700-byte frame: truncated, true frames only. */
	nc = unwind_own(info, false, 512, cut, &cut_trunc);
	CHECK(cut_trunc && nc >= 1 && nc < CHAIN_LEN && !memcmp(cut, fast, nc * sizeof(*cut)),
	      "cut copy: %u frames, truncated %d", nc, cut_trunc);
	ns = unwind_own(info, true, 512, slow, &slow_trunc);
	CHECK(ns == nc && !memcmp(cut, slow, nc * sizeof(*cut)) && slow_trunc,
	      "cut copy, libdwfl: %u frames, truncated %d", ns, slow_trunc);
	symbolizer__free(sym);
	procs__free(procs);
}

int main(void)
{
	check_verdict("build/targets/leak", 1);
	check_verdict("build/targets/deep", 1);
	check_verdict("build/targets/cxxlib", 1);
	check_verdict("build/targets/leak-nofp", 0);
	check_verdict("build/targets/deep-nofp", 0);
	check_verdict("build/targets/cxxlib-nofp", 0);
	check_verdict("/lib/x86_64-linux-gnu/libc.so.6", 0);
	check_own_stack();
	if (failures)
		fprintf(stderr, "%d check(s) failed\n", failures);
	return failures ? 1 : 0;
}
