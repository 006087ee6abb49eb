/*
 * fp_detect: does an ELF object's code keep frame pointers?  Decided from the code itself,
 * by sampling function prologues (DESIGN.md §4: a frame-pointer chain through code built
 * without them is truncated or skips callers, silently).
 *
 * Used by the unwinder's auto mode, once per object (cached there by build-id).
 */
#ifndef HEAPTAP_FP_DETECT_H
#define HEAPTAP_FP_DETECT_H

#include <elfutils/libdwfl.h>

struct ht_fp_sample {
	unsigned sampled; /* function prologues decoded */
	unsigned with_fp; /* ... that set up %rbp as a frame pointer */
};

/*
 * Samples up to max_samples function prologues of mod (symbols from its symbol tables,
 * debug file included; code from its main ELF file), spread over the object.  Returns 1
 * if most of them set up a frame pointer (`push %rbp; mov %rsp, %rbp`, after an optional
 * endbr64), 0 if not, -ENOENT when the object has no usable function symbols, -EINVAL
 * when its code cannot be read or decoded, -ENOMEM.  out (may be NULL) gets the counts.
 */
int fp_detect__module(Dwfl_Module *mod, unsigned max_samples, struct ht_fp_sample *out);

/* The same for the ELF file open on fd, from its own symbol tables (no debug file is looked
 * for: quick, and a library's .dynsym has functions enough).  fd is not closed. */
int fp_detect__fd(int fd, unsigned max_samples, struct ht_fp_sample *out);

#endif
