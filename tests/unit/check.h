/*
 * check.h: the assertion macros unit tests share.  A failed check prints file:line and
 * the expression (and both values for CHECK_EQ) and counts in `failures`; main() returns
 * non-zero when failures > 0.  Each test file gets its own counter.
 */
#ifndef HEAPTAP_TEST_CHECK_H
#define HEAPTAP_TEST_CHECK_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

static int failures;

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, \
				#cond);                                              \
			failures++;                                                  \
		}                                                                    \
	} while (0)

#define CHECK_EQ(a, b) check_eq((uint64_t)(a), (uint64_t)(b), #a, #b, __FILE__, __LINE__)

static inline bool check_eq(uint64_t a, uint64_t b, const char *as, const char *bs,
			    const char *file, int line)
{
	if (a == b)
		return true;
	fprintf(stderr, "%s:%d: check failed: %s == %s (%" PRIu64 " != %" PRIu64 ")\n", file,
		line, as, bs, a, b);
	failures++;
	return false;
}

#endif
