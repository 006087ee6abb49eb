/* prefree.c — frees of blocks allocated before a tracer attached.
 *
 * Sequence:
 *   1. early_alloc: 10 x malloc(333)            (before the handshake)
 *   2. HT_WAIT handshake ("ready <pid>", wait for SIGUSR1): attach here
 *   3. late_free:   free() of those 10 blocks   (addresses unknown to a
 *                                                tracer that attached in 2)
 *   4. late_alloc:  5 x malloc(444), kept
 *   5. "done" handshake, exit 0.
 *
 * Ground truth, whole run:
 *   site          api     count  requested  live at exit
 *   early_alloc   malloc  10     3330       0
 *   late_free     free    10     -          -
 *   late_alloc    malloc  5      2220       5 x 444 = 2220
 * Seen by a tracer attached at step 2: 5 mallocs (2220 bytes, all live),
 * 10 frees of unknown addresses.
 *
 * Other allocations: none.
 */
#include <stdlib.h>

#include "handshake.h"

void *volatile g_early[10];
void *volatile g_late[5];

void early_alloc(void);
void late_free(void);
void late_alloc(void);

HT_NOINLINE void early_alloc(void)
{
	for (int i = 0; i < 10; i++)
		g_early[i] = malloc(333);
}

HT_NOINLINE void late_free(void)
{
	for (int i = 0; i < 10; i++) {
		free(g_early[i]);
		g_early[i] = NULL;
	}
}

HT_NOINLINE void late_alloc(void)
{
	for (int i = 0; i < 5; i++)
		g_late[i] = malloc(444);
}

int main(void)
{
	ht_init();
	early_alloc();
	ht_ready();
	late_free();
	late_alloc();
	ht_done();
	return 0;
}
