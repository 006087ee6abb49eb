/* spawner.c — many short-lived processes, one after another.
 *
 * Usage: spawner N CMD [ARG...]
 *   Runs CMD N times sequentially: fork(), then in the child unsetenv("HT_WAIT")
 *   and execv(CMD) (execvp when CMD has no '/'), waiting for each child before
 *   starting the next.  Prints "spawned <pid>\n" for each child as it starts it.
 *   Exits 0 when every child exited 0, 1 otherwise (a child that could not exec
 *   exits 127), 2 on bad usage.
 *   With HT_WAIT=1 the spawner itself does the handshake: "ready <pid>", wait
 *   for SIGUSR1, spawn the N children, "done", wait for SIGUSR1, exit.  Its
 *   children never see HT_WAIT (it is removed before exec), so a target run as
 *   CMD runs straight through without waiting.
 *
 * Ground truth:
 *   spawner itself: no allocations (strtoul, fork, unsetenv, execv, waitpid and
 *   write(2) do not allocate; unsetenv only runs in the child, before exec).
 *   Each child: exactly what CMD does when run without HT_WAIT; e.g.
 *   `spawner 200 build/targets/leak` makes 200 processes with comm "leak", each
 *   1000 x malloc(4096) in leak_here, all live at its exit (see leak.c).
 *   Between fork and exec a child runs spawner's code under comm "spawner" and
 *   allocates nothing.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "handshake.h"

void spawn_all(unsigned long n, char **cmd);
int spawn_one(char **cmd);

/* 1 if the child ran and exited 0. */
HT_NOINLINE int spawn_one(char **cmd)
{
	char num[24];
	int status = 0;
	pid_t pid = fork();

	if (pid < 0)
		return 0;
	if (pid == 0) {
		unsetenv("HT_WAIT");
		if (strchr(cmd[0], '/'))
			execv(cmd[0], cmd);
		else
			execvp(cmd[0], cmd);
		_exit(127);
	}
	ht_write("spawned ");
	ht_write(ht_utoa((unsigned long)pid, num));
	ht_write("\n");
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int g_failed;

HT_NOINLINE void spawn_all(unsigned long n, char **cmd)
{
	for (unsigned long i = 0; i < n; i++)
		if (!spawn_one(cmd))
			g_failed = 1;
}

int main(int argc, char **argv)
{
	char *end;
	unsigned long n;

	ht_init();
	if (argc < 3) {
		ht_write("usage: spawner N CMD [ARG...]\n");
		return 2;
	}
	n = strtoul(argv[1], &end, 10);
	if (*argv[1] == '\0' || *end != '\0') {
		ht_write("spawner: N must be a number\n");
		return 2;
	}
	ht_ready();
	spawn_all(n, argv + 2);
	ht_done();
	return g_failed ? 1 : 0;
}
