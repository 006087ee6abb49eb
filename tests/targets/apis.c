/* apis.c — every glibc allocation API once, with exactly known outcomes.
 *
 * "requested bytes" = the size argument (calloc: n * size; reallocarray:
 * n * size).  A successful realloc(p != NULL, n > 0) counts as one allocation
 * of n bytes plus one release of p (whether or not the block moved).
 *
 *  function (noinline)   call(s), in order                    allocs  requested  releases  live at exit
 *  --------------------  -----------------------------------  ------  ---------  --------  ----------------------
 *  calloc_kept           calloc(10, 100)                      1       1000       0         1 x 1000
 *  realloc_grow          p = malloc(100)                      1       100        0         -
 *                        p = realloc(p, 200)                  1       200        1 (100)   -
 *                        p = realloc(p, 100000)               1       100000     1 (200)   1 x 100000
 *  realloc_null          realloc(NULL, 50)                    1       50         0         1 x 50
 *  realloc_zero          p = malloc(70)                       1       70         0         -
 *                        realloc(p, 0) -> NULL, frees p       0       -          1 (70)    -
 *  realloc_fail          q = malloc(64)                       1       64         0         1 x 64 (q)
 *                        realloc(q, SIZE_MAX / 2) -> NULL     FAILED (q untouched, still live)
 *  reallocarray_kept     reallocarray(NULL, 8, 16)            1       128        0         1 x 128
 *  posix_memalign_kept   posix_memalign(&p, 64, 1000)         1       1000       0         1 x 1000
 *  aligned_alloc_kept    aligned_alloc(256, 512)              1       512        0         1 x 512
 *  memalign_kept         memalign(128, 300)                   1       300        0         1 x 300
 *  valloc_kept           valloc(5000)                         1       5000       0         1 x 5000
 *  pvalloc_kept          pvalloc(100)                         1       100        0         1 x 100 (usable 4096)
 *  calloc_overflow       calloc(SIZE_MAX, 16) -> NULL         FAILED (n * size overflows)
 *
 *  Totals: successful allocations 13, requested 108524 bytes;
 *          releases 3 (all by realloc; 370 bytes: 100 + 200 + 70), free() calls 0;
 *          live at exit 10 blocks, 108154 bytes;
 *          failed calls 2 (realloc_fail's realloc, calloc_overflow's calloc).
 *
 *  Calls per public API as made by this program (entry counts):
 *    malloc 3 (100, 70, 64)   calloc 2 (1 fails)   realloc 5 (200, 100000, NULL->50,
 *    p->0, fail)   reallocarray 1   posix_memalign 1   aligned_alloc 1   memalign 1
 *    valloc 1   pvalloc 1   free 0.
 *
 *  glibc 2.36 (Debian 12) internals a uprobe-based tracer will also see:
 *    - realloc(NULL, n) tail-jumps to malloc's entry: a malloc uprobe fires too
 *      (inside realloc_null's realloc);
 *    - realloc(p, 0) calls free(p) internally: a free uprobe fires too;
 *    - reallocarray calls realloc through the PLT: a realloc uprobe fires too;
 *    - aligned_alloc and memalign are the SAME address (aliases of
 *      __libc_memalign); valloc, pvalloc, posix_memalign and memalign all go
 *      through the unexported _mid_memalign, not through malloc's entry.
 *    (valgrind replaces the functions wholesale, so it shows only the
 *    program's own calls.)
 *  Libc-level entry counts of a whole run (bpftrace uprobes on libc.so.6):
 *    malloc 5 (412 bytes: 100, 50 via realloc, 70, 64, 128 via reallocarray),
 *    calloc 2, realloc 6 (one via reallocarray), free 1 (via realloc(p, 0)),
 *    memalign==aligned_alloc 2, posix_memalign 1, valloc 1, pvalloc 1,
 *    reallocarray 1.
 *  valgrind 3.19 cannot run this program to the end: it aborts at pvalloc
 *  ("Program aborting because of call to pvalloc"), exit status 1.  Up to
 *  there its trace matches the table.
 *
 * Other allocations: none (output is write(2) only, and only on failure).
 * Exit status 0; 1 (with a message on stdout) if any outcome above differs,
 * e.g. on a libc whose realloc(p, 0) does not free.
 */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>

#include "handshake.h"

/* Every block kept alive lives here, so nothing can be elided. */
void *volatile g_keep[16];
static volatile unsigned g_nkeep;
/* Opaque sizes: keep gcc from constant-folding the failing calls (and from
 * warning about them under -Walloc-size-larger-than, so no -Wno-... needed). */
static volatile size_t g_huge_realloc = SIZE_MAX / 2;
static volatile size_t g_huge_calloc = SIZE_MAX;
/* Opaque NULL: gcc rewrites a literal realloc(NULL, n) into malloc(n). */
static void *volatile g_null;
static int g_bad;

static void keep(void *p)
{
	g_keep[g_nkeep++] = p;
}

static void check(int ok, const char *what)
{
	if (!ok) {
		ht_write("apis: unexpected result: ");
		ht_write(what);
		ht_write("\n");
		g_bad = 1;
	}
}

void calloc_kept(void);
void realloc_grow(void);
void realloc_null(void);
void realloc_zero(void);
void realloc_fail(void);
void reallocarray_kept(void);
void posix_memalign_kept(void);
void aligned_alloc_kept(void);
void memalign_kept(void);
void valloc_kept(void);
void pvalloc_kept(void);
void calloc_overflow(void);

HT_NOINLINE void calloc_kept(void)
{
	void *p = calloc(10, 100);

	check(p != NULL, "calloc(10, 100)");
	keep(p);
}

HT_NOINLINE void realloc_grow(void)
{
	void *volatile p;

	p = malloc(100);
	check(p != NULL, "malloc(100)");
	p = realloc(p, 200);
	check(p != NULL, "realloc(p, 200)");
	p = realloc(p, 100000);
	check(p != NULL, "realloc(p, 100000)");
	keep(p);
}

HT_NOINLINE void realloc_null(void)
{
	void *p = realloc(g_null, 50);

	check(p != NULL, "realloc(NULL, 50)");
	keep(p);
}

HT_NOINLINE void realloc_zero(void)
{
	void *volatile p = malloc(70);
	void *r;

	check(p != NULL, "malloc(70)");
	r = realloc(p, 0);
	check(r == NULL, "realloc(p, 0) did not return NULL");
	if (r)
		keep(r);
}

HT_NOINLINE void realloc_fail(void)
{
	void *q = malloc(64);
	void *r;

	check(q != NULL, "malloc(64)");
	keep(q);
	r = realloc(q, g_huge_realloc);
	check(r == NULL, "realloc(q, SIZE_MAX / 2) succeeded");
	if (r)
		keep(r);
}

HT_NOINLINE void reallocarray_kept(void)
{
	void *p = reallocarray(NULL, 8, 16);

	check(p != NULL, "reallocarray(NULL, 8, 16)");
	keep(p);
}

HT_NOINLINE void posix_memalign_kept(void)
{
	void *p = NULL;
	int rc = posix_memalign(&p, 64, 1000);

	check(rc == 0 && p != NULL, "posix_memalign(&p, 64, 1000)");
	keep(p);
}

HT_NOINLINE void aligned_alloc_kept(void)
{
	void *p = aligned_alloc(256, 512);

	check(p != NULL, "aligned_alloc(256, 512)");
	keep(p);
}

HT_NOINLINE void memalign_kept(void)
{
	void *p = memalign(128, 300);

	check(p != NULL, "memalign(128, 300)");
	keep(p);
}

HT_NOINLINE void valloc_kept(void)
{
	void *p = valloc(5000);

	check(p != NULL, "valloc(5000)");
	keep(p);
}

HT_NOINLINE void pvalloc_kept(void)
{
	void *p = pvalloc(100);

	check(p != NULL, "pvalloc(100)");
	keep(p);
}

HT_NOINLINE void calloc_overflow(void)
{
	void *p = calloc(g_huge_calloc, 16);

	check(p == NULL, "calloc(SIZE_MAX, 16) succeeded");
	if (p)
		keep(p);
}

int main(void)
{
	ht_init();
	ht_ready();
	calloc_kept();
	realloc_grow();
	realloc_null();
	realloc_zero();
	realloc_fail();
	reallocarray_kept();
	posix_memalign_kept();
	aligned_alloc_kept();
	memalign_kept();
	valloc_kept();
	pvalloc_kept();
	calloc_overflow();
	ht_done();
	return g_bad;
}
