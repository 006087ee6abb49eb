/* sigalloc.c — allocations made in a signal handler, for unwinding through a signal frame.
 *
 * Ground truth:
 *   site                                         api     count  bytes each  live at exit
 *   alloc_in_handler <- on_signal <- (signal
 *   frame) <- raise <- raise_signals <- main     malloc  10     64          10 x 64 = 640
 *   frees: 0.  Other allocations: none (output is write(2) only).
 * raise_signals() raises SIGUSR2 10 times; each delivery runs on_signal() on the same
 * stack, below the kernel's signal frame, which calls alloc_in_handler() -> malloc(64).
 * Call chain of every block, innermost first (libc's frames in brackets):
 *   malloc <- alloc_in_handler <- on_signal <- [__restore_rt <- the interrupted raise]
 *          <- raise_signals <- main
 * Unwinding crosses the signal frame with __restore_rt's CFI (a signal frame: the
 * interrupted registers are read from the ucontext on the stack).
 */
#include <signal.h>
#include <stdlib.h>

#include "handshake.h"

#define NSIGNALS 10

void *volatile g_blocks[NSIGNALS];
static volatile sig_atomic_t g_n;

void alloc_in_handler(void);
void on_signal(int sig);
void raise_signals(void);

HT_NOINLINE void alloc_in_handler(void)
{
	g_blocks[g_n % NSIGNALS] = malloc(64); /* SIG_LINE */
	g_n++;
}

HT_NOINLINE void on_signal(int sig)
{
	(void)sig;
	alloc_in_handler();
}

HT_NOINLINE void raise_signals(void)
{
	for (int i = 0; i < NSIGNALS; i++)
		raise(SIGUSR2);
}

int main(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	ht_init();
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL))
		return 1;
	ht_ready();
	raise_signals();
	ht_done();
	return g_n == NSIGNALS ? 0 : 1;
}
