#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "gostate.h"
#include "modmap.h"
#include "procs.h"

struct ht_gostate {
	struct ht_go_state *procs; /* few: one per traced Go process */
	size_t n, cap;
};

struct ht_gostate *gostate__new(void)
{
	return calloc(1, sizeof(struct ht_gostate));
}

void gostate__free(struct ht_gostate *gs)
{
	if (!gs)
		return;
	for (size_t i = 0; i < gs->n; i++)
		free(gs->procs[i].cycles);
	free(gs->procs);
	free(gs);
}

static struct ht_go_state *find(const struct ht_gostate *gs, pid_t pid)
{
	for (size_t i = 0; gs && i < gs->n; i++)
		if (gs->procs[i].pid == pid)
			return &gs->procs[i];
	return NULL;
}

const struct ht_go_state *gostate__find(const struct ht_gostate *gs, pid_t pid)
{
	return find(gs, pid);
}

int gostate__add(struct ht_gostate *gs, pid_t pid, const char *version, bool exact,
		 const struct ht_go_layout *layout, uint64_t dev, uint64_t ino)
{
	struct ht_go_state *st;

	if (gs->n == gs->cap) {
		size_t ncap = gs->cap ? gs->cap * 2 : 4;
		void *np = realloc(gs->procs, ncap * sizeof(*gs->procs));

		if (!np)
			return -ENOMEM;
		gs->procs = np;
		gs->cap = ncap;
	}
	st = &gs->procs[gs->n];
	memset(st, 0, sizeof(*st));
	if (!(st->cycles = calloc(GOSTATE_MAX_CYCLES, sizeof(*st->cycles))))
		return -ENOMEM;
	gs->n++;
	st->pid = pid;
	snprintf(st->version, sizeof(st->version), "%s", version);
	st->exact = exact;
	st->layout = *layout;
	st->dev = dev;
	st->ino = ino;
	st->mem_profile_rate = -1;
	return 0;
}

const struct ht_gc_cycle *gostate__cycle(const struct ht_go_state *st, uint32_t i)
{
	return &st->cycles[(st->first + i) % GOSTATE_MAX_CYCLES];
}

static struct ht_gc_cycle *last_cycle(struct ht_go_state *st)
{
	return st->ncycles ? &st->cycles[(st->first + st->ncycles - 1) % GOSTATE_MAX_CYCLES] : NULL;
}

static struct ht_gc_cycle *new_cycle(struct ht_go_state *st)
{
	struct ht_gc_cycle *c;

	if (st->ncycles == GOSTATE_MAX_CYCLES) {
		st->first = (st->first + 1) % GOSTATE_MAX_CYCLES;
		st->ncycles--;
		st->dropped++;
	}
	c = &st->cycles[(st->first + st->ncycles) % GOSTATE_MAX_CYCLES];
	st->ncycles++;
	memset(c, 0, sizeof(*c));
	return c;
}

void gostate__on_gc(struct ht_gostate *gs, const struct ht_go_gc_rec *r)
{
	struct ht_go_state *st = find(gs, (pid_t)r->hdr.tgid);
	struct ht_gc_cycle *c, *prev;

	if (!st)
		return;
	st->bias = r->bias;
	st->bias_known = true;
	if (HT_FN_ID(r->hdr.fn) == HT_FN_GO_GC_START) {
		prev = last_cycle(st);
		c = new_cycle(st);
		st->cycles_seen++;
		st->ctl_addr = r->args[0];
		c->start_ns = r->hdr.ts_ns;
		/* startCycle(c, markStartTime, procs, trigger gcTrigger{kind, now, n}): the
		 * trigger's kind is the fourth integer register. */
		c->trigger = r->args[3] <= HT_GC_FORCED ? (uint8_t)r->args[3] : HT_GC_UNKNOWN;
		if (c->trigger == HT_GC_FORCED)
			st->forced++;
		if (r->valid & 1) {
			c->heap_live = r->ctl[0];
			c->live_known = true;
		}
		/* heapMarked now is what the previous cycle marked. */
		if ((r->valid & 2) && prev && prev->mark_done && !prev->marked_known) {
			prev->heap_marked = r->ctl[1];
			prev->marked_known = true;
		}
		if (r->valid & (1u << 4)) {
			c->num = (uint32_t)r->abs[0] + 1;
			st->numbered_by_runtime = true;
		} else {
			c->num = prev ? prev->num + 1 : 1;
		}
	} else if ((c = last_cycle(st)) && !c->mark_done) {
		c->mark_done = true;
		c->mark_done_ns = r->hdr.ts_ns;
	}
}

static bool read_mem(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = { buf, len }, remote = { (void *)(uintptr_t)addr, len };

	return process_vm_readv(pid, &local, 1, &remote, 1, 0) == (ssize_t)len;
}

static void find_bias(struct ht_go_state *st, struct ht_procs *procs)
{
	struct ht_proc_info *info = procs ? procs__find(procs, st->pid) : NULL;

	for (size_t i = 0; info && i < info->map.n; i++) {
		const struct ht_module *m = &info->map.mods[i];

		if (m->dev == st->dev && m->inode == st->ino) {
			st->bias = m->bias;
			st->bias_known = true;
			return;
		}
	}
}

static void refresh_one(struct ht_go_state *st, struct ht_procs *procs)
{
	const struct ht_go_layout *l = &st->layout;
	uint32_t numgc;

	if (!st->bias_known)
		find_bias(st, procs);
	if (!st->bias_known)
		return;
	if (l->mem_profile_rate) {
		int64_t rate;

		if (read_mem(st->pid, l->mem_profile_rate + st->bias, &rate, sizeof(rate)))
			st->mem_profile_rate = rate;
	}
	if (!st->ncycles || !golayout__gc_known(l) ||
	    !read_mem(st->pid, l->memstats + st->bias + l->numgc_off, &numgc, sizeof(numgc)))
		return;
	for (uint32_t i = 0; i < st->ncycles; i++) {
		struct ht_gc_cycle *c = &st->cycles[(st->first + i) % GOSTATE_MAX_CYCLES];
		uint64_t pause;

		/* Complete (numgc counts it) and still in the runtime's last 256. */
		if (c->pause_known || !st->numbered_by_runtime || c->num > numgc || numgc - c->num >= 256)
			continue;
		if (!read_mem(st->pid, l->memstats + st->bias + l->pause_ns_off +
					       (uint64_t)((c->num - 1) % 256) * 8,
			      &pause, sizeof(pause)))
			continue;
		c->pause_ns = pause;
		c->pause_known = true;
		st->pause_total_ns += pause;
		st->pauses_known++;
	}
	/* The last completed cycle's marked bytes: no next startCycle has reported them. */
	{
		struct ht_gc_cycle *c = last_cycle(st);
		uint64_t marked;

		if (c && c->mark_done && !c->marked_known && c->num <= numgc && st->ctl_addr &&
		    l->heap_marked_off != GOLAYOUT_UNKNOWN &&
		    read_mem(st->pid, st->ctl_addr + l->heap_marked_off, &marked, sizeof(marked))) {
			c->heap_marked = marked;
			c->marked_known = true;
		}
	}
}

void gostate__refresh(struct ht_gostate *gs, struct ht_procs *procs)
{
	for (size_t i = 0; gs && i < gs->n; i++)
		refresh_one(&gs->procs[i], procs);
}
