/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * heaptap's kernel/userspace ABI: the records the BPF programs put in the one ring buffer,
 * the loss counters they keep, and the ids of the probed functions.  Included by the BPF
 * side (with vmlinux.h types) and by the collector (with <stdint.h> types); nothing here
 * is defined anywhere else.  Every record begins with struct ht_hdr, whose `type` says
 * which record follows.
 */
#ifndef HEAPTAP_ABI_H
#define HEAPTAP_ABI_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* Frames one record has room for: the runtime cap (-D, <= HT_MAX_DEPTH) and then some.  A
 * power of two (used as a mask). */
#define HT_MAX_FRAMES 128
#define HT_MAX_DEPTH 126
/* Allocator calls one thread can have in flight at once (operator new -> malloc -> ...). */
#define HT_MAX_NEST 4

enum ht_rec_type {
	HT_REC_ALLOC = 1, /* struct ht_alloc_rec: a block came to life (malloc, new, realloc...) */
	HT_REC_FREE = 2,  /* struct ht_free_rec: a block died (free, delete) */
	HT_REC_GO_GC = 3, /* struct ht_go_gc_rec: a Go GC cycle started or ended its marking */
	HT_REC_PROC = 4,  /* struct ht_proc_rec: a process exec'd or exited (heaptap -a) */
};

/* ht_proc_rec.event */
enum ht_proc_event { HT_PROC_EXEC = 1, HT_PROC_EXIT = 2, HT_PROC_DLOPEN = 3 };

/*
 * What was called.  The low 8 bits of a probe's BPF cookie; the higher bits hold
 * HT_COOKIE_* flags.  Userspace names them (probes.c owns the table of symbols).
 */
enum ht_fn {
	HT_FN_MALLOC = 1,
	HT_FN_CALLOC,
	HT_FN_REALLOC,
	HT_FN_REALLOCARRAY,
	HT_FN_POSIX_MEMALIGN,
	HT_FN_ALIGNED_ALLOC,
	HT_FN_MEMALIGN,
	HT_FN_VALLOC,
	HT_FN_PVALLOC,
	HT_FN_NEW,         /* operator new / new[], (size, ...) */
	HT_FN_NEW_ALIGNED, /* operator new / new[] (size, align_val_t, ...) */
	HT_FN_FREE,
	HT_FN_DELETE,
	/* Go runtime functions (register ABI: arguments in RAX, RBX, RCX, RDI, ...). */
	HT_FN_GO_PROFILEALLOC, /* runtime.profilealloc(mp, x, size): a sampled allocation */
	HT_FN_GO_MALLOCGC,     /* runtime.mallocgc(size, typ, needzero) and the size-class
				* entry points (--go-exact): every allocation, no address */
	HT_FN_GO_FREESPECIAL,  /* runtime.freeSpecial(s, p, size): a sampled block died */
	HT_FN_GO_GC_START,     /* (*gcControllerState).startCycle(c, now, procs, trigger) */
	HT_FN_GO_GC_MARK_DONE, /* runtime.gcMarkTermination: marking finished */
	HT_FN__COUNT,
};

/*
 * A probe's cookie: bits 0-7 the enum ht_fn (what the arguments mean), bits 8-15 the
 * index of the symbol in the collector's table (which of the operator new variants).
 * Records carry both in ht_hdr.fn.
 */
#define HT_FN_ID(cookie) ((cookie) & 0xff)
#define HT_FN_SYM(cookie) (((cookie) >> 8) & 0xff)
/*
 * Go probes: bits 16-23 say where the caller is at the probe site, which may lie past the
 * function's frame setup (goprobes.c): bits 16-22 the return address's slot, at
 * [rsp + 8 * slot]; bit 23 set when the function has already saved the caller's %rbp right
 * below it and pointed %rbp there (the frame walk then starts from the saved %rbp).  Bits
 * 24-63 hold the probe site's ELF virtual address, so a program finds the executable's
 * load bias (PIE) as the probe's address minus it.
 */
#define HT_GO_MAX_RET_SLOT 0x7f
#define HT_GO_MAX_VADDR ((1ULL << 40) - 1)
#define HT_COOKIE_GO(fn_sym, ret_slot, frame_set, vaddr)                                   \
	((__u64)(fn_sym) | (__u64)(ret_slot) << 16 | (__u64)!!(frame_set) << 23 |          \
	 (__u64)(vaddr) << 24)
#define HT_COOKIE_GO_RET_SLOT(cookie) (((cookie) >> 16) & HT_GO_MAX_RET_SLOT)
#define HT_COOKIE_GO_FRAME_SET(cookie) (((cookie) >> 23) & 1)
#define HT_COOKIE_GO_VADDR(cookie) ((cookie) >> 24)

/*
 * What the Go programs need to know of one Go executable (map `ht_go_procs`, written by the
 * collector when it attaches to the executable).  Keyed by the executable's device and
 * inode, which BPF reads from the current task (mm->exe_file): every process running it,
 * started before or after the attach, finds its settings without the collector's help.
 * Addresses are ELF virtual addresses of the executable.
 */
struct ht_go_key {
	__u64 ino;
	__u32 dev;  /* the kernel's encoding: major << 20 | minor */
	__u32 pad;
};

#define HT_GO_READS 4
#define HT_GO_NO_READ 0xffffffffu

struct ht_go_proc {
	__u64 rate_vaddr;       /* runtime.MemProfileRate (int), 0: unknown */
	__u64 mallocgc_lo;      /* runtime.mallocgc [lo, hi): a size-class function called */
	__u64 mallocgc_hi;      /* from inside it is that mallocgc call, not a new one */
	__u32 special_kind_off; /* offset of runtime.special.kind (a byte) */
	__u32 kind_profile;     /* runtime._KindSpecialProfile; HT_GO_NO_READ: unknown, the
				 * collector keeps only frees of blocks it saw sampled */
	/* GC records: u64 fields read at %rax (the *gcControllerState of startCycle) + off,
	 * and u64 values at these addresses (memstats fields); HT_GO_NO_READ / 0: none. */
	__u32 ctl_off[HT_GO_READS];
	__u64 abs_vaddr[HT_GO_READS];
};

/* What the programs do (rodata ht_mode, set before load). */
enum ht_mode {
	HT_MODE_LIVE = 0,  /* entry+return on allocating functions, entry on frees */
	HT_MODE_RATE = 1,  /* ht_rate_entry on allocating functions only: no addresses */
	HT_MODE_FLOOR = 2, /* every program returns at once: the cost of the traps alone */
};

/* How user stacks are taken (rodata ht_unwind, set before load; --unwind). */
enum ht_unwind {
	HT_UNWIND_FP = 0,    /* frame-pointer chain walked in BPF: frames[] only */
	HT_UNWIND_DWARF = 1, /* no walk: a stack copy (struct ht_ustack) the collector unwinds */
	HT_UNWIND_AUTO = 2,  /* the chain, and a stack copy unless ht_fp_code says it holds */
};

/* Cap on the user stack bytes one record carries (rodata ht_stack_bytes, --stack-bytes). */
#define HT_MAX_STACK_BYTES 16384

/*
 * Auto mode: where a process's code keeps frame pointers (map `ht_fp_code`, key: tgid,
 * written by the collector as it classifies the objects the process maps).  A frame-pointer
 * chain whose frames but the outermost all lie in these ranges holds, and the probe sends
 * it without a stack copy.  Up to HT_MAX_FP_RANGES objects per process; code in none of
 * them gets a copy.
 */
#define HT_MAX_FP_RANGES 8

struct ht_fp_code {
	__u64 start[HT_MAX_FP_RANGES];  /* runtime address range [start, end) of an object; */
	__u64 end[HT_MAX_FP_RANGES];    /* unused entries are empty (start == end) */
};

/* Byte sampling: entries of the table of exponential quantiles (rodata ht_exp_table). */
#define HT_EXP_TABLE 4096

/* Indexes into the per-CPU loss counter array (map `ht_counters`). */
enum ht_counter {
	HT_CNT_RINGBUF_DROPS = 0, /* records the ring buffer had no room for */
	HT_CNT_STATE_FULL,        /* thread state could not be created: call not traced */
	HT_CNT_NEST_OVERFLOW,     /* calls nested deeper than HT_MAX_NEST: inner one not traced */
	HT_CNT_RET_NO_ENTRY,      /* returns whose entry we did not see (attached mid-call) */
	HT_CNT_STACK_ERRORS,      /* no stack could be read: record sent without frames */
	HT_CNT_STACK_TRUNCATED,   /* stack longer than the depth cap: record carries the cap */
	HT_CNT_NESTED_SKIPPED,    /* inner allocator calls folded into the outer (informational) */
	HT_CNT_EVENTS,            /* records submitted (informational) */
	HT_CNT_SAMPLE_MAP_FULL,   /* sampled block not remembered: its free will be missed */
	HT_CNT_UNSAMPLED,         /* allocations the byte sampler skipped (informational) */
	HT_CNT__COUNT,
};

/* ht_hdr.flags */
#define HT_F_TRUNCATED 0x1 /* the stack was longer than the depth cap */
#define HT_F_USTACK 0x2    /* a struct ht_ustack follows frames[nframes] (DWARF, auto) */

struct ht_hdr {
	__u16 type;   /* enum ht_rec_type */
	__u16 flags;  /* HT_F_* */
	__u32 tgid;   /* process id */
	__u32 tid;    /* thread id */
	__u16 fn;     /* the probe's cookie: HT_FN_ID() / HT_FN_SYM() */
	__u16 nframes; /* HT_REC_ALLOC: user frames that follow; else 0 */
	__u64 ts_ns;  /* bpf_ktime_get_ns() (CLOCK_MONOTONIC), nanoseconds */
};

struct ht_alloc_rec {
	struct ht_hdr hdr;
	/* Go (HT_FN_GO_PROFILEALLOC): addr is the block, old_addr the MemProfileRate in force
	 * (0: unknown); HT_FN_GO_MALLOCGC: addr 0, old_addr 0. */
	__u64 addr;     /* address of the new block; 0 in rate mode (not tracked) */
	__u64 size;     /* bytes requested (calloc: n*size; aligned: the size argument) */
	__u64 old_addr; /* realloc/reallocarray: the block it replaced (0: none); rate mode:
			 * %rsp at entry (tells a tail call's second entry from a new call) */
	__u64 frames[HT_MAX_FRAMES]; /* user return addresses, innermost (direct caller) first */
};

struct ht_free_rec {
	struct ht_hdr hdr;
	__u64 addr; /* address freed, never 0 */
};

/* A Go GC event.  The collector gives ctl[] and abs[] their meaning (goprobes.c chose the
 * reads); a read that failed or was not asked for is 0 and its bit in `valid` is clear. */
struct ht_go_gc_rec {
	struct ht_hdr hdr;
	__u64 args[4];        /* RAX, RBX, RCX, RDI at the probe */
	__u64 ctl[HT_GO_READS];
	__u64 abs[HT_GO_READS];
	__u64 bias;           /* load bias of the executable (runtime - ELF address) */
	__u32 valid;          /* bit i: ctl[i] read; bit 4 + i: abs[i] read */
	__u32 pad;
};

/* A process event; hdr.tgid is the process. */
struct ht_proc_rec {
	struct ht_hdr hdr;
	__u32 event;     /* enum ht_proc_event */
	__s32 exit_code; /* HT_PROC_EXIT: wait status (exit code << 8, or the signal) */
	__u32 ppid;
	__u32 pad;
	char comm[16];   /* after exec: the new program's name */
};

/* Registers in struct ht_ustack.regs: what CFI needs to start unwinding the caller (the
 * stack pointer, the IP, and the callee-saved registers a caller may keep values in). */
enum ht_reg {
	HT_REG_RIP = 0,
	HT_REG_RSP,
	HT_REG_RBP,
	HT_REG_RBX,
	HT_REG_R12,
	HT_REG_R13,
	HT_REG_R14,
	HT_REG_R15,
	HT_REG__COUNT,
};

/* ht_ustack.flags */
#define HT_US_IN_CALLEE 0x1 /* taken at the allocator's entry probe: regs are inside the
			     * allocator (rip is its probe site), whose frame the collector
			     * unwinds and drops; else taken at its return, rip = the return
			     * address in the caller */

/*
 * The trailer of an HT_F_USTACK record, right after frames[nframes] (8-byte aligned), then
 * len bytes of user stack copied from regs[HT_REG_RSP] upwards.  len is below
 * ht_stack_bytes when the copy reached the end of the mapped stack (or failed: 0).
 */
struct ht_ustack {
	__u64 regs[HT_REG__COUNT]; /* user register values, indexed by enum ht_reg */
	__u32 len;                 /* stack bytes that follow */
	__u32 flags;               /* HT_US_* */
};

#define HT_ALLOC_REC_FIXED_SIZE __builtin_offsetof(struct ht_alloc_rec, frames)

#endif /* HEAPTAP_ABI_H */
