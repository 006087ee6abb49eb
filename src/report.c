/*
 * report.c: builds the snapshot.  Symbolization happens here, lazily, once per report and
 * process (libdwfl caches inside the symbolizer), and only for the sites the snapshot
 * holds.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "probes.h"
#include "procs.h"
#include "report.h"
#include "stacks.h"
#include "symbolize.h"
#include "u64map.h"

#define MAX_INLINE 16

void report__frame_label(const struct ht_rframe *f, char *buf, size_t len)
{
	const char *base;

	if (f->function) {
		snprintf(buf, len, "%s", f->function);
		return;
	}
	base = strrchr(f->module, '/');
	snprintf(buf, len, "%s+0x%llx", base ? base + 1 : f->module, (unsigned long long)f->offset);
}

uint64_t report__site_value(const struct ht_report *r, const struct ht_rsite *s,
			    enum ht_metric m)
{
	bool aged = r->min_age_s > 0; /* the live view honours --min-age */

	switch (m) {
	case HT_METRIC_LIVE_BYTES:
		return aged ? s->aged_bytes : s->c.live_bytes;
	case HT_METRIC_LIVE_COUNT:
		return aged ? s->aged_count : s->c.live_count;
	case HT_METRIC_ALLOC_BYTES:
		return s->c.alloc_bytes;
	case HT_METRIC_ALLOC_COUNT:
		return s->c.alloc_count;
	case HT_METRIC_PEAK:
		return s->peak_bytes;
	}
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void free_site(struct ht_rsite *s)
{
	for (uint32_t i = 0; i < s->nframes; i++) {
		free(s->frames[i].function);
		free(s->frames[i].file);
		free(s->frames[i].module);
	}
	free(s->frames);
}

void report__free(struct ht_report *r)
{
	if (!r)
		return;
	for (uint32_t p = 0; p < r->nprocs; p++) {
		for (uint32_t s = 0; s < r->procs[p].nsites; s++)
			free_site(&r->procs[p].sites[s]);
		free(r->procs[p].sites);
		free(r->procs[p].exe);
		for (uint32_t m = 0; m < r->procs[p].nmodules; m++)
			free(r->procs[p].modules[m].path);
		free(r->procs[p].modules);
		if (r->procs[p].go)
			free(r->procs[p].go->cycles);
		free(r->procs[p].go);
	}
	free(r->procs);
	if (r->system) {
		for (uint32_t i = 0; i < r->system->nobjects; i++)
			free(r->system->objects[i].path);
		free(r->system->objects);
		for (uint32_t i = 0; i < r->system->ncomm_unmatched; i++)
			free(r->system->comm_unmatched[i]);
		free(r->system->comm_unmatched);
		free(r->system);
	}
	free(r);
}

/* The Go state of the process, copied so the report stands alone. */
static int copy_go(const struct ht_report_input *in, struct ht_rproc *rp)
{
	const struct ht_go_state *st = gostate__find(in->go, rp->pid);
	struct ht_rgo *g;

	if (!st)
		return 0;
	if (!(g = calloc(1, sizeof(*g))) ||
	    !(g->cycles = calloc(st->ncycles ? st->ncycles : 1, sizeof(*g->cycles)))) {
		free(g);
		return -ENOMEM;
	}
	memcpy(g->version, st->version, sizeof(g->version));
	g->exact = st->exact;
	g->mem_profile_rate = st->mem_profile_rate;
	memcpy(g->note, st->layout.note, sizeof(g->note));
	g->cycles_seen = st->cycles_seen;
	g->forced = st->forced;
	g->pause_total_ns = st->pause_total_ns;
	g->pauses_known = st->pauses_known;
	g->dropped = st->dropped;
	g->numbered_by_runtime = st->numbered_by_runtime;
	for (uint32_t i = 0; i < st->ncycles; i++)
		g->cycles[i] = *gostate__cycle(st, i);
	g->ncycles = st->ncycles;
	g->origin_s = in->origin_ns / 1e9;
	rp->go = g;
	return 0;
}

static int symbolize_site(struct ht_symbolizer *sym, const struct ht_stack *st,
			  struct ht_rsite *out)
{
	struct ht_frame_info fi[MAX_INLINE];
	uint32_t cap = st->nframes + 4, n = 0;

	out->frames = calloc(cap, sizeof(*out->frames));
	if (!out->frames)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->nframes; i++) {
		/* Every frame is a return address: the stack is taken after the allocator
		 * returned, so even the innermost one points after a call. */
		int k = sym ? symbolizer__lookup(sym, st->frames[i], true, fi, MAX_INLINE) : 0;

		if (k <= 0) {
			fi[0] = (struct ht_frame_info){ .module = "[unknown]" };
			k = 1;
		}
		if (n + k > cap) {
			void *np = realloc(out->frames, (n + k + 8) * sizeof(*out->frames));

			if (!np)
				return -ENOMEM;
			out->frames = np;
			cap = n + k + 8;
		}
		for (int j = 0; j < k; j++) {
			struct ht_rframe *f = &out->frames[n++];

			*f = (struct ht_rframe){ .addr = st->frames[i], .line = fi[j].line,
						 .offset = fi[j].module_offset, .inlined = fi[j].inlined };
			f->function = dup_or_null(fi[j].function);
			f->file = dup_or_null(fi[j].file);
			f->module = strdup(fi[j].module ? fi[j].module : "[unknown]");
			if (!f->module) {
				out->nframes = n;
				return -ENOMEM;
			}
		}
		out->nframes = n;
	}
	return 0;
}

struct aged_ctx {
	uint64_t *bytes, *count;
	uint32_t cutoff_ms;
	bool all;
};

static void add_aged(const struct ht_block *b, void *arg)
{
	struct aged_ctx *a = arg;

	if (a->all || b->born_ms <= a->cutoff_ms) {
		a->bytes[b->site] += b->size;
		a->count[b->site] += b->count;
	}
}

/* The modules frames of rp point into, in map order (pprof mappings, JSON). */
static int collect_modules(struct ht_rproc *rp, const struct ht_modmap *map)
{
	bool *used = calloc(map->n ? map->n : 1, sizeof(*used));
	int err = 0;

	rp->modules = calloc(map->n ? map->n : 1, sizeof(*rp->modules));
	if (!used || !rp->modules) {
		free(used);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < rp->nsites; i++)
		for (uint32_t k = 0; k < rp->sites[i].nframes; k++) {
			const struct ht_module *m = modmap__find(map, rp->sites[i].frames[k].addr);

			if (m)
				used[m - map->mods] = true;
		}
	for (size_t i = 0; i < map->n && !err; i++) {
		struct ht_rmodule *rm = &rp->modules[rp->nmodules];

		if (!used[i])
			continue;
		*rm = (struct ht_rmodule){ .start = map->mods[i].start, .end = map->mods[i].end,
					   .file_offset = map->mods[i].file_offset,
					   .bias = map->mods[i].bias };
		memcpy(rm->build_id, map->mods[i].build_id, sizeof(rm->build_id));
		if ((rm->path = strdup(map->mods[i].path)))
			rp->nmodules++;
		else
			err = -ENOMEM;
	}
	free(used);
	return err;
}

static int cmp_sites(const void *a, const void *b)
{
	const struct ht_rsite *x = a, *y = b;

	if (x->aged_bytes != y->aged_bytes)
		return x->aged_bytes < y->aged_bytes ? 1 : -1;
	if (x->c.alloc_bytes != y->c.alloc_bytes)
		return x->c.alloc_bytes < y->c.alloc_bytes ? 1 : -1;
	return x->id < y->id ? -1 : x->id > y->id;
}

static double per_second(uint64_t v, double seconds)
{
	return seconds > 0 ? v / seconds : 0;
}

/*
 * Symbolizers of the last few distinct module maps.  Processes of one program often map
 * the same objects at the same addresses (any non-PIE executable, every Go program): one
 * symbolizer serves them all, and an object's DWARF (compressed, in Go) is read once per
 * report instead of once per process.
 */
#define SYM_CACHE 8

struct sym_cache {
	uint64_t key[SYM_CACHE];
	struct ht_symbolizer *sym[SYM_CACHE];
	uint32_t used[SYM_CACHE]; /* last use (LRU) */
	uint32_t clock;
};

static uint64_t map_key(const struct ht_modmap *map)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ map->n;

	for (size_t i = 0; i < map->n; i++) {
		const struct ht_module *m = &map->mods[i];

		h = u64_hash(h ^ m->start) ^ u64_hash(m->end ^ m->inode) ^ (m->dev + m->bias);
	}
	return h | 1;
}

static struct ht_symbolizer *cached_symbolizer(struct sym_cache *c, const struct ht_modmap *map)
{
	uint64_t key = map_key(map);
	uint32_t victim = 0;

	for (uint32_t i = 0; i < SYM_CACHE; i++) {
		if (c->key[i] == key && c->sym[i]) {
			c->used[i] = ++c->clock;
			return c->sym[i];
		}
		if (c->used[i] < c->used[victim])
			victim = i;
	}
	symbolizer__free(c->sym[victim]);
	c->sym[victim] = symbolizer__new(map);
	c->key[victim] = c->sym[victim] ? key : 0;
	c->used[victim] = ++c->clock;
	return c->sym[victim];
}

static void sym_cache_clear(struct sym_cache *c)
{
	for (uint32_t i = 0; i < SYM_CACHE; i++)
		symbolizer__free(c->sym[i]);
}

static int build_proc(const struct ht_report_input *in, uint32_t idx, struct ht_rproc *rp,
		      uint64_t *aged_bytes, uint64_t *aged_count, struct sym_cache *cache)
{
	const struct ht_heap_proc *hp = heap__proc(in->heap, idx);
	struct ht_proc_info *info = procs__find(in->procs, hp->pid);
	struct ht_symbolizer *sym = NULL;
	double age_ms = in->min_age_s * 1000.0;
	uint64_t now_ms = (in->now_ns - in->origin_ns) / 1000000;
	struct aged_ctx actx = { .bytes = aged_bytes, .count = aged_count,
				 .all = in->min_age_s <= 0,
				 .cutoff_ms = now_ms > age_ms ? (uint32_t)(now_ms - age_ms) : 0 };
	int err = 0;

	rp->pid = hp->pid;
	if ((err = copy_go(in, rp)))
		return err;
	rp->c = hp->c;
	rp->peak_bytes = hp->peak_bytes;
	rp->peak_count = hp->peak_count;
	rp->peak_time_s = hp->peak_ts_ns > in->origin_ns ? (hp->peak_ts_ns - in->origin_ns) / 1e9 : 0;
	rp->rate_bytes = per_second(hp->c.last_iv_bytes, in->interval_s);
	rp->rate_count = per_second(hp->c.last_iv_count, in->interval_s);
	rp->unknown_frees = hp->unknown_frees;
	rp->reused_live = hp->reused_live;
	rp->model_full = hp->model_full;
	if (info) {
		memcpy(rp->comm, info->comm, sizeof(rp->comm));
		rp->exe = dup_or_null(info->exe);
		rp->exited = info->exited;
		rp->exit_known = info->exit_known;
		rp->exit_code = info->exit_code;
		memcpy(rp->allocator, info->allocator, sizeof(rp->allocator));
		if (info->map_read)
			sym = cached_symbolizer(cache, &info->map);
	}

	for (uint32_t i = 0; i < hp->nsites; i++)
		aged_bytes[hp->sites[i]] = aged_count[hp->sites[i]] = 0;
	/* Younger than min-age for the whole session so far: no block qualifies yet. */
	if (!actx.all && now_ms >= age_ms)
		heap__for_each_block(in->heap, idx, add_aged, &actx);

	rp->sites = calloc(hp->nsites ? hp->nsites : 1, sizeof(*rp->sites));
	if (!rp->sites)
		return -ENOMEM;
	for (uint32_t i = 0; i < hp->nsites && !err; i++) {
		uint32_t id = hp->sites[i];
		const struct ht_site *s = heap__site(in->heap, id);
		struct ht_stack st = stacks__get(in->stacks, id);
		struct ht_rsite *rs = &rp->sites[rp->nsites++];

		rs->id = id;
		rs->allocator = probes__fn_name(st.fn);
		rs->c = s->c;
		rs->truncated = st.truncated;
		heap__site_at_peak(in->heap, id, &rs->peak_bytes, &rs->peak_count);
		rs->rate_bytes = per_second(s->c.last_iv_bytes, in->interval_s);
		rs->rate_count = per_second(s->c.last_iv_count, in->interval_s);
		if (actx.all) {
			rs->aged_bytes = s->c.live_bytes;
			rs->aged_count = s->c.live_count;
		} else {
			rs->aged_bytes = aged_bytes[id];
			rs->aged_count = aged_count[id];
		}
		rp->aged_bytes += rs->aged_bytes;
		rp->aged_count += rs->aged_count;
		err = symbolize_site(sym, &st, rs);
	}
	qsort(rp->sites, rp->nsites, sizeof(*rp->sites), cmp_sites);
	if (!err && info)
		err = collect_modules(rp, &info->map);
	return err;
}

struct ht_report *report__build(const struct ht_report_input *in)
{
	struct ht_report *r = calloc(1, sizeof(*r));
	uint32_t nstacks = stacks__count(in->stacks);
	uint64_t *aged_bytes = calloc(nstacks ? nstacks : 1, sizeof(uint64_t));
	uint64_t *aged_count = calloc(nstacks ? nstacks : 1, sizeof(uint64_t));
	uint32_t np = heap__nprocs(in->heap);
	struct sym_cache cache = { 0 };
	int err = 0;

	if (!r || !aged_bytes || !aged_count)
		goto nomem;
	r->final = in->final;
	r->start_unix_ns = in->start_unix_ns;
	r->mode = in->mode ? in->mode : "live";
	r->sample_bytes = in->sample_bytes;
	r->elapsed_s = in->elapsed_s;
	r->interval_s = in->interval_s;
	r->min_age_s = in->min_age_s;
	r->max_depth = in->max_depth;
	r->events = in->events;
	r->probes = in->probes;
	r->gc_timeline = in->gc_timeline;
	r->slow_probes = in->slow_probes;
	r->collector_bytes = heap__memory(in->heap) + stacks__memory(in->stacks);
	r->live_blocks_tracked = heap__live_blocks(in->heap);
	r->stacks_tracked = stacks__in_use(in->stacks);
	r->loss = *in->loss;
	r->procs = calloc(np ? np : 1, sizeof(*r->procs));
	if (!r->procs)
		goto nomem;
	for (uint32_t i = 0; i < np && !err; i++) {
		err = build_proc(in, i, &r->procs[r->nprocs++], aged_bytes, aged_count, &cache);
		r->loss.unknown_frees += r->procs[i].unknown_frees;
		r->loss.reused_live += r->procs[i].reused_live;
		r->loss.model_full += r->procs[i].model_full;
	}
	sym_cache_clear(&cache);
	free(aged_bytes);
	free(aged_count);
	if (err) {
		report__free(r);
		errno = -err;
		return NULL;
	}
	return r;
nomem:
	free(aged_bytes);
	free(aged_count);
	report__free(r);
	errno = ENOMEM;
	return NULL;
}

static int cmp_procs(const void *a, const void *b)
{
	const struct ht_rproc *x = a, *y = b;

	if (x->c.live_bytes != y->c.live_bytes)
		return x->c.live_bytes < y->c.live_bytes ? 1 : -1;
	if (x->c.alloc_bytes != y->c.alloc_bytes)
		return x->c.alloc_bytes < y->c.alloc_bytes ? 1 : -1;
	return x->pid - y->pid;
}

void report__sort_procs(struct ht_report *r)
{
	qsort(r->procs, r->nprocs, sizeof(*r->procs), cmp_procs);
}
