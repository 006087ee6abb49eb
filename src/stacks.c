#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stacks.h"
#include "u64map.h"

struct entry {
	uint64_t hash;
	uint64_t frame_off; /* index into frames[] */
	uint32_t pid;
	uint16_t fn;
	uint16_t nframes;
	bool truncated;
};

struct ht_stacks {
	struct entry *entries;
	uint32_t n, cap;
	uint64_t *frames; /* all frames of all stacks, back to back */
	uint64_t nframes, frames_cap;
	uint64_t *slots; /* open addressing: SLOT_TAG(hash) | (id + 1), 0 = empty */
	uint32_t slot_cap;
};

struct ht_stacks *stacks__new(void)
{
	return calloc(1, sizeof(struct ht_stacks));
}

void stacks__free(struct ht_stacks *s)
{
	if (!s)
		return;
	free(s->entries);
	free(s->frames);
	free(s->slots);
	free(s);
}

/* The 128-bit product of a and b folded to 64 bits (as in xxh3/wyhash): one mul. */
static inline uint64_t fold_mul(uint64_t a, uint64_t b)
{
	unsigned __int128 r = (unsigned __int128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

/*
 * Every record interns its stack, so this runs once per allocation over up to 128 frames.
 * Frames are taken in pairs, each pair mixed by one folded multiply with per-position
 * keys (a Weyl sequence, so equal frames at other depths or a permuted stack hash
 * differently); the products are summed, so the multiplies are independent and overlap
 * instead of forming one chain of dependent multiplies per frame.  Only the final mix is
 * serial.  Equal stacks are still confirmed frame by frame (same()).
 */
static uint64_t hash_stack(uint32_t pid, uint16_t fn, bool truncated, const uint64_t *f, uint16_t n)
{
	uint64_t k = 0x9e3779b97f4a7c15ull, acc = 0, acc2 = 0;
	uint16_t i = 0;

	for (; i + 4 <= n; i += 4) {
		acc += fold_mul(f[i] ^ k, f[i + 1] ^ (k + 0x632be59bd9b4e019ull));
		acc2 += fold_mul(f[i + 2] ^ (k + 0x3c6ef372fe94f82aull),
				 f[i + 3] ^ (k + 0xa54ff53a5f1d36f1ull));
		k += 0xdaa66d2c7ddf743full;
	}
	for (; i < n; i++, k += 0x9e3779b97f4a7c15ull)
		acc += fold_mul(f[i] ^ k, 0xbf58476d1ce4e5b9ull);
	return u64_hash(acc ^ u64_hash(acc2 ^ (((uint64_t)pid << 32) | ((uint64_t)fn << 16) |
					       ((uint64_t)truncated << 15) | n)));
}

static bool same(const struct ht_stacks *s, const struct entry *e, uint32_t pid, uint16_t fn,
		 bool truncated, const uint64_t *f, uint16_t n)
{
	return e->pid == pid && e->fn == fn && e->nframes == n && e->truncated == truncated &&
	       (!n || !memcmp(s->frames + e->frame_off, f, n * sizeof(*f)));
}

/* A slot holds id + 1 in its low 32 bits (0 = empty) and the hash's high 32 bits above,
 * so a probe rejects other stacks without reading their entries. */
#define SLOT_TAG(h) ((h) & 0xffffffff00000000ull)

static int grow_slots(struct ht_stacks *s)
{
	uint32_t ncap = s->slot_cap ? s->slot_cap * 2 : 1024, mask = ncap - 1;
	uint64_t *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (uint32_t id = 0; id < s->n; id++) {
		uint32_t i = s->entries[id].hash & mask;

		while (ns[i])
			i = (i + 1) & mask;
		ns[i] = SLOT_TAG(s->entries[id].hash) | (id + 1);
	}
	free(s->slots);
	s->slots = ns;
	s->slot_cap = ncap;
	return 0;
}

static int reserve(void **p, uint64_t *cap, uint64_t need, size_t elem)
{
	uint64_t ncap = *cap ? *cap : 256;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	np = realloc(*p, ncap * elem);
	if (!np)
		return -ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

int64_t stacks__intern(struct ht_stacks *s, uint32_t pid, uint16_t fn, bool truncated,
		       const uint64_t *frames, uint16_t nframes)
{
	uint64_t h = hash_stack(pid, fn, truncated, frames, nframes), ecap = s->cap;
	uint32_t mask, i;
	struct entry *e;

	if ((uint64_t)(s->n + 1) * 2 > s->slot_cap && grow_slots(s))
		return -ENOMEM;
	mask = s->slot_cap - 1;
	for (i = h & mask; s->slots[i]; i = (i + 1) & mask)
		if (SLOT_TAG(s->slots[i]) == SLOT_TAG(h) &&
		    same(s, &s->entries[(uint32_t)s->slots[i] - 1], pid, fn, truncated, frames,
			 nframes))
			return (uint32_t)s->slots[i] - 1;
	if (reserve((void **)&s->entries, &ecap, s->n + 1, sizeof(*s->entries)) ||
	    reserve((void **)&s->frames, &s->frames_cap, s->nframes + nframes, sizeof(uint64_t)))
		return -ENOMEM;
	s->cap = ecap;
	e = &s->entries[s->n];
	*e = (struct entry){ .hash = h, .frame_off = s->nframes, .pid = pid, .fn = fn,
			     .nframes = nframes, .truncated = truncated };
	if (nframes) /* frames may be NULL for an empty stack */
		memcpy(s->frames + s->nframes, frames, nframes * sizeof(*frames));
	s->nframes += nframes;
	s->slots[i] = SLOT_TAG(h) | ++s->n;
	return s->n - 1;
}

struct ht_stack stacks__get(const struct ht_stacks *s, uint32_t id)
{
	const struct entry *e = &s->entries[id];

	return (struct ht_stack){ .pid = e->pid, .fn = e->fn, .nframes = e->nframes,
				  .truncated = e->truncated,
				  /* NULL + 0 is undefined: no frames interned yet */
				  .frames = s->frames ? s->frames + e->frame_off : NULL };
}

uint32_t stacks__count(const struct ht_stacks *s)
{
	return s->n;
}

uint64_t stacks__memory(const struct ht_stacks *s)
{
	return (uint64_t)s->cap * sizeof(struct entry) + s->frames_cap * sizeof(uint64_t) +
	       (uint64_t)s->slot_cap * sizeof(*s->slots);
}
