/*
 * golayout: where the figures heaptap reads from a Go process live — addresses of runtime
 * variables (MemProfileRate, memstats) and offsets of struct fields (special.kind,
 * gcControllerState.heapLive/heapMarked, mstats.numgc/pause_ns/pause_total_ns) and the
 * value of _KindSpecialProfile — for the exact Go version of one executable.
 *
 * Sources, best first (DESIGN.md §2: the fields move between versions):
 *   1. the binary's own DWARF (a default `go build` keeps it): exact for any version;
 *   2. a table of the versions heaptap was tested with (1.19, 1.23, 1.27), for binaries
 *      built with -w / -s -w; addresses then come from .symtab when present, and
 *      MemProfileRate from decoding runtime.profilealloc (its first RIP-relative load);
 *   3. nothing: each field not found stays unknown (0 / GOLAYOUT_UNKNOWN) and `note` says
 *      why.  Callers must not read what is unknown: no guessing, no garbage.
 *
 * Owner: plain struct filled by golayout__read(); nothing to free.
 */
#ifndef HEAPTAP_GOLAYOUT_H
#define HEAPTAP_GOLAYOUT_H

#include <stdbool.h>
#include <stdint.h>

struct ht_gobin;

#define GOLAYOUT_UNKNOWN 0xffffffffu

struct ht_go_layout {
	int minor;                  /* go1.<minor>; 0 if the version is unknown */
	const char *source;         /* "dwarf", "version table", "none" */
	uint64_t mem_profile_rate;  /* ELF vaddr of runtime.MemProfileRate, 0 unknown */
	uint64_t memstats;          /* ELF vaddr of runtime.memstats, 0 unknown */
	uint32_t special_kind_off;  /* runtime.special.kind */
	uint32_t kind_profile;      /* runtime._KindSpecialProfile */
	uint32_t heap_live_off;     /* runtime.gcControllerState.heapLive */
	uint32_t heap_marked_off;   /* runtime.gcControllerState.heapMarked */
	uint32_t numgc_off;         /* runtime.mstats.numgc (uint32) */
	uint32_t pause_ns_off;      /* runtime.mstats.pause_ns ([256]uint64) */
	uint32_t pause_total_off;   /* runtime.mstats.pause_total_ns */
	char note[160];             /* what is unknown and why ("" when all is known) */
};

/* Fills *l for the Go executable at path (already opened as g).  Never fails: what cannot
 * be found is left unknown. */
void golayout__read(const char *path, const struct ht_gobin *g, struct ht_go_layout *l);

/* MemProfileRate's ELF address as runtime.profilealloc's code gives it (what is used when
 * neither DWARF nor .symtab name it; exposed for tests).  fd: the executable.  0 or
 * -ENOENT/-EIO. */
int golayout__rate_from_code(int fd, const struct ht_gobin *g, uint64_t *rate_vaddr);

/* True if every GC field and memstats are known (heap figures and pause times). */
bool golayout__gc_known(const struct ht_go_layout *l);

#endif
