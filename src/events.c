#include <errno.h>
#include <string.h>

#include "events.h"
#include "heap.h"
#include "heaptap.h"
#include "procs.h"
#include "stacks.h"

_Static_assert(sizeof(struct ht_hdr) == 24, "ht_hdr layout");
_Static_assert(sizeof(struct ht_free_rec) == 32, "ht_free_rec layout");
_Static_assert(HT_ALLOC_REC_FIXED_SIZE == 48, "ht_alloc_rec layout");

/*
 * A new stack whose frames fall outside the known modules means the process mapped
 * something since we last read its map (the libraries of a just-launched command, a
 * dlopen): read it again while the process still lives, at most once per drain.
 */
static void note_new_stack(struct ht_events *ev, uint32_t pid, const uint64_t *frames,
			   uint32_t n)
{
	struct ht_proc_info *info = procs__get(ev->procs, pid);

	if (!info || !procs__has_unmapped(info, frames, n))
		return;
	if (ev->refreshed_gen == ev->drain_gen + 1 && ev->refreshed_pid == pid)
		return;
	ev->refreshed_gen = ev->drain_gen + 1;
	ev->refreshed_pid = pid;
	procs__refresh_map(info);
}

static int on_alloc(struct ht_events *ev, const struct ht_alloc_rec *r, size_t len)
{
	/* The ring's memory has no declared type: reading __u64 frames as uint64_t is fine. */
	const uint64_t *frames = (const void *)r->frames;
	uint32_t n = r->hdr.nframes;
	uint32_t before = stacks__count(ev->stacks);
	int64_t id;

	if (n > HT_MAX_FRAMES || len < HT_ALLOC_REC_FIXED_SIZE + n * sizeof(uint64_t))
		return -EINVAL;
	/* bpf_get_stack can end a chain with zero entries; they are not frames. */
	while (n && !frames[n - 1])
		n--;
	id = stacks__intern(ev->stacks, r->hdr.tgid, r->hdr.fn, r->hdr.flags & HT_F_TRUNCATED,
			    frames, n);
	if (id < 0)
		return (int)id;
	if (stacks__count(ev->stacks) != before)
		note_new_stack(ev, r->hdr.tgid, frames, n);
	if (r->old_addr)
		heap__on_free(ev->heap, r->hdr.tgid, r->old_addr);
	return heap__on_alloc(ev->heap, r->hdr.tgid, r->addr, r->size, (uint32_t)id, r->hdr.ts_ns);
}

int events__handle(void *ctx, void *data, size_t len)
{
	struct ht_events *ev = ctx;
	const struct ht_hdr *h = data;
	int err = -EINVAL;

	if (len >= sizeof(*h)) {
		switch (h->type) {
		case HT_REC_ALLOC:
			err = on_alloc(ev, data, len);
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
	return 0;
}
