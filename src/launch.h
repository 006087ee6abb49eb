/*
 * launch: `heaptap -- CMD`.  The child is forked and waits on a pipe while heaptap attaches
 * its probes to the child's pid (uprobes on files apply to mappings made later, so libc is
 * covered when the dynamic linker maps it); then it is released and execs, so nothing
 * before main() is missed.
 *
 * The child is also ptrace-seized with only PTRACE_O_TRACEEXIT: at its exit it stops once
 * while its memory map still exists, so heaptap can read the final module map and
 * symbolize stacks of a short-lived command.  Signals the child receives are passed on
 * unchanged.
 */
#ifndef HEAPTAP_LAUNCH_H
#define HEAPTAP_LAUNCH_H

#include <stdbool.h>
#include <sys/types.h>

struct ht_child {
	pid_t pid;
	int go_fd;   /* write end: one byte releases the child */
	int err_fd;  /* read end: errno of a failed exec; EOF when exec succeeded */
	bool traced; /* ptrace-seized */
	bool exited;
	int exit_code; /* status, or 128 + signal */
};

/* Finds cmd in PATH like execvp would.  0 with a malloc'ed absolute-or-relative path, or
 * -ENOENT / -EACCES. */
int launch__resolve(const char *cmd, char **path);

/* Forks the child, which waits to be released.  0 or -errno. */
int launch__spawn(struct ht_child *c, const char *path, char *const argv[]);

/* Seizes and releases the child; waits until exec succeeded.  0 or -errno of the exec. */
int launch__release(struct ht_child *c);

/*
 * Handles pending wait events of the child (call on SIGCHLD and periodically).  at_exit()
 * is called once when the child stops at its exit with its memory map still readable.
 * Returns true once the child has exited (c->exit_code set).
 */
bool launch__poll(struct ht_child *c, void (*at_exit)(void *arg), void *arg);

/* Kills a child that never got released.  NULL-safe. */
void launch__abort(struct ht_child *c);

#endif
