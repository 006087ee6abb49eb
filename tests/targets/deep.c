/* deep.c — a leak 8 calls deep in the program's own functions, for stack unwinding.
 *
 * Ground truth (what the program itself asks the allocator for):
 *   site                          api     count  bytes each  requested  live at exit
 *   deep_8 <- deep_7 <- ... <- deep_1 <- main
 *                                 malloc  500    256         128000     500 blocks, 128000 bytes
 *   frees: 0.  Other allocations: none (output is write(2) only).
 * Call chain of every block, innermost first (each a real frame, HT_NOINLINE):
 *   malloc <- deep_8 <- deep_7 <- deep_6 <- deep_5 <- deep_4 <- deep_3 <- deep_2
 *          <- deep_1 <- main
 * deep_K keeps six values live across its call (so the no-FP build spends every callee-saved
 * register on them, %rbp included) and a volatile buffer of K * 64 bytes (so the frames differ
 * in size and the CFA moves): the frames of deep_1..deep_8 add up to more than 2304 bytes
 * of stack, more than 512 (the smallest --stack-bytes) and less than 8192 (the default).
 *
 * Built as deep (-O1, frame pointers) and deep-nofp (-O2 -fomit-frame-pointer): a frame-
 * pointer walk of deep-nofp sees deep_8 (the IP at malloc's return) and then whatever %rbp
 * holds; only CFI unwinding gets the chain.
 */
#include <stdlib.h>

#include "handshake.h"

#define NBLOCKS 500
#define BLOCK_SIZE 256

void *volatile g_blocks[NBLOCKS];
static volatile unsigned g_nblocks;
volatile unsigned g_sink;

unsigned deep_1(unsigned i);
unsigned deep_2(unsigned i);
unsigned deep_3(unsigned i);
unsigned deep_4(unsigned i);
unsigned deep_5(unsigned i);
unsigned deep_6(unsigned i);
unsigned deep_7(unsigned i);
unsigned deep_8(unsigned i);

HT_NOINLINE unsigned deep_8(unsigned i)
{
	volatile char pad[8 * 64];

	pad[0] = (char)i;
	g_blocks[g_nblocks++ % NBLOCKS] = malloc(BLOCK_SIZE); /* DEEP_LINE */
	return pad[0] + i;
}

/* Level K: a frame of K * 64 bytes, six values live across the call to level K + 1. */
#define DEEP_LEVEL(K, NEXT)                                                             \
	HT_NOINLINE unsigned deep_##K(unsigned i)                                       \
	{                                                                               \
		volatile char pad[K * 64];                                              \
		unsigned a = i * K + 1, b = i ^ (0x55u * K), c = i + 7 * K, d = i * i,  \
			 e = i << K, f = i | (9u * K), r;                               \
                                                                                        \
		pad[0] = (char)i;                                                       \
		r = NEXT(i + (unsigned)pad[0] - (unsigned)(char)i);                     \
		return r + (a ^ b) + (c * d) + (e - f) + a * f + b * e;                 \
	}

DEEP_LEVEL(7, deep_8)
DEEP_LEVEL(6, deep_7)
DEEP_LEVEL(5, deep_6)
DEEP_LEVEL(4, deep_5)
DEEP_LEVEL(3, deep_4)
DEEP_LEVEL(2, deep_3)
DEEP_LEVEL(1, deep_2)

int main(void)
{
	ht_init();
	ht_ready();
	for (unsigned i = 0; i < NBLOCKS; i++)
		g_sink += deep_1(i);
	ht_done();
	return 0;
}
