/*
 * json_reader: a strict JSON (RFC 8259) parser into a tree, the reading half of
 * json_writer.h.  It rejects what a careless reader would let through: trailing garbage,
 * bad or unpaired escapes, \u0000, control characters in strings, NUL bytes, leading
 * zeros, "1." / ".5" / "+1", NaN and Infinity, trailing commas, duplicate keys, truncated
 * input and nesting deeper than the caller allows (recursion is bounded by it).  Bytes
 * >= 0x80 in strings are taken as they are (json_writer writes file names unchanged, so a
 * path that is not UTF-8 must survive a round trip).
 *
 * Numbers keep both readings: an integer without fraction or exponent is exact in u (or
 * i, when negative) up to 64 bits; every number also has its double d.
 *
 * Ownership: jr_parse() returns a tree the caller frees with jr_free(); every string,
 * array and object in it belongs to the tree.  Accessors return borrowed pointers.
 */
#ifndef HEAPTAP_JSON_READER_H
#define HEAPTAP_JSON_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum jr_type { JR_NULL, JR_BOOL, JR_NUMBER, JR_STRING, JR_ARRAY, JR_OBJECT };

struct jr_member;

struct jr_value {
	enum jr_type type;
	uint32_t line; /* where the value starts, 1-based */
	union {
		bool b;
		struct {
			double d;
			uint64_t u;  /* exact, when is_uint */
			int64_t i;   /* exact, when is_int (also set for small non-negative) */
			bool is_uint, is_int;
		} num;
		struct {
			char *s; /* NUL-terminated; never contains NUL */
			size_t len;
		} str;
		struct {
			struct jr_value *items;
			size_t n;
		} arr;
		struct {
			struct jr_member *members; /* in input order */
			size_t n;
		} obj;
	};
};

struct jr_member {
	char *key;
	struct jr_value value;
};

/*
 * Parses buf[0..len) as one JSON value (whitespace around it allowed, nothing else).
 * max_depth bounds the nesting of arrays and objects.  NULL on failure with a one-line
 * reason in err ("line 3: expected ':'", "line 12: truncated input") and errno EINVAL
 * (ENOMEM when out of memory).
 */
struct jr_value *jr_parse(const char *buf, size_t len, int max_depth, char *err, size_t errlen);
/* NULL-safe. */
void jr_free(struct jr_value *v);

/* The member key of object obj, or NULL (also when obj is not an object). */
const struct jr_value *jr_get(const struct jr_value *obj, const char *key);
/* Type name for messages: "null", "a boolean", "a number", ... */
const char *jr_type_name(enum jr_type t);

#endif
