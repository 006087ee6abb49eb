#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "stacks.h"
#include "u64map.h"

struct entry {
	uint64_t hash;
	uint64_t frame_off; /* index into frames[] */
	uint32_t pid;
	uint32_t next; /* in use: the pid's next stack id + 1; free: the next free id + 1 */
	uint16_t fn;
	uint16_t nframes;
	bool truncated;
	bool unused; /* its process was dropped: the id waits on the free list */
};

struct ht_stacks {
	struct entry *entries;
	uint32_t n, cap;      /* ids handed out so far (in use or free), entries allocated */
	uint32_t nused;       /* ids in use */
	uint32_t free_head;   /* first free id + 1, 0 = none */
	uint64_t created;     /* stacks ever interned (an id reused counts again) */
	uint64_t *frames; /* all frames of all stacks, back to back */
	uint64_t nframes, frames_cap;
	uint64_t dead_frames; /* frames of dropped stacks, still in frames[] until compacted */
	uint64_t *slots; /* open addressing: SLOT_TAG(hash) | (id + 1), 0 = empty */
	uint32_t slot_cap;
	struct ht_u64map by_pid; /* pid + 1 -> the pid's newest stack id + 1 (a chain by next) */
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
	u64map__clear(&s->by_pid);
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

		if (s->entries[id].unused)
			continue;

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
	uint64_t *head, pid_next;
	uint32_t mask, i, id;
	struct entry *e;

	if ((uint64_t)(s->nused + 1) * 2 > s->slot_cap && grow_slots(s))
		return -ENOMEM;
	mask = s->slot_cap - 1;
	for (i = h & mask; s->slots[i]; i = (i + 1) & mask)
		if (SLOT_TAG(s->slots[i]) == SLOT_TAG(h) &&
		    same(s, &s->entries[(uint32_t)s->slots[i] - 1], pid, fn, truncated, frames,
			 nframes))
			return (uint32_t)s->slots[i] - 1;
	id = s->free_head ? s->free_head - 1 : s->n;
	if (reserve((void **)&s->entries, &ecap, (uint64_t)id + 1, sizeof(*s->entries)) ||
	    reserve((void **)&s->frames, &s->frames_cap, s->nframes + nframes, sizeof(uint64_t)))
		return -ENOMEM;
	s->cap = ecap;
	head = u64map__get(&s->by_pid, (uint64_t)pid + 1);
	pid_next = head ? *head : 0;
	if (u64map__put(&s->by_pid, (uint64_t)pid + 1, (uint64_t)id + 1))
		return -ENOMEM;
	e = &s->entries[id];
	if (id == s->n)
		s->n++;
	else
		s->free_head = e->next;
	*e = (struct entry){ .hash = h, .frame_off = s->nframes, .pid = pid,
			     .next = (uint32_t)pid_next, .fn = fn, .nframes = nframes,
			     .truncated = truncated };
	if (nframes) /* frames may be NULL for an empty stack */
		memcpy(s->frames + s->nframes, frames, nframes * sizeof(*frames));
	s->nframes += nframes;
	s->slots[i] = SLOT_TAG(h) | (id + 1);
	s->nused++;
	s->created++;
	return id;
}

/* Takes id's slot out of the probe chains: later slots of the run whose home is at or
 * before the hole move back into it (linear probing without tombstones). */
static void remove_slot(struct ht_stacks *s, uint32_t id)
{
	uint32_t mask = s->slot_cap - 1, hole = s->entries[id].hash & mask;

	while ((uint32_t)s->slots[hole] != id + 1)
		hole = (hole + 1) & mask;
	for (uint32_t j = (hole + 1) & mask; s->slots[j]; j = (j + 1) & mask) {
		uint32_t home = s->entries[(uint32_t)s->slots[j] - 1].hash & mask;

		/* j's entry may fill the hole unless its home lies cyclically in (hole, j] */
		if (((j - home) & mask) >= ((j - hole) & mask)) {
			s->slots[hole] = s->slots[j];
			hole = j;
		}
	}
	s->slots[hole] = 0;
}

/* Moves the frames of the stacks in use together, in id order, into a right-sized array. */
static int compact_frames(struct ht_stacks *s)
{
	uint64_t live = s->nframes - s->dead_frames, cap = 256, at = 0;
	uint64_t *nf;

	while (cap < live)
		cap *= 2;
	nf = malloc(cap * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	for (uint32_t id = 0; id < s->n; id++) {
		struct entry *e = &s->entries[id];

		if (e->unused)
			continue;
		if (e->nframes)
			memcpy(nf + at, s->frames + e->frame_off, e->nframes * sizeof(*nf));
		e->frame_off = at;
		at += e->nframes;
	}
	free(s->frames);
	s->frames = nf;
	s->frames_cap = cap;
	s->nframes = at;
	s->dead_frames = 0;
	return 0;
}

void stacks__drop_pid(struct ht_stacks *s, uint32_t pid)
{
	uint64_t *head = u64map__get(&s->by_pid, (uint64_t)pid + 1);
	uint32_t next = head ? (uint32_t)*head : 0;

	while (next) {
		uint32_t id = next - 1;
		struct entry *e = &s->entries[id];

		next = e->next;
		remove_slot(s, id);
		s->dead_frames += e->nframes;
		*e = (struct entry){ .unused = true, .next = s->free_head };
		s->free_head = id + 1;
		s->nused--;
	}
	u64map__remove(&s->by_pid, (uint64_t)pid + 1);
	/* Past half dead, the frames are moved together; a failure only leaves the holes. */
	if (s->dead_frames > 4096 && s->dead_frames * 2 > s->nframes)
		(void)compact_frames(s);
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

uint32_t stacks__in_use(const struct ht_stacks *s)
{
	return s->nused;
}

uint64_t stacks__created(const struct ht_stacks *s)
{
	return s->created;
}

uint64_t stacks__memory(const struct ht_stacks *s)
{
	return (uint64_t)s->cap * sizeof(struct entry) + s->frames_cap * sizeof(uint64_t) +
	       (uint64_t)s->slot_cap * sizeof(*s->slots) + s->by_pid.cap * 16;
}
