/*
 * strtab — an allocation-heavy "realistic" C workload: a string-keyed hash table fed by a
 * synthetic log, with a mix of sizes and lifetimes.
 *
 *   strtab EVENTS
 *
 * Per event: a short-lived line buffer (malloc 64..1024, freed at the end of the event);
 * a key drawn from a skewed vocabulary (a few keys are hot, most are rare) looked up in a
 * chained table; a miss inserts an entry (malloc) and its key (strdup-style malloc); every
 * hit appends to the entry's value, grown by realloc (16 bytes, doubling: long-lived and
 * growing); one event in eight evicts a random entry (frees key, value, entry: medium
 * lifetimes).  The bucket array is calloc'd and doubled as the table fills.  At the end
 * the whole table is torn down.  One op = one allocator call (malloc, calloc, realloc or
 * free), counted by the program.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

struct entry {
	struct entry *next;
	char *key;
	char *val;
	size_t vlen, vcap;
	uint64_t hash;
};

struct table {
	struct entry **buckets;
	size_t nbuckets, n;
};

static unsigned long long ops;

static void *xmalloc(size_t n)
{
	void *p = malloc(n);

	ops++;
	if (!p)
		abort();
	return p;
}

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	ops++;
	if (!p)
		abort();
	return p;
}

static void *xrealloc(void *old, size_t n)
{
	void *p = realloc(old, n);

	ops++;
	if (!p)
		abort();
	return p;
}

static void xfree(void *p)
{
	ops++;
	free(p);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

static void grow(struct table *t)
{
	size_t nb = t->nbuckets * 2;
	struct entry **b = xcalloc(nb, sizeof(*b));

	for (size_t i = 0; i < t->nbuckets; i++) {
		struct entry *e = t->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	xfree(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

static struct entry *lookup_or_insert(struct table *t, const char *key)
{
	uint64_t h = hash_str(key);
	struct entry **slot = &t->buckets[h & (t->nbuckets - 1)], *e;
	size_t len;

	for (e = *slot; e; e = e->next)
		if (e->hash == h && !strcmp(e->key, key))
			return e;
	len = strlen(key);
	e = xmalloc(sizeof(*e));
	e->key = xmalloc(len + 1);
	memcpy(e->key, key, len + 1);
	e->val = NULL;
	e->vlen = e->vcap = 0;
	e->hash = h;
	e->next = *slot;
	*slot = e;
	if (++t->n > t->nbuckets * 3 / 4)
		grow(t);
	return e;
}

static void append(struct entry *e, const char *s, size_t n)
{
	if (e->vlen + n > e->vcap) {
		size_t cap = e->vcap ? e->vcap : 16;

		while (cap < e->vlen + n)
			cap *= 2;
		e->val = xrealloc(e->val, cap);
		e->vcap = cap;
	}
	memcpy(e->val + e->vlen, s, n);
	e->vlen += n;
}

static void destroy(struct entry *e)
{
	xfree(e->val);
	xfree(e->key);
	xfree(e);
}

/* Evicts the first entry of a random non-empty bucket (if the one drawn is empty, none). */
static void evict(struct table *t, unsigned long long r)
{
	struct entry **slot = &t->buckets[r & (t->nbuckets - 1)], *e = *slot;

	if (!e)
		return;
	*slot = e->next;
	t->n--;
	destroy(e);
}

int main(int argc, char **argv)
{
	struct table t = { .nbuckets = 64 };
	unsigned long long events, seed = 0x2545f4914f6cdd1dULL, sum = 0;
	char key[96];

	if (argc != 2 || !(events = strtoull(argv[1], NULL, 10))) {
		fprintf(stderr, "usage: strtab EVENTS\n");
		return 2;
	}
	t.buckets = xcalloc(t.nbuckets, sizeof(*t.buckets));
	for (unsigned long long i = 0; i < events; i++) {
		unsigned long long r = bench_rand(&seed);
		size_t linelen = 64 + r % (1024 - 64 + 1);
		char *line = xmalloc(linelen);
		/* Skewed: small ids are drawn far more often than large ones. */
		unsigned long long bound = bench_rand(&seed) % 50000 + 1;
		unsigned long long id = bench_rand(&seed) % bound;
		int klen = snprintf(key, sizeof(key), "tenant-%llu/object/%0*llu", id % 97,
				    (int)(id % 40), id);
		struct entry *e;

		memset(line, 'a' + (int)(r % 26), linelen);
		e = lookup_or_insert(&t, key);
		append(e, line, 8 + r % 56);
		sum += (unsigned long long)klen + e->vlen + (unsigned char)line[linelen - 1];
		xfree(line);
		if (r % 8 == 0)
			evict(&t, bench_rand(&seed));
	}
	sum += t.n;
	for (size_t i = 0; i < t.nbuckets; i++) {
		struct entry *e = t.buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			destroy(e);
		}
	}
	xfree(t.buckets);
	bench_report(ops, sum);
	return 0;
}
