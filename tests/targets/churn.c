/* churn.c — N malloc/free pairs, nothing live at the end.
 *
 * Usage: churn [N]   (N defaults to 1000000)
 * Iteration i (0 <= i < N) calls churn_pair(16 + (i % 256) * 16): one
 * malloc of that size immediately freed.  Sizes cycle 16, 32, ..., 4096.
 *
 * Ground truth for N:
 *   site                        api     count  requested bytes      live at exit
 *   churn_pair <- do_churn      malloc  N      S(N) (see below)     0
 *   churn_pair <- do_churn      free    N      -                    -
 *   S(N) = 526336 * (N / 256) + 16 * r + 8 * r * (r - 1),  r = N % 256
 *   (526336 = sum of one full cycle 16..4096.)
 *   N = 1000000: S = 2055901696 bytes (3906 full cycles + 64).
 *   N = 1000:    S = 2011456 bytes.
 *   N = 256:     S = 526336 bytes.
 * Call chain: main -> do_churn -> churn_pair -> malloc / free.
 *
 * Other allocations: none (strtoul and write(2) do not allocate).  Prints
 * nothing except the HT_WAIT handshake lines.
 */
#include <stdlib.h>

#include "handshake.h"

void *volatile g_sink;

void churn_pair(size_t size);
void do_churn(unsigned long n);

HT_NOINLINE void churn_pair(size_t size)
{
	void *p = malloc(size);

	g_sink = p; /* escapes: the malloc/free pair cannot be elided */
	free(p);
}

HT_NOINLINE void do_churn(unsigned long n)
{
	for (unsigned long i = 0; i < n; i++)
		churn_pair(16 + (i % 256) * 16);
}

int main(int argc, char **argv)
{
	unsigned long n = 1000000;

	ht_init();
	if (argc > 1)
		n = strtoul(argv[1], NULL, 10);
	ht_ready();
	do_churn(n);
	ht_done();
	return 0;
}
