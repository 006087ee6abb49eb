/*
 * events: validates ring-buffer records and applies them to the model (stacks, heap,
 * process table).  Records live only during events__handle().
 */
#ifndef HEAPTAP_EVENTS_H
#define HEAPTAP_EVENTS_H

#include <stddef.h>
#include <stdint.h>

struct ht_heap;
struct ht_stacks;
struct ht_procs;

struct ht_events {
	struct ht_heap *heap;
	struct ht_stacks *stacks;
	struct ht_procs *procs;
	uint64_t handled;      /* records applied */
	uint64_t bad_records;  /* records that failed validation */
	uint64_t nomem;        /* records lost to allocation failure in the collector */
	uint64_t drain_gen;    /* bumped by the session per drain: maps refresh once a drain */
	uint64_t refreshed_gen; /* drain_gen + 1 of the last map refresh, and whose */
	uint32_t refreshed_pid;
};

/* libbpf ring_buffer callback shape; ctx is a struct ht_events.  Always returns 0. */
int events__handle(void *ctx, void *data, size_t len);

#endif
