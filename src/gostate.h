/*
 * gostate: what heaptap knows of each traced Go process beyond its allocations — version,
 * sampling rate, and the GC timeline built from the GC records (DESIGN.md §2):
 *   startCycle       one per cycle: trigger (heap, time, forced), gcController.heapLive
 *                    (heap live when the cycle starts), heapMarked (marked by the previous
 *                    cycle), memstats.numgc (cycles before this one);
 *   gcMarkTermination  marking done;
 *   memstats.pause_ns  the runtime's own stop-the-world record of each cycle, read from the
 *                    process's memory once the cycle has completed (the runtime keeps the
 *                    last 256), so pause times are the runtime's, not our timing of probes.
 * Figures whose layout is unknown (golayout) are never read: they stay "unknown".
 *
 * Owner: the session; gostate__free() releases everything.  Bounded: GOSTATE_MAX_CYCLES
 * cycles are kept per process (the oldest are dropped and counted; totals cover all).
 */
#ifndef HEAPTAP_GOSTATE_H
#define HEAPTAP_GOSTATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "golayout.h"
#include "heaptap.h"

#define GOSTATE_MAX_CYCLES 4096

enum ht_gc_trigger { HT_GC_HEAP = 0, HT_GC_TIME = 1, HT_GC_FORCED = 2, HT_GC_UNKNOWN = 255 };

struct ht_gc_cycle {
	uint32_t num;           /* the runtime's cycle number (1 = first GC of the process) */
	uint8_t trigger;        /* enum ht_gc_trigger */
	bool mark_done;         /* gcMarkTermination seen */
	bool live_known, marked_known, pause_known;
	uint64_t start_ns;      /* CLOCK_MONOTONIC */
	uint64_t mark_done_ns;
	uint64_t heap_live;     /* bytes live when the cycle started (gcController.heapLive) */
	uint64_t heap_marked;   /* bytes marked by this cycle (live after it) */
	uint64_t pause_ns;      /* stop-the-world time of this cycle */
};

struct ht_go_state {
	pid_t pid;
	char version[48];
	bool exact;                /* --go-exact */
	struct ht_go_layout layout;
	uint64_t dev, ino;         /* the executable (to find its load bias) */
	uint64_t bias;
	bool bias_known;
	int64_t mem_profile_rate;  /* last read; -1 unknown */
	uint64_t ctl_addr;         /* runtime address of gcController (from startCycle) */
	bool numbered_by_runtime;  /* cycle numbers are memstats.numgc + 1 (else ours) */
	uint64_t cycles_seen, forced, pause_total_ns, pauses_known, dropped;
	struct ht_gc_cycle *cycles; /* ring of the last GOSTATE_MAX_CYCLES, oldest first from
				     * `first` */
	uint32_t ncycles, first;
};

struct ht_gostate;
struct ht_procs;

struct ht_gostate *gostate__new(void);
void gostate__free(struct ht_gostate *gs);

/* A Go process now traced.  0 or -ENOMEM. */
int gostate__add(struct ht_gostate *gs, pid_t pid, const char *version, bool exact,
		 const struct ht_go_layout *layout, uint64_t dev, uint64_t ino);

/* A GC record (HT_REC_GO_GC), validated by the caller. */
void gostate__on_gc(struct ht_gostate *gs, const struct ht_go_gc_rec *r);

/* Reads what completed cycles still lack (pause times, heap marked) and MemProfileRate
 * from the live processes' memory.  Cheap when nothing is pending. */
void gostate__refresh(struct ht_gostate *gs, struct ht_procs *procs);

/* The state of process pid, or NULL. */
const struct ht_go_state *gostate__find(const struct ht_gostate *gs, pid_t pid);

/* i-th retained cycle of st, oldest first (i < st->ncycles). */
const struct ht_gc_cycle *gostate__cycle(const struct ht_go_state *st, uint32_t i);

#endif
