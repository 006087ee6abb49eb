/*
 * symbolize: runtime addresses of one process -> function, file:line, inline chain, with
 * libdwfl, from a module map (so it works after the process exited, as long as the files
 * are still there).  C++ names are demangled.  Results are cached per address.
 *
 * Owner: the caller of symbolizer__new(); strings in returned frames are owned by the
 * symbolizer and live until symbolizer__free().  Not thread-safe: one thread per symbolizer.
 */
#ifndef HEAPTAP_SYMBOLIZE_H
#define HEAPTAP_SYMBOLIZE_H

#include <stdbool.h>
#include <stdint.h>

#include "modmap.h"

struct ht_symbolizer;

struct ht_frame_info {
	const char *function; /* demangled name; NULL if unknown (stripped: use module+offset) */
	const char *file;     /* source file, NULL if no line info */
	int line;             /* 0 if no line info */
	const char *module;   /* object path, "[unknown]" if the address is in no module */
	uint64_t module_offset; /* address - bias: the ELF virtual address in that object */
	bool inlined;         /* this frame was inlined into the next one in the array */
};

/* Builds a symbolizer over a copy of the modules in map.  NULL and errno on failure. */
struct ht_symbolizer *symbolizer__new(const struct ht_modmap *map);

/*
 * Symbolizes one address.  is_return_address: addr is a return address (every frame but
 * an exact IP), so the call instruction at addr-1 is what is looked up (module_offset
 * stays addr - bias).  Writes up to max frames, innermost (most inlined) first, the last
 * one the real function; returns how many (>= 1 when max >= 1: an unknown address still
 * gives one frame with module set), or -ENOMEM.  When the chain is longer than max, the
 * innermost max-1 frames and the real function are written.
 */
int symbolizer__lookup(struct ht_symbolizer *s, uint64_t addr, bool is_return_address,
		       struct ht_frame_info *out, int max);

/*
 * The demangled form of an Itanium C++ name ("_Z..."), or name itself for anything else;
 * interned in s (lives until symbolizer__free).  NULL only when name is NULL or on ENOMEM.
 */
const char *symbolizer__demangle(struct ht_symbolizer *s, const char *name);

/*
 * The libdwfl session s looks addresses up in, every module of the map reported (borrowed,
 * lives until symbolizer__free).  For the DWARF unwinder, which attaches its own thread
 * state to it (dwfl_attach_state) and reads CFI through it.
 */
struct Dwfl *symbolizer__dwfl(struct ht_symbolizer *s);

/* NULL-safe. */
void symbolizer__free(struct ht_symbolizer *s);

#endif
