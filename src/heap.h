/*
 * heap: the live-heap model.  Per process, a table of live blocks (address -> size, site,
 * birth time) and per-site aggregates (a site is a stack id from stacks.c): totals since
 * attach, live now, allocations in the current and the last closed interval, and the
 * site's live figures at the moment of the process's peak live heap.
 *
 * Peak without copying: when the process reaches a new peak we only bump its peak
 * generation.  The first time a site changes after that, it first saves its live figures
 * (unchanged since the peak, or it would already have saved them) under the new
 * generation.  A site's value at the peak is then its saved value if it saved under the
 * current generation, else its current value.  O(1) per event.
 *
 * Memory: a live block costs 24 bytes in a table that doubles as it grows, kept at most
 * 3/4 full from 12 MiB up (32-64 bytes per block) and at most half full below (48-96 bytes
 * per block: shorter probe chains, where a few MiB do not matter).  The total is capped
 * (max_blocks); blocks over the cap are not tracked and counted in `model_full`.
 */
#ifndef HEAPTAP_HEAP_H
#define HEAPTAP_HEAP_H

#include <stdbool.h>
#include <stdint.h>

struct ht_heap;

/* Counters of one site or one process. */
struct ht_counts {
	uint64_t alloc_count, alloc_bytes; /* since attach */
	uint64_t free_count, free_bytes;   /* frees of blocks born since attach */
	uint64_t live_count, live_bytes;   /* outstanding now */
	uint64_t iv_count, iv_bytes;       /* allocations in the current interval */
	uint64_t last_iv_count, last_iv_bytes; /* ... in the last closed interval */
};

struct ht_site {
	struct ht_counts c;
	uint64_t saved_peak_bytes, saved_peak_count; /* see "Peak" above */
	uint32_t saved_gen;
	uint32_t proc; /* index of the owning process */
	bool used;
};

struct ht_heap_proc {
	uint32_t pid;
	struct ht_counts c;
	uint64_t unknown_frees;     /* frees of addresses never seen allocated */
	uint64_t reused_live;       /* allocations at an address still live in the model:
				     * its free was lost (dropped record); the old block is
				     * retired as freed */
	uint64_t model_full;        /* allocations not tracked: block cap reached */
	uint64_t peak_bytes, peak_count; /* highest live_bytes seen, and live_count then */
	uint64_t peak_ts_ns;
	uint32_t peak_gen;
	uint32_t nsites;
	uint32_t *sites; /* ids of this process's sites */
	uint32_t sites_cap;
	/* live blocks: open addressing, addr 0 = empty */
	struct ht_block *blocks;
	uint64_t blocks_cap;
	uint64_t nblocks;    /* blocks in the table (live_count differs when sampled) */
};

struct ht_block {
	uint64_t addr;
	uint64_t size : 40;  /* bytes it accounts for (scaled when sampled), capped at 1 TiB */
	uint64_t count : 24; /* allocations it accounts for: 1, or the sampling weight */
	uint32_t site;
	uint32_t born_ms; /* ms since the session's time origin */
};

#define HT_BLOCK_MAX_SIZE ((1ull << 40) - 1)
#define HT_BLOCK_MAX_COUNT ((1u << 24) - 1)

/* max_blocks: cap on live blocks over all processes.  origin_ns: time origin (monotonic). */
struct ht_heap *heap__new(uint64_t max_blocks, uint64_t origin_ns);
void heap__free(struct ht_heap *h);
/* Moves the time origin (before any block is born: the session's origin is when the
 * probes were attached, which heap__new() cannot know yet). */
void heap__set_origin(struct ht_heap *h, uint64_t origin_ns);

/*
 * A block at addr was born at site (stack id) in pid.  It accounts for size bytes in count
 * allocations: (size, 1) when every allocation is traced, a sampled allocation's scaled
 * estimate otherwise.  addr 0 (rate mode): counted as allocated, never live.
 * 0 or -ENOMEM.
 */
int heap__on_alloc(struct ht_heap *h, uint32_t pid, uint64_t addr, uint64_t size,
		   uint32_t count, uint32_t site, uint64_t ts_ns);
/* The block at addr died.  Unknown addresses are counted, not an error. */
void heap__on_free(struct ht_heap *h, uint32_t pid, uint64_t addr);
/* A record about addr in pid comes soon: starts loading the block-table slot it will look
 * at first (its home slot).  A hint only: the model does not change. */
void heap__prefetch(struct ht_heap *h, uint32_t pid, uint64_t addr);

/* Closes the current interval of every site and process (rates read the closed one). */
void heap__roll_interval(struct ht_heap *h);

/* Processes and sites, borrowed. */
/* Forgets process pid: its blocks and its sites' figures (system-wide eviction). */
void heap__drop_proc(struct ht_heap *h, uint32_t pid);

uint32_t heap__nprocs(const struct ht_heap *h);
const struct ht_heap_proc *heap__proc(const struct ht_heap *h, uint32_t idx);
const struct ht_heap_proc *heap__find_proc(const struct ht_heap *h, uint32_t pid);
const struct ht_site *heap__site(const struct ht_heap *h, uint32_t site);
/* The site's live bytes and blocks at the moment of its process's peak. */
void heap__site_at_peak(const struct ht_heap *h, uint32_t site, uint64_t *bytes,
			uint64_t *count);

/* Calls fn for every live block of process proc_idx. */
void heap__for_each_block(const struct ht_heap *h, uint32_t proc_idx,
			  void (*fn)(const struct ht_block *b, void *arg), void *arg);

/* Bytes the model holds (blocks, sites, processes). */
uint64_t heap__memory(const struct ht_heap *h);
uint64_t heap__live_blocks(const struct ht_heap *h);

#endif
