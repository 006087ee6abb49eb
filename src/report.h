/*
 * report: an immutable snapshot of everything a writer shows — per process, per site
 * (symbolized), the loss counters — built from the live model by report__build().
 * Writers (text, JSON, folded) see only this, never the model.  The snapshot owns all its
 * memory; report__free() releases it.
 */
#ifndef HEAPTAP_REPORT_H
#define HEAPTAP_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "heap.h"
#include "gostate.h"
#include "heaptap.h"

struct ht_stacks;
struct ht_procs;

#define HT_REPORT_SCHEMA 1

struct ht_rframe {
	uint64_t addr;    /* runtime address (a return address, except in inline parents) */
	char *function;   /* demangled; NULL if unknown */
	char *file;       /* NULL if no line info */
	int line;
	char *module;     /* object path, or "[unknown]" */
	uint64_t offset;  /* address in the object's own ELF address space */
	bool inlined;     /* inlined into the next frame */
};

struct ht_rsite {
	uint32_t id;             /* stack id, stable for the session */
	const char *allocator;   /* "malloc", "operator new[]", ... (static string) */
	struct ht_counts c;
	uint64_t peak_bytes, peak_count; /* live at the process's peak */
	uint64_t aged_bytes, aged_count; /* live and at least min_age old */
	double rate_bytes, rate_count;   /* per second over the last interval */
	bool truncated;          /* the depth cap cut the stack */
	struct ht_rframe *frames; /* innermost (direct caller) first, inline frames expanded */
	uint32_t nframes;
};

/* A Go process: how its allocations were seen and its GC timeline (gostate.h). */
struct ht_rgo {
	char version[48];
	bool exact;                /* --go-exact: every allocation; else Go's sampler */
	int64_t mem_profile_rate;  /* runtime.MemProfileRate when last read; -1 unknown */
	char note[160];            /* what could not be read and why, "" if all */
	uint64_t cycles_seen, forced, pause_total_ns, pauses_known, dropped;
	bool numbered_by_runtime;  /* cycle numbers are the runtime's (else counted from 1) */
	struct ht_gc_cycle *cycles; /* oldest first */
	uint32_t ncycles;
	double origin_s;           /* monotonic seconds of the session's start (for times) */
};

/* A system-wide session (heaptap -a): what was attached and the process table's life. */
struct ht_rsystem {
	struct {
		char *path;
		uint32_t functions; /* probe sites */
		char kind[16];      /* "glibc", "jemalloc", "static", "go", ... */
	} *objects;
	uint32_t nobjects;
	uint64_t procs_seen, procs_exited, procs_evicted, late_attaches, exec_events;
	double attach_ms;
	bool filtered;          /* --comm / --cgroup: pid-scoped */
	char **comm_unmatched;  /* --comm names no process had */
	uint32_t ncomm_unmatched;
};

/* An object mapped in a process that at least one frame of the report points into. */
struct ht_rmodule {
	char *path;
	uint64_t start, end;  /* runtime address range */
	uint64_t file_offset; /* file offset mapped at start */
	uint64_t bias;        /* runtime address - ELF virtual address */
	char build_id[41];    /* hex, "" if none */
};

struct ht_rproc {
	int32_t pid;
	char comm[17];
	char *exe;
	struct ht_rmodule *modules;
	uint32_t nmodules;
	bool exited, exit_known;
	int exit_code;
	struct ht_counts c;
	uint64_t peak_bytes, peak_count;
	double peak_time_s;          /* seconds since the session started */
	double rate_bytes, rate_count;
	uint64_t unknown_frees, reused_live, model_full;
	uint64_t aged_bytes, aged_count;
	struct ht_rsite *sites;      /* sorted by the live view (aged_bytes), then alloc_bytes */
	uint32_t nsites;
	struct ht_rgo *go;           /* NULL unless a Go program */
	char allocator[16];          /* system-wide: the allocator it binds ("glibc", ...) */
};

/* Loss counters: what the figures do not include.  Shown in every report. */
struct ht_loss {
	uint64_t bpf[HT_CNT__COUNT]; /* the BPF side's counters, summed over CPUs */
	uint64_t unknown_frees;      /* over all processes */
	uint64_t reused_live;
	uint64_t model_full;
	uint64_t bad_records;        /* records the collector could not parse */
};

struct ht_report {
	bool final;
	uint64_t start_unix_ns; /* wall-clock time the session attached, ns since the epoch */
	const char *mode;       /* "live", "rate", "floor-live", "floor-rate" (static string) */
	uint64_t sample_bytes;  /* byte sampling mean; 0: every allocation traced (exact) */
	double elapsed_s;      /* since attach */
	double interval_s;     /* length of the interval rates are computed over */
	double min_age_s;
	uint32_t max_depth;
	uint64_t events;       /* records processed */
	uint64_t collector_bytes; /* heap model + stack table */
	uint64_t live_blocks_tracked;
	uint64_t stacks_tracked;  /* distinct stacks kept (a system-wide session drops those
				   * of the processes it forgets) */
	size_t probes, slow_probes;
	bool gc_timeline;      /* text: a line per Go GC cycle (--gc) */
	struct ht_rsystem *system; /* system-wide sessions only, else NULL */
	struct ht_loss loss;
	struct ht_rproc *procs;
	uint32_t nprocs;
};

struct ht_report_input {
	const struct ht_heap *heap;
	const struct ht_stacks *stacks;
	struct ht_procs *procs;
	const struct ht_loss *loss;
	double elapsed_s, interval_s, min_age_s;
	uint64_t now_ns, origin_ns; /* monotonic */
	uint64_t start_unix_ns;     /* wall clock at origin_ns */
	const char *mode;
	uint64_t sample_bytes;
	uint32_t max_depth;
	uint64_t events;
	size_t probes, slow_probes;
	bool final;
	const struct ht_gostate *go; /* Go processes, or NULL */
	bool gc_timeline;
};

/* NULL and errno on failure. */
struct ht_report *report__build(const struct ht_report_input *in);
void report__free(struct ht_report *r);
/* Orders processes by live bytes, then bytes allocated (system-wide tables). */
void report__sort_procs(struct ht_report *r);

/* Human-readable text (top sites per process, loss counters). */
void report__write_text(const struct ht_report *r, FILE *f, uint32_t top);
/* JSON, schema HT_REPORT_SCHEMA (documented in docs/json.md).  0 or -errno. */
int report__write_json(const struct ht_report *r, FILE *f);
/* Folded stacks: "root;...;leaf value" per site, root first, the allocator as the leaf. */
int report__write_folded(const struct ht_report *r, FILE *f, enum ht_metric metric);

/* pprof profile.proto, gzipped: sample types alloc_objects/alloc_space/inuse_objects/
 * inuse_space (default inuse_space), mappings, functions, inline frames.  0 or -errno. */
int report__write_pprof(const struct ht_report *r, FILE *f);
/* Self-contained SVG flame graph of metric (icicle when inverted).  0 or -errno. */
int report__write_svg(const struct ht_report *r, FILE *f, enum ht_metric metric, bool inverted);

/* Reads a report written by report__write_json().  NULL on failure, with a one-line reason
 * in err ("line 3: expected ':'", "unsupported version 7"). */
struct ht_report *report__read_json(FILE *f, char *err, size_t errlen);

/* A site's value for a metric (the live metrics count only blocks older than min_age_s
 * when the report has one). */
uint64_t report__site_value(const struct ht_report *r, const struct ht_rsite *s,
			    enum ht_metric m);

/* The label a frame has in folded output and compact text: function, or module+0xoff. */
void report__frame_label(const struct ht_rframe *f, char *buf, size_t len);

#endif
