/*
 * collector_bench — the collector's cost without the kernel: synthetic ring-buffer records
 * replayed through events__prefetch() and events__handle(), as the session's ring reader
 * (ringread.c) calls them, into a real heap model, stack table and process table.
 *
 *   collector_bench [RUNS [SCENARIO]]
 *
 * SCENARIO runs only the scenario of that name (for profiling one of them).
 * Records are built up front in one buffer, back to back as in the ring, so the timed loop
 * is the collector alone.  Every allocation carries a 12-frame stack drawn from 300
 * distinct stacks (a skewed mix: a few hot ones); frames are addresses inside this program,
 * and the pid is our own, so the process table reads a real module map once and never
 * again.  Addresses come from a small simulated allocator that reuses freed addresses
 * last-in first-out, as glibc's tcache does.
 *
 * Scenarios, each run RUNS times (default 5) on a fresh model, median reported:
 *   young-100k, random-10k, random-100k, random-1M
 *             that many live blocks built untimed, then 500 k steps timed (~975 k records):
 *             an allocation and a free, or (one step in 20) a realloc; the live set stays
 *             the same.  young: nine frees in ten hit one of the 64 most recent blocks, as
 *             in most programs; random: every free hits a random live block, the worst case
 *             for the block table, whose lookups become cache (and TLB) misses once it
 *             outgrows the caches.
 *   growth-1M 1 M allocations timed, nothing freed: the table grows to 1 M live blocks;
 *             then the model's bytes per live block (heap__memory() / live blocks).
 *
 * Output, one line per scenario on stdout (bench/run.py parses it):
 *   heaptap-collector scenario=S records=N live=L ns_per_record=X min=A max=B
 *                     heap_bytes_per_live=H stacks_bytes=K
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "events.h"
#include "heap.h"
#include "heaptap.h"
#include "procs.h"
#include "ringread.h"
#include "stacks.h"

#define DEPTH 12
#define NSTACKS 300
#define MAX_RUNS 31

struct replay {
	unsigned char *buf; /* records back to back, each 8-byte aligned */
	size_t len, cap;
	uint32_t *lens;     /* length of each record */
	size_t n, ncap;
};

struct sim {
	uint64_t rng;
	uint64_t next_addr;
	uint64_t *live;     /* live addresses, unordered */
	size_t nlive, live_cap;
	uint64_t *freed;    /* freed addresses, reused LIFO */
	size_t nfreed, freed_cap;
	uint64_t frames[NSTACKS][DEPTH];
	uint64_t ts;
	uint32_t pid;
};

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void *grow_array(void *p, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 1024;

	if (need <= *cap)
		return p;
	while (ncap < need)
		ncap *= 2;
	p = realloc(p, ncap * elem);
	if (!p) {
		fprintf(stderr, "collector_bench: out of memory\n");
		exit(1);
	}
	*cap = ncap;
	return p;
}

static void *append_rec(struct replay *r, size_t len)
{
	size_t aligned = (len + 7) & ~(size_t)7;
	void *p;

	r->buf = grow_array(r->buf, &r->cap, r->len + aligned, 1);
	r->lens = grow_array(r->lens, &r->ncap, r->n + 1, sizeof(*r->lens));
	p = r->buf + r->len;
	memset(p, 0, aligned);
	r->len += aligned;
	r->lens[r->n++] = (uint32_t)len;
	return p;
}

static void push(uint64_t **arr, size_t *n, size_t *cap, uint64_t v)
{
	*arr = grow_array(*arr, cap, *n + 1, sizeof(**arr));
	(*arr)[(*n)++] = v;
}

static void sim_init(struct sim *s)
{
	/* Return addresses inside this program's text, so they lie in a mapped module. */
	uint64_t text = (uint64_t)(uintptr_t)&rnd;

	memset(s, 0, sizeof(*s));
	s->rng = 0x9e3779b97f4a7c15ULL;
	s->next_addr = 0x55d0c0000000ULL;
	s->ts = 1000000000ULL;
	s->pid = (uint32_t)getpid();
	for (int i = 0; i < NSTACKS; i++)
		for (int d = 0; d < DEPTH; d++)
			/* Outer frames shared by many stacks (main, dispatch loops), inner ones not. */
			s->frames[i][d] = text + 16 +
					  (d < DEPTH - 4 ? rnd(&s->rng) % 4096 : (uint64_t)d * 64 + i % 7);
}

static uint64_t sim_new_addr(struct sim *s, uint64_t size)
{
	if (s->nfreed)
		return s->freed[--s->nfreed];
	s->next_addr += (size + 16 + 15) & ~15ULL;
	return s->next_addr;
}

static void add_alloc(struct replay *r, struct sim *s, uint64_t old_addr)
{
	size_t len = HT_ALLOC_REC_FIXED_SIZE + DEPTH * sizeof(uint64_t);
	struct ht_alloc_rec *rec = append_rec(r, len);
	/* Skewed stack choice: low ids are hot. */
	uint64_t bound = rnd(&s->rng) % NSTACKS + 1;
	uint64_t stack = rnd(&s->rng) % bound;
	uint64_t size = 16 + rnd(&s->rng) % 2048;

	rec->hdr.type = HT_REC_ALLOC;
	rec->hdr.tgid = s->pid;
	rec->hdr.tid = s->pid;
	rec->hdr.fn = old_addr ? HT_FN_REALLOC : HT_FN_MALLOC;
	rec->hdr.nframes = DEPTH;
	rec->hdr.ts_ns = s->ts += 1000;
	rec->addr = sim_new_addr(s, size);
	rec->size = size;
	rec->old_addr = old_addr;
	memcpy(rec->frames, s->frames[stack], DEPTH * sizeof(uint64_t));
	push(&s->live, &s->nlive, &s->live_cap, rec->addr);
}

/*
 * Takes a live block out of the simulation; returns its address.  young: nine times in
 * ten one of the 64 most recent blocks (most blocks die young), else any live block.
 */
static uint64_t take_live(struct sim *s, bool young)
{
	size_t i = young && s->nlive > 64 && rnd(&s->rng) % 10 ? s->nlive - 1 - rnd(&s->rng) % 64
							       : rnd(&s->rng) % s->nlive;
	uint64_t addr = s->live[i];

	s->live[i] = s->live[--s->nlive];
	push(&s->freed, &s->nfreed, &s->freed_cap, addr);
	return addr;
}

static void add_free(struct replay *r, struct sim *s, bool young)
{
	struct ht_free_rec *rec = append_rec(r, sizeof(*rec));

	rec->hdr.type = HT_REC_FREE;
	rec->hdr.tgid = s->pid;
	rec->hdr.tid = s->pid;
	rec->hdr.fn = HT_FN_FREE;
	rec->hdr.ts_ns = s->ts += 1000;
	rec->addr = take_live(s, young);
}

static double cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/*
 * Feeds records [from, to) of r as a session's ring reader does: each record goes to
 * events__prefetch() RINGREAD_AHEAD records before events__handle().  Records come in
 * chunks copied first (untimed) into a ring-sized staging area: in a session the BPF side
 * has just written them, so they are in cache, where replaying straight from a buffer of
 * ~100 MB would time a stream from memory instead.  Returns the CPU nanoseconds it took.
 */
#define CHUNK_BYTES (1u << 20)

static double replay(struct ht_events *ev, const struct replay *r, size_t from, size_t to,
		     size_t *off)
{
	static unsigned char stage[CHUNK_BYTES + HT_ALLOC_REC_FIXED_SIZE + DEPTH * 8 + 8];
	double ns = 0;

	while (from < to) {
		size_t end = from, bytes = 0, ahead = 0, done = 0, lead = from;
		double t0;

		while (end < to && bytes < CHUNK_BYTES)
			bytes += (r->lens[end++] + 7) & ~(size_t)7;
		memcpy(stage, r->buf + *off, bytes);
		*off += bytes;
		t0 = cpu_ns();
		for (size_t i = from; i < end; i++) {
			for (; lead < end && lead <= i + RINGREAD_AHEAD; lead++) {
				events__prefetch(ev, stage + ahead, r->lens[lead]);
				ahead += (r->lens[lead] + 7) & ~(size_t)7;
			}
			events__handle(ev, stage + done, r->lens[i]);
			done += (r->lens[i] + 7) & ~(size_t)7;
		}
		ns += cpu_ns() - t0;
		from = end;
	}
	return ns;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct result {
	double ns[MAX_RUNS];
	uint64_t heap_bytes, stacks_bytes, live;
};

/* One run: fresh model, untimed prefix of `untimed` records, then the rest timed. */
static int run_once(const struct replay *r, size_t untimed, double *ns, struct result *res)
{
	struct ht_events ev = { 0 };
	size_t off = 0;
	int err = 0;

	ev.heap = heap__new(100000000, 0);
	ev.stacks = stacks__new();
	ev.procs = procs__new();
	if (!ev.heap || !ev.stacks || !ev.procs) {
		err = -ENOMEM;
		goto out;
	}
	replay(&ev, r, 0, untimed, &off);
	*ns = replay(&ev, r, untimed, r->n, &off) / (double)(r->n - untimed);
	if (ev.handled != r->n || ev.bad_records || ev.nomem) {
		fprintf(stderr, "collector_bench: %llu of %zu records handled, %llu bad, %llu nomem\n",
			(unsigned long long)ev.handled, r->n, (unsigned long long)ev.bad_records,
			(unsigned long long)ev.nomem);
		err = -EINVAL;
		goto out;
	}
	res->heap_bytes = heap__memory(ev.heap);
	res->stacks_bytes = stacks__memory(ev.stacks);
	res->live = heap__live_blocks(ev.heap);
out:
	procs__free(ev.procs);
	stacks__free(ev.stacks);
	heap__free(ev.heap);
	return err;
}

static const char *only; /* run only this scenario, or NULL for all */

static bool wanted(const char *name)
{
	return !only || !strcmp(only, name);
}

static int scenario(const char *name, const struct replay *r, size_t untimed, int runs)
{
	struct result res = { 0 };
	double med;

	for (int i = 0; i < runs; i++)
		if (run_once(r, untimed, &res.ns[i], &res))
			return 1;
	qsort(res.ns, runs, sizeof(double), cmp_double);
	med = runs % 2 ? res.ns[runs / 2] : (res.ns[runs / 2 - 1] + res.ns[runs / 2]) / 2;
	printf("heaptap-collector scenario=%s records=%zu live=%llu ns_per_record=%.1f min=%.1f "
	       "max=%.1f heap_bytes_per_live=%.1f stacks_bytes=%llu\n",
	       name, r->n - untimed, (unsigned long long)res.live, med, res.ns[0],
	       res.ns[runs - 1], res.live ? (double)res.heap_bytes / res.live : 0.0,
	       (unsigned long long)res.stacks_bytes);
	fflush(stdout);
	return 0;
}

static void replay_free(struct replay *r)
{
	free(r->buf);
	free(r->lens);
	memset(r, 0, sizeof(*r));
}

static void sim_free(struct sim *s)
{
	free(s->live);
	free(s->freed);
}

/* Churn at a steady live set: `live` allocations untimed, then `steps` steps timed. */
static int churn(const char *name, size_t live, size_t steps, bool young, int runs)
{
	struct replay r = { 0 };
	struct sim s;
	size_t untimed;
	int err;

	if (!wanted(name))
		return 0;
	sim_init(&s);
	for (size_t i = 0; i < live; i++)
		add_alloc(&r, &s, 0);
	untimed = r.n;
	for (size_t i = 0; i < steps; i++) {
		/* 5% reallocs: the old block dies in the same record, the live set stays. */
		if (rnd(&s.rng) % 20 == 0) {
			add_alloc(&r, &s, take_live(&s, young));
			continue;
		}
		add_alloc(&r, &s, 0);
		add_free(&r, &s, young);
	}
	err = scenario(name, &r, untimed, runs);
	replay_free(&r);
	sim_free(&s);
	return err;
}

int main(int argc, char **argv)
{
	struct replay r = { 0 };
	struct sim s;
	int runs = argc > 1 ? atoi(argv[1]) : 5, err;

	if (runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: collector_bench [RUNS 1-%d [SCENARIO]]\n", MAX_RUNS);
		return 2;
	}
	only = argc > 2 ? argv[2] : NULL;
	if (churn("young-100k", 100000, 500000, true, runs) ||
	    churn("random-10k", 10000, 500000, false, runs) ||
	    churn("random-100k", 100000, 500000, false, runs) ||
	    churn("random-1M", 1000000, 500000, false, runs))
		return 1;
	if (!wanted("growth-1M"))
		return 0;

	sim_init(&s);
	for (int i = 0; i < 1000000; i++)
		add_alloc(&r, &s, 0);
	err = scenario("growth-1M", &r, 0, runs);
	replay_free(&r);
	sim_free(&s);
	return err ? 1 : 0;
}
