// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * heaptap's allocator probes.
 *
 * How this works.  Every allocating function gets an entry probe (ht_alloc_entry) and a
 * return probe (ht_alloc_return) at the same probe site; free and operator delete get an
 * entry probe (ht_free_entry).  The probe site's cookie says which function it is.
 *
 * Entry pushes the call (function, size, pointer argument, stack pointer) on a small
 * per-thread stack kept in task storage (freed with the thread, never full).  Return pops
 * it and, only for the outermost allocator call of the thread, emits one ALLOC record:
 * operator new -> malloc, or realloc(NULL, n) -> malloc, is one allocation, attributed to
 * the outer function.  Calls are matched by stack pointer, not by position: the probe
 * site is before the function moves %rsp, so the return sees %rsp = entry %rsp + 8.
 * Calls whose frame was unwound without returning (a C++ exception out of operator new,
 * longjmp) are recognised by their stack pointer lying below the current one and dropped,
 * so they cannot make every later call look nested.
 *
 * The user stack is taken in the return probe, where the instruction pointer is already
 * the caller's return address and %rbp the caller's frame: the chain is complete,
 * direct caller included (DESIGN.md §4).
 *
 * Records go to one ring buffer with BPF_RB_NO_WAKEUP; the collector drains it on a timer
 * (a wakeup costs more than the whole probe).  Every record that cannot be sent and every
 * call that cannot be tracked is counted in ht_counters.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "heaptap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Frames per stack, set by the collector before load (-D). <= HT_MAX_FRAMES - 1. */
const volatile __u32 ht_max_depth = 64;

struct ht_call {
	__u64 sp;   /* %rsp at the probe site (entry) */
	__u64 size; /* bytes requested */
	__u64 ptr;  /* realloc: the old block; posix_memalign: the memptr argument */
	__u32 fn;   /* enum ht_fn */
	__u32 pad;
};

struct ht_thread {
	__u32 depth; /* calls in flight, <= HT_MAX_NEST tracked */
	__u32 pad;
	/* operator delete forwards to free (sized delete to unsized delete, then free): the
	 * block one delete reports must not be reported again by what it calls. */
	__u64 pending_delete_addr;
	__u64 pending_delete_sp;
	struct ht_call calls[HT_MAX_NEST];
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct ht_thread);
} ht_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20); /* resized by the collector before load (--ring-mb) */
} ht_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HT_CNT__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} ht_counters SEC(".maps");

/* Per-CPU scratch for the variable-length ALLOC record: built here, then copied into the
 * ring at its real size (a ring reservation must have a constant size). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_alloc_rec);
} ht_scratch SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&ht_counters, &which);

	if (v)
		(*v)++;
}

static __always_inline void fill_hdr(struct ht_hdr *h, __u32 type, __u32 fn)
{
	__u64 id = bpf_get_current_pid_tgid();

	h->type = type;
	h->flags = 0;
	h->tgid = id >> 32;
	h->tid = (__u32)id;
	h->fn = fn;
	h->nframes = 0;
	h->ts_ns = bpf_ktime_get_ns();
}

static __always_inline struct ht_thread *thread_state(bool create)
{
	return bpf_task_storage_get(&ht_threads, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* Drops calls whose frames lie above sp (already unwound without a return). */
static __always_inline void drop_unwound(struct ht_thread *t, __u64 sp)
{
	for (int i = 0; i < HT_MAX_NEST; i++) {
		__u32 d = t->depth;

		if (d == 0 || d > HT_MAX_NEST)
			break;
		if (t->calls[(d - 1) & (HT_MAX_NEST - 1)].sp >= sp)
			break;
		t->depth = d - 1;
	}
}

SEC("uprobe.multi")
int BPF_KPROBE(ht_alloc_entry)
{
	__u32 fn = bpf_get_attach_cookie(ctx) & 0xffff;
	__u64 sp = PT_REGS_SP(ctx);
	__u64 a0 = PT_REGS_PARM1(ctx), a1 = PT_REGS_PARM2(ctx), a2 = PT_REGS_PARM3(ctx);
	struct ht_thread *t = thread_state(true);
	struct ht_call *c;
	__u32 d;

	if (!t) {
		count(HT_CNT_STATE_FULL);
		return 0;
	}
	drop_unwound(t, sp);
	d = t->depth;
	if (d >= HT_MAX_NEST) {
		count(HT_CNT_NEST_OVERFLOW);
		return 0;
	}
	/* d < HT_MAX_NEST here, but the compiler would drop a mask it can prove redundant and
	 * the verifier wants the bound on the index itself. */
	barrier_var(d);
	c = &t->calls[d & (HT_MAX_NEST - 1)];
	c->sp = sp;
	c->fn = fn;
	c->ptr = 0;
	switch (HT_FN_ID(fn)) {
	case HT_FN_CALLOC:
		c->size = a0 * a1;
		break;
	case HT_FN_REALLOC:
		c->ptr = a0;
		c->size = a1;
		break;
	case HT_FN_REALLOCARRAY:
		c->ptr = a0;
		c->size = a1 * a2;
		break;
	case HT_FN_POSIX_MEMALIGN:
		c->ptr = a0;
		c->size = a2;
		break;
	case HT_FN_ALIGNED_ALLOC:
	case HT_FN_MEMALIGN:
		c->size = a1;
		break;
	default: /* malloc, valloc, pvalloc, operator new: size first */
		c->size = a0;
		break;
	}
	t->depth = d + 1;
	return 0;
}

static __always_inline void emit_free(__u32 fn, __u64 addr)
{
	struct ht_free_rec *r = bpf_ringbuf_reserve(&ht_events, sizeof(*r), 0);

	if (!r) {
		count(HT_CNT_RINGBUF_DROPS);
		return;
	}
	fill_hdr(&r->hdr, HT_REC_FREE, fn);
	r->addr = addr;
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);
	count(HT_CNT_EVENTS);
}

static __always_inline void emit_alloc(void *ctx, __u32 fn, __u64 addr, __u64 size,
				       __u64 old_addr)
{
	__u32 zero = 0, depth = ht_max_depth;
	struct ht_alloc_rec *r = bpf_map_lookup_elem(&ht_scratch, &zero);
	long n;

	if (!r)
		return;
	fill_hdr(&r->hdr, HT_REC_ALLOC, fn);
	r->addr = addr;
	r->size = size;
	r->old_addr = old_addr;
	/* Ask for one frame more than the cap to know whether the cap cut the chain. */
	if (depth > HT_MAX_FRAMES - 1)
		depth = HT_MAX_FRAMES - 1;
	n = bpf_get_stack(ctx, r->frames, (depth + 1) * sizeof(__u64), BPF_F_USER_STACK);
	if (n < 0) {
		count(HT_CNT_STACK_ERRORS);
		n = 0;
	}
	n /= sizeof(__u64);
	if (n > depth) {
		count(HT_CNT_STACK_TRUNCATED);
		r->hdr.flags |= HT_F_TRUNCATED;
		n = depth;
	}
	r->hdr.nframes = n;
	if (bpf_ringbuf_output(&ht_events, r,
			       HT_ALLOC_REC_FIXED_SIZE + (n & HT_MAX_FRAMES) * sizeof(__u64),
			       BPF_RB_NO_WAKEUP)) {
		count(HT_CNT_RINGBUF_DROPS);
		return;
	}
	count(HT_CNT_EVENTS);
}

SEC("uretprobe.multi")
int BPF_KRETPROBE(ht_alloc_return)
{
	__u64 ret = PT_REGS_RC(ctx);
	/* After `ret` popped the return address. */
	__u64 entry_sp = PT_REGS_SP(ctx) - sizeof(__u64);
	struct ht_thread *t = thread_state(false);
	struct ht_call c;
	__u32 d;

	if (!t) {
		count(HT_CNT_RET_NO_ENTRY);
		return 0;
	}
	drop_unwound(t, entry_sp);
	d = t->depth;
	if (d == 0 || d > HT_MAX_NEST || t->calls[(d - 1) & (HT_MAX_NEST - 1)].sp != entry_sp) {
		count(HT_CNT_RET_NO_ENTRY);
		return 0;
	}
	c = t->calls[(d - 1) & (HT_MAX_NEST - 1)];
	/* A tail call (operator new[] jumps to operator new, realloc(NULL, n) to malloc)
	 * enters a second function at the same %rsp.  The kernel then chains the two return
	 * probes on the one return, and we run once per call, innermost first: the inner
	 * pop finds the outer call still in flight and stays silent; the outer one reports. */
	d--;
	t->depth = d;
	if (d > 0) {
		/* The outer allocator call reports this block. */
		count(HT_CNT_NESTED_SKIPPED);
		return 0;
	}

	switch (HT_FN_ID(c.fn)) {
	case HT_FN_POSIX_MEMALIGN: {
		__u64 addr = 0;

		if ((int)ret != 0 || bpf_probe_read_user(&addr, sizeof(addr), (void *)c.ptr) ||
		    !addr)
			return 0;
		emit_alloc(ctx, c.fn, addr, c.size, 0);
		break;
	}
	case HT_FN_REALLOC:
	case HT_FN_REALLOCARRAY:
		if (ret) {
			emit_alloc(ctx, c.fn, ret, c.size, c.ptr);
		} else if (c.size == 0 && c.ptr) {
			/* glibc: realloc(p, 0) frees p and returns NULL.  Any other NULL is a
			 * failure and p lives on. */
			emit_free(c.fn, c.ptr);
		}
		break;
	default:
		if (ret)
			emit_alloc(ctx, c.fn, ret, c.size, 0);
		break;
	}
	t->pending_delete_addr = 0;
	return 0;
}

SEC("uprobe.multi")
int BPF_KPROBE(ht_free_entry)
{
	__u32 fn = bpf_get_attach_cookie(ctx) & 0xffff;
	bool is_delete = HT_FN_ID(fn) == HT_FN_DELETE;
	__u64 addr = PT_REGS_PARM1(ctx);
	__u64 sp = PT_REGS_SP(ctx);
	struct ht_thread *t;

	if (!addr)
		return 0;
	t = thread_state(is_delete);
	if (t) {
		__u32 d = t->depth;

		/* A free inside (or tail-called from) an allocator call in flight, such as
		 * realloc's own free, belongs to that call's record. */
		if (d > 0 && d <= HT_MAX_NEST && t->calls[(d - 1) & (HT_MAX_NEST - 1)].sp >= sp) {
			count(HT_CNT_NESTED_SKIPPED);
			return 0;
		}
		/* What a delete forwards to (same block, same or deeper frame) is that delete. */
		if (t->pending_delete_addr == addr && sp <= t->pending_delete_sp) {
			if (!is_delete)
				t->pending_delete_addr = 0;
			count(HT_CNT_NESTED_SKIPPED);
			return 0;
		}
		if (is_delete) {
			t->pending_delete_addr = addr;
			t->pending_delete_sp = sp;
		}
	}
	emit_free(fn, addr);
	return 0;
}
