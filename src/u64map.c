#include <errno.h>
#include <stdlib.h>

#include "u64map.h"

uint64_t *u64map__get(const struct ht_u64map *m, uint64_t key)
{
	size_t mask, i;

	if (!m->cap || !key)
		return NULL;
	mask = m->cap - 1;
	for (i = u64_hash(key) & mask; m->keys[i]; i = (i + 1) & mask)
		if (m->keys[i] == key)
			return &m->vals[i];
	return NULL;
}

static void place(uint64_t *keys, uint64_t *vals, size_t mask, uint64_t key, uint64_t val)
{
	size_t i = u64_hash(key) & mask;

	while (keys[i] && keys[i] != key)
		i = (i + 1) & mask;
	keys[i] = key;
	vals[i] = val;
}

static int grow(struct ht_u64map *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 16, i;
	uint64_t *nk = calloc(ncap, sizeof(*nk)), *nv = calloc(ncap, sizeof(*nv));

	if (!nk || !nv) {
		free(nk);
		free(nv);
		return -ENOMEM;
	}
	for (i = 0; i < m->cap; i++)
		if (m->keys[i])
			place(nk, nv, ncap - 1, m->keys[i], m->vals[i]);
	free(m->keys);
	free(m->vals);
	m->keys = nk;
	m->vals = nv;
	m->cap = ncap;
	return 0;
}

/* One probe finds the key or the empty slot it goes to (rate mode puts once per record). */
int u64map__put(struct ht_u64map *m, uint64_t key, uint64_t val)
{
	size_t mask, i;

	if (m->cap) {
		mask = m->cap - 1;
		for (i = u64_hash(key) & mask; m->keys[i]; i = (i + 1) & mask)
			if (m->keys[i] == key) {
				m->vals[i] = val;
				return 0;
			}
		if ((m->len + 1) * 4 <= m->cap * 3) {
			m->keys[i] = key;
			m->vals[i] = val;
			m->len++;
			return 0;
		}
	}
	if (grow(m))
		return -ENOMEM;
	place(m->keys, m->vals, m->cap - 1, key, val);
	m->len++;
	return 0;
}

bool u64map__remove(struct ht_u64map *m, uint64_t key)
{
	size_t mask, i, j;

	if (!m->cap || !key)
		return false;
	mask = m->cap - 1;
	for (i = u64_hash(key) & mask; m->keys[i] != key; i = (i + 1) & mask)
		if (!m->keys[i])
			return false;
	/* Backward shift: pull later entries of the cluster into the hole when their home
	 * slot does not lie cyclically in (hole, their slot]. */
	for (j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
		size_t home = u64_hash(m->keys[j]) & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = 0;
	m->len--;
	return true;
}

void u64map__clear(struct ht_u64map *m)
{
	free(m->keys);
	free(m->vals);
	m->keys = m->vals = NULL;
	m->cap = m->len = 0;
}
