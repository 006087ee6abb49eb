/*
 * json_reader.c: recursive descent over a buffer, one function per grammar rule, the
 * recursion bounded by max_depth.  Every failure goes through fail(), which keeps the
 * first reason only, so callers just return -1 up the chain.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_reader.h"

struct parser {
	const char *p, *end;
	uint32_t line;
	int depth, max_depth;
	char *err;
	size_t errlen;
	bool failed, oom;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *ps, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	if (ps->failed)
		return -1;
	ps->failed = true;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(ps->err, ps->errlen, "line %u: %s", ps->line, msg);
	return -1;
}

static int fail_oom(struct parser *ps)
{
	ps->oom = true;
	return fail(ps, "out of memory");
}

static int truncated(struct parser *ps)
{
	return fail(ps, "truncated input");
}

/* "unexpected character 'x'" for what cannot start or continue the rule at p. */
static int unexpected(struct parser *ps, const char *expected)
{
	unsigned char c = (unsigned char)*ps->p;

	if (c == 0)
		return fail(ps, "NUL byte (expected %s)", expected);
	if (c >= 0x20 && c < 0x7f)
		return fail(ps, "expected %s, found '%c'", expected, c);
	return fail(ps, "expected %s, found byte 0x%02x", expected, c);
}

static void skip_ws(struct parser *ps)
{
	for (; ps->p < ps->end; ps->p++) {
		if (*ps->p == '\n')
			ps->line++;
		else if (*ps->p != ' ' && *ps->p != '\t' && *ps->p != '\r')
			break;
	}
}

static int parse_value(struct parser *ps, struct jr_value *out);

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xc0 | cp >> 6);
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xe0 | cp >> 12);
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	} else {
		*o++ = (char)(0xf0 | cp >> 18);
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
		*o++ = (char)(0x80 | (cp & 0x3f));
	}
	return o;
}

/* Decodes the escapes of s[0..n) (the inside of a string, already scanned) into o. */
static int decode_string(struct parser *ps, const char *s, size_t n, char *o, size_t *olen)
{
	const char *e = s + n;
	char *start = o;

	while (s < e) {
		unsigned cp, lo;

		if (*s != '\\') {
			*o++ = *s++;
			continue;
		}
		s++; /* the scan guarantees a character after every backslash */
		switch (*s++) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '/': *o++ = '/'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'u':
			if (e - s < 4 || hex4(s, &cp))
				return fail(ps, "bad \\u escape in string");
			s += 4;
			if (cp == 0)
				return fail(ps, "\\u0000 in string");
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(ps, "unpaired surrogate \\u%04x in string", cp);
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (e - s < 6 || s[0] != '\\' || s[1] != 'u' || hex4(s + 2, &lo) ||
				    lo < 0xdc00 || lo > 0xdfff)
					return fail(ps, "unpaired surrogate \\u%04x in string", cp);
				s += 6;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			o = put_utf8(o, cp);
			break;
		default:
			return fail(ps, "bad escape in string");
		}
	}
	*o = 0;
	*olen = (size_t)(o - start);
	return 0;
}

/* At the opening quote.  The decoded string is never longer than its source. */
static int parse_string(struct parser *ps, char **out, size_t *olen)
{
	const char *s = ps->p + 1, *q = s;
	char *buf;

	for (;;) {
		unsigned char c;

		if (q >= ps->end)
			return truncated(ps);
		c = (unsigned char)*q;
		if (c == '"')
			break;
		if (c == '\\') {
			if (q + 1 >= ps->end)
				return truncated(ps);
			q += 2;
			continue;
		}
		if (c == 0)
			return fail(ps, "NUL byte in string");
		if (c < 0x20)
			return fail(ps, "control character 0x%02x in string", c);
		q++;
	}
	buf = malloc((size_t)(q - s) + 1);
	if (!buf)
		return fail_oom(ps);
	if (decode_string(ps, s, (size_t)(q - s), buf, olen)) {
		free(buf);
		return -1;
	}
	*out = buf;
	ps->p = q + 1;
	return 0;
}

static bool is_digit(const char *p, const char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

static int parse_number(struct parser *ps, struct jr_value *out)
{
	const char *start = ps->p, *p = ps->p, *end = ps->end;
	bool neg = false, integer = true;
	char small[64], *tok = small;
	uint64_t u = 0;
	bool overflow = false;
	size_t n;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p >= end)
		return truncated(ps);
	if (*p == '0') {
		p++;
		if (is_digit(p, end))
			return fail(ps, "number with a leading zero");
	} else if (is_digit(p, end)) {
		for (; is_digit(p, end); p++) {
			unsigned d = (unsigned)(*p - '0');

			if (u > (UINT64_MAX - d) / 10)
				overflow = true;
			else
				u = u * 10 + d;
		}
	} else {
		ps->p = p;
		return unexpected(ps, "a digit");
	}
	if (p < end && *p == '.') {
		integer = false;
		p++;
		if (p >= end)
			return truncated(ps);
		if (!is_digit(p, end)) {
			ps->p = p;
			return unexpected(ps, "a digit after '.'");
		}
		while (is_digit(p, end))
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		integer = false;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end)
			return truncated(ps);
		if (!is_digit(p, end)) {
			ps->p = p;
			return unexpected(ps, "a digit in the exponent");
		}
		while (is_digit(p, end))
			p++;
	}

	/* strtod wants a terminated string; the buffer is not. */
	n = (size_t)(p - start);
	if (n >= sizeof(small) && !(tok = malloc(n + 1)))
		return fail_oom(ps);
	memcpy(tok, start, n);
	tok[n] = 0;
	errno = 0;
	out->num.d = strtod(tok, NULL);
	if (tok != small)
		free(tok);
	if (errno == ERANGE && (out->num.d > 1 || out->num.d < -1))
		return fail(ps, "number out of range");

	out->type = JR_NUMBER;
	if (integer && !overflow) {
		if (!neg) {
			out->num.is_uint = true;
			out->num.u = u;
			out->num.is_int = u <= INT64_MAX;
			out->num.i = (int64_t)u;
		} else if (u <= (uint64_t)INT64_MAX + 1) {
			out->num.is_int = true;
			out->num.i = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
		}
	}
	ps->p = p;
	return 0;
}

static int parse_literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word), have = (size_t)(ps->end - ps->p);

	if (have < n && !memcmp(ps->p, word, have))
		return truncated(ps);
	if (have < n || memcmp(ps->p, word, n))
		return unexpected(ps, "a value");
	ps->p += n;
	return 0;
}

static int enter(struct parser *ps)
{
	if (++ps->depth > ps->max_depth)
		return fail(ps, "nesting deeper than %d", ps->max_depth);
	ps->p++;
	return 0;
}

static int parse_array(struct parser *ps, struct jr_value *out)
{
	size_t cap = 0;

	out->type = JR_ARRAY;
	if (enter(ps))
		return -1;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']') {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		if (out->arr.n == cap) {
			size_t ncap = cap ? cap * 2 : 4;
			void *np = realloc(out->arr.items, ncap * sizeof(*out->arr.items));

			if (!np)
				return fail_oom(ps);
			out->arr.items = np;
			cap = ncap;
		}
		out->arr.items[out->arr.n] = (struct jr_value){ .type = JR_NULL };
		out->arr.n++;
		if (parse_value(ps, &out->arr.items[out->arr.n - 1]))
			return -1;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return truncated(ps);
		if (*ps->p == ']')
			break;
		if (*ps->p != ',')
			return unexpected(ps, "',' or ']'");
		ps->p++;
	}
	ps->p++;
	ps->depth--;
	return 0;
}

static int cmp_member_ptr(const void *a, const void *b)
{
	const struct jr_member *x = *(const struct jr_member *const *)a;
	const struct jr_member *y = *(const struct jr_member *const *)b;

	return strcmp(x->key, y->key);
}

/* Duplicate keys make "which one counts" reader-dependent: refuse them (sorted, so
 * O(n log n) even for a hostile object). */
static int check_duplicates(struct parser *ps, const struct jr_value *obj)
{
	const struct jr_member **sorted;
	int err = 0;

	if (obj->obj.n < 2)
		return 0;
	sorted = malloc(obj->obj.n * sizeof(*sorted));
	if (!sorted)
		return fail_oom(ps);
	for (size_t i = 0; i < obj->obj.n; i++)
		sorted[i] = &obj->obj.members[i];
	qsort(sorted, obj->obj.n, sizeof(*sorted), cmp_member_ptr);
	for (size_t i = 1; i < obj->obj.n && !err; i++)
		if (!strcmp(sorted[i - 1]->key, sorted[i]->key)) {
			uint32_t line = ps->line;

			ps->line = sorted[i]->value.line;
			err = fail(ps, "duplicate key \"%.60s\"", sorted[i]->key);
			ps->line = line;
		}
	free(sorted);
	return err;
}

static int parse_object(struct parser *ps, struct jr_value *out)
{
	size_t cap = 0, klen;

	out->type = JR_OBJECT;
	if (enter(ps))
		return -1;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}') {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		struct jr_member *m;

		skip_ws(ps);
		if (ps->p >= ps->end)
			return truncated(ps);
		if (*ps->p != '"')
			return unexpected(ps, "a string key");
		if (out->obj.n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			void *np = realloc(out->obj.members, ncap * sizeof(*out->obj.members));

			if (!np)
				return fail_oom(ps);
			out->obj.members = np;
			cap = ncap;
		}
		m = &out->obj.members[out->obj.n];
		*m = (struct jr_member){ .value = { .type = JR_NULL } };
		if (parse_string(ps, &m->key, &klen))
			return -1;
		out->obj.n++;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return truncated(ps);
		if (*ps->p != ':')
			return unexpected(ps, "':'");
		ps->p++;
		if (parse_value(ps, &m->value))
			return -1;
		skip_ws(ps);
		if (ps->p >= ps->end)
			return truncated(ps);
		if (*ps->p == '}')
			break;
		if (*ps->p != ',')
			return unexpected(ps, "',' or '}'");
		ps->p++;
	}
	ps->p++;
	ps->depth--;
	return check_duplicates(ps, out);
}

static int parse_value(struct parser *ps, struct jr_value *out)
{
	skip_ws(ps);
	if (ps->p >= ps->end)
		return truncated(ps);
	out->line = ps->line;
	switch (*ps->p) {
	case '{':
		return parse_object(ps, out);
	case '[':
		return parse_array(ps, out);
	case '"':
		if (parse_string(ps, &out->str.s, &out->str.len))
			return -1;
		out->type = JR_STRING;
		return 0;
	case 't':
	case 'f':
		out->b = *ps->p == 't';
		if (parse_literal(ps, out->b ? "true" : "false"))
			return -1;
		out->type = JR_BOOL;
		return 0;
	case 'n':
		return parse_literal(ps, "null");
	case '-':
	case '0' ... '9':
		return parse_number(ps, out);
	default:
		return unexpected(ps, "a value");
	}
}

static void free_value(struct jr_value *v)
{
	switch (v->type) {
	case JR_STRING:
		free(v->str.s);
		break;
	case JR_ARRAY:
		for (size_t i = 0; i < v->arr.n; i++)
			free_value(&v->arr.items[i]);
		free(v->arr.items);
		break;
	case JR_OBJECT:
		for (size_t i = 0; i < v->obj.n; i++) {
			free(v->obj.members[i].key);
			free_value(&v->obj.members[i].value);
		}
		free(v->obj.members);
		break;
	default:
		break;
	}
}

void jr_free(struct jr_value *v)
{
	if (!v)
		return;
	free_value(v);
	free(v);
}

struct jr_value *jr_parse(const char *buf, size_t len, int max_depth, char *err, size_t errlen)
{
	struct parser ps = { .p = buf, .end = buf + len, .line = 1, .max_depth = max_depth,
			     .err = err, .errlen = errlen };
	struct jr_value *v = calloc(1, sizeof(*v));

	if (!v) {
		snprintf(err, errlen, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	skip_ws(&ps);
	if (ps.p >= ps.end) {
		fail(&ps, "empty input");
	} else if (!parse_value(&ps, v)) {
		skip_ws(&ps);
		if (ps.p < ps.end)
			unexpected(&ps, "the end of input");
	}
	if (ps.failed) {
		jr_free(v);
		errno = ps.oom ? ENOMEM : EINVAL;
		return NULL;
	}
	return v;
}

const struct jr_value *jr_get(const struct jr_value *obj, const char *key)
{
	if (!obj || obj->type != JR_OBJECT)
		return NULL;
	for (size_t i = 0; i < obj->obj.n; i++)
		if (!strcmp(obj->obj.members[i].key, key))
			return &obj->obj.members[i].value;
	return NULL;
}

const char *jr_type_name(enum jr_type t)
{
	static const char *const names[] = {
		[JR_NULL] = "null", [JR_BOOL] = "a boolean", [JR_NUMBER] = "a number",
		[JR_STRING] = "a string", [JR_ARRAY] = "an array", [JR_OBJECT] = "an object",
	};

	return t <= JR_OBJECT ? names[t] : "?";
}
