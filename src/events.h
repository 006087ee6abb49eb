/*
 * events: validates ring-buffer records and applies them to the model (stacks, heap,
 * process table).  Records live only during events__handle().
 */
#ifndef HEAPTAP_EVENTS_H
#define HEAPTAP_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "u64map.h"

struct ht_heap;
struct ht_stacks;
struct ht_procs;
struct ht_probes;
struct ht_unwinder;
struct ht_gostate;
struct ht_proc_rec;

struct ht_events {
	struct ht_heap *heap;
	struct ht_stacks *stacks;
	struct ht_procs *procs;
	uint64_t handled;      /* records applied */
	uint64_t bad_records;  /* records that failed validation */
	uint64_t nomem;        /* records lost to allocation failure in the collector */
	const struct ht_probes *probes; /* rate mode: to recognise nested allocator calls */
	uint8_t *nested;        /* rate mode, per stack id: 1 = made inside another allocator */
	uint32_t nested_cap;
	uint64_t nested_skipped; /* rate-mode records dropped as nested */
	struct ht_u64map last_entry; /* rate mode: tid + 1 -> tag of its last record */
	uint64_t sample_bytes;  /* BPF byte sampling mean (0: every allocation is traced) */
	uint64_t rng;           /* xorshift state for unbiased rounding of sample weights */
	uint64_t drain_gen;    /* bumped by the session per drain: maps refresh once a drain */
	uint64_t refreshed_gen; /* drain_gen + 1 of the last map refresh, and whose */
	uint32_t refreshed_pid;
	struct ht_unwinder *unwind; /* records with a stack copy: NULL = use the FP chain only */
	struct ht_gostate *go;      /* Go processes' GC timelines; NULL: no Go process */
	/* HT_REC_PROC records (system-wide sessions), or NULL to ignore them */
	void (*on_proc)(void *ctx, const struct ht_proc_rec *r);
	void *on_proc_ctx;
};

/* Applies one record (ringread_fn shape; ctx is a struct ht_events).  A record that fails
 * validation is counted in bad_records, one the model has no memory for in nomem. */
void events__handle(void *ctx, const void *data, size_t len);

/* The record data will be handled soon (ringread's look-ahead): starts loading the
 * block-table slot it will touch.  Changes nothing. */
void events__prefetch(void *ctx, const void *data, size_t len);

/* Forgets process pid's blocks, sites and stacks (system-wide eviction, an exec); its
 * stack ids are reused.  The process table keeps it (procs__drop is the caller's). */
void events__drop_proc(struct ht_events *ev, uint32_t pid);

/* Frees what the events state allocated itself (not heap/stacks/procs). */
void events__clear(struct ht_events *ev);

#endif
