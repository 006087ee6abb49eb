/* libcalls.c — allocations made inside libc (Debian's libc is built without frame
 * pointers), each reached from a named function of this program.
 *
 * Ground truth (glibc 2.36, Debian 12; the sizes are glibc's own requests, checked with
 * ltrace -e malloc+realloc+free and gdb backtraces):
 *   function (noinline)  call, in order                    allocator calls inside libc      live at exit
 *   -------------------  --------------------------------  -------------------------------  ------------
 *   dup_names            strdup(NAME) x 20, all kept       malloc(32) x 20 (in strdup)      20 x 32
 *   open_devnull         fopen("/dev/null", "r") x 1       malloc(472) (in fopen)           1 x 472
 *   read_line            getline(&line, &cap, f) x 1       malloc(120) (in getdelim: line)  1 x 120
 *                        (at EOF: returns -1)              malloc(4096) (in getdelim, via   0
 *                                                          _IO_file_doallocate: stdio
 *                                                          buffer of /dev/null, freed by
 *                                                          fclose)
 *   close_devnull        fclose(f)                         free(4096 buffer), free(FILE)    -
 *   Totals: 23 allocations (20 + 1 + 2), 5328 bytes requested; 2 frees;
 *           live at exit 21 blocks: 20 x 32 + 120 = 760 bytes (the line buffer is kept).
 * Call chains (innermost first; libc's internal frames in brackets, as CFI unwinds them):
 *   malloc <- [strdup] <- dup_names <- main
 *   malloc <- [__fopen_internal <- fopen] <- open_devnull <- main
 *   malloc <- [getdelim] <- read_line <- main
 *   malloc <- [_IO_file_doallocate <- _IO_doallocbuf <- _IO_file_underflow <- __underflow
 *            <- getdelim] <- read_line <- main
 * A frame-pointer walk loses the named function in every one of them: libc's functions
 * leave %rbp alone or use it as a scratch register, so the walk goes from the first libc
 * frame to main's caller, or off into garbage.
 *
 * Other allocations: none (output is write(2) only).  Exit status 0; 1 if a call fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"

#define NNAMES 20
#define NAME "a name of thirty-one characters" /* 31 + NUL: strdup mallocs 32 */

char *volatile g_names[NNAMES];
char *volatile g_line;
static int g_bad;

void dup_names(void);
FILE *open_devnull(void);
void read_line(FILE *f);
void close_devnull(FILE *f);

HT_NOINLINE void dup_names(void)
{
	for (int i = 0; i < NNAMES; i++) {
		g_names[i] = strdup(NAME);
		g_bad |= !g_names[i];
	}
}

HT_NOINLINE FILE *open_devnull(void)
{
	FILE *f = fopen("/dev/null", "r");

	g_bad |= !f;
	return f;
}

HT_NOINLINE void read_line(FILE *f)
{
	char *line = NULL;
	size_t cap = 0;

	/* /dev/null is at EOF at once: getline still allocates its line buffer (120 bytes)
	 * and, reading, the stream's buffer. */
	g_bad |= getline(&line, &cap, f) != -1 || !line;
	g_line = line;
}

HT_NOINLINE void close_devnull(FILE *f)
{
	g_bad |= fclose(f) != 0;
}

int main(void)
{
	FILE *f;

	ht_init();
	ht_ready();
	dup_names();
	f = open_devnull();
	if (f) {
		read_line(f);
		close_devnull(f);
	}
	ht_done();
	if (g_bad)
		ht_write("libcalls: a libc call failed\n");
	return g_bad;
}
