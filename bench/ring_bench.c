/*
 * ring_bench — heaptap's collector draining a real BPF ring buffer at a sustained record
 * rate, for as long as asked: what uprobes cannot produce on this machine (their trap
 * caps it near 300 k records/s on 2 CPUs), generated in BPF by bench/ring_gen.bpf.c.
 *
 *   ring_bench [-r RECORDS_PER_S] [-s SECONDS] [-l LIVE] [-m RING_MB]
 *
 * Defaults: 1 000 000 records/s for 60 s, a FIFO of 100 000 live blocks, heaptap's default
 * 16 MiB ring.  A generator thread (pinned to the last CPU, as a traced program runs on
 * some CPU) runs the BPF program every millisecond for the records due by then (one
 * allocation and one free per step).  The main thread, left to the scheduler as a
 * session is, is heaptap's collector as a session runs it: wake every
 * 10 ms (1 ms while the ring is an eighth full or more, as session.c's drain() decides),
 * consume the ring with ringread__consume() into events__prefetch()/events__handle(), as
 * a session does, with a real heap model, stack table and process table (frames are addresses in this program).
 * The FIFO is filled before the timed phase.
 *
 * Output, one line on stdout (bench/run.py parses it):
 *   heaptap-ring rate=R seconds=S live=L ring_mb=M emitted=T records=N drops=D bad=B
 *     unknown_frees=U live_end=E consistent=yes|no collector_ns_per_record=X
 *     collector_cpu_pct=C generator_cpu_pct=G max_fill_pct=F
 * emitted: records the generator wrote, the prefill included; records: records the
 * collector handled in the timed phase; drops: reservations the ring
 * refused (the generator's count; a probe counts the same way); consistent: the model ends
 * with exactly L live blocks, no unknown frees and every emitted record handled.
 * collector_ns_per_record is the collector thread's CPU time (user+sys: polls, consumes
 * and the model) over the records; the CPU percentages are of one CPU over the timed phase.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "events.h"
#include "heap.h"
#include "heaptap.h"
#include "procs.h"
#include "ringread.h"
#include "ring_gen.skel.h"
#include "stacks.h"

#define DEPTH 12
#define NSTACKS 300
#define MAX_BATCH 65536 /* steps per program run */

struct gen {
	struct ring_gen *skel;
	uint64_t next_step; /* first step not yet generated */
	uint64_t rate_steps; /* steps per second in the timed phase */
	uint64_t t0_ns, first_timed;
	volatile bool stop;
	double cpu_ns;
	int err;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set); /* a hint: unpinned still measures */
}

/* Runs the generator for steps [first, first + steps). */
static int gen_run(struct ring_gen *skel, uint64_t first, uint32_t steps)
{
	struct { uint64_t first; uint32_t steps, pad; } args = { first, steps, 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &args, .ctx_size_in = sizeof(args));

	return bpf_prog_test_run_opts(bpf_program__fd(skel->progs.ring_gen), &o);
}

static void *generate(void *arg)
{
	struct gen *g = arg;
	uint64_t cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct timespec tick = { 0, 1000000 };

	if (ncpu > 1)
		pin((int)ncpu - 1);
	while (!g->stop) {
		uint64_t due = g->first_timed +
			       (clock_ns(CLOCK_MONOTONIC) - g->t0_ns) * g->rate_steps / 1000000000ull;

		while (g->next_step < due) {
			uint64_t n = due - g->next_step;
			uint32_t batch = n > MAX_BATCH ? MAX_BATCH : (uint32_t)n;

			if ((g->err = gen_run(g->skel, g->next_step, batch)))
				return NULL;
			g->next_step += batch;
		}
		nanosleep(&tick, NULL);
	}
	g->cpu_ns = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: ring_bench [-r RECORDS_PER_S] [-s SECONDS] [-l LIVE] [-m RING_MB]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t rate = 1000000, seconds = 60, live = 100000, ring_mb = 16, rng = 0x9e3779b97f4a7c15ull;
	uint64_t text = (uint64_t)(uintptr_t)&usage, handled0, cpu0, wall0, wall, cpu, max_fill = 0;
	struct ht_events ev = { 0 };
	struct ht_ringread *rr = NULL;
	struct gen g = { 0 };
	const struct ht_heap_proc *p;
	pthread_t thr;
	bool busy = false, consistent;
	int c, err = 1;

	while ((c = getopt(argc, argv, "r:s:l:m:")) != -1) {
		switch (c) {
		case 'r': rate = strtoull(optarg, NULL, 10); break;
		case 's': seconds = strtoull(optarg, NULL, 10); break;
		case 'l': live = strtoull(optarg, NULL, 10); break;
		case 'm': ring_mb = strtoull(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (optind != argc || rate < 2 || !seconds || !live || !ring_mb || ring_mb > 1024 ||
	    (ring_mb & (ring_mb - 1)))
		usage();
	libbpf_set_print(NULL);
	g.skel = ring_gen__open();
	if (!g.skel) {
		fprintf(stderr, "ring_bench: cannot open the generator: %s\n", strerror(errno));
		return 1;
	}
	g.skel->rodata->tgid = (uint32_t)getpid();
	g.skel->rodata->live = live;
	g.skel->rodata->base = 0x7f0000000000ull;
	c = bpf_map__set_max_entries(g.skel->maps.ring, (uint32_t)(ring_mb << 20));
	if (c || (c = ring_gen__load(g.skel))) {
		fprintf(stderr, "ring_bench: cannot load the generator: %s\n", strerror(-c));
		goto out;
	}
	/* Return addresses inside this program's text, so they lie in a mapped module; outer
	 * frames shared by many stacks (main, dispatch loops), inner ones not. */
	for (uint32_t i = 0; i < NSTACKS; i++) {
		uint64_t frames[DEPTH];

		for (int d = 0; d < DEPTH; d++) {
			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			frames[d] = text + 16 + (d < DEPTH - 4 ? rng % 4096 : (uint64_t)d * 64 + i % 7);
		}
		if (bpf_map__update_elem(g.skel->maps.stacks, &i, sizeof(i), frames, sizeof(frames), 0))
			goto out;
	}
	ev.heap = heap__new(100000000, 0);
	ev.stacks = stacks__new();
	ev.procs = procs__new();
	rr = ringread__new(bpf_map__fd(g.skel->maps.ring));
	if (!ev.heap || !ev.stacks || !ev.procs || !rr) {
		fprintf(stderr, "ring_bench: out of memory\n");
		goto out;
	}
	/* Fill the FIFO untimed: `live` allocations. */
	while (g.next_step < live) {
		uint64_t n = live - g.next_step;
		uint32_t batch = n > MAX_BATCH ? MAX_BATCH : (uint32_t)n;

		if (gen_run(g.skel, g.next_step, batch))
			goto out;
		g.next_step += batch;
		ringread__consume(rr, events__prefetch, events__handle, &ev);
	}
	g.first_timed = g.next_step;
	g.rate_steps = rate / 2;
	handled0 = ev.handled;
	cpu0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	g.t0_ns = wall0 = clock_ns(CLOCK_MONOTONIC);
	if (pthread_create(&thr, NULL, generate, &g))
		goto out;
	while (clock_ns(CLOCK_MONOTONIC) - wall0 < seconds * 1000000000ull && !g.err) {
		uint64_t avail;

		poll(NULL, 0, busy ? 1 : 10);
		ev.drain_gen++;
		avail = ringread__avail(rr);
		busy = ringread__filling(rr);
		if (avail > max_fill)
			max_fill = avail;
		ringread__consume(rr, events__prefetch, events__handle, &ev);
	}
	g.stop = true;
	pthread_join(thr, NULL);
	ringread__consume(rr, events__prefetch, events__handle, &ev);
	cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	wall = clock_ns(CLOCK_MONOTONIC) - wall0;
	if (g.err) {
		fprintf(stderr, "ring_bench: running the generator: %s\n", strerror(-g.err));
		goto out;
	}
	p = heap__find_proc(ev.heap, (uint32_t)getpid());
	consistent = p && heap__live_blocks(ev.heap) == live && !p->unknown_frees &&
		     ev.handled == g.skel->bss->emitted && !ev.bad_records && !ev.nomem;
	printf("heaptap-ring rate=%llu seconds=%llu live=%llu ring_mb=%llu emitted=%llu records=%llu drops=%llu "
	       "bad=%llu unknown_frees=%llu live_end=%llu consistent=%s collector_ns_per_record=%.1f "
	       "collector_cpu_pct=%.1f generator_cpu_pct=%.1f max_fill_pct=%.1f\n",
	       (unsigned long long)rate, (unsigned long long)seconds, (unsigned long long)live,
	       (unsigned long long)ring_mb, (unsigned long long)g.skel->bss->emitted,
	       (unsigned long long)(ev.handled - handled0),
	       (unsigned long long)g.skel->bss->drops, (unsigned long long)ev.bad_records,
	       (unsigned long long)(p ? p->unknown_frees : 0),
	       (unsigned long long)heap__live_blocks(ev.heap), consistent ? "yes" : "no",
	       ev.handled > handled0 ? (double)cpu / (double)(ev.handled - handled0) : 0.0,
	       100.0 * (double)cpu / (double)wall, 100.0 * g.cpu_ns / (double)wall,
	       100.0 * (double)max_fill / (double)ringread__size(rr));
	err = 0;
out:
	ringread__free(rr);
	procs__free(ev.procs);
	stacks__free(ev.stacks);
	heap__free(ev.heap);
	ring_gen__destroy(g.skel);
	return err;
}
