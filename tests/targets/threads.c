/* threads.c — 4 threads allocating concurrently from one call site.
 *
 * After the handshake, main starts 4 pthreads (ID 0..3) and joins them.
 * Thread ID calls thread_alloc(ID): 10000 x malloc(ID * 100 + 100), then
 * frees all of them except the first 10, then the thread exits.
 *
 * Ground truth for thread_alloc (call chain: thread_main -> thread_alloc):
 *   thread  size  mallocs  requested   frees  live at exit
 *   0       100   10000    1000000     9990   10 x 100 =  1000
 *   1       200   10000    2000000     9990   10 x 200 =  2000
 *   2       300   10000    3000000     9990   10 x 300 =  3000
 *   3       400   10000    4000000     9990   10 x 400 =  4000
 *   total         40000    10000000    39960  40 blocks, 10000 bytes
 * All frees of a thread are made by that thread (same tid as its mallocs).
 *
 * Other allocator calls (glibc 2.36, Debian 12; checked with valgrind
 * --trace-malloc=yes, bpftrace uprobes on libc and gdb backtraces):
 *   - 4 x calloc(17, 16) = 272 bytes each, one per pthread_create: the new
 *     thread's DTV (dynamic thread vector), chain main -> start_threads ->
 *     pthread_create -> allocate_stack -> _dl_allocate_tls -> allocate_dtv
 *     -> calloc (ld.so calls libc's calloc).  17 = 1 TLS module + 14 surplus
 *     + 2, so the size changes if more TLS-using libraries are loaded.
 *     Never freed (the exited threads' stacks and DTVs stay in glibc's stack
 *     cache): live at exit, 4 blocks, 1088 bytes.  Thread stacks are mmap'ed.
 *   - at each thread's exit, start_thread -> __libc_thread_freeres:
 *       2 x free(NULL) (__glibc_tls_internal_free), and
 *       tcache_thread_shutdown -> 8 x free(non-NULL): the 7 chunks sitting
 *       in the thread's tcache (blocks thread_alloc ALREADY freed, so a
 *       tracer sees a second free of those addresses) and the tcache struct
 *       itself (allocated internally, never returned by a public malloc).
 *     In total 8 x free(NULL) and 32 frees of addresses that are not live
 *     from the tracer's point of view; a tracer must ignore them.
 *   Libc-level totals: malloc 40000, calloc 4, free 39992 non-NULL + 8 NULL;
 *   live at exit 44 blocks, 11088 bytes.
 *   Per-thread malloc arenas are created with mmap, not public malloc.
 * valgrind shows 40004 allocs / 39964 frees: valgrind replaces the allocator,
 * so there is no tcache shutdown, and its __libc_freeres at exit frees the
 * 4 DTVs (plus many free(NULL)); both are valgrind-only.
 * Link with -pthread.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "handshake.h"

#define NTHREADS 4
#define NALLOCS 10000
#define NKEEP 10

static void *volatile g_blocks[NTHREADS][NALLOCS];

void thread_alloc(unsigned id);
void start_threads(void);

HT_NOINLINE void thread_alloc(unsigned id)
{
	size_t size = (size_t)id * 100 + 100;

	for (int i = 0; i < NALLOCS; i++)
		g_blocks[id][i] = malloc(size);
	for (int i = NKEEP; i < NALLOCS; i++) {
		free(g_blocks[id][i]);
		g_blocks[id][i] = NULL;
	}
}

static void *thread_main(void *arg)
{
	thread_alloc((unsigned)(uintptr_t)arg);
	return NULL;
}

HT_NOINLINE void start_threads(void)
{
	pthread_t tids[NTHREADS];

	for (unsigned id = 0; id < NTHREADS; id++)
		if (pthread_create(&tids[id], NULL, thread_main, (void *)(uintptr_t)id) != 0)
			exit(1);
	for (unsigned id = 0; id < NTHREADS; id++)
		pthread_join(tids[id], NULL);
}

int main(void)
{
	ht_init();
	ht_ready();
	start_threads();
	ht_done();
	return 0;
}
