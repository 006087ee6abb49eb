#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "gostate.h"
#include "heap.h"
#include "heaptap.h"
#include "probes.h"
#include "procs.h"
#include "stacks.h"
#include "u64map.h"
#include "unwind.h"

_Static_assert(sizeof(struct ht_hdr) == 24, "ht_hdr layout");
_Static_assert(sizeof(struct ht_free_rec) == 32, "ht_free_rec layout");
_Static_assert(HT_ALLOC_REC_FIXED_SIZE == 48, "ht_alloc_rec layout");
_Static_assert(sizeof(struct ht_ustack) == 72, "ht_ustack layout");

/* Re-reads the process's map while it still lives, at most once per drain.  true if read. */
static bool refresh_map(struct ht_events *ev, struct ht_proc_info *info)
{
	if (ev->refreshed_gen == ev->drain_gen + 1 && ev->refreshed_pid == (uint32_t)info->pid)
		return false;
	ev->refreshed_gen = ev->drain_gen + 1;
	ev->refreshed_pid = info->pid;
	return procs__refresh_map(info) == 0;
}

/*
 * A new stack whose frames fall outside the known modules means the process mapped
 * something since we last read its map (the libraries of a just-launched command, a
 * dlopen): read it again.
 */
static void note_new_stack(struct ht_events *ev, uint32_t pid, const uint64_t *frames,
			   uint32_t n)
{
	struct ht_proc_info *info = procs__get(ev->procs, pid);

	if (info && procs__has_unmapped(info, frames, n))
		refresh_map(ev, info);
}

/*
 * The frames of a record that carries a stack copy (--unwind dwarf|auto), into out: the
 * unwinder's choice of the probe's frame-pointer chain (frames, n) or the CFI unwinding of
 * the copy.  An unwinding that stopped outside the known modules is tried once more with
 * a fresh map (the process mapped something since it was read).
 */
static uint32_t unwind_record(struct ht_events *ev, const struct ht_alloc_rec *r,
			      const struct ht_ustack *us, const uint64_t *frames, uint32_t n,
			      uint64_t *out, bool *truncated)
{
	struct ht_unwind_input in = { .fp_frames = frames, .fp_n = n, .us = us,
				      .fp_truncated = r->hdr.flags & HT_F_TRUNCATED,
				      .stack = (const uint8_t *)(us + 1) };
	struct ht_proc_info *info = procs__get(ev->procs, r->hdr.tgid);
	bool unmapped;
	uint32_t k;

	if (!info) { /* ENOMEM: the probe's chain as it is */
		memcpy(out, frames, n * sizeof(*out));
		*truncated = in.fp_truncated;
		return n;
	}
	k = unwinder__frames(ev->unwind, info, &in, out, truncated, &unmapped);
	if (unmapped && refresh_map(ev, info))
		k = unwinder__frames(ev->unwind, info, &in, out, truncated, &unmapped);
	return k;
}

/*
 * A sampled allocation of size bytes was picked with probability p = 1 - exp(-size/R) and
 * stands for size/p bytes in 1/p allocations (DESIGN.md §3).  Counts are integers in the
 * model, so 1/p is rounded up or down at random in proportion to its fraction: unbiased,
 * where plain rounding would turn 1.58 allocations into 2 for every size near R.
 */
static void scale(struct ht_events *ev, uint64_t size, uint64_t rate, uint64_t *bytes,
		  uint32_t *count)
{
	double p, w, fl;

	if (rate <= 1) { /* every allocation traced (Go: MemProfileRate 1 samples all) */
		*bytes = size;
		*count = 1;
		return;
	}
	p = -expm1(-(double)size / (double)rate);
	if (p <= 0) /* size 0 */
		p = 1.0 / (double)rate;
	w = 1.0 / p;
	ev->rng ^= ev->rng << 13;
	ev->rng ^= ev->rng >> 7;
	ev->rng ^= ev->rng << 17;
	fl = floor(w);
	*count = (uint32_t)fl + ((double)(ev->rng >> 11) * 0x1p-53 < w - fl);
	*bytes = (uint64_t)llround((double)size * w);
}

/*
 * Rate mode has no return probes, so no in-flight state: operator new and the malloc it
 * calls are both seen.  The inner one is recognised by its direct caller lying inside a
 * probed allocating function, once per stack, and its records are dropped.
 */
static int classify_rate_stack(struct ht_events *ev, uint32_t id, uint32_t pid,
			       const uint64_t *frames, uint32_t n)
{
	struct ht_proc_info *info = procs__find(ev->procs, pid);
	const struct ht_module *m;

	if (id >= ev->nested_cap) {
		uint32_t ncap = ev->nested_cap ? ev->nested_cap * 2 : 1024;
		uint8_t *nn;

		while (ncap <= id)
			ncap *= 2;
		nn = realloc(ev->nested, ncap);
		if (!nn)
			return -ENOMEM;
		memset(nn + ev->nested_cap, 0, ncap - ev->nested_cap);
		ev->nested = nn;
		ev->nested_cap = ncap;
	}
	/* an id can be reused (stacks__drop_pid): nothing of its last stack may stay */
	ev->nested[id] = n && info && (m = modmap__find(&info->map, frames[0])) &&
			 probes__inside_allocator(ev->probes, m->dev, m->inode,
						  frames[0] - 1 - m->bias);
	return 0;
}

void events__drop_proc(struct ht_events *ev, uint32_t pid)
{
	heap__drop_proc(ev->heap, pid);
	stacks__drop_pid(ev->stacks, pid);
}

void events__clear(struct ht_events *ev)
{
	free(ev->nested);
	ev->nested = NULL;
	ev->nested_cap = 0;
	u64map__clear(&ev->last_entry);
}

/*
 * Rate mode: a tail call (operator new[] jumps to operator new) enters a second probed
 * function with the same %rsp and return address, right after the first, on the same
 * thread.  A call site calls one function, so the same (sp, caller) with a different
 * function next on the thread is the tail call, not a new allocation.
 */
static bool tail_call_continuation(struct ht_events *ev, const struct ht_alloc_rec *r,
				   uint64_t caller)
{
	uint64_t key = (uint64_t)r->hdr.tid + 1;
	uint64_t tag = (u64_hash(r->old_addr ^ u64_hash(caller)) & ~0xffffull) | r->hdr.fn;
	uint64_t *last = u64map__get(&ev->last_entry, key);
	bool cont = last && (*last & ~0xffffull) == (tag & ~0xffffull) &&
		    (*last & 0xffff) != r->hdr.fn;

	u64map__put(&ev->last_entry, key, tag);
	return cont;
}

/* Go's sampler: 512 KiB unless the program changed runtime.MemProfileRate (the record
 * carries the rate in force when the probe read it; 0 when it could not). */
#define GO_DEFAULT_RATE (512 * 1024)

/* Go records: no tail calls or nested allocator calls to recognise, no realloc. */
static bool go_record(const struct ht_alloc_rec *r)
{
	return HT_FN_ID(r->hdr.fn) == HT_FN_GO_PROFILEALLOC ||
	       HT_FN_ID(r->hdr.fn) == HT_FN_GO_MALLOCGC;
}

static int on_alloc(struct ht_events *ev, const struct ht_alloc_rec *r, size_t len)
{
	uint32_t fn_id = HT_FN_ID(r->hdr.fn);
	bool go = go_record(r);
	uint64_t rate = go && fn_id == HT_FN_GO_PROFILEALLOC
				? (r->old_addr ? r->old_addr : GO_DEFAULT_RATE)
				: ev->sample_bytes;
	/* The ring's memory has no declared type: reading __u64 frames as uint64_t is fine. */
	const uint64_t *frames = (const void *)r->frames;
	uint32_t n = r->hdr.nframes;
	uint64_t created = stacks__created(ev->stacks);
	uint32_t count;
	bool truncated = r->hdr.flags & HT_F_TRUNCATED;
	uint64_t bytes, unwound[HT_MAX_FRAMES];
	size_t at = HT_ALLOC_REC_FIXED_SIZE + n * sizeof(uint64_t);
	int64_t id;

	if (n > HT_MAX_FRAMES || len < at)
		return -EINVAL;
	if (r->hdr.flags & HT_F_USTACK) {
		const struct ht_ustack *us = (const void *)((const uint8_t *)r + at);

		if (len < at + sizeof(*us) || len - at - sizeof(*us) < us->len)
			return -EINVAL;
		if (ev->unwind) {
			n = unwind_record(ev, r, us, frames, n, unwound, &truncated);
			frames = unwound;
		}
	}
	/* bpf_get_stack can end a chain with zero entries; they are not frames. */
	while (n && !frames[n - 1])
		n--;
	if (!r->addr && !go && tail_call_continuation(ev, r, n ? frames[0] : 0)) {
		ev->nested_skipped++;
		return 0;
	}
	id = stacks__intern(ev->stacks, r->hdr.tgid, r->hdr.fn, truncated, frames, n);
	if (id < 0)
		return (int)id;
	if (stacks__created(ev->stacks) != created) {
		note_new_stack(ev, r->hdr.tgid, frames, n);
		if (!r->addr && !go && classify_rate_stack(ev, (uint32_t)id, r->hdr.tgid, frames, n))
			return -ENOMEM;
	}
	if (!r->addr && !go && (uint32_t)id < ev->nested_cap && ev->nested[id]) {
		ev->nested_skipped++;
		return 0;
	}
	if (r->addr && r->old_addr && !go) /* rate records carry %rsp there */
		heap__on_free(ev->heap, r->hdr.tgid, r->old_addr);
	scale(ev, r->size, rate, &bytes, &count);
	return heap__on_alloc(ev->heap, r->hdr.tgid, r->addr, bytes, count, (uint32_t)id,
			      r->hdr.ts_ns);
}

void events__prefetch(void *ctx, const void *data, size_t len)
{
	struct ht_events *ev = ctx;
	const struct ht_hdr *h = data;

	if (len >= sizeof(struct ht_free_rec) && h->type == HT_REC_FREE) {
		heap__prefetch(ev->heap, h->tgid, ((const struct ht_free_rec *)data)->addr);
	} else if (len >= HT_ALLOC_REC_FIXED_SIZE && h->type == HT_REC_ALLOC) {
		const struct ht_alloc_rec *r = data;

		if (!r->addr) /* rate mode: no block */
			return;
		heap__prefetch(ev->heap, h->tgid, r->addr);
		if (r->old_addr && !go_record(r)) /* realloc: the block it replaced dies */
			heap__prefetch(ev->heap, h->tgid, r->old_addr);
	}
}

void events__handle(void *ctx, const void *data, size_t len)
{
	struct ht_events *ev = ctx;
	const struct ht_hdr *h = data;
	int err = -EINVAL;

	if (len >= sizeof(*h)) {
		switch (h->type) {
		case HT_REC_ALLOC:
			err = on_alloc(ev, data, len);
			break;
		case HT_REC_GO_GC:
			if (len >= sizeof(struct ht_go_gc_rec)) {
				gostate__on_gc(ev->go, data);
				err = 0;
			}
			break;
		case HT_REC_PROC:
			if (len >= sizeof(struct ht_proc_rec)) {
				if (ev->on_proc)
					ev->on_proc(ev->on_proc_ctx, data);
				err = 0;
			}
			break;
		case HT_REC_FREE:
			if (len >= sizeof(struct ht_free_rec)) {
				heap__on_free(ev->heap, h->tgid, ((const struct ht_free_rec *)data)->addr);
				err = 0;
			}
			break;
		}
	}
	if (err == -EINVAL)
		ev->bad_records++;
	else if (err)
		ev->nomem++;
	else
		ev->handled++;
}
