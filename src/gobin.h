/*
 * gobin: what heaptap needs to read from a Go executable without running it — the Go
 * version and build settings (.go.buildinfo), function names, addresses and sizes (.symtab
 * when present, else the runtime's own .gopclntab, which survives `-ldflags=-s -w`), file and
 * line for a PC (pclntab's pcfile/pcln tables), and the file offset of an address (what a
 * uprobe attaches to).
 *
 * Formats read:
 *   .go.buildinfo  the 1.18+ inline-string blob, and the older (1.13-1.17) blob of two
 *                  pointers to Go string headers (pointers read through R_*_RELATIVE
 *                  relocations when the binary is PIE);
 *   .gopclntab     the Go 1.18-1.19 table (magic 0xfffffff0) and the Go 1.20+ table
 *                  (0xfffffff1).  Older tables (1.16-1.17's 0xfffffffa, 1.2-1.15's
 *                  0xfffffffb) are recognized and reported as unsupported: such binaries
 *                  still get names from .symtab if they have one.
 * Section headers are not needed: a binary without them (sstrip) is searched by segment.
 *
 * Owner: the caller of gobin__open() frees with gobin__close().  Every const char * this
 * module returns (names, files, version, settings) is borrowed and lives as long as the
 * object.  Objects are read-only after open and may be queried from several threads.
 */
#ifndef HEAPTAP_GOBIN_H
#define HEAPTAP_GOBIN_H

#include <stdbool.h>
#include <stdint.h>

struct ht_gobin;

/* Opens path, any 64-bit little-endian ELF file (Go or not: see gobin__is_go()).  NULL and
 * errno on failure: ENOENT (no such file), EACCES, EISDIR, ENOEXEC (not a 64-bit
 * little-endian ELF, or truncated headers), ENOMEM.  Damaged Go tables are not an error:
 * the parts they hold are then simply absent. */
struct ht_gobin *gobin__open(const char *path);

/* NULL-safe. */
void gobin__close(struct ht_gobin *g);

/* True if the file carries Go build info or a Go pclntab. */
bool gobin__is_go(const struct ht_gobin *g);

/* The Go version the binary was built with, as runtime.Version() says it without the
 * experiments suffix: "go1.19.8", "go1.20" (a .0 release before 1.21), "go1.21rc2",
 * "devel go1.24-abcdef Tue ...".  NULL if the binary has no build info. */
const char *gobin__version_string(const struct ht_gobin *g);

/* The version as numbers: go1.19.8 -> 1, 19, 8; go1.20 or go1.21rc2 -> patch 0.  Any
 * pointer may be NULL.  0; -ENOENT if there is no build info; -EINVAL if the string does
 * not contain "go<major>.<minor>". */
int gobin__version(const struct ht_gobin *g, int *major, int *minor, int *patch);

/* The GOEXPERIMENTs the binary was built with, a comma-separated list as Go prints it after
 * " X:" (1.19; "-X:" in later versions) in runtime.Version() (e.g. "sizespecializedmalloc",
 * or "nofoo,bar" for a default turned off and one turned on); falls back to the
 * GOEXPERIMENT build setting.  "" when none (also for a binary without build info). */
const char *gobin__experiments(const struct ht_gobin *g);

/* The module and build settings text as `go version -m` prints it ("path\t...\nmod\t...\n
 * build\tGOARCH=amd64\n..."), framing removed.  "" if absent. */
const char *gobin__modinfo(const struct ht_gobin *g);

/* The value of one build setting ("build\tKEY=VALUE" line of the modinfo), e.g. key
 * "GOEXPERIMENT", "CGO_ENABLED", "-buildmode", "-ldflags".  NULL if not set. */
const char *gobin__build_setting(const struct ht_gobin *g, const char *key);

/* Where function symbols come from: "symtab", "pclntab", or "none". */
const char *gobin__symbol_source(const struct ht_gobin *g);

/* The pclntab magic (0xfffffff0 or 0xfffffff1 when it is read; an older recognized magic
 * when it is not supported), 0 when there is none. */
uint32_t gobin__pclntab_magic(const struct ht_gobin *g);

/* Function name (Go's full symbol name: "runtime.mallocgc",
 * "runtime.(*gcControllerState).startCycle", "main.main") to its ELF virtual address and
 * size in bytes (either pointer may be NULL).  0, -ENOENT, -ENOMEM.
 *
 * Every name this module gives (here, gobin__func_at(), gobin__for_each_func()) follows
 * .symtab's spelling, with or without a .symtab, so stripped and unstripped builds agree:
 *   - a middle dot (U+00B7, in a few generated names like "type:.eq.runtime.untracedG·4")
 *     is written '.' (lookup accepts either);
 *   - of two functions of one name, the ABI0 one is "NAME.abi0" (the ABI0 wrapper of a Go
 *     function, or an assembly function beside its ABIInternal wrapper); an assembly
 *     function whose wrapper the linker dropped is "NAME.abi0" in .symtab but NAME in
 *     pclntab (lookup accepts either);
 *   - Go 1.18-1.19 wrote pclntab names with everything between the first '[' and the last
 *     ']' as "..." ("type..eq.[...]pkg.T", "pkg.F[...]"); those stay so in a stripped
 *     binary, and lookup of the full name finds them.
 * With several functions of one name (static C functions of a cgo binary), the lowest
 * address. */
int gobin__lookup(const struct ht_gobin *g, const char *name, uint64_t *addr, uint64_t *size);

/* The function containing ELF virtual address vaddr: its name and entry address (either
 * pointer may be NULL).  0, -ENOENT (no function there; alignment padding between two
 * functions belongs to none). */
int gobin__func_at(const struct ht_gobin *g, uint64_t vaddr, const char **name,
		   uint64_t *entry);

/* Source position of the instruction at ELF virtual address pc, from pclntab (so stripped
 * binaries get it too): file as the binary records it (an absolute path; with -trimpath
 * "runtime/malloc.go", "example.com/mod/main.go") and line.  For inlined code this
 * is the position of the inlined statement itself (as `go tool objdump` prints), not of the
 * call.  0; -ENOENT (pc is in no Go function or has no position); -ENOTSUP (no readable
 * pclntab); -EINVAL (the tables are damaged). */
int gobin__line_at(const struct ht_gobin *g, uint64_t pc, const char **file, int *line);

/* Calls cb for every function whose name starts with prefix ("" for all), in name order.
 * cb returns 0 to go on; any other value stops the walk and is returned.  0 when the walk
 * completes.  E.g. prefix "runtime.mallocgc" lists the allocation entry points: Go 1.26
 * with GOEXPERIMENT=sizespecializedmalloc adds mallocgcSmallNoScanSC2-26,
 * mallocgcSmallScanNoHeaderSC1-26 and mallocgcTinySize1-15 (66 functions); 1.27 has
 * mallocgcSmallNoScanSC2-7, mallocgcSmallScanNoHeaderSC1-7 and mallocgcTinySC2, plus the
 * mallocgc{Tiny,SmallScan,SmallNoScan}SlowPath helpers those call (not entry points). */
typedef int (*gobin_func_cb)(const char *name, uint64_t addr, uint64_t size, void *arg);
int gobin__for_each_func(const struct ht_gobin *g, const char *prefix, gobin_func_cb cb,
			 void *arg);

/* File offset of ELF virtual address vaddr (through the PT_LOAD segment whose file bytes
 * hold it: off = vaddr - p_vaddr + p_offset).  0; -ENOENT if no segment's file bytes hold
 * it (e.g. .bss). */
int gobin__file_offset(const struct ht_gobin *g, uint64_t vaddr, uint64_t *off);

#endif
