/* demo.c — the program `make demo` traces: a toy request handler.
 *
 * It runs for about 2 seconds (200 iterations, 10 ms apart).  Each iteration
 * handles one "request":
 *   - parse_request / build_response: short-lived buffers of mixed sizes,
 *     freed before the next request (churn, nothing left behind);
 *   - session_cache_put: a bounded cache of 32 x 2 KiB slots; replacing a
 *     slot frees the old entry (long-lived, but does not grow);
 *   - cache_insert_leaky: the bug.  It allocates a 1 KiB index entry and
 *     forgets it: 1 KiB leaked per request.
 *
 * Ground truth (deterministic: fixed iteration count, fixed-seed sizes):
 *   function             mallocs  bytes each            bytes total  frees  live at exit
 *   parse_request        200      64 .. 8191 (varies)   807842       -      0
 *   build_response       200      2 x request size      1615684      -      0
 *   handle_request       -        -                     -            400    (frees both)
 *   session_cache_put    200      2048                  409600       168    32 x 2048 = 65536
 *   cache_insert_leaky   200      1024                  204800       0      200 x 1024 = 204800
 *   total                800                            3037926      568    232 blocks, 270336 bytes
 * session_cache_put also calls free(NULL) 32 times (the first fill of each
 * empty slot): 600 free() calls in all, 568 of them non-NULL.
 * Other allocations: none (output is write(2) only).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handshake.h"

#define REQUESTS 200
#define TICK_NS 10000000L /* 10 ms -> about 2 s in total */
#define CACHE_SLOTS 32
#define CACHE_ENTRY 2048
#define INDEX_ENTRY 1024

struct request {
	size_t len;
	char *body;
};

static uint32_t g_rng = 12345;
static void *g_cache[CACHE_SLOTS];
void *volatile g_sink;

/* Small deterministic generator so every run allocates the same sizes. */
static uint32_t next_rand(void)
{
	g_rng = g_rng * 1103515245u + 12345u;
	return g_rng >> 8;
}

void parse_request(struct request *req);
char *build_response(const struct request *req);
void handle_request(unsigned n);
void session_cache_put(unsigned n);
void cache_insert_leaky(unsigned n);
void serve(void);

HT_NOINLINE void parse_request(struct request *req)
{
	req->len = 64 + next_rand() % (8192 - 64);
	req->body = malloc(req->len);
	memset(req->body, 'r', req->len);
}

HT_NOINLINE char *build_response(const struct request *req)
{
	char *resp = malloc(req->len * 2);

	memcpy(resp, req->body, req->len);
	memcpy(resp + req->len, req->body, req->len);
	return resp;
}

HT_NOINLINE void handle_request(unsigned n)
{
	struct request req;
	char *resp;

	(void)n;
	parse_request(&req);
	resp = build_response(&req);
	g_sink = resp; /* "send" it */
	free(resp);
	free(req.body);
}

/* Bounded cache: slot reuse frees the previous entry. */
HT_NOINLINE void session_cache_put(unsigned n)
{
	unsigned slot = n % CACHE_SLOTS;

	free(g_cache[slot]);
	g_cache[slot] = malloc(CACHE_ENTRY);
	memset(g_cache[slot], (int)n, CACHE_ENTRY);
}

/* The leak: the entry is built but never linked anywhere, never freed. */
HT_NOINLINE void cache_insert_leaky(unsigned n)
{
	char *entry = malloc(INDEX_ENTRY);

	memset(entry, (int)n, INDEX_ENTRY);
	g_sink = entry; /* ...and the pointer is forgotten */
}

HT_NOINLINE void serve(void)
{
	struct timespec tick = { 0, TICK_NS };

	for (unsigned n = 0; n < REQUESTS; n++) {
		handle_request(n);
		session_cache_put(n);
		cache_insert_leaky(n);
		nanosleep(&tick, NULL);
	}
}

int main(void)
{
	ht_init();
	ht_ready();
	ht_write("demo: handling 200 requests over ~2 s...\n");
	serve();
	ht_write("demo: done (cache_insert_leaky leaked 200 KiB)\n");
	ht_done();
	return 0;
}
