/* handshake.h — tiny, allocation-free helpers shared by the heaptap test targets.
 *
 * Handshake protocol (only when the environment variable HT_WAIT is exactly "1"):
 *   ht_init()   blocks SIGUSR1 (call it first thing in main);
 *   ht_ready()  writes "ready <pid>\n" to stdout, then waits for SIGUSR1;
 *   ht_done()   writes "done\n" to stdout, then waits for a second SIGUSR1,
 *               so a tracer can inspect the live heap of a still-running process.
 * Without HT_WAIT all three return at once and print nothing.
 *
 * Nothing here allocates: output uses write(2) directly (never stdio, whose
 * first use would malloc a buffer), getenv/getpid/sigprocmask/sigwait do not
 * allocate in glibc.  Usable from C (gnu11) and C++17.
 *
 * Each target's header comment gives its exact allocation ground truth.
 * Under valgrind every program also shows ~77 free(NULL) (and frees of
 * libc/libstdc++ internal blocks) at exit: valgrind runs __libc_freeres and
 * __gnu_cxx::__freeres, which a normal run never does.
 */
#ifndef HEAPTAP_TEST_HANDSHAKE_H
#define HEAPTAP_TEST_HANDSHAKE_H

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* For the functions tests look for in stacks: never inlined, cloned
 * (foo.constprop.0, foo.isra.0), merged with an identical function, or
 * otherwise analysed across the call boundary, so each is a real frame. */
#define HT_NOINLINE __attribute__((noinline, noipa))

static inline int ht_waiting(void)
{
	const char *v = getenv("HT_WAIT");

	return v && v[0] == '1' && v[1] == '\0';
}

/* Write all of s (no allocation, retries on EINTR and short writes). */
static inline void ht_write(const char *s)
{
	size_t len = strlen(s);

	while (len > 0) {
		ssize_t n = write(STDOUT_FILENO, s, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		s += n;
		len -= (size_t)n;
	}
}

/* Decimal rendering of v into buf (>= 21 bytes); returns buf. */
static inline char *ht_utoa(unsigned long v, char *buf)
{
	char tmp[21];
	int i = 0, j = 0;

	do {
		tmp[i++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (i > 0)
		buf[j++] = tmp[--i];
	buf[j] = '\0';
	return buf;
}

static inline void ht_init(void)
{
	sigset_t set;

	if (!ht_waiting())
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

static inline void ht_wait_usr1(void)
{
	sigset_t set;
	int sig = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (sigwait(&set, &sig) != 0 || sig != SIGUSR1)
		;
}

static inline void ht_ready(void)
{
	char num[24];

	if (!ht_waiting())
		return;
	ht_init(); /* idempotent; makes sure SIGUSR1 is blocked before "ready" */
	ht_write("ready ");
	ht_write(ht_utoa((unsigned long)getpid(), num));
	ht_write("\n");
	ht_wait_usr1();
}

static inline void ht_done(void)
{
	if (!ht_waiting())
		return;
	ht_write("done\n");
	ht_wait_usr1();
}

#endif /* HEAPTAP_TEST_HANDSHAKE_H */
