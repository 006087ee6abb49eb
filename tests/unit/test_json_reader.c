/*
 * Unit test for json_reader.c (the strict parser) and read_json.c (JSON report -> struct
 * ht_report): what the grammar accepts and rejects, with the reason and its line; exact
 * 64-bit integers; escapes and surrogate pairs; then reports: a minimal one with every
 * field, the error messages for wrong versions, schemas and missing fields, allocator
 * names shared with probes.c, and a write -> read -> write round trip that must give the
 * same bytes.  Run under ASan (make SAN=1) it also checks that report__free() releases
 * everything the reader allocates.  Exit status 0 when every check passes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_reader.h"
#include "probes.h"
#include "report.h"

static int failures;

#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
			failures++;                                                    \
		}                                                                      \
	} while (0)

static struct jr_value *parse(const char *s, char *err, size_t errlen)
{
	return jr_parse(s, strlen(s), 8, err, errlen);
}

/* s must be rejected with a reason containing why. */
static void reject_n(const char *s, size_t len, const char *why)
{
	char err[256] = "";
	struct jr_value *v = jr_parse(s, len, 8, err, sizeof(err));

	CHECK(!v, "accepted %.40s", s);
	CHECK(strstr(err, why), "%.40s: got '%s', want '%s'", s, err, why);
	jr_free(v);
}

static void reject(const char *s, const char *why)
{
	reject_n(s, strlen(s), why);
}

static void test_grammar(void)
{
	char err[256], deep[64];
	struct jr_value *v;

	reject("", "line 1: empty input");
	reject("  \n ", "line 2: empty input");
	reject("{", "line 1: truncated input");
	reject("{\"a\"", "truncated input");
	reject("{\"a\":", "truncated input");
	reject("[1,2", "truncated input");
	reject("\"abc", "truncated input");
	reject("\"abc\\", "truncated input");
	reject("tru", "truncated input");
	reject("-", "truncated input");
	reject("[1,]", "expected a value, found ']'");
	reject("{\"a\":1,}", "expected a string key");
	reject("[01]", "leading zero");
	reject("[1.]", "expected a digit after '.'");
	reject("[.5]", "expected a value");
	reject("[+1]", "expected a value");
	reject("[1e]", "digit in the exponent");
	reject("NaN", "expected a value");
	reject("[Infinity]", "expected a value");
	reject("[-Infinity]", "expected a digit");
	reject("[truth]", "line 1: expected a value, found 't'");
	reject("\"\\x\"", "bad escape");
	reject("\"\\u12\"", "bad \\u escape");
	reject("\"\\u12G4\"", "bad \\u escape");
	reject("\"\\ud800\"", "unpaired surrogate");
	reject("\"\\ud800\\u0041\"", "unpaired surrogate");
	reject("\"\\udc00\"", "unpaired surrogate");
	reject("\"\\u0000\"", "\\u0000 in string");
	reject("\"a\nb\"", "control character 0x0a");
	reject("\"a\tb\"", "control character 0x09");
	reject("{\"a\":1,\"b\":2,\"a\":3}", "duplicate key \"a\"");
	reject("1 2", "expected the end of input");
	reject("{}x", "expected the end of input");
	reject("1e999", "number out of range");
	reject("{\n\n\"a\": }", "line 3: expected a value, found '}'");
	reject("{\"a\" 1}", "expected ':'");
	reject_n("[1,\0]", 5, "NUL byte");
	reject_n("\"a\0\"", 4, "NUL byte in string");
	reject_n("[1]\0", 4, "NUL byte");
	memset(deep, '[', 9);
	deep[9] = 0;
	reject(deep, "nesting deeper than 8");

	v = parse(" {\"u\": 18446744073709551615, \"big\": 18446744073709551616, \"neg\": "
		  "-9223372036854775808, \"z\": -0, \"f\": 1.5e3, \"t\": true, \"n\": null, "
		  "\"a\": [], \"o\": {}} ",
		  err, sizeof(err));
	CHECK(v, "%s", err);
	if (v) {
		const struct jr_value *x;

		x = jr_get(v, "u");
		CHECK(x && x->num.is_uint && x->num.u == UINT64_MAX && !x->num.is_int, "u");
		x = jr_get(v, "big");
		CHECK(x && !x->num.is_uint && !x->num.is_int && x->num.d > 1.8e19, "big");
		x = jr_get(v, "neg");
		CHECK(x && x->num.is_int && x->num.i == INT64_MIN && !x->num.is_uint, "neg");
		x = jr_get(v, "z");
		CHECK(x && x->num.is_int && x->num.i == 0, "-0");
		x = jr_get(v, "f");
		CHECK(x && !x->num.is_int && !x->num.is_uint && x->num.d == 1500, "1.5e3");
		x = jr_get(v, "t");
		CHECK(x && x->type == JR_BOOL && x->b, "true");
		x = jr_get(v, "n");
		CHECK(x && x->type == JR_NULL, "null");
		x = jr_get(v, "a");
		CHECK(x && x->type == JR_ARRAY && x->arr.n == 0, "[]");
		x = jr_get(v, "o");
		CHECK(x && x->type == JR_OBJECT && x->obj.n == 0, "{}");
		CHECK(!jr_get(v, "missing"), "missing key");
	}
	jr_free(v);

	/* escapes, a surrogate pair, and raw bytes that are not UTF-8 (file names) */
	v = parse("\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00 \xff\"", err, sizeof(err));
	CHECK(v && v->type == JR_STRING, "%s", err);
	if (v)
		CHECK(!strcmp(v->str.s, "q\"b\\s/\b\f\n\r\t \xc3\xa9 \xf0\x9f\x98\x80 \xff") &&
			      v->str.len == strlen(v->str.s),
		      "decoded '%s'", v->str.s);
	jr_free(v);

	memset(deep, '[', 8);
	memset(deep + 8, ']', 8);
	deep[16] = 0;
	v = parse(deep, err, sizeof(err));
	CHECK(v, "8 levels: %s", err);
	jr_free(v);
}

static const char minimal[] =
	"{\"schema\": \"heaptap-report\", \"version\": 1, \"final\": true,\n"
	" \"start_time_unix_ns\": 1700000000000000000, \"mode\": \"live\", \"sample_bytes\": 0,\n"
	" \"elapsed_s\": 1.5, \"interval_s\": 1.5, \"min_age_s\": 0, \"max_depth\": 64,\n"
	" \"events\": 3, \"probes\": 9, \"slow_probes\": 1, \"collector_bytes\": 100,\n"
	" \"live_blocks_tracked\": 2,\n"
	" \"loss\": {\"ringbuf_drops\": 1, \"thread_state_full\": 2, \"nesting_overflow\": 3,\n"
	"  \"returns_without_entry\": 4, \"stack_errors\": 5, \"stacks_truncated\": 6,\n"
	"  \"nested_calls_folded\": 7, \"sample_map_full\": 8, \"unsampled\": 9,\n"
	"  \"unknown_frees\": 10, \"reused_live\": 11, \"model_full\": 12, \"bad_records\": 13},\n"
	" \"processes\": [{\"pid\": 42, \"comm\": \"t\\\"x\", \"exe\": null, \"exited\": true,\n"
	"  \"exit_code\": 3, \"live_bytes\": 30, \"live_count\": 2, \"alloc_bytes\": 40,\n"
	"  \"alloc_count\": 3, \"free_bytes\": 10, \"free_count\": 1,\n"
	"  \"interval_alloc_bytes\": 40, \"interval_alloc_count\": 3, \"aged_live_bytes\": 30,\n"
	"  \"aged_live_count\": 2, \"peak_bytes\": 40, \"peak_count\": 3, \"peak_time_s\": 0.5,\n"
	"  \"rate_bytes_per_s\": null, \"rate_allocs_per_s\": 2,\n"
	"  \"modules\": [{\"path\": \"/bin/t\", \"start\": \"0x1000\", \"end\": \"0x2000\",\n"
	"   \"file_offset\": \"0x0\", \"bias\": \"0x1000\", \"build_id\": \"abcdef\"}],\n"
	"  \"unknown_frees\": 10, \"reused_live\": 11, \"model_full\": 12,\n"
	"  \"sites\": [\n"
	"   {\"id\": 7, \"allocator\": \"malloc\", \"live_bytes\": 30, \"live_count\": 2,\n"
	"    \"alloc_bytes\": 40, \"alloc_count\": 3, \"free_bytes\": 10, \"free_count\": 1,\n"
	"    \"interval_alloc_bytes\": 40, \"interval_alloc_count\": 3, \"aged_live_bytes\": 30,\n"
	"    \"aged_live_count\": 2, \"peak_live_bytes\": 40, \"peak_live_count\": 3,\n"
	"    \"rate_bytes_per_s\": 26.6667, \"rate_allocs_per_s\": 2, \"truncated\": false,\n"
	"    \"frames\": [\n"
	"     {\"addr\": \"0x1010\", \"function\": \"inl\", \"file\": \"t.c\", \"line\": 5,\n"
	"      \"module\": \"/bin/t\", \"offset\": \"0x10\", \"inlined\": true},\n"
	"     {\"addr\": \"0x1010\", \"function\": \"f\", \"file\": \"t.c\", \"line\": 9,\n"
	"      \"module\": \"/bin/t\", \"offset\": \"0x10\", \"inlined\": false},\n"
	"     {\"addr\": \"0x5000\", \"function\": null, \"file\": null, \"line\": 0,\n"
	"      \"module\": \"[unknown]\", \"offset\": \"0x5000\", \"inlined\": false}]},\n"
	"   {\"id\": 8, \"allocator\": \"my_alloc\", \"live_bytes\": 0, \"live_count\": 0,\n"
	"    \"alloc_bytes\": 0, \"alloc_count\": 0, \"free_bytes\": 0, \"free_count\": 0,\n"
	"    \"interval_alloc_bytes\": 0, \"interval_alloc_count\": 0, \"aged_live_bytes\": 0,\n"
	"    \"aged_live_count\": 0, \"peak_live_bytes\": 0, \"peak_live_count\": 0,\n"
	"    \"rate_bytes_per_s\": 0, \"rate_allocs_per_s\": 0, \"truncated\": true,\n"
	"    \"frames\": []}]}]}\n";

static struct ht_report *read_str(const char *s, size_t len, char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)s, len, "r");
	struct ht_report *r;

	if (!f)
		return NULL;
	r = report__read_json(f, err, errlen);
	fclose(f);
	return r;
}

/* minimal with the first occurrence of from replaced by to, read: must fail with why. */
static void reject_edit(const char *from, const char *to, const char *why)
{
	const char *at = strstr(minimal, from);
	char buf[sizeof(minimal) + 256], err[256] = "";
	struct ht_report *r;

	CHECK(at, "'%s' not in the test report", from);
	if (!at)
		return;
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)(at - minimal), minimal, to,
		 at + strlen(from));
	r = read_str(buf, strlen(buf), err, sizeof(err));
	CHECK(!r, "accepted with '%s' -> '%s'", from, to);
	CHECK(!strcmp(err, why), "'%s' -> '%s': got '%s', want '%s'", from, to, err, why);
	report__free(r);
}

static void test_report(void)
{
	char err[256] = "", *out1 = NULL, *out2 = NULL;
	size_t len1 = 0, len2 = 0;
	struct ht_report *r, *r2;
	FILE *m;

	r = read_str(minimal, strlen(minimal), err, sizeof(err));
	CHECK(r, "minimal: %s", err);
	if (!r)
		return;
	CHECK(r->final && r->start_unix_ns == 1700000000000000000ull && r->elapsed_s == 1.5 &&
		      r->max_depth == 64 && r->events == 3 && r->probes == 9 && r->slow_probes == 1,
	      "top level");
	CHECK(!strcmp(r->mode, "live"), "mode %s", r->mode);
	CHECK(r->loss.bpf[HT_CNT_RINGBUF_DROPS] == 1 && r->loss.bpf[HT_CNT_NESTED_SKIPPED] == 7 &&
		      r->loss.bpf[HT_CNT_UNSAMPLED] == 9 && r->loss.bad_records == 13,
	      "loss");
	CHECK(r->nprocs == 1, "nprocs %u", r->nprocs);
	if (r->nprocs == 1) {
		const struct ht_rproc *p = &r->procs[0];

		CHECK(p->pid == 42 && !strcmp(p->comm, "t\"x") && !p->exe && p->exited &&
			      p->exit_known && p->exit_code == 3,
		      "process");
		CHECK(p->c.live_bytes == 30 && p->c.last_iv_count == 3 && p->rate_bytes == 0 &&
			      p->rate_count == 2 && p->peak_time_s == 0.5,
		      "process counts");
		CHECK(p->nmodules == 1 && p->modules[0].start == 0x1000 &&
			      !strcmp(p->modules[0].build_id, "abcdef"),
		      "modules");
		CHECK(p->nsites == 2, "nsites %u", p->nsites);
		if (p->nsites == 2) {
			const struct ht_rsite *s = &p->sites[0];

			/* the very string report__build() would use */
			CHECK(s->allocator == probes__fn_name(0), "allocator not shared");
			CHECK(s->id == 7 && s->nframes == 3 && s->frames[0].inlined &&
				      s->frames[0].addr == 0x1010 && s->frames[1].line == 9 &&
				      !s->frames[2].function && !strcmp(s->frames[2].module, "[unknown]"),
			      "frames");
			CHECK(!strcmp(p->sites[1].allocator, "my_alloc") && p->sites[1].truncated &&
				      p->sites[1].nframes == 0,
			      "second site");
		}
	}

	/* write -> read -> write: the same bytes */
	m = open_memstream(&out1, &len1);
	CHECK(m && !report__write_json(r, m), "write 1");
	if (m)
		fclose(m);
	r2 = out1 ? read_str(out1, len1, err, sizeof(err)) : NULL;
	CHECK(r2, "re-read: %s", err);
	if (r2) {
		CHECK(r2->procs[0].sites[1].allocator == r->procs[0].sites[1].allocator,
		      "unknown allocator not interned");
		m = open_memstream(&out2, &len2);
		CHECK(m && !report__write_json(r2, m), "write 2");
		if (m)
			fclose(m);
		CHECK(len1 == len2 && out2 && !memcmp(out1, out2, len1), "round trip differs");
	}
	report__free(r);
	report__free(r2);
	free(out1);
	free(out2);

	reject_edit("\"version\": 1", "\"version\": 7", "unsupported version 7");
	reject_edit("\"version\": 1", "\"version\": 1.5", "unsupported version 1.5");
	reject_edit("\"version\": 1,", "", "missing field version");
	reject_edit("\"schema\": \"heaptap-report\",", "", "missing field schema");
	reject_edit("\"heaptap-report\"", "\"other\"", "unknown schema \"other\"");
	reject_edit("\"heaptap-report\"", "3", "unknown schema a number");
	reject_edit(",\n    \"frames\": []", "", "missing field processes[0].sites[1].frames");
	reject_edit("\"pid\": 42", "\"pid\": \"42\"",
		    "line 10: processes[0].pid: expected a 32-bit integer, found a string");
	reject_edit("\"alloc_count\": 3, \"free_bytes\"", "\"alloc_count\": -3, \"free_bytes\"",
		    "line 12: processes[0].alloc_count: expected a non-negative integer, found a "
		    "number");
	reject_edit("\"0x1010\"", "\"1010\"",
		    "line 26: processes[0].sites[0].frames[0].addr: expected a \"0x...\" string, "
		    "found a string");
	reject_edit("\"abcdef\"", "\"ABCDEF\"",
		    "line 17: processes[0].modules[0].build_id: expected up to 40 lowercase hex "
		    "digits");
	reject_edit("\"processes\": [", "\"processes\": 5, \"x\": [",
		    "line 10: processes: expected an array, found a number");
	reject_edit("\"inlined\": false}]}", "\"inlined\": false}]", "line 32: expected a string key, found '{'");

	/* truncated: every proper prefix of the report fails, none crashes */
	for (size_t n = 0; n < strlen(minimal) - 1; n += 7) {
		r = read_str(minimal, n, err, sizeof(err));
		CHECK(!r, "prefix of %zu bytes accepted", n);
		report__free(r);
	}
	r = read_str(minimal, strlen(minimal) - 2, err, sizeof(err));
	CHECK(!r && !strcmp(err, "line 37: truncated input"), "truncated: %s", err);
	report__free(r);
}

int main(void)
{
	test_grammar();
	test_report();
	if (failures)
		fprintf(stderr, "%d checks failed\n", failures);
	return failures ? 1 : 0;
}
