/*
 * Unit test for src/stacks.c and src/u64map.c.  Stacks: equal (pid, fn, truncated, frames)
 * intern to one id, a difference in any part (including zero frames and prefixes) to
 * another, ids are dense from 0 and stacks__get() gives back what was interned, also after
 * the tables grew.  u64map: put/get/overwrite/remove over many keys, including keys that
 * differ only above bit 20, checked against a plain array after every removal batch.
 * Exit status 0 when every check passes; every failed check is printed to stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stacks.h"
#include "u64map.h"

#include "check.h"

#define CHECK_STACK(s, id, pid, fn, trunc, frames, n) \
	check_stack((s), (id), (pid), (fn), (trunc), (frames), (n), __FILE__, __LINE__)

static void check_stack(const struct ht_stacks *s, uint32_t id, uint32_t pid, uint16_t fn,
			bool truncated, const uint64_t *frames, uint16_t n, const char *file,
			int line)
{
	struct ht_stack st = stacks__get(s, id);

	if (st.pid == pid && st.fn == fn && st.truncated == truncated && st.nframes == n &&
	    (!n || !memcmp(st.frames, frames, n * sizeof(*frames))))
		return;
	fprintf(stderr, "%s:%d: check failed: stack %u is not what was interned\n", file, line,
		id);
	failures++;
}

static void test_intern(void)
{
	struct ht_stacks *s = stacks__new();
	const uint64_t f123[] = { 0x401000, 0x402000, 0x403000 };
	uint64_t copy[3];
	const uint64_t f124[] = { 0x401000, 0x402000, 0x404000 };
	const uint64_t f213[] = { 0x402000, 0x401000, 0x403000 };
	const uint64_t f1230[] = { 0x401000, 0x402000, 0x403000, 0 };
	const uint64_t f0[] = { 0 };
	const uint64_t some[] = { 0x999 };

	CHECK(s);
	if (!s)
		return;
	CHECK_EQ(stacks__count(s), 0);

	CHECK_EQ(stacks__intern(s, 1, 1, false, f123, 3), 0);
	CHECK_EQ(stacks__intern(s, 1, 1, false, f123, 3), 0);
	memcpy(copy, f123, sizeof(copy)); /* equal by content, not by pointer */
	CHECK_EQ(stacks__intern(s, 1, 1, false, copy, 3), 0);
	CHECK_EQ(stacks__count(s), 1);

	/* one part differs at a time */
	CHECK_EQ(stacks__intern(s, 2, 1, false, f123, 3), 1);  /* pid */
	CHECK_EQ(stacks__intern(s, 1, 2, false, f123, 3), 2);  /* fn */
	CHECK_EQ(stacks__intern(s, 1, 1, true, f123, 3), 3);   /* truncated */
	CHECK_EQ(stacks__intern(s, 1, 1, false, f124, 3), 4);  /* last frame */
	CHECK_EQ(stacks__intern(s, 1, 1, false, f213, 3), 5);  /* order */
	CHECK_EQ(stacks__intern(s, 1, 1, false, f123, 2), 6);  /* prefix */
	CHECK_EQ(stacks__intern(s, 1, 1, false, f123, 1), 7);  /* shorter prefix */
	CHECK_EQ(stacks__intern(s, 1, 1, false, f1230, 4), 8); /* extended by a 0 */
	CHECK_EQ(stacks__intern(s, 1, 1, false, some, 0), 9);  /* no frames */
	CHECK_EQ(stacks__intern(s, 1, 1, false, f123, 0), 9);  /* no frames: pointer irrelevant */
	CHECK_EQ(stacks__intern(s, 1, 1, true, some, 0), 10);
	CHECK_EQ(stacks__intern(s, 2, 1, false, some, 0), 11);
	CHECK_EQ(stacks__intern(s, 1, 1, false, f0, 1), 12);   /* one zero frame is a frame */
	/* pid and fn are not confused when swapped, nor with a frame */
	CHECK_EQ(stacks__intern(s, 1, 2, false, some, 0), 13);
	CHECK_EQ(stacks__intern(s, 2, 1, false, f123, 3), 1);
	CHECK_EQ(stacks__intern(s, 0x10001, 0, false, some, 0), 14);
	CHECK_EQ(stacks__intern(s, 1, 0x1, false, some, 0), 9);
	CHECK_EQ(stacks__count(s), 15);

	/* and all of them again, in another order: the same ids */
	CHECK_EQ(stacks__intern(s, 1, 1, false, f0, 1), 12);
	CHECK_EQ(stacks__intern(s, 1, 1, false, f1230, 4), 8);
	CHECK_EQ(stacks__intern(s, 1, 1, false, f123, 2), 6);
	CHECK_EQ(stacks__intern(s, 1, 1, true, f123, 3), 3);
	CHECK_EQ(stacks__intern(s, 1, 1, false, f123, 3), 0);
	CHECK_EQ(stacks__count(s), 15);

	CHECK_STACK(s, 0, 1, 1, false, f123, 3);
	CHECK_STACK(s, 1, 2, 1, false, f123, 3);
	CHECK_STACK(s, 2, 1, 2, false, f123, 3);
	CHECK_STACK(s, 3, 1, 1, true, f123, 3);
	CHECK_STACK(s, 4, 1, 1, false, f124, 3);
	CHECK_STACK(s, 5, 1, 1, false, f213, 3);
	CHECK_STACK(s, 6, 1, 1, false, f123, 2);
	CHECK_STACK(s, 7, 1, 1, false, f123, 1);
	CHECK_STACK(s, 8, 1, 1, false, f1230, 4);
	CHECK_STACK(s, 9, 1, 1, false, NULL, 0);
	CHECK_STACK(s, 10, 1, 1, true, NULL, 0);
	CHECK_STACK(s, 11, 2, 1, false, NULL, 0);
	CHECK_STACK(s, 12, 1, 1, false, f0, 1);
	CHECK_STACK(s, 14, 0x10001, 0, false, NULL, 0);
	CHECK(stacks__memory(s) > 0);
	stacks__free(s);
	stacks__free(NULL);
}

/*
 * The very first stack has no frames, so the frame array is still NULL: no memcpy/memcmp
 * on it (UBSan: nonnull argument) and no arithmetic on it (clang's UBSan: "applying zero
 * offset to null pointer" in stacks__get()).  Happens when a session's first record
 * carries no frames (bpf_get_stack failed).
 */
static void test_empty_first(void)
{
	struct ht_stacks *s = stacks__new();
	const uint64_t one[] = { 0x1234 };
	struct ht_stack st;

	CHECK_EQ(stacks__intern(s, 5, 3, false, one, 0), 0);
	st = stacks__get(s, 0);
	CHECK_EQ(st.pid, 5);
	CHECK_EQ(st.fn, 3);
	CHECK_EQ(st.nframes, 0);
	CHECK_EQ(stacks__intern(s, 5, 3, false, one, 1), 1);
	CHECK_EQ(stacks__intern(s, 5, 3, false, one, 0), 0);
	CHECK_STACK(s, 1, 5, 3, false, one, 1);
	stacks__free(s);
}

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

/* Many stacks: the tables grow several times; every id and every frame must survive. */
static void test_many(void)
{
	enum { N = 20000, MAXF = 32 };
	struct ht_stacks *s = stacks__new();
	uint64_t (*frames)[MAXF] = calloc(N, sizeof(*frames));
	uint16_t *nf = calloc(N, sizeof(*nf));
	uint32_t *pid = calloc(N, sizeof(*pid));
	int before = failures;

	for (uint32_t i = 0; i < N; i++) {
		/*
		 * Families of look-alikes: stacks of one family share a prefix and differ in
		 * depth, the last frame or only the pid, so equal hashes of their parts
		 * cannot hide a difference.
		 */
		uint32_t fam = i / 8, k = i % 8;

		pid[i] = 100 + (k == 7 ? 1 : 0);
		nf[i] = (uint16_t)(1 + fam % (MAXF - 1));
		for (uint16_t j = 0; j < nf[i]; j++)
			frames[i][j] = 0x7f0000000000ULL + ((uint64_t)fam << 20) + j * 0x40;
		if (k < 6)
			frames[i][nf[i] - 1] += k; /* same depth, last frame differs */
		else if (k == 6)
			frames[i][nf[i]++] = 0x1000; /* one deeper */
		/* k == 7: the frames of k == 0, in another pid */
		CHECK_EQ(stacks__intern(s, pid[i], 1, false, frames[i], nf[i]), i);
		if (failures != before)
			break;
	}
	CHECK_EQ(stacks__count(s), N);
	for (uint32_t n = 0; n < N && failures == before; n++) {
		uint32_t i = (uint32_t)(rnd() % N);

		CHECK_EQ(stacks__intern(s, pid[i], 1, false, frames[i], nf[i]), i);
		CHECK_STACK(s, i, pid[i], 1, false, frames[i], nf[i]);
	}
	for (uint32_t i = 0; i < N && failures == before; i++)
		CHECK_STACK(s, i, pid[i], 1, false, frames[i], nf[i]);
	CHECK_EQ(stacks__count(s), N);
	free(frames);
	free(nf);
	free(pid);
	stacks__free(s);
}

/*
 * Processes come and go (a system-wide session): each has up to 40 stacks of up to 24
 * frames, many shared in shape with other processes' but always in its own pid.  After
 * every drop of the oldest processes, every stack of the processes kept must still intern
 * to its id and read back whole (slot removal keeps probe chains intact, compaction moves
 * frames, not meaning); dropped ids are handed out again, so ids and memory stay bounded by
 * the processes kept, not by the 3000 seen.
 */
static void test_drop_and_reuse(void)
{
	enum { PROCS = 3000, KEEP = 16, PER = 40, MAXF = 24 };
	struct proc_model {
		uint32_t pid, n;
		uint32_t id[PER];
		uint16_t nf[PER];
		uint64_t frames[PER][MAXF];
	} *m = calloc(KEEP, sizeof(*m));
	struct ht_stacks *s = stacks__new();
	uint8_t *owner_seen = calloc(1u << 16, 1);
	uint64_t peak_mem = 0, mem_after_warmup = 0;
	uint32_t max_ids = 0;
	int before = failures;

	CHECK(m && s && owner_seen);
	if (!m || !s || !owner_seen)
		goto out;
	for (uint32_t p = 0; p < PROCS && failures == before; p++) {
		struct proc_model *pm = &m[p % KEEP];
		uint32_t in_use = 0;

		if (pm->n) { /* the oldest kept process goes */
			uint64_t created;

			stacks__drop_pid(s, pm->pid);
			created = stacks__created(s);
			/* forgotten: interning one of its stacks again makes a new one */
			CHECK(stacks__intern(s, pm->pid, 1, false, pm->frames[1], pm->nf[1]) >= 0);
			CHECK_EQ(stacks__created(s), created + 1);
			stacks__drop_pid(s, pm->pid);
		}
		pm->pid = 1000 + p;
		pm->n = 2 + (uint32_t)(rnd() % (PER - 1));
		for (uint32_t k = 0; k < pm->n; k++) {
			uint64_t created = stacks__created(s);
			int64_t id;

			/* one empty stack per process; the others distinct by their first frame */
			pm->nf[k] = k ? (uint16_t)(1 + rnd() % MAXF) : 0;
			for (uint16_t j = 0; j < pm->nf[k]; j++) /* shapes repeat across procs */
				pm->frames[k][j] = 0x400000 + (k * 0x100) + j * 8 + (rnd() % 2);
			pm->frames[k][0] += (uint64_t)k << 32; /* distinct within the process */
			id = stacks__intern(s, pm->pid, 1, false, pm->frames[k], pm->nf[k]);
			CHECK(id >= 0);
			CHECK_EQ(stacks__created(s), created + 1);
			pm->id[k] = (uint32_t)id;
		}
		/* every kept stack: same id, same content; ids unique among the kept */
		memset(owner_seen, 0, 1u << 16);
		for (uint32_t q = 0; q < KEEP; q++) {
			for (uint32_t k = 0; k < m[q].n; k++) {
				uint64_t created = stacks__created(s);

				CHECK_EQ(stacks__intern(s, m[q].pid, 1, false, m[q].frames[k],
							m[q].nf[k]), m[q].id[k]);
				CHECK_EQ(stacks__created(s), created);
				CHECK_STACK(s, m[q].id[k], m[q].pid, 1, false, m[q].frames[k],
					    m[q].nf[k]);
				CHECK(m[q].id[k] < (1u << 16) && !owner_seen[m[q].id[k]]);
				if (m[q].id[k] < (1u << 16))
					owner_seen[m[q].id[k]] = 1;
				in_use++;
			}
		}
		CHECK_EQ(stacks__in_use(s), in_use);
		if (stacks__count(s) > max_ids)
			max_ids = stacks__count(s);
		if (p == 4 * KEEP)
			mem_after_warmup = stacks__memory(s);
		if (stacks__memory(s) > peak_mem)
			peak_mem = stacks__memory(s);
	}
	/* at most KEEP processes of PER stacks, plus the one being probed */
	CHECK(max_ids <= (KEEP + 1) * PER);
	/* bounded: the tables of 16 processes, not of 3000 (which would be ~10 MB) */
	CHECK(peak_mem <= 4 * mem_after_warmup);
	CHECK(peak_mem < 512 * 1024);
	for (uint32_t q = 0; q < KEEP; q++)
		stacks__drop_pid(s, m[q].pid);
	CHECK_EQ(stacks__in_use(s), 0);
	stacks__drop_pid(s, 424242); /* a pid never seen: nothing happens */
	CHECK_EQ(stacks__intern(s, 7, 1, false, NULL, 0) < max_ids, 1); /* a free id */
out:
	free(owner_seen);
	free(m);
	stacks__free(s);
}

static void test_u64map_basic(void)
{
	struct ht_u64map m = { 0 };
	uint64_t *v;

	CHECK(!u64map__get(&m, 1));
	CHECK(!u64map__remove(&m, 1));
	CHECK_EQ(u64map__put(&m, 1, 10), 0);
	CHECK_EQ(u64map__put(&m, 2, 20), 0);
	CHECK_EQ(m.len, 2);
	v = u64map__get(&m, 1);
	CHECK(v && *v == 10);
	CHECK(!u64map__get(&m, 0));
	CHECK(!u64map__get(&m, 3));
	CHECK_EQ(u64map__put(&m, 1, 11), 0); /* overwrite */
	CHECK_EQ(m.len, 2);
	v = u64map__get(&m, 1);
	CHECK(v && *v == 11);
	*u64map__get(&m, 2) = 21; /* the pointer is the value's slot */
	v = u64map__get(&m, 2);
	CHECK(v && *v == 21);
	CHECK(u64map__remove(&m, 1));
	CHECK(!u64map__remove(&m, 1));
	CHECK(!u64map__remove(&m, 0));
	CHECK(!u64map__get(&m, 1));
	CHECK_EQ(m.len, 1);
	CHECK_EQ(u64map__put(&m, UINT64_MAX, 7), 0);
	v = u64map__get(&m, UINT64_MAX);
	CHECK(v && *v == 7);
	u64map__clear(&m);
	CHECK_EQ(m.len, 0);
	CHECK(!u64map__get(&m, 2));
	CHECK_EQ(u64map__put(&m, 2, 22), 0); /* usable after clear */
	v = u64map__get(&m, 2);
	CHECK(v && *v == 22);
	u64map__clear(&m);
	u64map__clear(&m);
}

/* Key i of the test set: four disjoint patterns that stress the hash's low bits. */
static uint64_t test_key(uint32_t i)
{
	switch (i % 4) {
	case 0:
		return (uint64_t)(i / 4 + 1) << 20;           /* multiples of 2^20 */
	case 1:
		return (uint64_t)(i / 4 + 1) << 32 | 1;       /* differ only in the high half */
	case 2:
		return 0x7f0000000000ULL + (uint64_t)(i / 4) * 16; /* pointers */
	default:
		return i / 4 + 1;                             /* small integers */
	}
}

static void check_map(const struct ht_u64map *m, const bool *present, uint32_t n,
		      const char *file, int line)
{
	uint64_t len = 0;
	int bad = 0;

	for (uint32_t i = 0; i < n; i++) {
		const uint64_t *v = u64map__get(m, test_key(i));

		if (present[i]) {
			len++;
			if (!v || *v != (uint64_t)i * 3 + 1)
				bad++;
		} else if (v) {
			bad++;
		}
	}
	if (bad || len != m->len) {
		fprintf(stderr, "%s:%d: check failed: map holds %d wrong keys, len %zu for %" PRIu64
			"\n", file, line, bad, m->len, len);
		failures++;
	}
}

#define CHECK_MAP(m, present, n) check_map((m), (present), (n), __FILE__, __LINE__)

static void test_u64map_many(void)
{
	enum { N = 200000 };
	struct ht_u64map m = { 0 };
	bool *present = calloc(N, sizeof(*present));
	int before = failures;

	/* the patterns are distinct: no key appears twice */
	for (uint32_t i = 0; i < N; i++) {
		CHECK(test_key(i) != 0);
		CHECK_EQ(u64map__put(&m, test_key(i), (uint64_t)i * 3 + 1), 0);
		present[i] = true;
		if (failures != before)
			break;
	}
	CHECK_EQ(m.len, N);
	CHECK_MAP(&m, present, N);

	/* remove every third key, then every multiple-of-2^20 key that is left */
	for (uint32_t i = 0; i < N; i += 3) {
		CHECK(u64map__remove(&m, test_key(i)));
		present[i] = false;
	}
	CHECK_MAP(&m, present, N);
	for (uint32_t i = 0; i < N; i += 4) {
		CHECK_EQ(u64map__remove(&m, test_key(i)), present[i]);
		present[i] = false;
	}
	CHECK_MAP(&m, present, N);

	/* put some back (new values are the same function of i), overwrite others */
	for (uint32_t i = 0; i < N; i += 6) {
		CHECK_EQ(u64map__put(&m, test_key(i), (uint64_t)i * 3 + 1), 0);
		present[i] = true;
	}
	CHECK_MAP(&m, present, N);

	/* remove all, in a scattered order; check along the way */
	for (uint32_t k = 0; k < N; k++) {
		uint32_t i = (uint32_t)((uint64_t)k * 7919 % N);

		CHECK_EQ(u64map__remove(&m, test_key(i)), present[i]);
		present[i] = false;
		if (k == N / 3 || k == 2 * N / 3)
			CHECK_MAP(&m, present, N);
	}
	CHECK_EQ(m.len, 0);
	CHECK_MAP(&m, present, N);
	free(present);
	u64map__clear(&m);
}

/* Many keys with the same home slot: a long cluster, emptied from the middle out. */
static void test_u64map_cluster(void)
{
	enum { CAP = 1024, N = 200 };
	struct ht_u64map m = { 0 };
	uint64_t keys[N];
	bool present[N];
	uint32_t n = 0;
	int before = failures;

	uint64_t filler = 0;

	/* grow the map to CAP slots first, with keys we then remove */
	while (m.cap < CAP && !u64map__put(&m, 0xabc00000000ULL + ++filler, 0))
		;
	for (uint64_t k = 1; k <= filler; k++)
		CHECK(u64map__remove(&m, 0xabc00000000ULL + k));
	CHECK_EQ(m.len, 0);
	CHECK_EQ(m.cap, CAP);
	/* keys whose hash lands in slot 5 or 6 of a 1024-slot table */
	for (uint64_t k = 1; n < N; k++) {
		uint64_t key = k << 20, home = u64_hash(key) & (CAP - 1);

		if (home == 5 || home == 6) {
			keys[n] = key;
			present[n] = true;
			CHECK_EQ(u64map__put(&m, key, key ^ 0x55), 0);
			n++;
		}
	}
	CHECK_EQ(m.cap, CAP); /* no growth: 200 keys in 1024 slots */
	for (uint32_t step = 0; step < N && failures == before; step++) {
		/* middle out, alternating sides */
		uint32_t i = step % 2 ? N / 2 + step / 2 : N / 2 - step / 2 - 1;

		CHECK(u64map__remove(&m, keys[i]));
		present[i] = false;
		for (uint32_t j = 0; j < N; j++) {
			const uint64_t *v = u64map__get(&m, keys[j]);

			if (present[j])
				CHECK(v && *v == (keys[j] ^ 0x55));
			else
				CHECK(!v);
		}
	}
	u64map__clear(&m);
}

int main(void)
{
	test_intern();
	test_many();
	test_drop_and_reuse();
	test_u64map_basic();
	test_u64map_many();
	test_u64map_cluster();
	/* last: under UBSan a failure here ends the program */
	test_empty_first();
	if (failures) {
		fprintf(stderr, "test_stacks: %d check(s) failed\n", failures);
		return 1;
	}
	fprintf(stderr, "test_stacks: all checks passed\n");
	return 0;
}
