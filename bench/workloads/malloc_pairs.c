/*
 * malloc_pairs — the malloc/free microbenchmark.
 *
 *   malloc_pairs PAIRS THREADS [SECONDS]
 *
 * Each of THREADS threads does PAIRS/THREADS iterations of p = malloc(s); touch; free(p)
 * with s drawn from 32..4096 (a fixed xorshift sequence per thread).  With SECONDS, each
 * thread repeats that batch until SECONDS have passed (the sustained-rate check).
 * One op = one malloc+free pair.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "report.h"

struct worker {
	pthread_t th;
	unsigned long long seed, pairs, done, sum;
	double seconds;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	double end = w->seconds > 0 ? now_s() + w->seconds : 0;

	do {
		for (unsigned long long i = 0; i < w->pairs; i++) {
			size_t size = 32 + bench_rand(&w->seed) % (4096 - 32 + 1);
			unsigned char *p = malloc(size);

			if (!p)
				abort();
			BENCH_ESCAPE(p);
			p[0] = (unsigned char)i;
			w->sum += p[0] + size;
			free(p);
		}
		w->done += w->pairs;
	} while (end && now_s() < end);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long long pairs, ops = 0, sum = 0;
	struct worker *w;
	double seconds;
	int threads;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: malloc_pairs PAIRS THREADS [SECONDS]\n");
		return 2;
	}
	pairs = strtoull(argv[1], NULL, 10);
	threads = atoi(argv[2]);
	seconds = argc > 3 ? atof(argv[3]) : 0;
	if (!pairs || threads < 1 || threads > 64) {
		fprintf(stderr, "malloc_pairs: bad arguments\n");
		return 2;
	}
	w = calloc(threads, sizeof(*w));
	if (!w)
		return 1;
	for (int t = 0; t < threads; t++) {
		w[t].seed = 0x9e3779b97f4a7c15ULL * (t + 1);
		w[t].pairs = pairs / threads;
		w[t].seconds = seconds;
		if (pthread_create(&w[t].th, NULL, run, &w[t]))
			return 1;
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(w[t].th, NULL);
		ops += w[t].done;
		sum += w[t].sum;
	}
	free(w);
	bench_report(ops, sum);
	return 0;
}
