#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "heap.h"
#include "u64map.h"

struct ht_heap {
	struct ht_heap_proc *procs;
	uint32_t nprocs, procs_cap;
	struct ht_u64map pid_index; /* pid + 1 -> index in procs */
	uint64_t last_key;          /* pid + 1 of the last process looked up, 0 = none ... */
	uint32_t last_idx;          /* ... and its index: records come in long runs of one
				     * process, so most look-ups skip the hash map */
	struct ht_site *sites;      /* indexed by stack id */
	uint32_t sites_cap;
	uint64_t max_blocks, nblocks;
	uint64_t origin_ns;
};

static void free_table(struct ht_block *t, uint64_t cap);

struct ht_heap *heap__new(uint64_t max_blocks, uint64_t origin_ns)
{
	struct ht_heap *h = calloc(1, sizeof(*h));

	if (h) {
		h->max_blocks = max_blocks;
		h->origin_ns = origin_ns;
	}
	return h;
}

void heap__set_origin(struct ht_heap *h, uint64_t origin_ns)
{
	h->origin_ns = origin_ns;
}

void heap__free(struct ht_heap *h)
{
	if (!h)
		return;
	for (uint32_t i = 0; i < h->nprocs; i++) {
		free_table(h->procs[i].blocks, h->procs[i].blocks_cap);
		free(h->procs[i].sites);
	}
	free(h->procs);
	free(h->sites);
	u64map__clear(&h->pid_index);
	free(h);
}

/* The process of pid, created if new; remembered as the last one looked up.  NULL: ENOMEM. */
static __attribute__((noinline)) struct ht_heap_proc *lookup_proc(struct ht_heap *h,
								  uint32_t pid)
{
	uint64_t key = (uint64_t)pid + 1, *idx = u64map__get(&h->pid_index, key);
	struct ht_heap_proc *p;

	if (!idx) {
		if (h->nprocs == h->procs_cap) {
			uint32_t ncap = h->procs_cap ? h->procs_cap * 2 : 8;
			void *np = realloc(h->procs, ncap * sizeof(*h->procs));

			if (!np)
				return NULL;
			h->procs = np;
			h->procs_cap = ncap;
		}
		if (u64map__put(&h->pid_index, key, h->nprocs))
			return NULL;
		p = &h->procs[h->nprocs++];
		memset(p, 0, sizeof(*p));
		p->pid = pid;
		p->peak_gen = 1;
	}
	h->last_key = key;
	h->last_idx = idx ? (uint32_t)*idx : h->nprocs - 1;
	return &h->procs[h->last_idx];
}

/* Inline, so the usual case (same process as the last record) costs one compare. */
static inline struct ht_heap_proc *get_proc(struct ht_heap *h, uint32_t pid)
{
	if ((uint64_t)pid + 1 == h->last_key)
		return &h->procs[h->last_idx];
	return lookup_proc(h, pid);
}

static struct ht_site *get_site(struct ht_heap *h, struct ht_heap_proc *p, uint32_t id)
{
	struct ht_site *s;

	if (id >= h->sites_cap) {
		uint32_t ncap = h->sites_cap ? h->sites_cap : 256;
		void *np;

		while (ncap <= id)
			ncap *= 2;
		np = realloc(h->sites, (size_t)ncap * sizeof(*h->sites));
		if (!np)
			return NULL;
		memset((struct ht_site *)np + h->sites_cap, 0,
		       (size_t)(ncap - h->sites_cap) * sizeof(*h->sites));
		h->sites = np;
		h->sites_cap = ncap;
	}
	s = &h->sites[id];
	if (!s->used) {
		if (p->nsites == p->sites_cap) {
			uint32_t ncap = p->sites_cap ? p->sites_cap * 2 : 16;
			void *np = realloc(p->sites, ncap * sizeof(*p->sites));

			if (!np)
				return NULL;
			p->sites = np;
			p->sites_cap = ncap;
		}
		p->sites[p->nsites++] = id;
		s->used = true;
		s->proc = p - h->procs;
	}
	return s;
}

/* Before a site changes: keep its figures as they were at the process's latest peak. */
static void save_for_peak(struct ht_site *s, const struct ht_heap_proc *p)
{
	if (s->saved_gen != p->peak_gen) {
		s->saved_peak_bytes = s->c.live_bytes;
		s->saved_peak_count = s->c.live_count;
		s->saved_gen = p->peak_gen;
	}
}

/*
 * The block table: linear probing over 24-byte slots, a block's home slot taken from the
 * HIGH bits of a multiplicative hash.  High bits make the table ordered by hash, so when it
 * doubles, slot i's blocks go to slots near 2i: the rehash streams through both tables
 * instead of scattering a cache miss per block.  One multiply (Fibonacci hashing) spreads
 * allocator addresses (strided, 16-aligned) evenly over the high bits; the backward-shift
 * deletion recomputes homes along a cluster, so the hash must be cheap.
 */
static inline uint64_t block_home(uint64_t addr, unsigned shift)
{
	return (addr * 0x9e3779b97f4a7c15ull) >> shift;
}

/* log2(cap) -> the shift that maps a 64-bit hash to a slot index. */
static inline unsigned block_shift(uint64_t cap)
{
	return 64 - __builtin_ctzll(cap);
}

/* The slot holding addr, or the empty slot that ends its probe chain (cap > 0). */
static struct ht_block *probe_block(const struct ht_heap_proc *p, uint64_t addr)
{
	uint64_t mask = p->blocks_cap - 1, i = block_home(addr, block_shift(p->blocks_cap));

	while (p->blocks[i].addr && p->blocks[i].addr != addr)
		i = (i + 1) & mask;
	return &p->blocks[i];
}

static struct ht_block *find_block(const struct ht_heap_proc *p, uint64_t addr)
{
	struct ht_block *b;

	if (!p->blocks_cap)
		return NULL;
	b = probe_block(p, addr);
	return b->addr ? b : NULL;
}

/*
 * Tables from 24 MiB up (2^20 slots: a whole number of 2 MiB pages; in use from 393 k live
 * blocks) are mapped on their own and marked for transparent huge pages: growing to a
 * million blocks otherwise faults in ~100 MB of tables 4 KiB at a time, which on the
 * (paravirtualized) test machine cost more than the inserts themselves (collector_bench
 * growth-1M: 518 ns/record with 4 KiB pages, 272 with huge ones), and a free of a random
 * block among a million adds a TLB miss to its cache miss.  Not below: with the threshold
 * at 6 MiB the 100 k-block churn scenarios got slower (random-100k median 196 vs 55
 * ns/record, same minimum; the cause was not found).
 *
 * Tables from 256 KiB to 24 MiB are mapped and populated at once (MADV_POPULATE_WRITE),
 * not faulted in page by page as the rehash first writes them: a fault costs ~20 us on
 * that machine, so doubling a 3 MiB table took 16 ms of faults, stalling the drain while
 * 8 KiB stack-copy records filled the ring (drops in test_threads_unwind_to_clone).  Huge
 * ones fault 2 MiB at a time (populating them too measured slower).  Smaller ones come
 * from calloc.  All are zeroed (addr 0 = empty).
 */
#define HUGE_TABLE_BYTES (24ull << 20)
#define HUGE_PAGE (2ull << 20)
#define MAPPED_TABLE_BYTES (256ull << 10)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14 */
#endif

static struct ht_block *alloc_table(uint64_t cap)
{
	size_t bytes = cap * sizeof(struct ht_block), align = 0;
	uint8_t *m, *a;

	if (bytes < MAPPED_TABLE_BYTES)
		return calloc(cap, sizeof(struct ht_block));
	if (bytes >= HUGE_TABLE_BYTES)
		align = HUGE_PAGE;
	/* Over-map by a huge page and trim, so a huge table starts on a huge-page boundary. */
	m = mmap(NULL, bytes + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	if (!align) {
		madvise(m, bytes, MADV_POPULATE_WRITE); /* a hint: else faulted on first write */
		return (struct ht_block *)m;
	}
	a = (uint8_t *)(((uintptr_t)m + align - 1) & ~(uintptr_t)(align - 1));
	if (a > m)
		munmap(m, a - m);
	munmap(a + bytes, m + align - a);
	madvise(a, bytes, MADV_HUGEPAGE); /* a hint: without THP it is 4 KiB pages */
	return (struct ht_block *)a;
}

static void free_table(struct ht_block *t, uint64_t cap)
{
	size_t bytes = cap * sizeof(struct ht_block);

	if (bytes < MAPPED_TABLE_BYTES)
		free(t);
	else if (t)
		munmap(t, bytes);
}

static int grow_blocks(struct ht_heap_proc *p)
{
	uint64_t ncap = p->blocks_cap ? p->blocks_cap * 2 : 1024, mask = ncap - 1, start = 0;
	unsigned shift = block_shift(ncap);
	struct ht_block *nt = alloc_table(ncap);

	if (!nt)
		return -ENOMEM;
	/* Start after an empty slot, so no cluster wraps past the start: blocks then come in
	 * (nearly) hash order and their new slots advance through nt. */
	while (start < p->blocks_cap && p->blocks[start].addr)
		start++;
	for (uint64_t k = 0; k < p->blocks_cap; k++) {
		const struct ht_block *b = &p->blocks[(start + k) & (p->blocks_cap - 1)];
		uint64_t i;

		if (!b->addr)
			continue;
		for (i = block_home(b->addr, shift); nt[i].addr; i = (i + 1) & mask)
			;
		nt[i] = *b;
	}
	free_table(p->blocks, p->blocks_cap);
	p->blocks = nt;
	p->blocks_cap = ncap;
	return 0;
}

/*
 * Linear probing slows as the table fills: at 3/4 load an insert walks ~8 slots to an
 * empty one and a deletion shifts as many, each step an unpredictable branch
 * (collector_bench random-10k: ~55 ns/record at 0.61 load, ~40 at 0.31).  So small tables
 * (under 2^19 slots, 12 MiB) grow at 1/2 load, where the extra memory is a few MiB at
 * most, and larger ones at 3/4, which keeps them at 32-64 bytes per live block.
 */
#define DENSE_TABLE_SLOTS (1ull << 19)

static bool table_full(const struct ht_heap_proc *p)
{
	if (p->blocks_cap < DENSE_TABLE_SLOTS)
		return (p->nblocks + 1) * 2 > p->blocks_cap;
	return (p->nblocks + 1) * 4 > p->blocks_cap * 3;
}

/* Backward-shift deletion keeps probe chains short without tombstones. */
static void remove_block(struct ht_heap_proc *p, struct ht_block *b)
{
	uint64_t mask = p->blocks_cap - 1, i = b - p->blocks, j;
	unsigned shift = block_shift(p->blocks_cap);

	for (j = (i + 1) & mask; p->blocks[j].addr; j = (j + 1) & mask) {
		uint64_t home = block_home(p->blocks[j].addr, shift);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			p->blocks[i] = p->blocks[j];
			i = j;
		}
	}
	p->blocks[i].addr = 0;
}

void heap__prefetch(struct ht_heap *h, uint32_t pid, uint64_t addr)
{
	/* The last process looked up, as in get_proc(), but never created here. */
	const struct ht_heap_proc *p = (uint64_t)pid + 1 == h->last_key ? &h->procs[h->last_idx]
								       : heap__find_proc(h, pid);

	if (p && p->blocks_cap) {
		const struct ht_block *b = &p->blocks[block_home(addr, block_shift(p->blocks_cap))];

		/* For writing: the free removes it, the allocation fills it.  The probe goes on
		 * into the next slots (1.5 to 2.5 slots of 24 bytes on average between 3/8 and
		 * 3/4 load), and a slot can straddle two lines: the next line too. */
		__builtin_prefetch(b, 1);
		__builtin_prefetch((const char *)b + 64, 1);
	}
}

static void count_alloc(struct ht_counts *c, uint64_t size, uint64_t n, bool live)
{
	c->alloc_count += n;
	c->alloc_bytes += size;
	c->iv_count += n;
	c->iv_bytes += size;
	if (live) {
		c->live_count += n;
		c->live_bytes += size;
	}
}

static void count_free(struct ht_counts *c, uint64_t size, uint64_t n)
{
	c->free_count += n;
	c->free_bytes += size;
	c->live_count -= n;
	c->live_bytes -= size;
}

int heap__on_alloc(struct ht_heap *h, uint32_t pid, uint64_t addr, uint64_t size,
		   uint32_t count, uint32_t site, uint64_t ts_ns)
{
	struct ht_heap_proc *p = get_proc(h, pid);
	struct ht_block *b;
	struct ht_site *s;

	if (!p || !(s = get_site(h, p, site)))
		return -ENOMEM;
	if (size > HT_BLOCK_MAX_SIZE)
		size = HT_BLOCK_MAX_SIZE;
	if (count > HT_BLOCK_MAX_COUNT)
		count = HT_BLOCK_MAX_COUNT;
	if (!addr) {
		count_alloc(&s->c, size, count, false);
		count_alloc(&p->c, size, count, false);
		return 0;
	}
	/* One probe finds either the address (live in the model) or the empty slot where it
	 * goes: no separate lookup before the insert. */
	b = p->blocks_cap ? probe_block(p, addr) : NULL;
	if (b && b->addr) {
		/* The allocator handed out an address we think is live: its free was lost
		 * (dropped record).  Retire the stale block so figures stay consistent; the
		 * removal shifts the cluster, so probe again. */
		p->reused_live++;
		heap__on_free(h, pid, addr);
		b = probe_block(p, addr);
	}
	if (h->nblocks >= h->max_blocks) {
		p->model_full++;
		return 0;
	}
	if (table_full(p)) {
		if (grow_blocks(p))
			return -ENOMEM;
		b = probe_block(p, addr);
	}
	save_for_peak(s, p);
	count_alloc(&s->c, size, count, true);
	count_alloc(&p->c, size, count, true);
	*b = (struct ht_block){ .addr = addr, .size = size, .count = count, .site = site,
				.born_ms = ts_ns > h->origin_ns ? (ts_ns - h->origin_ns) / 1000000 : 0 };
	p->nblocks++;
	h->nblocks++;
	if (p->c.live_bytes > p->peak_bytes) {
		p->peak_bytes = p->c.live_bytes;
		p->peak_count = p->c.live_count;
		p->peak_ts_ns = ts_ns;
		p->peak_gen++;
	}
	return 0;
}

void heap__on_free(struct ht_heap *h, uint32_t pid, uint64_t addr)
{
	struct ht_heap_proc *p = get_proc(h, pid);
	struct ht_block *b;
	struct ht_site *s;

	if (!p)
		return;
	b = find_block(p, addr);
	if (!b) {
		p->unknown_frees++;
		return;
	}
	s = &h->sites[b->site];
	save_for_peak(s, p);
	count_free(&s->c, b->size, b->count);
	count_free(&p->c, b->size, b->count);
	remove_block(p, b);
	p->nblocks--;
	h->nblocks--;
}

static void roll(struct ht_counts *c)
{
	c->last_iv_count = c->iv_count;
	c->last_iv_bytes = c->iv_bytes;
	c->iv_count = c->iv_bytes = 0;
}

void heap__roll_interval(struct ht_heap *h)
{
	for (uint32_t i = 0; i < h->nprocs; i++) {
		struct ht_heap_proc *p = &h->procs[i];

		roll(&p->c);
		for (uint32_t j = 0; j < p->nsites; j++)
			roll(&h->sites[p->sites[j]].c);
	}
}

uint32_t heap__nprocs(const struct ht_heap *h)
{
	return h->nprocs;
}

const struct ht_heap_proc *heap__proc(const struct ht_heap *h, uint32_t idx)
{
	return idx < h->nprocs ? &h->procs[idx] : NULL;
}

const struct ht_heap_proc *heap__find_proc(const struct ht_heap *h, uint32_t pid)
{
	uint64_t *idx = u64map__get(&h->pid_index, (uint64_t)pid + 1);

	return idx ? &h->procs[*idx] : NULL;
}

const struct ht_site *heap__site(const struct ht_heap *h, uint32_t site)
{
	return site < h->sites_cap && h->sites[site].used ? &h->sites[site] : NULL;
}

void heap__site_at_peak(const struct ht_heap *h, uint32_t site, uint64_t *bytes,
			uint64_t *count)
{
	const struct ht_site *s = heap__site(h, site);
	const struct ht_heap_proc *p;

	*bytes = *count = 0;
	if (!s)
		return;
	p = &h->procs[s->proc];
	if (s->saved_gen == p->peak_gen) {
		*bytes = s->saved_peak_bytes;
		*count = s->saved_peak_count;
	} else {
		*bytes = s->c.live_bytes;
		*count = s->c.live_count;
	}
}

void heap__for_each_block(const struct ht_heap *h, uint32_t proc_idx,
			  void (*fn)(const struct ht_block *b, void *arg), void *arg)
{
	const struct ht_heap_proc *p = heap__proc(h, proc_idx);

	if (!p)
		return;
	for (uint64_t i = 0; i < p->blocks_cap; i++)
		if (p->blocks[i].addr)
			fn(&p->blocks[i], arg);
}

uint64_t heap__memory(const struct ht_heap *h)
{
	uint64_t m = sizeof(*h) + (uint64_t)h->procs_cap * sizeof(*h->procs) +
		     (uint64_t)h->sites_cap * sizeof(*h->sites) + h->pid_index.cap * 16;

	for (uint32_t i = 0; i < h->nprocs; i++)
		m += h->procs[i].blocks_cap * sizeof(struct ht_block) +
		     (uint64_t)h->procs[i].sites_cap * sizeof(uint32_t);
	return m;
}

uint64_t heap__live_blocks(const struct ht_heap *h)
{
	return h->nblocks;
}

void heap__drop_proc(struct ht_heap *h, uint32_t pid)
{
	uint64_t key = (uint64_t)pid + 1, *idx = u64map__get(&h->pid_index, key);
	struct ht_heap_proc *p;
	uint32_t i, last;

	if (!idx)
		return;
	i = (uint32_t)*idx;
	p = &h->procs[i];
	/* Its sites' aggregates go with it (stack ids are never shared between processes). */
	for (uint32_t k = 0; k < p->nsites; k++)
		memset(&h->sites[p->sites[k]], 0, sizeof(h->sites[0]));
	h->nblocks -= p->nblocks;
	free_table(p->blocks, p->blocks_cap);
	free(p->sites);
	u64map__remove(&h->pid_index, key);
	last = h->nprocs - 1;
	if (i != last) { /* the last process fills the hole; its sites follow it */
		h->procs[i] = h->procs[last];
		u64map__put(&h->pid_index, (uint64_t)h->procs[i].pid + 1, i);
		for (uint32_t k = 0; k < h->procs[i].nsites; k++)
			h->sites[h->procs[i].sites[k]].proc = i;
	}
	h->nprocs--;
	h->last_key = 0; /* the look-up cache may name a moved or dropped process */
}
