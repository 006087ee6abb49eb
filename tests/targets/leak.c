/* leak.c — 1000 leaked 4 KiB blocks from one call site.
 *
 * Ground truth (what the program itself asks the allocator for):
 *   site                       api     count  bytes each  requested  live at exit
 *   leak_here <- do_leaks      malloc  1000   4096        4096000    1000 blocks, 4096000 bytes
 *   frees: 0.
 * The malloc call is the only line of this file carrying the marker comment
 * LEAK_ + LINE (spelled apart here so that grep finds just that line).
 * Call chain: main -> do_leaks -> leak_here -> malloc.
 *
 * Other allocations: none.  Output is write(2) only; glibc's startup makes no
 * malloc call in a dynamically linked program (checked with valgrind
 * --trace-malloc=yes: exactly 1000 mallocs, 0 frees).
 *
 * Built as leak (PIE, frame pointers), leak-nofp, leak-nopie, leak-static,
 * leak-stripped (strip of leak) and leak-static-stripped (strip of leak-static).
 * The static variants use the malloc linked into the binary itself, and
 * static glibc's startup (__libc_start_main -> __libc_init_first ->
 * _dl_non_dynamic_init) allocates before main, never freed: malloc 160
 * (_dl_find_object_init), 40 and 320 (_dl_init_paths), 26 (_dl_get_origin)
 * and calloc(1225, 1) (_dl_new_object): 5 blocks, 1771 bytes, live at exit.
 */
#include <stdlib.h>

#include "handshake.h"

#define NLEAKS 1000
#define LEAK_SIZE 4096

void *volatile g_leaks[NLEAKS];
static volatile unsigned g_nleaks;

void leak_here(void);
void do_leaks(void);

HT_NOINLINE void leak_here(void)
{
	g_leaks[g_nleaks++ % NLEAKS] = malloc(LEAK_SIZE); /* LEAK_LINE */
}

HT_NOINLINE void do_leaks(void)
{
	for (int i = 0; i < NLEAKS; i++)
		leak_here();
}

int main(void)
{
	ht_init();
	ht_ready();
	do_leaks();
	ht_done();
	return 0;
}
