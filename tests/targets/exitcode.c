/* exitcode.c — one allocation, then exit status 7.
 *
 * Ground truth:
 *   site         api     count  requested  live at exit
 *   alloc_one    malloc  1      10         1 x 10
 * Exit status: 7 (returned from main, i.e. a normal exit(7)).
 *
 * Other allocations: none.
 */
#include <stdlib.h>

#include "handshake.h"

void *volatile g_block;

void alloc_one(void);

HT_NOINLINE void alloc_one(void)
{
	g_block = malloc(10);
}

int main(void)
{
	ht_init();
	ht_ready();
	alloc_one();
	ht_done();
	return 7;
}
