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
 * Records go to one ring buffer without a wakeup; the collector drains it on a timer (a
 * wakeup costs more than the whole probe), except once it is a quarter full (ring_wakeup()).
 * Every record that cannot be sent and every call that cannot be tracked is counted in
 * ht_counters.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "heaptap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the collector before load. */
const volatile __u32 ht_max_depth = 64;  /* frames per stack (-D), <= HT_MAX_DEPTH */
const volatile __u32 ht_mode = HT_MODE_LIVE;
const volatile __u64 ht_sample_bytes = 0; /* mean bytes between samples; 0: every call */
const volatile __u32 ht_unwind = HT_UNWIND_FP; /* enum ht_unwind */
const volatile __u32 ht_stack_bytes = 8192;    /* user stack copied, <= HT_MAX_STACK_BYTES */
/* System-wide sessions: heaptap's own process, whose allocations must never be counted (its
 * traps cannot be avoided: the probes are on libc for every process). 0: none. */
const volatile __u32 ht_self_tgid = 0;
/* Quantiles of the exponential distribution with mean ht_sample_bytes: a uniform pick is
 * an exponential draw (no floating point in BPF). */
const volatile __u64 ht_exp_table[HT_EXP_TABLE];

struct ht_call {
	__u64 sp;   /* %rsp at the probe site (entry) */
	__u64 size; /* bytes requested */
	__u64 ptr;  /* realloc: the old block; posix_memalign: the memptr argument */
	__u32 fn;   /* the probe's cookie (low 16 bits) */
	__u32 sampled; /* the byte sampler picked this allocation */
};

struct ht_thread {
	__u32 depth; /* calls in flight, <= HT_MAX_NEST tracked */
	__u32 sample_armed; /* sample_left holds a draw */
	__s64 sample_left;  /* bytes until the next sample point */
	/* operator delete forwards to free (sized delete to unsized delete, then free): the
	 * block one delete reports must not be reported again by what it calls. */
	__u64 pending_delete_addr;
	__u64 pending_delete_sp;
	/* Stack copies: the mapping the thread's stack pointer was last found in. */
	__u64 stack_lo, stack_hi;
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

/* Sampled live blocks (sampling in live mode): a free is reported only for these, so the
 * unsampled majority costs no record. */
struct ht_block_key {
	__u32 tgid;
	__u32 pad;
	__u64 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 18);
	__type(key, struct ht_block_key);
	__type(value, __u8);
} ht_sampled SEC(".maps");

/* Auto mode: the code ranges of each process that keep frame pointers (collector-written). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct ht_fp_code);
} ht_fp_code SEC(".maps");

#define HT_PAGE 4096

/* An ALLOC record at its largest: all frames, then the stack trailer at its largest, plus
 * one page of slack the verifier needs (it cannot relate the offset of a copied chunk to
 * the chunk's size, so it checks each at its own maximum). */
struct ht_scratch_rec {
	struct ht_alloc_rec rec;
	__u8 trailer[sizeof(struct ht_ustack) + HT_MAX_STACK_BYTES + HT_PAGE];
};

/* Per-CPU scratch for the variable-length ALLOC record: built here, then copied into the
 * ring at its real size (a ring reservation must have a constant size). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ht_scratch_rec);
} ht_scratch SEC(".maps");

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&ht_counters, &which);

	if (v)
		(*v)++;
}

/* Floor mode returns at once; a system-wide session ignores heaptap itself. */
static __always_inline bool skip(void)
{
	return ht_mode == HT_MODE_FLOOR ||
	       (ht_self_tgid && (bpf_get_current_pid_tgid() >> 32) == ht_self_tgid);
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

/*
 * Byte sampling (DESIGN.md §3): sample points fall on the stream of allocated bytes as a
 * Poisson process of rate 1/ht_sample_bytes; an allocation is sampled when a point falls
 * inside it, with probability 1 - exp(-size/R), and stands for size / (1 - exp(-size/R))
 * bytes.  The distance to the next point is exponential, hence memoryless: an unsampled
 * allocation just shortens it, a sampled one draws afresh from its end.
 */
static __always_inline bool sample(struct ht_thread *t, __u64 size)
{
	if (!ht_sample_bytes)
		return true;
	if (!t->sample_armed) {
		t->sample_left = ht_exp_table[bpf_get_prandom_u32() & (HT_EXP_TABLE - 1)];
		t->sample_armed = 1;
	}
	if ((__s64)size < t->sample_left) {
		t->sample_left -= size;
		count(HT_CNT_UNSAMPLED);
		return false;
	}
	t->sample_left = ht_exp_table[bpf_get_prandom_u32() & (HT_EXP_TABLE - 1)];
	return true;
}

/* Entry-only probes (rate mode, Go): whether this allocation is traced under --sample;
 * *t is then the thread's state (NULL without sampling).  A thread whose state cannot be
 * created is not traced, and counted. */
static __always_inline bool entry_sampled(__u64 size, struct ht_thread **t)
{
	*t = NULL;
	if (!ht_sample_bytes)
		return true;
	*t = thread_state(true);
	if (!*t) {
		count(HT_CNT_STATE_FULL);
		return false;
	}
	return sample(*t, size);
}

/* Bytes requested and the pointer argument, by function (registers at the probe site). */
static __always_inline void call_args(struct pt_regs *ctx, __u32 fn, __u64 *size, __u64 *ptr)
{
	__u64 a0 = PT_REGS_PARM1(ctx), a1 = PT_REGS_PARM2(ctx), a2 = PT_REGS_PARM3(ctx);

	*ptr = 0;
	switch (HT_FN_ID(fn)) {
	case HT_FN_CALLOC:
		*size = a0 * a1;
		break;
	case HT_FN_REALLOC:
		*ptr = a0;
		*size = a1;
		break;
	case HT_FN_REALLOCARRAY:
		*ptr = a0;
		*size = a1 * a2;
		break;
	case HT_FN_POSIX_MEMALIGN:
		*ptr = a0;
		*size = a2;
		break;
	case HT_FN_ALIGNED_ALLOC:
	case HT_FN_MEMALIGN:
		*size = a1;
		break;
	default: /* malloc, valloc, pvalloc, operator new: size first */
		*size = a0;
		break;
	}
}

SEC("uprobe.multi")
int BPF_KPROBE(ht_alloc_entry)
{
	__u32 fn = bpf_get_attach_cookie(ctx) & 0xffff;
	__u64 sp = PT_REGS_SP(ctx);
	struct ht_thread *t;
	struct ht_call *c;
	__u32 d;

	if (skip())
		return 0;
	t = thread_state(true);
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
	call_args(ctx, fn, &c->size, &c->ptr);
	/* Decided now, before any stack walk; only outermost calls consume sampler bytes. */
	c->sampled = d == 0 ? sample(t, c->size) : 1;
	t->depth = d + 1;
	return 0;
}

/*
 * The collector sleeps up to 10 ms between drains.  A burst of big records (stack copies
 * of 8 KiB, from several threads) fills a 16 MiB ring in about that long: past a quarter
 * full, each record wakes the collector (the kernel coalesces wakeups not yet delivered).
 */
static __always_inline __u64 ring_wakeup(void)
{
	return bpf_ringbuf_query(&ht_events, BPF_RB_AVAIL_DATA) >
			       bpf_ringbuf_query(&ht_events, BPF_RB_RING_SIZE) / 4
		       ? BPF_RB_FORCE_WAKEUP
		       : BPF_RB_NO_WAKEUP;
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
	bpf_ringbuf_submit(r, ring_wakeup());
	count(HT_CNT_EVENTS);
}

/*
 * The user stack, by frame pointer, walked here rather than with bpf_get_stack(): on this
 * kernel the helper's user walk costs ~2 us per frame (measured: 0.76 us at -D 1, 6.8 us
 * at -D 4, in the return probe), a bpf_probe_read_user() of a frame record a fraction of
 * that.  frames[0] is the first return address (given), then the chain from fp: each
 * record holds the caller's saved fp and its return address.  The chain must climb the
 * stack; anything else (code without frame pointers, the bottom of the stack) ends it.
 * Returns the number of frames, at most max; *truncated when frames went on past max.
 */
static __always_inline __u32 walk_fp(__u64 *frames, __u64 first, __u64 fp, __u32 max,
				     bool *truncated)
{
	__u32 n = 0;

	*truncated = false;
	if (!first)
		return 0;
	frames[0] = first;
	n = 1;
	for (int i = 0; i < HT_MAX_DEPTH; i++) {
		__u64 rec[2]; /* [0] saved fp, [1] return address */

		if (!fp || (fp & 7) || bpf_probe_read_user(rec, sizeof(rec), (void *)fp) || !rec[1])
			break;
		if (n >= max) {
			*truncated = true;
			break;
		}
		frames[n & (HT_MAX_FRAMES - 1)] = rec[1];
		n++;
		if (rec[0] <= fp)
			break;
		fp = rec[0];
	}
	return n;
}

struct vma_bounds {
	__u64 lo, hi;
};

static long get_vma_bounds(struct task_struct *task, struct vm_area_struct *vma, void *arg)
{
	struct vma_bounds *b = arg;

	b->lo = vma->vm_start;
	b->hi = vma->vm_end;
	return 0;
}

/*
 * Bytes of stack mapped from sp up.  A read past the end of the mapping does no harm but
 * costs a page fault caught by the kernel: 6-7 us in this VM, five times the copy itself,
 * and a shallow main thread is less than 8 KiB from the top of its stack.  So the end is
 * looked up (bpf_find_vma) the first time and kept per thread; a stack pointer outside the
 * mapping kept (sigaltstack, a coroutine's stack) looks it up again.
 */
static __always_inline __u64 stack_room(struct ht_thread *t, __u64 sp)
{
	struct vma_bounds b = {};

	if (!t)
		return HT_MAX_STACK_BYTES;
	if (sp < t->stack_lo || sp >= t->stack_hi) {
		if (bpf_find_vma(bpf_get_current_task_btf(), sp, get_vma_bounds, &b, 0) ||
		    sp < b.lo || sp >= b.hi)
			return HT_MAX_STACK_BYTES; /* not known: copy and let the read stop */
		t->stack_lo = b.lo;
		t->stack_hi = b.hi;
	}
	return t->stack_hi - sp;
}

/*
 * DWARF unwinding (--unwind dwarf|auto): copies the registers and the top of the user
 * stack (ht_stack_bytes from %rsp up, within the stack's mapping) into the trailer us, for
 * the collector to unwind with CFI (DESIGN.md §4).  The copy goes page by page, so where
 * the mapping is not known it stops exactly where the mapping ends.  Returns the bytes
 * copied.
 */
static __always_inline __u32 copy_ustack(struct ht_ustack *us, struct pt_regs *ctx,
					 bool in_callee, struct ht_thread *t)
{
	__u64 sp = PT_REGS_SP(ctx), want = ht_stack_bytes, room, copied = 0;
	__u8 *bytes = (__u8 *)(us + 1);

	us->regs[HT_REG_RIP] = PT_REGS_IP(ctx);
	us->regs[HT_REG_RSP] = sp;
	us->regs[HT_REG_RBP] = PT_REGS_FP(ctx);
	us->regs[HT_REG_RBX] = ctx->bx;
	us->regs[HT_REG_R12] = ctx->r12;
	us->regs[HT_REG_R13] = ctx->r13;
	us->regs[HT_REG_R14] = ctx->r14;
	us->regs[HT_REG_R15] = ctx->r15;
	us->flags = in_callee ? HT_US_IN_CALLEE : 0;
	room = stack_room(t, sp);
	if (want > room)
		want = room;
	if (want > HT_MAX_STACK_BYTES)
		want = HT_MAX_STACK_BYTES;
	for (int i = 0; i < HT_MAX_STACK_BYTES / HT_PAGE + 1; i++) {
		__u64 chunk;

		if (copied >= want)
			break;
		chunk = HT_PAGE - ((sp + copied) & (HT_PAGE - 1));
		if (chunk > want - copied)
			chunk = want - copied;
		/* Never true; tells the verifier the bounds it cannot derive. */
		barrier_var(chunk);
		barrier_var(copied);
		if (chunk > HT_PAGE || copied > HT_MAX_STACK_BYTES)
			break;
		if (bpf_probe_read_user(bytes + copied, chunk, (void *)(sp + copied)))
			break;
		copied += chunk;
	}
	us->len = copied;
	return copied;
}

static __always_inline bool in_fp_code(const struct ht_fp_code *c, __u64 addr)
{
	for (int j = 0; j < HT_MAX_FP_RANGES; j++)
		if (addr - c->start[j] < c->end[j] - c->start[j])
			return true;
	return false;
}

struct fp_check {
	const __u64 *frames;
	const struct ht_fp_code *code;
	bool holds;
};

/* bpf_loop callback: frame i of the chain lies in code that keeps frame pointers.  (addr -
 * 1: the call instruction, inside the calling function.) */
static long fp_check_frame(__u64 i, void *arg)
{
	struct fp_check *fc = arg;

	if (in_fp_code(fc->code, fc->frames[i & (HT_MAX_FRAMES - 1)] - 1))
		return 0; /* next frame */
	fc->holds = false;
	return 1; /* stop */
}

/*
 * Auto mode: whether the frame-pointer chain holds as it is.  It does when every function
 * it passes through, that is every frame but the outermost, set up %rbp as its frame
 * pointer: the return addresses lie in code the collector found to keep frame pointers.
 * A chain of one frame the depth cap did not cut broke at once: it never holds.  (The
 * collector applies the same rule to records that come with a copy, unwind.c.)  bpf_loop
 * keeps the verifier from walking every length of chain.
 */
static __always_inline bool fp_chain_holds(const struct ht_fp_code *code, const __u64 *frames,
					   __u32 n, bool truncated)
{
	struct fp_check fc = { .frames = frames, .code = code, .holds = true };

	if (n == 0 || (n == 1 && !truncated))
		return false;
	bpf_loop(n - 1, fp_check_frame, &fc, 0);
	return fc.holds;
}

/*
 * Sends an ALLOC record.  FP and auto: the user stack starting at return address first (in
 * a return probe: the IP, already back in the caller; at entry: [rsp]) and continuing up
 * the frame pointer chain from fp (the caller's frame in both cases: the probe sites come
 * before the allocator touches %rbp).  DWARF and auto: the stack trailer, from the
 * registers in ctx (in_callee: at the allocator's entry).  fp_only: the chain alone, whatever
 * --unwind says (Go code always keeps frame pointers).
 */
static __always_inline void emit_alloc(struct pt_regs *ctx, struct ht_thread *t, __u32 fn,
				       __u64 addr, __u64 size, __u64 old_addr, __u64 first,
				       __u64 fp, bool in_callee, bool fp_only)
{
	__u32 zero = 0, depth = ht_max_depth, n = 0;
	__u64 len = HT_ALLOC_REC_FIXED_SIZE;
	struct ht_scratch_rec *sr = bpf_map_lookup_elem(&ht_scratch, &zero);
	const struct ht_fp_code *code = NULL;
	struct ht_alloc_rec *r;
	bool truncated = false;

	if (!sr)
		return;
	r = &sr->rec;
	fill_hdr(&r->hdr, HT_REC_ALLOC, fn & 0xffff);
	r->addr = addr;
	r->size = size;
	r->old_addr = old_addr;
	if (depth > HT_MAX_DEPTH)
		depth = HT_MAX_DEPTH;
	if (ht_unwind == HT_UNWIND_AUTO && !fp_only) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;

		code = bpf_map_lookup_elem(&ht_fp_code, &tgid);
	}
	/* auto: a caller in code without frame pointers needs the copy anyway: no walk. */
	if (fp_only || ht_unwind == HT_UNWIND_FP ||
	    (ht_unwind == HT_UNWIND_AUTO && (!code || in_fp_code(code, first - 1)))) {
		n = walk_fp(r->frames, first, fp, depth, &truncated);
		if (truncated)
			r->hdr.flags |= HT_F_TRUNCATED;
	}
	n &= HT_MAX_FRAMES - 1;
	r->hdr.nframes = n;
	len += n * sizeof(__u64);
	if (!fp_only && (ht_unwind == HT_UNWIND_DWARF ||
	    (ht_unwind == HT_UNWIND_AUTO &&
	     (!code || !fp_chain_holds(code, r->frames, n, truncated))))) {
		struct ht_ustack *us = (void *)&r->frames[n];

		/* The collector decides what is truncated, and counts it. */
		if (!copy_ustack(us, ctx, in_callee, t) && !n)
			count(HT_CNT_STACK_ERRORS);
		r->hdr.flags |= HT_F_USTACK;
		len += sizeof(*us) + us->len;
	} else {
		if (!n)
			count(HT_CNT_STACK_ERRORS);
		if (truncated)
			count(HT_CNT_STACK_TRUNCATED);
	}
	if (len > sizeof(*sr)) /* cannot happen; bounds the size for the verifier */
		return;
	if (bpf_ringbuf_output(&ht_events, r, len, ring_wakeup())) {
		count(HT_CNT_RINGBUF_DROPS);
		return;
	}
	count(HT_CNT_EVENTS);
}

/* Sampling in live mode: remember a sampled block; forget_block() says whether a dying
 * block was one (always true without sampling), and forgets it. */
static __always_inline void remember_block(__u64 addr)
{
	struct ht_block_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .addr = addr };
	__u8 one = 1;

	if (ht_sample_bytes && bpf_map_update_elem(&ht_sampled, &k, &one, BPF_ANY))
		count(HT_CNT_SAMPLE_MAP_FULL);
}

static __always_inline bool forget_block(__u64 addr)
{
	struct ht_block_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .addr = addr };

	return !ht_sample_bytes || !bpf_map_delete_elem(&ht_sampled, &k);
}

SEC("uretprobe.multi")
int BPF_KRETPROBE(ht_alloc_return)
{
	__u64 ret = PT_REGS_RC(ctx);
	/* After `ret` popped the return address. */
	__u64 entry_sp = PT_REGS_SP(ctx) - sizeof(__u64);
	struct ht_thread *t;
	struct ht_call c;
	__u32 d;

	if (skip())
		return 0;
	t = thread_state(false);
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
	case HT_FN_POSIX_MEMALIGN:
		/* returns 0 and stores the block at *memptr */
		if ((int)ret != 0 || bpf_probe_read_user(&ret, sizeof(ret), (void *)c.ptr))
			ret = 0;
		c.ptr = 0;
		break;
	case HT_FN_REALLOC:
	case HT_FN_REALLOCARRAY:
		if (!ret && !(c.size == 0 && c.ptr))
			return 0; /* failed: the old block lives on */
		/* glibc: realloc(p, 0) frees p and returns NULL. */
		if (c.ptr && !forget_block(c.ptr))
			c.ptr = 0; /* the old block was never sampled */
		if (!ret || !c.sampled) {
			if (c.ptr)
				emit_free(c.fn, c.ptr);
			return 0;
		}
		break;
	default:
		c.ptr = 0;
		break;
	}
	if (ret && c.sampled) {
		remember_block(ret);
		emit_alloc(ctx, t, c.fn, ret, c.size, c.ptr, PT_REGS_IP(ctx), PT_REGS_FP(ctx),
			   false, false);
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

	if (skip() || !addr)
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
	if (forget_block(addr))
		emit_free(fn, addr);
	return 0;
}

/*
 * Rate mode: one entry probe per allocating call, no return probe, no free probe — the
 * cheapest useful view (allocations and bytes per call stack).  Nested calls (operator new
 * -> malloc) cannot be told apart without the return probe's in-flight state, so both are
 * seen: the collector reports the allocator of each site as probed.
 */
SEC("uprobe.multi")
int BPF_KPROBE(ht_rate_entry)
{
	__u32 fn = bpf_get_attach_cookie(ctx);
	__u64 size, ptr, caller = 0;
	struct ht_thread *t = NULL;

	if (skip())
		return 0;
	call_args(ctx, fn, &size, &ptr);
	if (!entry_sampled(size, &t))
		return 0;
	if (bpf_probe_read_user(&caller, sizeof(caller), (void *)PT_REGS_SP(ctx)))
		caller = 0;
	/* A stack copy keeps its mapping's bounds in the thread's state. */
	if (!t && ht_unwind != HT_UNWIND_FP)
		t = thread_state(true);
	emit_alloc(ctx, t, fn, 0, size, PT_REGS_SP(ctx), caller, PT_REGS_FP(ctx), true, false);
	return 0;
}

/*
 * Go (DESIGN.md §2).  Entry probes only: a uretprobe's hijacked return address would be
 * copied with a growing goroutine stack and crash the target.  Every probe sits after the
 * function's stack-check branch (goprobes.c), so a call that first grows its stack is seen
 * once; there [rsp] is still the return address and %rbp the caller's frame, as at a C
 * entry, unless the site lies past the frame setup (Go 1.19): the cookie then says where
 * the return address is and whether %rbp already holds the function's own frame.  Go code
 * keeps frame pointers: its stacks are always walked by the chain.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ht_go_key);
	__type(value, struct ht_go_proc);
} ht_go_procs SEC(".maps");

static __always_inline const struct ht_go_proc *go_proc(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct inode *ino = BPF_CORE_READ(task, mm, exe_file, f_inode);
	struct ht_go_key k = { .ino = BPF_CORE_READ(ino, i_ino),
			       .dev = BPF_CORE_READ(ino, i_sb, s_dev) };

	return bpf_map_lookup_elem(&ht_go_procs, &k);
}

/* The executable's load bias: the probe's address minus its ELF address (in the cookie). */
static __always_inline __u64 go_bias(struct pt_regs *ctx, __u64 cookie)
{
	return bpf_get_func_ip(ctx) - HT_COOKIE_GO_VADDR(cookie);
}

/* The return address into the caller, and the frame pointer its chain continues from. */
static __always_inline void go_caller(__u64 cookie, __u64 sp, __u64 *caller, __u64 *fp)
{
	__u64 ret = sp + 8 * HT_COOKIE_GO_RET_SLOT(cookie);

	if (HT_COOKIE_GO_FRAME_SET(cookie)) {
		__u64 rec[2]; /* the function's frame record: caller's %rbp, return address */

		if (bpf_probe_read_user(rec, sizeof(rec), (void *)(ret - 8)))
			rec[0] = rec[1] = 0;
		*fp = rec[0];
		*caller = rec[1];
	} else if (bpf_probe_read_user(caller, sizeof(*caller), (void *)ret)) {
		*caller = 0;
	}
}

/* runtime.profilealloc(mp, x RBX, size RCX): Go's own sampler picked this allocation (what
 * its heap profile records); or, --go-exact, runtime.mallocgc(size RAX, ...) and the
 * size-class functions the compiler calls directly (Go 1.26+), every allocation. */
SEC("uprobe.multi")
int BPF_KPROBE(ht_go_alloc)
{
	/* read once: see ht_go_free */
	__u64 ax = ctx->ax, bx = ctx->bx, cx = ctx->cx, sp = ctx->sp, fp = ctx->bp;
	__u64 cookie = bpf_get_attach_cookie(ctx), caller = 0, addr = 0, size, rate = 0;
	__u64 bias = go_bias(ctx, cookie);
	const struct ht_go_proc *gp = go_proc();
	__u32 fn = cookie & 0xffff;
	struct ht_thread *t = NULL;

	if (skip())
		return 0;
	go_caller(cookie, sp, &caller, &fp);
	if (HT_FN_ID(fn) == HT_FN_GO_PROFILEALLOC) {
		addr = bx;
		size = cx;
		if (gp && gp->rate_vaddr &&
		    bpf_probe_read_user(&rate, sizeof(rate), (void *)(gp->rate_vaddr + bias)))
			rate = 0;
	} else {
		size = ax;
		if (!size) /* mallocgc(0) returns &zerobase: nothing is allocated */
			return 0;
		/* mallocgc dispatching to a size-class function: counted at mallocgc */
		if (gp && caller - bias >= gp->mallocgc_lo && caller - bias < gp->mallocgc_hi)
			return 0;
		if (!entry_sampled(size, &t))
			return 0;
	}
	emit_alloc(ctx, t, fn, addr, size, rate, caller, fp, true, true);
	return 0;
}

/* runtime.freeSpecial(s RAX, p RBX, size RCX): a special record of block p is freed; only a
 * profile special means a sampled block died (finalizers, weak handles... are others). */
SEC("uprobe.multi")
int BPF_KPROBE(ht_go_free)
{
	/* Registers read once, up front: the verifier refuses a ctx pointer the compiler
	 * offset to reach a field later. */
	__u64 special = ctx->ax, block = ctx->bx;
	__u32 fn = bpf_get_attach_cookie(ctx) & 0xffff;
	const struct ht_go_proc *gp = go_proc();
	__u8 kind = 0;

	if (skip() || !gp || !block)
		return 0;
	if (gp->kind_profile != HT_GO_NO_READ &&
	    (bpf_probe_read_user(&kind, sizeof(kind), (void *)(special + gp->special_kind_off)) ||
	     kind != gp->kind_profile))
		return 0;
	emit_free(fn, block);
	return 0;
}

/* GC cycle start ((*gcControllerState).startCycle, once per cycle) and end of marking
 * (gcMarkTermination): the arguments, and the runtime's figures read right now. */
SEC("uprobe.multi")
int BPF_KPROBE(ht_go_gc)
{
	__u64 ax = ctx->ax, bx = ctx->bx, cx = ctx->cx, di = ctx->di; /* see ht_go_free */
	__u64 cookie = bpf_get_attach_cookie(ctx);
	const struct ht_go_proc *gp = go_proc();
	struct ht_go_gc_rec *r;
	__u64 bias = go_bias(ctx, cookie);

	if (skip())
		return 0;
	r = bpf_ringbuf_reserve(&ht_events, sizeof(*r), 0);
	if (!r) {
		count(HT_CNT_RINGBUF_DROPS);
		return 0;
	}
	fill_hdr(&r->hdr, HT_REC_GO_GC, cookie & 0xffff);
	r->args[0] = ax;
	r->args[1] = bx;
	r->args[2] = cx;
	r->args[3] = di;
	r->bias = bias;
	r->valid = 0;
	r->pad = 0;
	for (int i = 0; i < HT_GO_READS; i++) {
		r->ctl[i] = 0;
		r->abs[i] = 0;
	}
	if (!gp)
		goto out;
	for (int i = 0; i < HT_GO_READS; i++) {
		if (HT_FN_ID(cookie) == HT_FN_GO_GC_START && gp->ctl_off[i] != HT_GO_NO_READ) {
			if (!bpf_probe_read_user(&r->ctl[i], sizeof(__u64),
						 (void *)(ax + gp->ctl_off[i])))
				r->valid |= 1u << i;
			else
				r->ctl[i] = 0;
		}
		if (gp->abs_vaddr[i]) {
			if (!bpf_probe_read_user(&r->abs[i], sizeof(__u64),
						 (void *)(gp->abs_vaddr[i] + bias)))
				r->valid |= 1u << (4 + i);
			else
				r->abs[i] = 0;
		}
	}
out:
	bpf_ringbuf_submit(r, ring_wakeup());
	count(HT_CNT_EVENTS);
	return 0;
}

/*
 * System-wide sessions (heaptap -a): process lifecycle from the scheduler's tracepoints.
 * An exec may bring a binary with its own allocator (static, Go) that must be attached,
 * and the collector reads the new process's map while it lives: those records wake it.
 * An exit keeps the process's figures, marked exited.
 */
static __always_inline void emit_proc(__u32 event, struct task_struct *p, bool wake)
{
	struct ht_proc_rec *r = bpf_ringbuf_reserve(&ht_events, sizeof(*r), 0);

	if (!r) {
		count(HT_CNT_RINGBUF_DROPS);
		return;
	}
	fill_hdr(&r->hdr, HT_REC_PROC, 0);
	r->hdr.tgid = BPF_CORE_READ(p, tgid);
	r->hdr.tid = BPF_CORE_READ(p, pid);
	r->event = event;
	r->exit_code = BPF_CORE_READ(p, exit_code);
	r->ppid = BPF_CORE_READ(p, real_parent, tgid);
	r->pad = 0;
	bpf_probe_read_kernel_str(r->comm, sizeof(r->comm), p->comm);
	bpf_ringbuf_submit(r, wake ? BPF_RB_FORCE_WAKEUP : ring_wakeup());
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(ht_proc_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	if (ht_self_tgid && BPF_CORE_READ(p, tgid) == ht_self_tgid)
		return 0;
	emit_proc(HT_PROC_EXEC, p, true);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(ht_proc_exit, struct task_struct *p, bool group_dead)
{
	if (!group_dead || (ht_self_tgid && BPF_CORE_READ(p, tgid) == ht_self_tgid))
		return 0;
	emit_proc(HT_PROC_EXIT, p, false);
	return 0;
}

/* dlopen() returned: the process may have mapped an allocator library (jemalloc...). */
SEC("uretprobe")
int BPF_KRETPROBE(ht_dlopen_return)
{
	if (skip() || !PT_REGS_RC(ctx))
		return 0;
	emit_proc(HT_PROC_DLOPEN, bpf_get_current_task_btf(), true);
	return 0;
}
