/*
 * unwind: the user stack of one ALLOC record, when the probe sent a stack copy
 * (HT_F_USTACK, --unwind dwarf|auto): unwound in userspace with libdwfl's CFI unwinder
 * (.eh_frame, .debug_frame) from the process's module map, or, in auto mode, the
 * frame-pointer chain the probe walked where every frame's code keeps frame pointers.
 *
 * Owner: the session, through events (unwinder__new/unwinder__free).  Per process it keeps
 * a libdwfl session over the module map, rebuilt when the map changes, and per object
 * (by build-id) whether its code keeps frame pointers.  Single-threaded.
 */
#ifndef HEAPTAP_UNWIND_H
#define HEAPTAP_UNWIND_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "heaptap.h"

struct ht_unwinder;
struct ht_proc_info;

/* What the unwinder did, for the loss counters and -v. */
struct ht_unwind_stats {
	uint64_t fp_kept;     /* auto: FP chains of records with a copy kept all the same */
	uint64_t fp_kept_cut; /* ... of which the depth cap cut */
	uint64_t unwound;     /* stacks unwound with CFI */
	uint64_t slow;        /* ... by libdwfl (a row the fast path does not apply) */
	uint64_t complete;    /* ... that reached the outermost frame (_start, clone3) */
	uint64_t trunc_copy;  /* ... cut: the next frame lies beyond the copied stack */
	uint64_t trunc_cfi;   /* ... cut: code with no CFI, or outside every known module */
	uint64_t trunc_depth; /* ... cut: the depth cap */
	uint64_t trunc_error; /* ... cut: anything else (bad CFI, a frame that does not climb) */
	uint64_t ns;          /* wall time spent in unwinding, nanoseconds */
	uint64_t setup_ns;    /* ... in building sessions and classifying objects, apart */
	uint64_t sessions;    /* libdwfl sessions built (per process, again per map change) */
	uint64_t objects_fp;  /* auto: objects found to keep frame pointers */
	uint64_t objects_nofp; /* ... found not to (or that could not be told: treated so) */
};

/* The stack copy of a record: borrowed from the ring buffer for one call. */
struct ht_unwind_input {
	const uint64_t *fp_frames; /* the FP chain walked by the probe (auto), innermost first */
	uint32_t fp_n;
	bool fp_truncated;         /* that chain hit the depth cap */
	const struct ht_ustack *us;
	const uint8_t *stack;      /* us->len bytes copied from us->regs[HT_REG_RSP] */
};

/*
 * NULL and errno on failure.  max_depth: frames kept per stack (-D).  fp_code_fd: the BPF
 * map ht_fp_code, which auto mode keeps up to date for the probe (-1: none).
 */
struct ht_unwinder *unwinder__new(enum ht_unwind_mode mode, uint32_t max_depth, int fp_code_fd);
void unwinder__free(struct ht_unwinder *u);

/*
 * The frames of one record, return addresses innermost first, into out (room for
 * HT_MAX_FRAMES); returns how many.  *truncated: the stack goes on beyond them (depth cap,
 * end of the copy, code that cannot be unwound).  *unmapped: unwinding stopped at an
 * address outside info's module map (re-read the map, then call again).  info is the
 * record's process; its map must have been read.
 */
uint32_t unwinder__frames(struct ht_unwinder *u, struct ht_proc_info *info,
			  const struct ht_unwind_input *in, uint64_t *out, bool *truncated,
			  bool *unmapped);

/*
 * auto: classifies the ELF file at path (the session's objects, before tracing starts, so
 * the first records do not wait).  Nothing in other modes, or if path cannot be read.
 */
void unwinder__classify_file(struct ht_unwinder *u, const char *path);
/* auto: classifies the objects info maps and tells the probe where its frame-pointer code
 * is (ht_fp_code), at once.  Nothing in other modes. */
void unwinder__prepare_process(struct ht_unwinder *u, const struct ht_proc_info *info);

/* Every stack by libdwfl, none by the fast path (which must give the same frames: tests). */
void unwinder__set_libdwfl_only(struct ht_unwinder *u, bool on);

const struct ht_unwind_stats *unwinder__stats(const struct ht_unwinder *u);
/* Stacks it marked truncated (kept FP chains cut by the depth cap, cut unwindings). */
uint64_t unwinder__truncated(const struct ht_unwinder *u);
/* One line of the figures above, at -v. */
void unwinder__log_stats(const struct ht_unwinder *u);

#endif
