#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "launch.h"
#include "log.h"

static bool is_executable(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISREG(st.st_mode) && !access(p, X_OK);
}

int launch__resolve(const char *cmd, char **path)
{
	const char *env = getenv("PATH"), *p;
	int err = -ENOENT;

	*path = NULL;
	if (strchr(cmd, '/')) {
		if (!is_executable(cmd))
			return access(cmd, F_OK) ? -ENOENT : -EACCES;
		*path = strdup(cmd);
		return *path ? 0 : -ENOMEM;
	}
	for (p = env ? env : "/usr/local/bin:/usr/bin:/bin"; *p;) {
		size_t len = strcspn(p, ":");
		char cand[PATH_MAX];

		snprintf(cand, sizeof(cand), "%.*s/%s", (int)(len ? len : 1), len ? p : ".", cmd);
		if (is_executable(cand)) {
			*path = strdup(cand);
			return *path ? 0 : -ENOMEM;
		}
		if (!access(cand, F_OK))
			err = -EACCES;
		p += len + (p[len] == ':');
	}
	return err;
}

int launch__spawn(struct ht_child *c, const char *path, char *const argv[])
{
	int go[2], er[2];

	*c = (struct ht_child){ .pid = -1, .go_fd = -1, .err_fd = -1 };
	if (pipe2(go, O_CLOEXEC))
		return -errno;
	if (pipe2(er, O_CLOEXEC)) {
		int err = -errno;

		close(go[0]);
		close(go[1]);
		return err;
	}
	c->pid = fork();
	if (c->pid < 0) {
		int err = -errno;

		close(go[0]), close(go[1]), close(er[0]), close(er[1]);
		return err;
	}
	if (c->pid == 0) {
		sigset_t none;
		char b;
		int e;

		/* heaptap blocks these to read them from a signalfd; the command must not
		 * inherit that. */
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		close(go[1]);
		close(er[0]);
		if (read(go[0], &b, 1) != 1)
			_exit(127);
		execv(path, argv);
		e = errno;
		if (write(er[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(go[0]);
	close(er[1]);
	c->go_fd = go[1];
	c->err_fd = er[0];
	return 0;
}

int launch__release(struct ht_child *c)
{
	ssize_t n;
	int e = 0;

	if (!ptrace(PTRACE_SEIZE, c->pid, 0, (void *)(long)PTRACE_O_TRACEEXIT))
		c->traced = true;
	else
		log_warn("cannot ptrace the command (%s): stacks from its last milliseconds may "
			 "stay unsymbolized", strerror(errno));
	if (write(c->go_fd, "g", 1) != 1)
		return -errno;
	close(c->go_fd);
	c->go_fd = -1;
	do
		n = read(c->err_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(c->err_fd);
	c->err_fd = -1;
	return n == sizeof(e) ? -e : 0;
}

bool launch__poll(struct ht_child *c, void (*at_exit)(void *arg), void *arg)
{
	int status;
	pid_t r;

	while (!c->exited && (r = waitpid(c->pid, &status, WNOHANG | __WALL)) > 0) {
		if (WIFEXITED(status)) {
			c->exited = true;
			c->exit_code = WEXITSTATUS(status);
		} else if (WIFSIGNALED(status)) {
			c->exited = true;
			c->exit_code = 128 + WTERMSIG(status);
		} else if (WIFSTOPPED(status)) {
			int sig = WSTOPSIG(status), event = (unsigned)status >> 16;

			if (sig == SIGTRAP && event == PTRACE_EVENT_EXIT) {
				at_exit(arg);
				ptrace(PTRACE_DETACH, c->pid, 0, 0);
				c->traced = false;
			} else if (event == PTRACE_EVENT_STOP) {
				/* group stop (SIGSTOP and friends): stay stopped like untraced */
				ptrace(PTRACE_LISTEN, c->pid, 0, 0);
			} else {
				/* a signal on its way to the command: deliver it */
				ptrace(PTRACE_CONT, c->pid, 0, (void *)(long)sig);
			}
		}
	}
	return c->exited;
}

void launch__abort(struct ht_child *c)
{
	if (!c || c->pid <= 0 || c->exited)
		return;
	if (c->go_fd >= 0) {
		close(c->go_fd);
		c->go_fd = -1;
	}
	if (c->err_fd >= 0) {
		close(c->err_fd);
		c->err_fd = -1;
	}
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, __WALL);
	c->exited = true;
}
