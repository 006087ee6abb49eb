/*
 * stacks: interns call stacks.  A stack is (pid, allocating function, user frames); equal
 * stacks get the same small id, dense from 0, so per-site tables can be plain arrays.
 * Frames are raw return addresses (innermost first) until a report symbolizes them.
 *
 * A system-wide session sees processes come and go for hours: the stacks of a process it
 * forgets are dropped and their ids handed out again, so the table is bounded by the
 * stacks of the processes kept, not by every process ever seen.
 */
#ifndef HEAPTAP_STACKS_H
#define HEAPTAP_STACKS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct ht_stacks;

struct ht_stack {
	uint32_t pid;
	uint16_t fn;        /* enum ht_fn */
	uint16_t nframes;
	bool truncated;     /* the depth cap cut the chain */
	const uint64_t *frames; /* borrowed, innermost first */
};

struct ht_stacks *stacks__new(void);
void stacks__free(struct ht_stacks *s);

/* Returns the stack's id (>= 0) or -ENOMEM. */
int64_t stacks__intern(struct ht_stacks *s, uint32_t pid, uint16_t fn, bool truncated,
		       const uint64_t *frames, uint16_t nframes);
/* The stack with this id (in use); valid until stacks__free() or its pid is dropped. */
struct ht_stack stacks__get(const struct ht_stacks *s, uint32_t id);
/* Forgets every stack of pid; their ids are reused by stacks interned later (the caller
 * has forgotten whatever it kept per id for them: heap__drop_proc). */
void stacks__drop_pid(struct ht_stacks *s, uint32_t pid);
/* Ids are below this (some may be free): the size of a table indexed by id. */
uint32_t stacks__count(const struct ht_stacks *s);
/* Ids in use. */
uint32_t stacks__in_use(const struct ht_stacks *s);
/* Stacks interned ever: a change means the last intern made a new one (perhaps reusing
 * an id). */
uint64_t stacks__created(const struct ht_stacks *s);
/* Bytes held, for the memory figures in reports. */
uint64_t stacks__memory(const struct ht_stacks *s);

#endif
