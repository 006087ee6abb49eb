/*
 * Unit test for src/heap.c: exact per-site and per-process figures for hand-written event
 * sequences (realloc, unknown and double frees, a lost free, the block cap, interval roll,
 * block iteration), the value of every site at the process's peak, checked against a
 * reference model after every event of a long pseudo-random sequence, and the live-block
 * table at 1,000,000 blocks freed in another order than inserted, and its probe chains
 * where they wrap past the table's end.  Prints the model's
 * bytes per live block at 1M blocks to stderr.  Exit status 0 when every check passes;
 * every failed check is printed to stderr with its file:line.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heap.h"

#include "check.h"

/* alloc/free/live figures of one ht_counts, reported at the caller's line. */
#define CHECK_COUNTS(c, ac, ab, fc, fb, lc, lb) \
	check_counts((c), (ac), (ab), (fc), (fb), (lc), (lb), #c, __FILE__, __LINE__)

static void check_counts(const struct ht_counts *c, uint64_t ac, uint64_t ab, uint64_t fc,
			 uint64_t fb, uint64_t lc, uint64_t lb, const char *what, const char *file,
			 int line)
{
	if (!c) {
		fprintf(stderr, "%s:%d: check failed: %s is NULL\n", file, line, what);
		failures++;
		return;
	}
	if (c->alloc_count == ac && c->alloc_bytes == ab && c->free_count == fc &&
	    c->free_bytes == fb && c->live_count == lc && c->live_bytes == lb)
		return;
	fprintf(stderr,
		"%s:%d: check failed: %s: alloc %" PRIu64 "/%" PRIu64 " free %" PRIu64 "/%" PRIu64
		" live %" PRIu64 "/%" PRIu64 ", expected alloc %" PRIu64 "/%" PRIu64
		" free %" PRIu64 "/%" PRIu64 " live %" PRIu64 "/%" PRIu64 "\n",
		file, line, what, c->alloc_count, c->alloc_bytes, c->free_count, c->free_bytes,
		c->live_count, c->live_bytes, ac, ab, fc, fb, lc, lb);
	failures++;
}

static const struct ht_counts *site_c(const struct ht_heap *h, uint32_t id)
{
	const struct ht_site *s = heap__site(h, id);

	return s ? &s->c : NULL;
}

static const struct ht_counts *proc_c(const struct ht_heap *h, uint32_t pid)
{
	const struct ht_heap_proc *p = heap__find_proc(h, pid);

	return p ? &p->c : NULL;
}

/* One traced allocation (count 1); ALLOC_N for a weighted (sampled) block. */
#define ALLOC(h, pid, addr, size, site, ts) \
	CHECK_EQ(heap__on_alloc((h), (pid), (addr), (size), 1, (site), (ts)), 0)
#define ALLOC_N(h, pid, addr, size, count, site, ts) \
	CHECK_EQ(heap__on_alloc((h), (pid), (addr), (size), (count), (site), (ts)), 0)

struct block_sum {
	uint64_t blocks, count, bytes;
};

static void sum_block(const struct ht_block *b, void *arg)
{
	struct block_sum *s = arg;

	s->blocks++;
	s->count += b->count;
	s->bytes += b->size;
}

/*
 * The invariants every event must keep: a process's figures are the sum of its sites',
 * its live blocks are exactly its live figures, and the global block count is the sum.
 * (alloc - free == live holds only without rate-mode allocations, which never live.)
 */
#define CHECK_CONSISTENT(h) check_consistent((h), __FILE__, __LINE__)

static void check_consistent(const struct ht_heap *h, const char *file, int line)
{
	uint64_t total_live = 0;
	int before = failures;

	for (uint32_t i = 0; i < heap__nprocs(h); i++) {
		const struct ht_heap_proc *p = heap__proc(h, i);
		struct ht_counts sum = { 0 };
		struct block_sum bs = { 0 };

		for (uint32_t k = 0; k < p->nsites; k++) {
			const struct ht_site *s = heap__site(h, p->sites[k]);

			CHECK(s && s->proc == i);
			if (!s)
				continue;
			sum.alloc_count += s->c.alloc_count;
			sum.alloc_bytes += s->c.alloc_bytes;
			sum.free_count += s->c.free_count;
			sum.free_bytes += s->c.free_bytes;
			sum.live_count += s->c.live_count;
			sum.live_bytes += s->c.live_bytes;
			sum.iv_count += s->c.iv_count;
			sum.iv_bytes += s->c.iv_bytes;
		}
		CHECK_EQ(sum.alloc_count, p->c.alloc_count);
		CHECK_EQ(sum.alloc_bytes, p->c.alloc_bytes);
		CHECK_EQ(sum.free_count, p->c.free_count);
		CHECK_EQ(sum.free_bytes, p->c.free_bytes);
		CHECK_EQ(sum.live_count, p->c.live_count);
		CHECK_EQ(sum.live_bytes, p->c.live_bytes);
		CHECK_EQ(sum.iv_count, p->c.iv_count);
		CHECK_EQ(sum.iv_bytes, p->c.iv_bytes);
		heap__for_each_block(h, i, sum_block, &bs);
		CHECK_EQ(bs.blocks, p->nblocks);
		CHECK_EQ(bs.count, p->c.live_count);
		CHECK_EQ(bs.bytes, p->c.live_bytes);
		CHECK(p->peak_bytes >= p->c.live_bytes);
		total_live += p->nblocks;
	}
	CHECK_EQ(total_live, heap__live_blocks(h));
	if (failures != before)
		fprintf(stderr, "%s:%d: ^ consistency checks failed here\n", file, line);
}

static uint64_t total_unknown_frees(const struct ht_heap *h)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < heap__nprocs(h); i++)
		n += heap__proc(h, i)->unknown_frees;
	return n;
}

static void test_counts(void)
{
	struct ht_heap *h = heap__new(1000, 0);
	const struct ht_heap_proc *p;

	CHECK(h);
	if (!h)
		return;
	CHECK_EQ(heap__nprocs(h), 0);
	CHECK(!heap__find_proc(h, 100));
	CHECK(!heap__site(h, 0));

	ALLOC(h, 100, 0x1000, 10, 0, 1);
	ALLOC(h, 100, 0x2000, 20, 0, 2);
	ALLOC(h, 100, 0x3000, 30, 1, 3);
	ALLOC(h, 200, 0x1000, 5, 2, 4); /* same address in another process: another block */
	heap__on_free(h, 100, 0x2000);

	CHECK_EQ(heap__nprocs(h), 2);
	CHECK_EQ(heap__proc(h, 0)->pid, 100);
	CHECK_EQ(heap__proc(h, 1)->pid, 200);
	CHECK(heap__find_proc(h, 200) == heap__proc(h, 1));
	CHECK(!heap__proc(h, 2));
	CHECK(!heap__find_proc(h, 300));
	CHECK(!heap__site(h, 3));
	CHECK(heap__site(h, 2) && heap__site(h, 2)->proc == 1);
	CHECK_COUNTS(site_c(h, 0), 2, 30, 1, 20, 1, 10);
	CHECK_COUNTS(site_c(h, 1), 1, 30, 0, 0, 1, 30);
	CHECK_COUNTS(site_c(h, 2), 1, 5, 0, 0, 1, 5);
	CHECK_COUNTS(proc_c(h, 100), 3, 60, 1, 20, 2, 40);
	CHECK_COUNTS(proc_c(h, 200), 1, 5, 0, 0, 1, 5);
	CHECK_EQ(site_c(h, 0)->iv_count, 2);
	CHECK_EQ(site_c(h, 0)->iv_bytes, 30);
	CHECK_EQ(proc_c(h, 100)->iv_count, 3);
	CHECK_EQ(proc_c(h, 100)->iv_bytes, 60);
	CHECK_EQ(heap__live_blocks(h), 3);
	p = heap__find_proc(h, 100);
	CHECK_EQ(p->nsites, 2);
	CHECK_EQ(p->unknown_frees + p->reused_live + p->model_full, 0);
	CHECK_CONSISTENT(h);

	/* realloc(0x3000 -> 0x4000): the old block dies, a new one is born at another site */
	heap__on_free(h, 100, 0x3000);
	ALLOC(h, 100, 0x4000, 100, 3, 5);
	CHECK_COUNTS(site_c(h, 1), 1, 30, 1, 30, 0, 0);
	CHECK_COUNTS(site_c(h, 3), 1, 100, 0, 0, 1, 100);
	CHECK_COUNTS(proc_c(h, 100), 4, 160, 2, 50, 2, 110);
	/* realloc in place: same address, new size; not a lost free */
	heap__on_free(h, 100, 0x4000);
	ALLOC(h, 100, 0x4000, 200, 3, 6);
	CHECK_COUNTS(site_c(h, 3), 2, 300, 1, 100, 1, 200);
	CHECK_COUNTS(proc_c(h, 100), 5, 360, 3, 150, 2, 210);
	CHECK_EQ(heap__find_proc(h, 100)->reused_live, 0);
	CHECK_EQ(heap__find_proc(h, 100)->unknown_frees, 0);
	CHECK_CONSISTENT(h);

	/* unknown frees: never allocated; allocated in another process; freed twice */
	heap__on_free(h, 100, 0xdead0);
	CHECK_EQ(heap__find_proc(h, 100)->unknown_frees, 1);
	heap__on_free(h, 200, 0x4000);
	CHECK_EQ(heap__find_proc(h, 200)->unknown_frees, 1);
	CHECK_COUNTS(proc_c(h, 200), 1, 5, 0, 0, 1, 5);
	ALLOC(h, 100, 0x5000, 8, 4, 7);
	heap__on_free(h, 100, 0x5000);
	CHECK_EQ(heap__find_proc(h, 100)->unknown_frees, 1);
	heap__on_free(h, 100, 0x5000);
	CHECK_EQ(heap__find_proc(h, 100)->unknown_frees, 2);
	CHECK_COUNTS(site_c(h, 4), 1, 8, 1, 8, 0, 0);
	CHECK_COUNTS(proc_c(h, 100), 6, 368, 4, 158, 2, 210);
	/* a free in a process never seen is counted somewhere, and changes no figure */
	heap__on_free(h, 300, 0x1000);
	CHECK_EQ(total_unknown_frees(h), 4);
	CHECK_EQ(heap__live_blocks(h), 3);
	CHECK_CONSISTENT(h);

	/* a lost free: 0x6000 allocated again while still live */
	ALLOC(h, 100, 0x6000, 50, 5, 8);
	ALLOC(h, 100, 0x6000, 70, 6, 9);
	p = heap__find_proc(h, 100);
	CHECK_EQ(p->reused_live, 1);
	CHECK_COUNTS(site_c(h, 5), 1, 50, 1, 50, 0, 0);
	CHECK_COUNTS(site_c(h, 6), 1, 70, 0, 0, 1, 70);
	CHECK_COUNTS(proc_c(h, 100), 8, 488, 5, 208, 3, 280);
	CHECK_EQ(heap__live_blocks(h), 4);
	CHECK_CONSISTENT(h);
	/* the replacement is the live one: its free is known, the next one is not */
	heap__on_free(h, 100, 0x6000);
	CHECK_COUNTS(site_c(h, 6), 1, 70, 1, 70, 0, 0);
	CHECK_EQ(heap__find_proc(h, 100)->unknown_frees, 2);
	heap__on_free(h, 100, 0x6000);
	CHECK_EQ(heap__find_proc(h, 100)->unknown_frees, 3);
	CHECK_EQ(heap__find_proc(h, 100)->reused_live, 1);
	/* reuse across sites of the same size, twice in a row */
	ALLOC(h, 100, 0x7000, 16, 5, 10);
	ALLOC(h, 100, 0x7000, 16, 5, 11);
	ALLOC(h, 100, 0x7000, 16, 6, 12);
	CHECK_EQ(heap__find_proc(h, 100)->reused_live, 3);
	CHECK_COUNTS(site_c(h, 5), 3, 82, 3, 82, 0, 0);
	CHECK_COUNTS(site_c(h, 6), 2, 86, 1, 70, 1, 16);
	CHECK_COUNTS(proc_c(h, 100), 11, 536, 8, 310, 3, 226);
	CHECK_CONSISTENT(h);
	CHECK_EQ(proc_c(h, 100)->alloc_count - proc_c(h, 100)->free_count,
		 proc_c(h, 100)->live_count);
	CHECK_EQ(proc_c(h, 100)->alloc_bytes - proc_c(h, 100)->free_bytes,
		 proc_c(h, 100)->live_bytes);
	/* zero-size blocks are blocks */
	ALLOC(h, 100, 0x8000, 0, 7, 13);
	CHECK_COUNTS(site_c(h, 7), 1, 0, 0, 0, 1, 0);
	heap__on_free(h, 100, 0x8000);
	CHECK_COUNTS(site_c(h, 7), 1, 0, 1, 0, 0, 0);
	CHECK_EQ(heap__find_proc(h, 100)->unknown_frees, 3);
	CHECK_CONSISTENT(h);
	CHECK(heap__memory(h) > 0);

	heap__free(h);
	heap__free(NULL);
}

static void test_interval(void)
{
	struct ht_heap *h = heap__new(1000, 0);
	const struct ht_counts *s0, *s1, *p1, *p2;

	ALLOC(h, 1, 0x10, 100, 0, 1);
	ALLOC(h, 1, 0x20, 10, 0, 2);
	ALLOC(h, 1, 0x30, 7, 1, 3);
	ALLOC(h, 2, 0x10, 3, 2, 4);
	heap__on_free(h, 1, 0x10); /* frees do not touch interval figures */
	s0 = site_c(h, 0);
	s1 = site_c(h, 1);
	p1 = proc_c(h, 1);
	p2 = proc_c(h, 2);
	CHECK_EQ(s0->iv_count, 2);
	CHECK_EQ(s0->iv_bytes, 110);
	CHECK_EQ(s0->last_iv_count, 0);
	CHECK_EQ(s0->last_iv_bytes, 0);

	heap__roll_interval(h);
	s0 = site_c(h, 0);
	s1 = site_c(h, 1);
	p1 = proc_c(h, 1);
	p2 = proc_c(h, 2);
	CHECK_EQ(s0->last_iv_count, 2);
	CHECK_EQ(s0->last_iv_bytes, 110);
	CHECK_EQ(s0->iv_count, 0);
	CHECK_EQ(s0->iv_bytes, 0);
	CHECK_EQ(s1->last_iv_count, 1);
	CHECK_EQ(s1->last_iv_bytes, 7);
	CHECK_EQ(site_c(h, 2)->last_iv_count, 1);
	CHECK_EQ(site_c(h, 2)->last_iv_bytes, 3);
	CHECK_EQ(p1->last_iv_count, 3);
	CHECK_EQ(p1->last_iv_bytes, 117);
	CHECK_EQ(p1->iv_count, 0);
	CHECK_EQ(p2->last_iv_count, 1);
	CHECK_EQ(p2->last_iv_bytes, 3);
	/* totals are not interval figures */
	CHECK_COUNTS(s0, 2, 110, 1, 100, 1, 10);

	ALLOC(h, 1, 0x40, 5, 1, 5);
	ALLOC(h, 1, 0x50, 6, 3, 6); /* a site born in this interval */
	heap__on_free(h, 1, 0x20);
	s0 = site_c(h, 0);
	s1 = site_c(h, 1);
	p1 = proc_c(h, 1);
	CHECK_EQ(s1->iv_count, 1);
	CHECK_EQ(s1->iv_bytes, 5);
	CHECK_EQ(s1->last_iv_count, 1); /* still the closed interval's */
	CHECK_EQ(s1->last_iv_bytes, 7);
	CHECK_EQ(p1->iv_count, 2);
	CHECK_EQ(p1->iv_bytes, 11);

	heap__roll_interval(h);
	s0 = site_c(h, 0);
	s1 = site_c(h, 1);
	p1 = proc_c(h, 1);
	p2 = proc_c(h, 2);
	CHECK_EQ(s0->last_iv_count, 0);
	CHECK_EQ(s0->last_iv_bytes, 0);
	CHECK_EQ(s1->last_iv_count, 1);
	CHECK_EQ(s1->last_iv_bytes, 5);
	CHECK_EQ(site_c(h, 3)->last_iv_count, 1);
	CHECK_EQ(site_c(h, 3)->last_iv_bytes, 6);
	CHECK_EQ(p1->last_iv_count, 2);
	CHECK_EQ(p1->last_iv_bytes, 11);
	CHECK_EQ(p2->last_iv_count, 0);
	CHECK_EQ(p2->last_iv_bytes, 0);

	heap__roll_interval(h);
	CHECK_EQ(site_c(h, 1)->last_iv_count, 0);
	CHECK_EQ(site_c(h, 1)->last_iv_bytes, 0);
	CHECK_EQ(proc_c(h, 1)->last_iv_count, 0);
	CHECK_EQ(proc_c(h, 1)->last_iv_bytes, 0);
	CHECK_CONSISTENT(h);
	heap__free(h);
}

#define CHECK_AT_PEAK(h, site, eb, ec) check_at_peak((h), (site), (eb), (ec), __FILE__, __LINE__)

static void check_at_peak(const struct ht_heap *h, uint32_t site, uint64_t eb, uint64_t ec,
			  const char *file, int line)
{
	uint64_t b = 12345, c = 12345;

	heap__site_at_peak(h, site, &b, &c);
	if (b == eb && c == ec)
		return;
	fprintf(stderr,
		"%s:%d: check failed: site %u at peak: %" PRIu64 " bytes in %" PRIu64
		", expected %" PRIu64 " in %" PRIu64 "\n",
		file, line, site, b, c, eb, ec);
	failures++;
}

/* Hand-written peaks: which sites change after the peak, and how, is chosen per site. */
static void test_peak(void)
{
	enum { A, B, C, D, E, F, G };
	struct ht_heap *h = heap__new(1000, 0);
	const struct ht_heap_proc *p;
	uint64_t t = 1000;

	/* F lives and dies before the peak */
	ALLOC(h, 7, 0xf000, 300, F, t++);
	heap__on_free(h, 7, 0xf000);
	ALLOC(h, 7, 0xa000, 100, A, t++);
	ALLOC(h, 7, 0xb000, 200, B, t++);
	ALLOC(h, 7, 0xe000, 50, E, t++);
	ALLOC(h, 7, 0xc000, 10, C, t++);
	ALLOC(h, 7, 0xa100, 40, A, t++); /* the peak: 400 bytes in 5 blocks */
	p = heap__find_proc(h, 7);
	CHECK_EQ(p->peak_bytes, 400);
	CHECK_EQ(p->peak_count, 5);
	CHECK_EQ(p->peak_ts_ns, t - 1);
	CHECK_AT_PEAK(h, A, 140, 2);
	CHECK_AT_PEAK(h, B, 200, 1);
	CHECK_AT_PEAK(h, C, 10, 1);
	CHECK_AT_PEAK(h, E, 50, 1);
	CHECK_AT_PEAK(h, F, 0, 0);

	/* after the peak: A once, B many times, C down then up, D born, F reborn, E never */
	heap__on_free(h, 7, 0xa100);
	heap__on_free(h, 7, 0xb000);
	for (uint64_t i = 0; i < 50; i++) {
		ALLOC(h, 7, 0xb100 + i * 16, 1 + i % 5, B, t++);
		if (i % 3)
			heap__on_free(h, 7, 0xb100 + i * 16);
	}
	heap__on_free(h, 7, 0xc000);
	ALLOC(h, 7, 0xc100, 5, C, t++);
	ALLOC(h, 7, 0xc200, 5, C, t++);
	ALLOC(h, 7, 0xd000, 30, D, t++);
	ALLOC(h, 7, 0xf100, 1, F, t++);
	ALLOC(h, 7, 0x9000, 2, G, t++); /* a site whose first event is after the peak */
	heap__on_free(h, 7, 0x9000);
	p = heap__find_proc(h, 7);
	CHECK(p->c.live_bytes < 400);
	CHECK_EQ(p->peak_bytes, 400);
	CHECK_EQ(p->peak_count, 5);
	CHECK_AT_PEAK(h, A, 140, 2);
	CHECK_AT_PEAK(h, B, 200, 1);
	CHECK_AT_PEAK(h, C, 10, 1);
	CHECK_AT_PEAK(h, D, 0, 0);
	CHECK_AT_PEAK(h, E, 50, 1);
	CHECK_AT_PEAK(h, F, 0, 0);
	CHECK_AT_PEAK(h, G, 0, 0);
	CHECK_CONSISTENT(h);

	/* a second, higher peak: every site's value now, whatever it saved for the first */
	uint64_t live_b = site_c(h, B)->live_bytes, live_bc = site_c(h, B)->live_count;

	ALLOC(h, 7, 0xd100, 1000, D, t++);
	p = heap__find_proc(h, 7);
	CHECK_EQ(p->peak_bytes, p->c.live_bytes);
	CHECK_EQ(p->peak_count, p->c.live_count);
	CHECK_EQ(p->peak_ts_ns, t - 1);
	CHECK_AT_PEAK(h, A, 100, 1);
	CHECK_AT_PEAK(h, B, live_b, live_bc);
	CHECK_AT_PEAK(h, C, 10, 2);
	CHECK_AT_PEAK(h, D, 1030, 2);
	CHECK_AT_PEAK(h, E, 50, 1);
	CHECK_AT_PEAK(h, F, 1, 1);
	CHECK_AT_PEAK(h, G, 0, 0);
	uint64_t peak2 = p->peak_bytes;

	/* after it: D and B shrink, A grows (still under the peak), H born */
	heap__on_free(h, 7, 0xd100);
	heap__on_free(h, 7, 0xd000);
	for (uint64_t i = 0; i < 50; i += 3)
		heap__on_free(h, 7, 0xb100 + i * 16);
	ALLOC(h, 7, 0xa200, 500, A, t++);
	ALLOC(h, 7, 0x8000, 7, G + 1, t++);
	p = heap__find_proc(h, 7);
	CHECK(p->c.live_bytes < peak2);
	CHECK_EQ(p->peak_bytes, peak2);
	CHECK_AT_PEAK(h, A, 100, 1);
	CHECK_AT_PEAK(h, B, live_b, live_bc);
	CHECK_AT_PEAK(h, C, 10, 2);
	CHECK_AT_PEAK(h, D, 1030, 2);
	CHECK_AT_PEAK(h, E, 50, 1);
	CHECK_AT_PEAK(h, F, 1, 1);
	CHECK_AT_PEAK(h, G, 0, 0);
	CHECK_AT_PEAK(h, G + 1, 0, 0);
	CHECK_AT_PEAK(h, 99, 0, 0); /* no such site */

	/* a site of another process has its own peak, unaffected by this one's */
	ALLOC(h, 8, 0xa000, 5000, 50, t++);
	heap__on_free(h, 8, 0xa000);
	ALLOC(h, 8, 0xa000, 10, 50, t++);
	CHECK_AT_PEAK(h, 50, 5000, 1);
	CHECK_EQ(heap__find_proc(h, 7)->peak_bytes, peak2);
	CHECK_AT_PEAK(h, A, 100, 1);
	CHECK_CONSISTENT(h);
	heap__free(h);
}

/*
 * A reference model: every block in a plain array; at each new peak of a process, a copy
 * of every site's live figures.  After each of many pseudo-random events (allocations,
 * some weighted, frees, unknown frees, allocations at live addresses, in two processes)
 * the heap's figures and its at-peak values must equal the model's.
 */
enum { REF_SITES = 24, REF_ADDRS = 64, REF_PIDS = 2, REF_STEPS = 20000 };

struct ref {
	uint64_t size[REF_PIDS][REF_ADDRS], count[REF_PIDS][REF_ADDRS];
	uint32_t site[REF_PIDS][REF_ADDRS];
	bool live[REF_PIDS][REF_ADDRS];
	uint64_t site_bytes[REF_SITES], site_count[REF_SITES];
	uint64_t peak_bytes[REF_SITES], peak_count[REF_SITES];
	uint64_t proc_bytes[REF_PIDS], proc_count[REF_PIDS], proc_peak[REF_PIDS];
	uint64_t unknown[REF_PIDS], reused[REF_PIDS];
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static void ref_free(struct ref *r, uint32_t pid, uint32_t a)
{
	uint32_t s = r->site[pid][a];

	r->live[pid][a] = false;
	r->site_bytes[s] -= r->size[pid][a];
	r->site_count[s] -= r->count[pid][a];
	r->proc_bytes[pid] -= r->size[pid][a];
	r->proc_count[pid] -= r->count[pid][a];
}

static void test_peak_random(void)
{
	struct ht_heap *h = heap__new(1u << 20, 0);
	struct ref *r = calloc(1, sizeof(*r));
	int before = failures;

	for (int step = 0; step < REF_STEPS && failures == before; step++) {
		uint32_t pid = rnd() % REF_PIDS, a = rnd() % REF_ADDRS;
		uint64_t addr = 0x10000 + (uint64_t)a * 0x40;
		uint32_t kind = rnd() % 8;

		if (kind < 4) {
			/* sites of pid p are the ids congruent to p */
			uint32_t s = (uint32_t)(rnd() % (REF_SITES / REF_PIDS)) * REF_PIDS + pid;
			/* sizes skewed so that new peaks keep happening now and then */
			uint64_t size = 1 + rnd() % (kind == 0 ? 4096 : 256);
			/* some weighted blocks, as byte sampling makes */
			uint32_t count = kind == 1 ? 1 + (uint32_t)(rnd() % 3) : 1;

			if (r->live[pid][a]) {
				r->reused[pid]++;
				ref_free(r, pid, a);
			}
			r->live[pid][a] = true;
			r->size[pid][a] = size;
			r->count[pid][a] = count;
			r->site[pid][a] = s;
			r->site_bytes[s] += size;
			r->site_count[s] += count;
			r->proc_bytes[pid] += size;
			r->proc_count[pid] += count;
			if (r->proc_bytes[pid] > r->proc_peak[pid]) {
				r->proc_peak[pid] = r->proc_bytes[pid];
				for (uint32_t k = pid; k < REF_SITES; k += REF_PIDS) {
					r->peak_bytes[k] = r->site_bytes[k];
					r->peak_count[k] = r->site_count[k];
				}
			}
			ALLOC_N(h, 1000 + pid, addr, size, count, s, (uint64_t)step);
		} else {
			if (r->live[pid][a])
				ref_free(r, pid, a);
			else
				r->unknown[pid]++;
			heap__on_free(h, 1000 + pid, addr);
		}

		for (uint32_t p = 0; p < REF_PIDS; p++) {
			const struct ht_heap_proc *hp = heap__find_proc(h, 1000 + p);

			if (!hp)
				continue;
			CHECK_EQ(hp->c.live_bytes, r->proc_bytes[p]);
			CHECK_EQ(hp->c.live_count, r->proc_count[p]);
			CHECK_EQ(hp->peak_bytes, r->proc_peak[p]);
			CHECK_EQ(hp->unknown_frees, r->unknown[p]);
			CHECK_EQ(hp->reused_live, r->reused[p]);
		}
		for (uint32_t s = 0; s < REF_SITES; s++) {
			const struct ht_site *hs = heap__site(h, s);

			if (hs) {
				CHECK_EQ(hs->c.live_bytes, r->site_bytes[s]);
				CHECK_EQ(hs->c.live_count, r->site_count[s]);
			}
			CHECK_AT_PEAK(h, s, r->peak_bytes[s], r->peak_count[s]);
		}
		if (step % 1000 == 0)
			CHECK_CONSISTENT(h);
		if (failures != before)
			fprintf(stderr, "test_peak_random: first failure at step %d\n", step);
	}
	CHECK_CONSISTENT(h);
	free(r);
	heap__free(h);
}

static void test_cap(void)
{
	struct ht_heap *h = heap__new(3, 0);
	struct block_sum bs = { 0 };

	ALLOC(h, 1, 0x100, 10, 0, 1);
	ALLOC(h, 1, 0x200, 20, 0, 2);
	ALLOC(h, 2, 0x100, 30, 1, 3);
	CHECK_EQ(heap__live_blocks(h), 3);
	/* over the cap: counted, not tracked, no figure moves */
	ALLOC(h, 2, 0x300, 40, 2, 4);
	ALLOC(h, 1, 0x400, 50, 0, 5);
	CHECK_EQ(heap__find_proc(h, 2)->model_full, 1);
	CHECK_EQ(heap__find_proc(h, 1)->model_full, 1);
	CHECK_EQ(heap__live_blocks(h), 3);
	CHECK_COUNTS(proc_c(h, 1), 2, 30, 0, 0, 2, 30);
	CHECK_COUNTS(proc_c(h, 2), 1, 30, 0, 0, 1, 30);
	CHECK_COUNTS(site_c(h, 0), 2, 30, 0, 0, 2, 30);
	if (heap__site(h, 2))
		CHECK_COUNTS(site_c(h, 2), 0, 0, 0, 0, 0, 0);
	CHECK_EQ(heap__find_proc(h, 2)->peak_bytes, 30);
	heap__for_each_block(h, 1, sum_block, &bs);
	CHECK_EQ(bs.count, 1);
	CHECK_EQ(bs.bytes, 30);
	/* the untracked block's free finds nothing and changes no figure */
	heap__on_free(h, 2, 0x300);
	CHECK_COUNTS(proc_c(h, 2), 1, 30, 0, 0, 1, 30);
	CHECK_EQ(heap__live_blocks(h), 3);
	CHECK_CONSISTENT(h);

	/* at the cap, an allocation at a live address retires the old block first: tracked */
	ALLOC(h, 1, 0x200, 25, 3, 6);
	CHECK_EQ(heap__find_proc(h, 1)->reused_live, 1);
	CHECK_EQ(heap__find_proc(h, 1)->model_full, 1);
	CHECK_COUNTS(proc_c(h, 1), 3, 55, 1, 20, 2, 35);
	CHECK_COUNTS(site_c(h, 3), 1, 25, 0, 0, 1, 25);
	CHECK_EQ(heap__live_blocks(h), 3);

	/* a free makes room again */
	heap__on_free(h, 1, 0x100);
	CHECK_EQ(heap__live_blocks(h), 2);
	ALLOC(h, 2, 0x500, 60, 1, 7);
	CHECK_EQ(heap__live_blocks(h), 3);
	CHECK_COUNTS(proc_c(h, 2), 2, 90, 0, 0, 2, 90);
	CHECK_EQ(heap__find_proc(h, 2)->model_full, 1);
	ALLOC(h, 2, 0x600, 70, 1, 8);
	CHECK_EQ(heap__find_proc(h, 2)->model_full, 2);
	CHECK_EQ(heap__live_blocks(h), 3);
	CHECK_CONSISTENT(h);
	heap__free(h);

	/* a cap of 0 tracks nothing */
	h = heap__new(0, 0);
	ALLOC(h, 1, 0x100, 10, 0, 1);
	CHECK_EQ(heap__live_blocks(h), 0);
	CHECK(heap__find_proc(h, 1) && heap__find_proc(h, 1)->model_full == 1);
	CHECK_EQ(heap__find_proc(h, 1)->c.alloc_count, 0);
	heap__free(h);
}

/* Sampled blocks stand for several allocations; rate mode (addr 0) never makes a block. */
static void test_weighted(void)
{
	struct ht_heap *h = heap__new(2, 0);
	const struct ht_heap_proc *p;
	struct block_sum bs = { 0 };

	ALLOC_N(h, 1, 0x100, 4000, 10, 0, 1); /* one sampled block: 10 allocations */
	ALLOC_N(h, 1, 0x200, 64, 1, 1, 2);
	p = heap__find_proc(h, 1);
	CHECK_COUNTS(&p->c, 11, 4064, 0, 0, 11, 4064);
	CHECK_COUNTS(site_c(h, 0), 10, 4000, 0, 0, 10, 4000);
	CHECK_EQ(p->nblocks, 2);
	CHECK_EQ(heap__live_blocks(h), 2);
	CHECK_EQ(p->peak_bytes, 4064);
	CHECK_EQ(p->peak_count, 11);
	heap__for_each_block(h, 0, sum_block, &bs);
	CHECK_EQ(bs.blocks, 2);
	CHECK_EQ(bs.count, 11);
	CHECK_AT_PEAK(h, 0, 4000, 10);
	CHECK_CONSISTENT(h);

	/* the cap is on blocks, not on the allocations they stand for */
	ALLOC_N(h, 1, 0x300, 8, 5, 1, 3);
	p = heap__find_proc(h, 1);
	CHECK_EQ(p->model_full, 1);
	CHECK_COUNTS(&p->c, 11, 4064, 0, 0, 11, 4064);

	/* freeing a weighted block frees all it stands for */
	heap__on_free(h, 1, 0x100);
	p = heap__find_proc(h, 1);
	CHECK_COUNTS(site_c(h, 0), 10, 4000, 10, 4000, 0, 0);
	CHECK_COUNTS(&p->c, 11, 4064, 10, 4000, 1, 64);
	CHECK_EQ(p->nblocks, 1);
	CHECK_AT_PEAK(h, 0, 4000, 10);
	/* a lost free of a weighted block retires all of it */
	ALLOC_N(h, 1, 0x400, 900, 3, 2, 4);
	ALLOC_N(h, 1, 0x400, 100, 2, 2, 5);
	p = heap__find_proc(h, 1);
	CHECK_EQ(p->reused_live, 1);
	CHECK_COUNTS(site_c(h, 2), 5, 1000, 3, 900, 2, 100);
	CHECK_CONSISTENT(h);

	/* rate mode: counted as allocated (and in the interval), never live, no block */
	ALLOC_N(h, 1, 0, 50, 1, 3, 6);
	ALLOC_N(h, 1, 0, 70, 4, 3, 7);
	p = heap__find_proc(h, 1);
	CHECK_COUNTS(site_c(h, 3), 5, 120, 0, 0, 0, 0);
	CHECK_EQ(site_c(h, 3)->iv_count, 5);
	CHECK_EQ(site_c(h, 3)->iv_bytes, 120);
	CHECK_COUNTS(&p->c, 21, 5184, 13, 4900, 3, 164);
	CHECK_EQ(p->nblocks, 2);
	CHECK_EQ(p->model_full, 1); /* no block, so not over the cap either */
	CHECK_EQ(p->peak_bytes, 4064);
	CHECK_AT_PEAK(h, 3, 0, 0);
	CHECK_EQ(heap__live_blocks(h), 2);
	CHECK_CONSISTENT(h);
	heap__free(h);

	/* size and count are capped to what a block can hold, the figures with them */
	h = heap__new(10, 0);
	ALLOC_N(h, 1, 0x100, 1ULL << 41, 1u << 25, 0, 1);
	CHECK_COUNTS(site_c(h, 0), HT_BLOCK_MAX_COUNT, HT_BLOCK_MAX_SIZE, 0, 0,
		     HT_BLOCK_MAX_COUNT, HT_BLOCK_MAX_SIZE);
	heap__on_free(h, 1, 0x100);
	CHECK_COUNTS(site_c(h, 0), HT_BLOCK_MAX_COUNT, HT_BLOCK_MAX_SIZE, HT_BLOCK_MAX_COUNT,
		     HT_BLOCK_MAX_SIZE, 0, 0);
	CHECK_CONSISTENT(h);
	heap__free(h);
}

struct seen {
	uint64_t addr[8], size[8];
	uint32_t site[8], born_ms[8];
	int n, overflow;
};

static void collect(const struct ht_block *b, void *arg)
{
	struct seen *s = arg;

	if (s->n == 8) {
		s->overflow++;
		return;
	}
	s->addr[s->n] = b->addr;
	s->size[s->n] = b->size;
	s->site[s->n] = b->site;
	s->born_ms[s->n] = b->born_ms;
	s->n++;
}

static int find_seen(const struct seen *s, uint64_t addr)
{
	int found = -1;

	for (int i = 0; i < s->n; i++) {
		if (s->addr[i] == addr) {
			CHECK(found < 0); /* visited once */
			found = i;
		}
	}
	return found;
}

static void test_for_each_block(void)
{
	const uint64_t origin = 5000000000ULL;
	struct ht_heap *h = heap__new(100, origin);
	static const struct {
		uint64_t addr, size;
		uint32_t site;
		uint64_t ts;
		uint32_t born_ms;
	} want[] = {
		{ 0x7f0000001000, 16, 0, 5000000000ULL, 0 },
		{ 0x7f0000002000, 32, 1, 5001500000ULL, 1 },     /* 1.5 ms: truncated */
		{ 0x7f0000003000, 48, 0, 8000999999ULL, 3000 },  /* 3000.999999 ms */
		{ 0x7f0000004000, 64, 2, 4000000000ULL, 0 },     /* before the origin */
		{ 0x7f0000005000, 80, 1, 5000999999ULL, 0 },
	};
	struct seen s = { 0 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ALLOC(h, 42, want[i].addr, want[i].size, want[i].site, want[i].ts);
	ALLOC(h, 42, 0x7f0000006000, 1, 3, origin + 10000000);
	heap__on_free(h, 42, 0x7f0000006000);
	ALLOC(h, 43, 0x7f0000001000, 1, 4, origin); /* another process's block */

	heap__for_each_block(h, 0, collect, &s);
	CHECK_EQ(s.n, 5);
	CHECK_EQ(s.overflow, 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int k = find_seen(&s, want[i].addr);

		CHECK(k >= 0);
		if (k < 0)
			continue;
		CHECK_EQ(s.size[k], want[i].size);
		CHECK_EQ(s.site[k], want[i].site);
		CHECK_EQ(s.born_ms[k], want[i].born_ms);
	}
	CHECK(find_seen(&s, 0x7f0000006000) < 0);

	memset(&s, 0, sizeof(s));
	heap__for_each_block(h, 1, collect, &s);
	CHECK_EQ(s.n, 1);
	CHECK_EQ(s.addr[0], 0x7f0000001000);
	CHECK_EQ(s.site[0], 4);
	memset(&s, 0, sizeof(s));
	heap__for_each_block(h, 2, collect, &s); /* no such process */
	CHECK_EQ(s.n, 0);
	heap__free(h);
}

/* 1,000,000 blocks in, then out in another order: every free must find its block. */
static void test_million(void)
{
	enum { N = 1000000, STRIDE = 7919 /* prime, coprime to N */ };
	struct ht_heap *h = heap__new(2 * N, 0);
	const struct ht_heap_proc *p;
	struct block_sum bs = { 0 };
	uint64_t bytes = 0, mem, freed_bytes = 0;
	int before = failures;

	for (uint64_t i = 0; i < N && failures == before; i++) {
		/* pointer-like addresses: 16-aligned, dense, in two distant regions */
		uint64_t addr = (i & 1 ? 0x7f1200000000ULL : 0x5555a0000000ULL) + i * 16;

		ALLOC(h, 9, addr, i % 512 + 1, (uint32_t)(i % 7), i * 1000);
		bytes += i % 512 + 1;
	}
	p = heap__find_proc(h, 9);
	CHECK_EQ(heap__live_blocks(h), N);
	CHECK_COUNTS(&p->c, N, bytes, 0, 0, N, bytes);
	mem = heap__memory(h);
	fprintf(stderr,
		"test_heap: %d live blocks: heap__memory %" PRIu64 " bytes, %.1f bytes per block "
		"(block table %" PRIu64 " slots x %zu bytes)\n",
		N, mem, (double)mem / N, p->blocks_cap, sizeof(struct ht_block));

	for (uint64_t k = 0; k < N && failures == before; k++) {
		uint64_t i = k * STRIDE % N;
		uint64_t addr = (i & 1 ? 0x7f1200000000ULL : 0x5555a0000000ULL) + i * 16;

		heap__on_free(h, 9, addr);
		freed_bytes += i % 512 + 1;
		if (k == N / 2) {
			heap__for_each_block(h, 0, sum_block, &bs);
			CHECK_EQ(bs.count, N - N / 2 - 1);
			CHECK_EQ(bs.bytes, bytes - freed_bytes);
		}
	}
	p = heap__find_proc(h, 9);
	CHECK_EQ(p->unknown_frees, 0);
	CHECK_EQ(heap__live_blocks(h), 0);
	CHECK_COUNTS(&p->c, N, bytes, N, bytes, 0, 0);
	memset(&bs, 0, sizeof(bs));
	heap__for_each_block(h, 0, sum_block, &bs);
	CHECK_EQ(bs.count, 0);
	/* and the emptied table still works */
	heap__on_free(h, 9, 0x5555a0000000ULL);
	CHECK_EQ(heap__find_proc(h, 9)->unknown_frees, 1);
	ALLOC(h, 9, 0x5555a0000000ULL, 5, 0, 0);
	ALLOC(h, 9, 0x5555a0000000ULL, 5, 0, 0);
	CHECK_EQ(heap__find_proc(h, 9)->reused_live, 1);
	CHECK_EQ(heap__live_blocks(h), 1);
	heap__free(h);
}

/*
 * The block table where its probe chains wrap past its end: addresses whose home slot is
 * the last one or the first one at every table size up to 2^16 slots, inserted through two
 * doublings, freed in another order (backward shifts across the end) and reallocated.
 * White-box: the addresses are built for heap.c's slot hash, the high bits of
 * addr * 0x9e3779b97f4a7c15 (if that hash changes, so must this).
 */
static void test_wrap(void)
{
	enum { N = 3000 };
	const uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t kinv = k, addrs[N], bytes = 0, rng = 88172645463325252ull;
	struct ht_heap *h = heap__new(N, 0);
	struct block_sum bs = { 0 };
	const struct ht_heap_proc *p;

	for (int i = 0; i < 6; i++) /* Newton: k * kinv == 1 (mod 2^64) */
		kinv *= 2 - k * kinv;
	CHECK_EQ(k * kinv, 1);
	for (uint64_t i = 0; i < N; i++) {
		/* hash with its top 16 bits all ones (home: the last slot) or all zeros (the
		 * first), the other bits distinct */
		uint64_t hash = (i & 1 ? 0xffffull << 48 : 0) | (i + 1) << 8;

		addrs[i] = hash * kinv;
		CHECK(addrs[i] != 0);
		ALLOC(h, 3, addrs[i], i + 1, (uint32_t)(i % 5), 0);
		bytes += i + 1;
	}
	p = heap__find_proc(h, 3);
	CHECK_EQ(p->reused_live, 0);
	CHECK(p->blocks_cap >= 4096);
	CHECK_COUNTS(&p->c, N, bytes, 0, 0, N, bytes);
	CHECK_CONSISTENT(h);
	heap__for_each_block(h, 0, sum_block, &bs);
	CHECK_EQ(bs.blocks, N);
	/* free every other block in a shuffled order, then allocate them again */
	for (uint64_t i = N - 1; i > 0; i--) {
		uint64_t j, t;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		j = rng % (i + 1);
		t = addrs[i];
		addrs[i] = addrs[j];
		addrs[j] = t;
	}
	for (uint64_t i = 0; i < N; i += 2)
		heap__on_free(h, 3, addrs[i]);
	CHECK_EQ(p->unknown_frees, 0);
	CHECK_EQ(heap__live_blocks(h), N / 2);
	CHECK_CONSISTENT(h);
	for (uint64_t i = 0; i < N; i += 2)
		ALLOC(h, 3, addrs[i], 1, 0, 0);
	CHECK_EQ(p->reused_live, 0);
	for (uint64_t i = 0; i < N; i++)
		heap__on_free(h, 3, addrs[i]);
	CHECK_EQ(p->unknown_frees, 0);
	CHECK_EQ(heap__live_blocks(h), 0);
	CHECK_CONSISTENT(h);
	heap__free(h);
}

int main(void)
{
	test_counts();
	test_interval();
	test_peak();
	test_peak_random();
	test_cap();
	test_weighted();
	test_for_each_block();
	test_million();
	test_wrap();
	if (failures) {
		fprintf(stderr, "test_heap: %d check(s) failed\n", failures);
		return 1;
	}
	fprintf(stderr, "test_heap: all checks passed\n");
	return 0;
}
