/*
 * probes: which allocator functions a process binds, where to probe them, and the links
 * that attach heaptap's BPF programs there, scoped to one pid (no other process pays the
 * trap).
 *
 * Binding: each function is probed in the first object of the list that defines it, the
 * list being in the dynamic linker's lookup order (executable, preloads, dependencies):
 * a static or ASan executable's own malloc, a preloaded jemalloc, else libc.  The dynamic
 * linker itself is never a candidate (its minimal malloc serves only itself).
 */
#ifndef HEAPTAP_PROBES_H
#define HEAPTAP_PROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct heaptap;
struct ht_probes;

struct ht_object {
	const char *path;      /* as the user would know it (/lib/x86_64-linux-gnu/libc.so.6) */
	const char *open_path; /* how heaptap opens/attaches it (/proc/PID/root/...) */
};

/* Attaches to pid's allocator functions in objects[0..n) (lookup order): entry and return
 * probes on allocating functions and entry probes on frees, or (rate) only the rate entry
 * probe on allocating functions.  0 or -errno; -ENOENT: no object defines any allocator
 * function (nothing logged: a Go executable has none). */
int probes__attach(struct heaptap *skel, pid_t pid, const struct ht_object *objects,
		   size_t n, bool rate, struct ht_probes **out);

/* True if ELF address vaddr of the object (dev, inode) lies inside an allocating function
 * heaptap probes (rate mode: a malloc called by operator new is part of that new). */
bool probes__inside_allocator(const struct ht_probes *p, uint64_t dev, uint64_t ino,
			      uint64_t vaddr);

/* A running process's mapped objects (map, its executable exe or NULL) in the order the
 * dynamic linker looks symbols up — executable, then the rest, libc last (a preloaded
 * allocator interposes on libc; /proc/PID/maps has no lookup order) — into out[] (room for
 * map->n).  Returns how many. */
struct ht_modmap;
size_t probes__lookup_order(const struct ht_modmap *map, const char *exe,
			    struct ht_object *out);

/* Detaches everything.  NULL-safe. */
void probes__free(struct ht_probes *p);

/* Number of probe sites attached and how many of them are single-stepped (slow). */
size_t probes__count(const struct ht_probes *p, size_t *slow);
/* Prints the table of probe sites (function, object, offset, instruction) to stderr. */
void probes__describe(const struct ht_probes *p);

/* The name users know a record's function by ("malloc", "operator new[]"), from the
 * record's fn field (cookie). */
const char *probes__fn_name(uint16_t fn);

/* The dynamic linker's objects for a command about to be run, in lookup order, as
 * `ld.so --list` reports them (LD_PRELOAD and LD_LIBRARY_PATH honoured): paths written to
 * *out (malloc'ed array of malloc'ed strings, executable first).  Static executables give
 * just themselves.  0 or -errno. */
int probes__command_objects(const char *exe, char ***out, size_t *n);

#endif
