/*
 * stacks: interns call stacks.  A stack is (pid, allocating function, user frames); equal
 * stacks get the same small id, dense from 0, so per-site tables can be plain arrays.
 * Frames are raw return addresses (innermost first) until a report symbolizes them.
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
/* The stack with this id; valid until stacks__free(). */
struct ht_stack stacks__get(const struct ht_stacks *s, uint32_t id);
uint32_t stacks__count(const struct ht_stacks *s);
/* Bytes held, for the memory figures in reports. */
uint64_t stacks__memory(const struct ht_stacks *s);

#endif
