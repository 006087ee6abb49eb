/* ctor.c — an allocation made before main, by a constructor.
 *
 * Ground truth:
 *   site                          api     count  requested  live at exit
 *   ctor_alloc (constructor)      malloc  1      12345      1 x 12345
 *   frees: 0.
 * ctor_alloc runs from the dynamic loader / __libc_start_main's init array
 * walk, before main; main only runs the HT_WAIT handshake (so with HT_WAIT=1
 * the allocation already exists when "ready" is printed) and returns 0.
 *
 * Other allocations: none.
 */
#include <stdlib.h>

#include "handshake.h"

void *volatile g_ctor_block;

void ctor_alloc(void);

__attribute__((constructor)) HT_NOINLINE void ctor_alloc(void)
{
	g_ctor_block = malloc(12345);
}

int main(void)
{
	ht_init();
	ht_ready();
	ht_done();
	return 0;
}
