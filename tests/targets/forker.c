/* forker.c — a process that forks after allocating: the child inherits the parent's
 * live blocks, allocates its own, and frees some of the inherited ones.
 *
 * Sequence:
 *   1. HT_WAIT handshake ("ready <pid>", wait for SIGUSR1): attach here.
 *   2. parent_keep: 100 x malloc(1000), kept.
 *   3. fork().
 *      child:  child_keep: 50 x malloc(2000), kept;
 *              child_free_inherited: free() of the first 10 blocks of step 2
 *              (inherited copies of the parent's blocks);
 *              closes its end of a pipe (the parent's signal that it is done);
 *              with HT_WAIT, waits for SIGUSR1; exits 0.
 *      parent: waits for the pipe to close (the child's work is over), prints
 *              "child <childpid>\n", then the "done" handshake; after that
 *              SIGUSR1 it sends SIGUSR1 to the child, waits for it, exits 0
 *              (1 if the fork or the child failed).
 *   Output: "ready <pid>", "child <childpid>", "done" (HT_WAIT only, except the
 *   "child" line, which is always printed), all from the parent.
 *
 * Ground truth, per process:
 *   parent (pid P)
 *     site                       api     count  bytes each  requested  live at exit
 *     parent_keep <- main        malloc  100    1000        100000     100 blocks, 100000 bytes
 *     frees: 0.  (The child's frees do not touch the parent's heap: after fork
 *     the two address spaces are separate copies.)
 *   child (pid C, comm "forker")
 *     site                       api     count  bytes each  requested  live at exit
 *     child_keep <- main         malloc  50     2000        100000     50 blocks, 100000 bytes
 *     child_free_inherited       free    10     -           -          -
 *     The 10 frees are of blocks the child never allocated (they were allocated
 *     by the parent before the fork): a tracer that keeps a separate, initially
 *     empty heap model per pid sees them as 10 unknown frees in the child, and
 *     the child's live heap as exactly its own 50 blocks (100000 bytes).  The
 *     90 inherited blocks the child never frees are not attributed to it.
 *   A tracer attached at step 1 sees, for P: 100 mallocs, all live; for C: 50
 *   mallocs, all live, 10 unknown frees.
 *
 * Other allocations: none.  glibc's fork() runs malloc's atfork handlers (lock
 * and reset arenas), which do not allocate; pipe, read, close, kill, waitpid
 * and write(2) do not allocate.
 * Call chains: main -> parent_keep -> malloc; main -> child_keep -> malloc;
 * main -> child_free_inherited -> free.
 */
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handshake.h"

#define NPARENT 100
#define PARENT_SIZE 1000
#define NCHILD 50
#define CHILD_SIZE 2000
#define NFREED 10

void *volatile g_parent[NPARENT];
void *volatile g_child[NCHILD];

void parent_keep(void);
void child_keep(void);
void child_free_inherited(void);

HT_NOINLINE void parent_keep(void)
{
	for (int i = 0; i < NPARENT; i++)
		g_parent[i] = malloc(PARENT_SIZE);
}

HT_NOINLINE void child_keep(void)
{
	for (int i = 0; i < NCHILD; i++)
		g_child[i] = malloc(CHILD_SIZE);
}

HT_NOINLINE void child_free_inherited(void)
{
	for (int i = 0; i < NFREED; i++) {
		free(g_parent[i]);
		g_parent[i] = NULL;
	}
}

int main(void)
{
	char num[24], c;
	int fds[2], status = 0;
	pid_t child;

	ht_init();
	ht_ready();
	parent_keep();
	if (pipe(fds) != 0)
		return 1;
	child = fork();
	if (child < 0)
		return 1;
	if (child == 0) {
		close(fds[0]);
		child_keep();
		child_free_inherited();
		close(fds[1]);
		if (ht_waiting())
			ht_wait_usr1(); /* SIGUSR1 is still blocked: inherited mask */
		_exit(0);
	}
	close(fds[1]);
	for (;;) { /* until EOF: the child closed its end */
		ssize_t n = read(fds[0], &c, 1);

		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	close(fds[0]);
	ht_write("child ");
	ht_write(ht_utoa((unsigned long)child, num));
	ht_write("\n");
	ht_done();
	if (ht_waiting())
		kill(child, SIGUSR1);
	if (waitpid(child, &status, 0) != child)
		return 1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
