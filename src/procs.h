/*
 * procs: what heaptap knows of each traced process besides its heap: command name,
 * executable, whether and how it ended, and its module map (refreshed while it lives, so
 * stacks stay symbolizable after it exits).
 */
#ifndef HEAPTAP_PROCS_H
#define HEAPTAP_PROCS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "modmap.h"

struct ht_proc_info {
	pid_t pid;
	char comm[17];
	char *exe;          /* /proc/PID/exe target at first sight, or NULL */
	bool exited;
	int exit_code;      /* exit status, or 128+signal; valid when exited && exit_known */
	bool exit_known;
	struct ht_modmap map;
	bool map_read;      /* map holds a successful read */
	char allocator[16]; /* system-wide: "glibc", "jemalloc", "go", "static", ... or "" */
	uint64_t exited_seq; /* order of exit (system-wide eviction: oldest exited first) */
};

struct ht_procs;

struct ht_procs *procs__new(void);
void procs__free(struct ht_procs *p);

/* The process's record, created (and its comm, exe and map read) on first sight.  NULL on
 * -ENOMEM only: a process that is already gone still gets a record. */
struct ht_proc_info *procs__get(struct ht_procs *p, pid_t pid);
/* Existing record or NULL. */
struct ht_proc_info *procs__find(const struct ht_procs *p, pid_t pid);

/* Re-reads the module map if the process still lives; keeps the old one otherwise.
 * Returns 0 if it was read now. */
int procs__refresh_map(struct ht_proc_info *info);

/* True if any of frames[0..n) lies outside every module of the process's map. */
bool procs__has_unmapped(const struct ht_proc_info *info, const uint64_t *frames, uint32_t n);

void procs__mark_exited(struct ht_proc_info *info, bool known, int code);

/* Forgets process pid (evicted, or its pid was reused by a new process).  No-op if unknown. */
void procs__drop(struct ht_procs *p, pid_t pid);

/* Number of records and the i-th (i < count), in no particular order. */
uint32_t procs__count(const struct ht_procs *p);
struct ht_proc_info *procs__at(const struct ht_procs *p, uint32_t i);

/* Records ever created (dropped ones included). */
uint64_t procs__created(const struct ht_procs *p);

/* Re-reads comm and exe (after an exec). */
void procs__reread_identity(struct ht_proc_info *info);

#endif
