/*
 * config: what the user asked for, parsed and validated once by options.c and then read
 * (never written) by the session.  Nothing deep in the collector reads globals.
 */
#ifndef HEAPTAP_CONFIG_H
#define HEAPTAP_CONFIG_H

#include <stdint.h>
#include <sys/types.h>

enum ht_metric {
	HT_METRIC_LIVE_BYTES,
	HT_METRIC_LIVE_COUNT,
	HT_METRIC_ALLOC_BYTES,
	HT_METRIC_ALLOC_COUNT,
	HT_METRIC_PEAK, /* per-site live bytes at the process's peak */
};

struct ht_config {
	pid_t pid;          /* -p; 0 when launching */
	char **cmd;         /* -- CMD ARGS...; NULL when attaching */
	double duration_s;  /* -d; 0 = until Ctrl-C or the target's exit */
	double interval_s;  /* -i; 0 = only the final report */
	double min_age_s;   /* --min-age: live view counts only blocks at least this old */
	const char *folded_path; /* -o */
	enum ht_metric metric;   /* --metric, for folded output */
	const char *json_path;   /* --json */
	uint32_t max_depth; /* -D: user frames per stack */
	uint32_t top;       /* --top: sites per process in the text report */
	uint32_t ring_mb;   /* --ring-mb: ring buffer size, MiB (power of two) */
	uint64_t max_blocks; /* --max-blocks: cap on live blocks tracked */
	uint32_t drain_ms;  /* how often the ring buffer is drained */
	int verbosity;      /* -v count */
	int quiet;          /* -q: no text report on stdout */
};

const char *metric__name(enum ht_metric m);

#endif
