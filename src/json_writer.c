#include <inttypes.h>
#include <math.h>

#include "json_writer.h"

void jw_init(struct json_writer *w, FILE *f, int indent)
{
	*w = (struct json_writer){ .f = f, .indent = indent };
	w->first[0] = true;
}

static void newline(struct json_writer *w)
{
	if (!w->indent)
		return;
	fputc('\n', w->f);
	for (int i = 0; i < w->depth * w->indent; i++)
		fputc(' ', w->f);
}

/* Separator before a value or key at the current depth. */
static void sep(struct json_writer *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (!w->first[w->depth])
		fputc(',', w->f);
	w->first[w->depth] = false;
	if (w->depth)
		newline(w);
}

static void open_scope(struct json_writer *w, char c)
{
	sep(w);
	fputc(c, w->f);
	if (w->depth < JW_MAX_DEPTH - 1)
		w->depth++;
	w->first[w->depth] = true;
}

static void close_scope(struct json_writer *w, char c)
{
	bool empty = w->first[w->depth];

	if (w->depth)
		w->depth--;
	if (!empty)
		newline(w);
	fputc(c, w->f);
	if (!w->depth && w->indent)
		fputc('\n', w->f);
}

void jw_obj_begin(struct json_writer *w)
{
	open_scope(w, '{');
}

void jw_obj_end(struct json_writer *w)
{
	close_scope(w, '}');
}

void jw_arr_begin(struct json_writer *w)
{
	open_scope(w, '[');
}

void jw_arr_end(struct json_writer *w)
{
	close_scope(w, ']');
}

/* Length of the valid UTF-8 sequence at p, or 0 (JSON text must be UTF-8; process names
 * and paths need not be). */
static int utf8_len(const unsigned char *p)
{
	int n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : 0;

	/* no overlong forms, no surrogates, nothing above U+10FFFF */
	if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
	    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
		return 0;
	for (int i = 1; i < n; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

static void put_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p >= 0x80) {
			int n = utf8_len(p);

			if (!n) {
				fputs("\\ufffd", f); /* not UTF-8: the replacement character */
				continue;
			}
			fwrite(p, 1, n, f);
			p += n - 1;
			continue;
		}
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		case '\n':
			fputs("\\n", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		default:
			if (*p < 0x20)
				fprintf(f, "\\u%04x", *p);
			else
				fputc(*p, f);
		}
	}
	fputc('"', f);
}

void jw_key(struct json_writer *w, const char *key)
{
	sep(w);
	put_string(w->f, key);
	fputs(w->indent ? ": " : ":", w->f);
	w->after_key = true;
}

void jw_str(struct json_writer *w, const char *s)
{
	if (!s) {
		jw_null(w);
		return;
	}
	sep(w);
	put_string(w->f, s);
}

void jw_u64(struct json_writer *w, uint64_t v)
{
	sep(w);
	fprintf(w->f, "%" PRIu64, v);
}

void jw_i64(struct json_writer *w, int64_t v)
{
	sep(w);
	fprintf(w->f, "%" PRId64, v);
}

void jw_double(struct json_writer *w, double v)
{
	sep(w);
	if (isfinite(v))
		fprintf(w->f, "%.6g", v);
	else
		fputs("null", w->f);
}

void jw_bool(struct json_writer *w, bool v)
{
	sep(w);
	fputs(v ? "true" : "false", w->f);
}

void jw_null(struct json_writer *w)
{
	sep(w);
	fputs("null", w->f);
}

void jw_hex(struct json_writer *w, uint64_t v)
{
	sep(w);
	fprintf(w->f, "\"0x%" PRIx64 "\"", v);
}
