// SPDX-License-Identifier: GPL-2.0
/*
 * ring_gen — the record source of bench/ring_bench.c: heaptap's live-mode records (the
 * layout of bpf/heaptap.h), written into a BPF ring buffer by a BPF program, at a rate no
 * uprobe can reach on this machine (a trap costs microseconds; 1 M records/s needs more
 * CPUs than there are).  The program is BPF_PROG_TYPE_SYSCALL, run by BPF_PROG_TEST_RUN:
 * one run writes a batch, so the records reach the ring as a probe's would (reserve,
 * fill, submit without wakeup) and the collector drains them as in a session.
 *
 * The pattern is a FIFO of `live` blocks: step k allocates slot k mod (live + 1) and,
 * once the FIFO is full, frees the block allocated `live` steps before, slot
 * (k + 1) mod (live + 1).  Every step after the first `live` is one allocation and one
 * free, the live set stays at `live` blocks, and the oldest block dies: in the collector's
 * hash-ordered block table that is a random slot, the worst case.  Each allocation carries
 * a 12-frame stack out of 300, skewed so a few are hot.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "heaptap.h"

#define DEPTH 12
#define NSTACKS 300

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* heaptap's default --ring-mb; set before load */
} ring SEC(".maps");

struct stack {
	__u64 frames[DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NSTACKS);
	__type(key, __u32);
	__type(value, struct stack);
} stacks SEC(".maps");

const volatile __u32 tgid;
const volatile __u64 live = 100000;
const volatile __u64 base;

/* Written by this program only (one generator thread), read by ring_bench at the end. */
__u64 emitted, drops;

/* BPF_PROG_TEST_RUN's ctx_in: steps first .. first + steps - 1. */
struct gen_args {
	__u64 first;
	__u32 steps;
	__u32 pad;
};

struct step_ctx {
	__u64 first;
	__u64 ts;
};

static __u64 mix(__u64 x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	return x ^ (x >> 33);
}

static void fill_hdr(struct ht_hdr *h, __u16 type, __u16 fn, __u16 nframes, __u64 ts)
{
	h->type = type;
	h->flags = 0;
	h->tgid = tgid;
	h->tid = tgid;
	h->fn = fn;
	h->nframes = nframes;
	h->ts_ns = ts;
}

static int step(__u32 i, struct step_ctx *c)
{
	__u64 k = c->first + i, h = mix(k);
	/* Skewed: a bound drawn uniformly, then a stack below it, so low ids are hot. */
	__u32 sid = (__u32)((h >> 32) % ((h & 0xffff) % NSTACKS + 1));
	struct stack *s = bpf_map_lookup_elem(&stacks, &sid);
	struct ht_alloc_rec *a;
	struct ht_free_rec *f;

	if (!s)
		return 1;
	a = bpf_ringbuf_reserve(&ring, HT_ALLOC_REC_FIXED_SIZE + sizeof(s->frames), 0);
	if (a) {
		fill_hdr(&a->hdr, HT_REC_ALLOC, HT_FN_MALLOC, DEPTH, c->ts);
		a->addr = base + (k % (live + 1)) * 64;
		a->size = 16 + (h >> 16) % 2048;
		a->old_addr = 0;
		__builtin_memcpy(a->frames, s->frames, sizeof(s->frames));
		bpf_ringbuf_submit(a, BPF_RB_NO_WAKEUP);
		emitted++;
	} else {
		drops++;
	}
	if (k < live)
		return 0;
	f = bpf_ringbuf_reserve(&ring, sizeof(*f), 0);
	if (!f) {
		drops++;
		return 0;
	}
	fill_hdr(&f->hdr, HT_REC_FREE, HT_FN_FREE, 0, c->ts);
	f->addr = base + ((k + 1) % (live + 1)) * 64;
	bpf_ringbuf_submit(f, BPF_RB_NO_WAKEUP);
	emitted++;
	return 0;
}

SEC("syscall")
int ring_gen(struct gen_args *args)
{
	struct step_ctx c = { .first = args->first, .ts = bpf_ktime_get_ns() };

	bpf_loop(args->steps, step, &c, 0);
	return 0;
}
