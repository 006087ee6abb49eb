/*
 * system: system-wide sessions (heaptap -a).  Finds every allocator object the machine's
 * processes map (libc, libstdc++, a preloaded jemalloc, a static executable's own malloc,
 * a Go runtime — containers and chroots included, through /proc/PID/root), attaches each
 * object once, and follows processes as they exec and exit (sched tracepoints).
 *
 * Attachment:
 *   no filter   one uprobe_multi link per object and program, for every process (pid -1):
 *               a process started later that maps an attached object is traced from its
 *               first call; a new object (a static or Go binary, a dlopen'ed allocator) is
 *               attached when its exec or first sight is handled, ~10 ms later at most.
 *   --comm/--cgroup  pid-scoped links for the selected processes only (others never trap),
 *               made at start and at each exec that selects a process.
 * heaptap's own process is filtered in BPF (ht_self_tgid); it still pays the traps.
 *
 * Bounded: at most max_procs processes are kept; beyond that the longest-exited process is
 * evicted (heap model and record), counted in procs_evicted.
 *
 * Owner: the session.  system__free() detaches everything.
 */
#ifndef HEAPTAP_SYSTEM_H
#define HEAPTAP_SYSTEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heaptap.h"

struct heaptap;
struct ht_events;
struct ht_system;
struct ht_rsystem;

struct ht_system_opts {
	char **comms;        /* --comm names, NULL-terminated, or NULL */
	const char *cgroup;  /* --cgroup path, or NULL */
	bool rate;           /* --mode rate */
	bool go_exact;
	uint32_t max_procs;
};

/* Discovers and attaches.  0 or -errno (logged). */
int system__start(struct ht_system **out, struct heaptap *skel, struct ht_events *ev,
		  const struct ht_system_opts *o);

/* An HT_REC_PROC record (events.c calls it through ht_events.on_proc). */
void system__on_proc(void *ctx, const struct ht_proc_rec *r);

/* After each drain: attaches what new processes brought, evicts over the cap. */
void system__maintain(struct ht_system *s);

/* Probe sites attached (and single-stepped among them). */
size_t system__probes(const struct ht_system *s, size_t *slow);

/* Detaches (before the last drain).  The figures stay for system__report(). */
void system__detach(struct ht_system *s);

/* The system section of a report (malloc'ed, report__free() frees it).  NULL on ENOMEM. */
struct ht_rsystem *system__report(const struct ht_system *s);

void system__free(struct ht_system *s);

#endif
