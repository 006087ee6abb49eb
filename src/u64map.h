/*
 * u64map: open-addressing hash map from a nonzero 64-bit key to a 64-bit value, linear
 * probing with backward-shift deletion (no tombstones), grows at 3/4 load.  Used for the
 * small indexes (pid -> process, stack hash -> id); the live-block table has its own
 * denser layout in heap.c.
 */
#ifndef HEAPTAP_U64MAP_H
#define HEAPTAP_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ht_u64map {
	uint64_t *keys; /* 0 = empty slot */
	uint64_t *vals;
	size_t cap;     /* power of two, or 0 before the first insert */
	size_t len;
};

/* Returns a pointer to the value of key, or NULL.  Valid until the next insert/remove. */
uint64_t *u64map__get(const struct ht_u64map *m, uint64_t key);
/* Inserts or overwrites.  0 or -ENOMEM.  key must be nonzero. */
int u64map__put(struct ht_u64map *m, uint64_t key, uint64_t val);
/* Removes key; returns whether it was present. */
bool u64map__remove(struct ht_u64map *m, uint64_t key);
void u64map__clear(struct ht_u64map *m);

/* The 64-bit finalizer of MurmurHash3: cheap, and spreads pointer-aligned keys well. */
static inline uint64_t u64_hash(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif
