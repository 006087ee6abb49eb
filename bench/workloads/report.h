/*
 * report.h — the one line every bench workload prints at exit, on stderr:
 *
 *   heaptap-bench ops=N user_us=U sys_us=S maxrss_kb=R checksum=C
 *
 * ops is the number of operations the workload counts (its own unit: see each source's
 * header); user/sys/maxrss are getrusage(RUSAGE_SELF) of the workload process itself, so a
 * tracer that runs the workload as its child (heaptap -- CMD, bpftrace -c CMD) does not mix
 * its own CPU into the figure.  bench/run.py parses this line.  C and C++.
 */
#ifndef HEAPTAP_BENCH_REPORT_H
#define HEAPTAP_BENCH_REPORT_H

#include <stdio.h>
#include <sys/resource.h>

static inline void bench_report(unsigned long long ops, unsigned long long checksum)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "heaptap-bench ops=%llu user_us=%lld sys_us=%lld maxrss_kb=%ld checksum=%llx\n",
		ops, (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
		(long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec, ru.ru_maxrss,
		checksum);
}

/* xorshift64: deterministic sizes and choices, the same sequence in every run. */
static inline unsigned long long bench_rand(unsigned long long *s)
{
	unsigned long long x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Keeps the compiler from eliding an allocation whose result is otherwise unused. */
#define BENCH_ESCAPE(p) __asm__ volatile("" : : "r"(p) : "memory")

#endif
