/*
 * config: what the user asked for, parsed and validated once by options.c and then read
 * (never written) by the session.  Nothing deep in the collector reads globals.
 */
#ifndef HEAPTAP_CONFIG_H
#define HEAPTAP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum ht_metric {
	HT_METRIC_LIVE_BYTES,
	HT_METRIC_LIVE_COUNT,
	HT_METRIC_ALLOC_BYTES,
	HT_METRIC_ALLOC_COUNT,
	HT_METRIC_PEAK, /* per-site live bytes at the process's peak */
};

enum ht_format {
	HT_FMT_FOLDED,
	HT_FMT_JSON,
	HT_FMT_PPROF,
	HT_FMT_SVG,
	HT_FMT_TEXT,
};

#define HT_MAX_OUTPUTS 8

struct ht_output_spec {
	const char *path;
	enum ht_format format;
};

/* How writers render a report (shared by a session and `heaptap report`). */
struct ht_write_opts {
	enum ht_metric metric; /* folded and SVG value */
	bool inverted;         /* SVG: icicle (root at the top) */
	uint32_t top;          /* text: call stacks per process, 0 = all */
	bool gc_timeline;      /* text: one line per Go GC cycle (--gc) */
};

enum ht_trace_mode {
	HT_TRACE_LIVE,  /* live heap + rates: entry and return probes, frees */
	HT_TRACE_RATE,  /* allocation rates only: one entry probe per allocating call */
};

enum ht_unwind_mode {
	HT_UNWIND_MODE_AUTO, /* DWARF for stacks through code without frame pointers, FP elsewhere */
	HT_UNWIND_MODE_FP,   /* frame-pointer chains only (cheapest; wrong through no-FP code) */
	HT_UNWIND_MODE_DWARF, /* every stack unwound from a stack copy with CFI */
};

struct ht_config {
	pid_t pid;          /* -p; 0 when launching */
	bool system;        /* -a: every process */
	char **comms;       /* -a --comm: NULL-terminated names, or NULL */
	const char *cgroup; /* -a --cgroup PATH, or NULL */
	uint32_t max_procs; /* -a --max-procs: processes kept (exited ones evicted first) */
	char **cmd;         /* -- CMD ARGS...; NULL when attaching */
	double duration_s;  /* -d; 0 = until Ctrl-C or the target's exit */
	double interval_s;  /* -i; 0 = only the final report */
	double min_age_s;   /* --min-age: live view counts only blocks at least this old */
	struct ht_output_spec outputs[HT_MAX_OUTPUTS]; /* -o (repeatable), --json */
	int noutputs;
	enum ht_format default_format; /* --format: for -o paths with no known suffix */
	struct ht_write_opts write;  /* --metric, --inverted, --top */
	const char *report_input;    /* `heaptap report FILE`: render FILE, trace nothing */
	enum ht_trace_mode mode; /* --mode */
	int floor;          /* --mode floor-*: empty programs at the same sites (benchmarks) */
	uint64_t sample_bytes; /* --sample: mean bytes between sampled allocations, 0 = all */
	uint32_t max_depth; /* -D: user frames per stack */
	enum ht_unwind_mode unwind; /* --unwind */
	bool unwind_given, ring_given; /* set on the command line (else -a picks its own) */
	bool go_exact;      /* --go-exact: every Go allocation (mallocgc), not Go's sampler */
	uint32_t stack_bytes; /* --stack-bytes: user stack copied per record (dwarf, auto) */
	uint32_t ring_mb;   /* --ring-mb: ring buffer size, MiB (power of two) */
	uint64_t max_blocks; /* --max-blocks: cap on live blocks tracked */
	uint32_t drain_ms;  /* how often the ring buffer is drained */
	int verbosity;      /* -v count */
	int quiet;          /* -q: no text report on stdout */
};

const char *metric__name(enum ht_metric m);

#endif
