/*
 * json_writer: a streaming JSON emitter with correct string escaping and commas.  The
 * writer tracks nesting so callers write keys and values in order and never commas.
 */
#ifndef HEAPTAP_JSON_WRITER_H
#define HEAPTAP_JSON_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JW_MAX_DEPTH 32

struct json_writer {
	FILE *f;
	int depth;
	bool first[JW_MAX_DEPTH]; /* no member written yet at this depth */
	bool after_key;
	int indent; /* spaces per level; 0 = compact */
};

void jw_init(struct json_writer *w, FILE *f, int indent);
void jw_obj_begin(struct json_writer *w);
void jw_obj_end(struct json_writer *w);
void jw_arr_begin(struct json_writer *w);
void jw_arr_end(struct json_writer *w);
void jw_key(struct json_writer *w, const char *key);
void jw_str(struct json_writer *w, const char *s); /* NULL writes null */
void jw_u64(struct json_writer *w, uint64_t v);
void jw_i64(struct json_writer *w, int64_t v);
void jw_double(struct json_writer *w, double v);
void jw_bool(struct json_writer *w, bool v);
void jw_null(struct json_writer *w);
/* Hex string "0x..." for addresses (JSON numbers lose precision above 2^53). */
void jw_hex(struct json_writer *w, uint64_t v);

#endif
