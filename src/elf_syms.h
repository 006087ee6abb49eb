/*
 * elf_syms: one ELF object's function symbols (.symtab and .dynsym merged; a stripped
 * object has only .dynsym) and the probe site heaptap puts on each allocator function.
 *
 * Why probe sites are chosen (DESIGN.md §3): a uprobe on an instruction the kernel can
 * emulate (push, jcc, jmp, call, nop) costs ~0.7 us; on one it must single-step (test, cmp,
 * mov, lea, endbr64) ~9.5 us.  So we decode the function's first instructions with capstone
 * and probe the first emulated instruction that comes before anything changes the stack
 * pointer, the argument registers or memory, and that no jump inside the function targets
 * (else the probe could fire twice per call).  At such an offset the arguments are still in
 * their registers and [rsp] still holds the return address, so entry and return probes
 * both work there.
 *
 * Owner: the caller of elf_syms__open() frees with elf_syms__close().  An object is not
 * thread-safe (it owns one capstone handle).
 */
#ifndef HEAPTAP_ELF_SYMS_H
#define HEAPTAP_ELF_SYMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ht_elf_syms;

struct ht_probe_site {
	uint64_t sym_vaddr;   /* the function's ELF virtual address */
	uint64_t sym_size;    /* its size in bytes (0 if the symbol has none) */
	uint32_t insn_offset; /* probe address - function address, bytes */
	uint64_t file_offset; /* file offset of the probe address (what uprobes attach to) */
	bool emulated;        /* the instruction there is one the kernel emulates (cheap) */
	bool kernel_adds_caller; /* it is `push %rbp` or endbr64: the kernel's user stack walk
				  * then already includes the return address at [rsp] */
	char insn[48];        /* "push r12", for logs and --list-probes */
};

/* Opens path (an ELF file).  NULL and errno (ENOENT, ENOEXEC: not ELF or not x86-64, ENOMEM,
 * ...) on failure. */
struct ht_elf_syms *elf_syms__open(const char *path);

/* True if the object defines (not just imports) a function named name.  Versioned dynsym
 * names ("malloc@@GLIBC_2.2.5") match their base name. */
bool elf_syms__defines(const struct ht_elf_syms *e, const char *name);

/* True if the object has any function symbols at all (false: stripped of both tables). */
bool elf_syms__has_symbols(const struct ht_elf_syms *e);

/* Chooses where to probe function name (a base name, no "@VERSION").  When several symbols
 * share the name: a default or unversioned one over a hidden ("name@VER") one, then GLOBAL
 * over WEAK over LOCAL.  0, -ENOENT if not defined here, -ENOTSUP if name is an IFUNC (its
 * address is the resolver, not the implementation the process runs), -EINVAL if the code
 * cannot be read/decoded or uprobes would refuse the first instruction, -ENOMEM.  If no
 * emulated instruction qualifies, the site is the function's first instruction (correct,
 * just slow); emulated then still tells whether that instruction is emulated — it can be,
 * e.g. a `push` at the start of a function that loops back to its own entry. */
int elf_syms__probe_site(struct ht_elf_syms *e, const char *name, struct ht_probe_site *out);

/* True if x86-64 uprobes on Linux 6.18 emulate the instruction made of exactly these len
 * bytes rather than single-step it: push of a register (50-57, 41 50-57), jmp rel8/rel32,
 * call rel32, jcc rel8/rel32 (not with a 66 prefix), and nop (opcode 90 except 41 90,
 * which is xchg; or one of the kernel's own nop byte strings of 2-8 bytes, e.g. the 5-byte
 * 0f 1f 44 00 00, which 6.18 further rewrites into a call to its uprobe trampoline). */
bool elf_syms__kernel_emulates(const uint8_t *insn, size_t len);

/* The same, when the probe reads only the first nargs integer argument registers (free
 * needs rdi alone): instructions writing the others may come before the site, which lets
 * e.g. jemalloc's free be probed on an emulated jne instead of a single-stepped mov. */
int elf_syms__probe_site_args(struct ht_elf_syms *e, const char *name, int nargs,
			      struct ht_probe_site *out);

/* ELF type: true for ET_DYN (PIE or shared library). */
bool elf_syms__is_dyn(const struct ht_elf_syms *e);

/* NULL-safe. */
void elf_syms__close(struct ht_elf_syms *e);

#endif
