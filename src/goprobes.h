/*
 * goprobes: heaptap's probes in a Go executable (DESIGN.md §2) — which runtime functions,
 * where in them, and what the BPF side must know of the process (map ht_go_procs).
 *
 *   default   runtime.profilealloc (Go's own sampler, MemProfileRate) and, in live mode,
 *             runtime.freeSpecial (a sampled block died): the allocations Go's heap profile
 *             holds, scaled as pprof scales them, at the cost of a probe per sample;
 *   --go-exact  runtime.mallocgc and the size-class entry points the compiler calls
 *             directly (Go 1.26+ `mallocgc*SC*`, `mallocgcTiny*`): every allocation, no
 *             addresses (an allocation-rate view), BPF byte sampling available;
 *   always    (*gcControllerState).startCycle and gcMarkTermination: one record each per
 *             GC cycle.
 * Never a return probe: every site is an entry probe placed after the function's stack
 * check (its `jbe morestack`), where the arguments are still in their registers and the
 * call is seen once even when it first grows its goroutine stack; on Go 1.19 a few
 * instructions further, past the frame setup, where the kernel emulates the instruction.
 *
 * Owner: goprobes__attach() gives a struct the caller frees with goprobes__free() (which
 * detaches).
 */
#ifndef HEAPTAP_GOPROBES_H
#define HEAPTAP_GOPROBES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "golayout.h"

struct heaptap;
struct ht_goprobes;
struct ht_gobin;

struct ht_go_site {
	uint64_t vaddr;      /* the function's ELF address */
	uint64_t size;
	uint32_t insn_offset; /* probe address - function address */
	bool emulated;       /* the kernel emulates the instruction there (cheap trap) */
	/* Past the frame setup (Go 1.19): the return address is at [rsp + ret_off] there, and
	 * with frame_set %rbp already points at the function's own frame record (the caller's
	 * %rbp, then the return address).  0 and false: as at the function's entry. */
	uint32_t ret_off;
	bool frame_set;
	char insn[40];
};

/* Where to probe Go function name: after the stack check when the prologue has one, else at
 * its entry (a function without a stack check is never restarted); or, when the kernel would
 * single-step that instruction, at the first emulated one it runs exactly once per call
 * before touching the arguments (goprobes.c says when).  0, -ENOENT, -EINVAL, -ENOMEM. */
int goprobes__site(const char *path, const struct ht_gobin *g, const char *name,
		   struct ht_go_site *out);

/* Attaches to the Go executable path (open_path: how heaptap opens it) of process pid.
 * exact: --go-exact; rate: no free probe.  -ENOTSUP: not a Go executable (nothing logged);
 * other errors logged. */
int goprobes__attach(struct heaptap *skel, pid_t pid, const char *path, const char *open_path,
		     bool exact, bool rate, struct ht_goprobes **out);

/* Detaches and frees.  NULL-safe. */
void goprobes__free(struct ht_goprobes *gp);

size_t goprobes__count(const struct ht_goprobes *gp, size_t *slow);
void goprobes__describe(const struct ht_goprobes *gp);

/* What was found: "go1.23.5", the layout, the executable's dev/inode (to find its bias in a
 * process's map), exact mode. */
const char *goprobes__version(const struct ht_goprobes *gp);
const struct ht_go_layout *goprobes__layout(const struct ht_goprobes *gp);
bool goprobes__exact(const struct ht_goprobes *gp);
void goprobes__identity(const struct ht_goprobes *gp, uint64_t *dev, uint64_t *ino);

/* Name of a Go record's function (its fn field). */
const char *goprobes__fn_name(uint16_t fn);

#endif
