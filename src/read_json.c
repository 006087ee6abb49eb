/*
 * read_json.c: a JSON report (docs/json.md) back into a struct ht_report, so that
 * `heaptap report` renders every format without the traced processes.
 *
 * How this works: the whole file is parsed into a tree (json_reader.h), then mapped field
 * by field.  Every field of schema version 1 is required, except those added to version 1
 * after it was first written (mode, sample_bytes, the sampling loss counters), which
 * default to what older files meant.  Unknown fields are ignored: new fields may appear
 * without a version bump.  Errors name the field by its path:
 * "missing field processes[0].sites[3].frames".
 *
 * Ownership: the report is built in place and its counts (nprocs, nsites, nframes,
 * nmodules) are set as soon as each array is allocated (zeroed), so report__free() is the
 * error path at any point.  Allocator and mode names are not owned by the report: they are
 * the static strings report__build() itself uses (probes__fn_name()) or, for names this
 * build does not know, entries of a small process-lifetime intern pool.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "json_reader.h"
#include "probes.h"
#include "report.h"

#define MAX_DEPTH 16            /* the schema nests 7 deep */
#define MAX_JSON_BYTES (1ull << 30)  /* 1 GiB of JSON */
#define MAX_INTERNED 64

struct reader {
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct reader *rd, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rd->err, rd->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* "processes[0].pid", or "pid" at the top level. */
static void field_name(char *buf, size_t len, const char *path, const char *key)
{
	if (snprintf(buf, len, "%s%s%s", path, *path ? "." : "", key) >= (int)len)
		strcpy(buf + len - 4, "...");
}

/* path[i] (array elements), cut like field_name(). */
static void elem_name(char *buf, size_t len, const char *path, const char *what, uint32_t i)
{
	if (snprintf(buf, len, "%s.%s[%u]", path, what, i) >= (int)len)
		strcpy(buf + len - 4, "...");
}

/* The member key of obj; NULL and a "missing field" error when absent and required. */
static const struct jr_value *member(struct reader *rd, const struct jr_value *obj,
				     const char *path, const char *key, bool required)
{
	const struct jr_value *v = jr_get(obj, key);
	char name[256];

	if (!v && required) {
		field_name(name, sizeof(name), path, key);
		fail(rd, "missing field %s", name);
	}
	return v;
}

static int wrong_type(struct reader *rd, const struct jr_value *v, const char *path,
		      const char *key, const char *expected)
{
	char name[256];

	field_name(name, sizeof(name), path, key);
	return fail(rd, "line %u: %s: expected %s, found %s", v->line, name, expected,
		    jr_type_name(v->type));
}

static int get_u64(struct reader *rd, const struct jr_value *obj, const char *path,
		   const char *key, uint64_t *out)
{
	const struct jr_value *v = member(rd, obj, path, key, true);

	if (!v)
		return -1;
	if (v->type != JR_NUMBER || !v->num.is_uint)
		return wrong_type(rd, v, path, key, "a non-negative integer");
	*out = v->num.u;
	return 0;
}

/* Optional fields (added to version 1 later): absent means 0. */
static int get_u64_opt(struct reader *rd, const struct jr_value *obj, const char *path,
		       const char *key, uint64_t *out)
{
	*out = 0;
	return jr_get(obj, key) ? get_u64(rd, obj, path, key, out) : 0;
}

static int get_u32(struct reader *rd, const struct jr_value *obj, const char *path,
		   const char *key, uint32_t *out)
{
	const struct jr_value *v = member(rd, obj, path, key, true);

	if (!v)
		return -1;
	if (v->type != JR_NUMBER || !v->num.is_uint || v->num.u > UINT32_MAX)
		return wrong_type(rd, v, path, key, "an integer in 0..4294967295");
	*out = (uint32_t)v->num.u;
	return 0;
}

static int get_int(struct reader *rd, const struct jr_value *obj, const char *path,
		   const char *key, bool nullable, int *out, bool *present)
{
	const struct jr_value *v = member(rd, obj, path, key, true);

	if (!v)
		return -1;
	if (nullable && v->type == JR_NULL) {
		*present = false;
		return 0;
	}
	if (v->type != JR_NUMBER || !v->num.is_int || v->num.i < INT_MIN || v->num.i > INT_MAX)
		return wrong_type(rd, v, path, key, "a 32-bit integer");
	*out = (int)v->num.i;
	if (present)
		*present = true;
	return 0;
}

/* json_writer writes non-finite doubles as null. */
static int get_double(struct reader *rd, const struct jr_value *obj, const char *path,
		      const char *key, double *out)
{
	const struct jr_value *v = member(rd, obj, path, key, true);

	if (!v)
		return -1;
	if (v->type == JR_NULL) {
		*out = 0;
		return 0;
	}
	if (v->type != JR_NUMBER)
		return wrong_type(rd, v, path, key, "a number");
	*out = v->num.d;
	return 0;
}

static int get_bool(struct reader *rd, const struct jr_value *obj, const char *path,
		    const char *key, bool *out)
{
	const struct jr_value *v = member(rd, obj, path, key, true);

	if (!v)
		return -1;
	if (v->type != JR_BOOL)
		return wrong_type(rd, v, path, key, "true or false");
	*out = v->b;
	return 0;
}

/* A borrowed string (NULL for null when nullable). */
static int get_str(struct reader *rd, const struct jr_value *obj, const char *path,
		   const char *key, bool nullable, const char **out)
{
	const struct jr_value *v = member(rd, obj, path, key, true);

	if (!v)
		return -1;
	if (nullable && v->type == JR_NULL) {
		*out = NULL;
		return 0;
	}
	if (v->type != JR_STRING)
		return wrong_type(rd, v, path, key, nullable ? "a string or null" : "a string");
	*out = v->str.s;
	return 0;
}

static int get_dup(struct reader *rd, const struct jr_value *obj, const char *path,
		   const char *key, bool nullable, char **out)
{
	const char *s;

	if (get_str(rd, obj, path, key, nullable, &s))
		return -1;
	if (s && !(*out = strdup(s)))
		return fail(rd, "out of memory");
	return 0;
}

/* Addresses: "0x" and 1 to 16 hex digits. */
static int get_hex(struct reader *rd, const struct jr_value *obj, const char *path,
		   const char *key, uint64_t *out)
{
	const struct jr_value *v = member(rd, obj, path, key, true);
	uint64_t x = 0;
	size_t n;

	if (!v)
		return -1;
	if (v->type != JR_STRING)
		return wrong_type(rd, v, path, key, "a \"0x...\" string");
	n = v->str.len;
	if (n < 3 || n > 18 || v->str.s[0] != '0' || v->str.s[1] != 'x')
		return wrong_type(rd, v, path, key, "a \"0x...\" string");
	for (size_t i = 2; i < n; i++) {
		char c = v->str.s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return wrong_type(rd, v, path, key, "a \"0x...\" string");
		x = x << 4 | d;
	}
	*out = x;
	return 0;
}

/* An array member. */
static int get_array(struct reader *rd, const struct jr_value *obj, const char *path,
		     const char *key, const struct jr_value **out)
{
	const struct jr_value *v = member(rd, obj, path, key, true);

	if (!v)
		return -1;
	if (v->type != JR_ARRAY)
		return wrong_type(rd, v, path, key, "an array");
	*out = v;
	return 0;
}

static int expect_object(struct reader *rd, const struct jr_value *v, const char *path)
{
	if (v->type != JR_OBJECT)
		return fail(rd, "line %u: %s: expected an object, found %s", v->line, path,
			    jr_type_name(v->type));
	return 0;
}

/*
 * The static string for an allocator or mode name: the one report__build() uses, from
 * probes.c's table, else an entry of the intern pool (which lives until exit and is
 * bounded, so a hostile file cannot grow it without limit).
 */
static const char *intern(struct reader *rd, const char *name, const char *field)
{
	static char *pool[MAX_INTERNED];
	static size_t npool;

	for (unsigned i = 0; i < 256; i++) {
		const char *known = probes__fn_name((uint16_t)(i << 8));

		if (!strcmp(known, name))
			return known;
	}
	for (size_t i = 0; i < npool; i++)
		if (!strcmp(pool[i], name))
			return pool[i];
	if (npool == MAX_INTERNED) {
		fail(rd, "%s: more than %d distinct unknown names", field, MAX_INTERNED);
		return NULL;
	}
	if (!(pool[npool] = strdup(name))) {
		fail(rd, "out of memory");
		return NULL;
	}
	return pool[npool++];
}

static int read_counts(struct reader *rd, const struct jr_value *o, const char *path,
		       struct ht_counts *c)
{
	return get_u64(rd, o, path, "live_bytes", &c->live_bytes) ||
	       get_u64(rd, o, path, "live_count", &c->live_count) ||
	       get_u64(rd, o, path, "alloc_bytes", &c->alloc_bytes) ||
	       get_u64(rd, o, path, "alloc_count", &c->alloc_count) ||
	       get_u64(rd, o, path, "free_bytes", &c->free_bytes) ||
	       get_u64(rd, o, path, "free_count", &c->free_count) ||
	       get_u64(rd, o, path, "interval_alloc_bytes", &c->last_iv_bytes) ||
	       get_u64(rd, o, path, "interval_alloc_count", &c->last_iv_count) ? -1 : 0;
}

static int read_frame(struct reader *rd, const struct jr_value *o, const char *path,
		      struct ht_rframe *f)
{
	bool unused;

	if (expect_object(rd, o, path) || get_hex(rd, o, path, "addr", &f->addr) ||
	    get_dup(rd, o, path, "function", true, &f->function) ||
	    get_dup(rd, o, path, "file", true, &f->file) ||
	    get_int(rd, o, path, "line", false, &f->line, &unused) ||
	    get_dup(rd, o, path, "module", false, &f->module) ||
	    get_hex(rd, o, path, "offset", &f->offset) ||
	    get_bool(rd, o, path, "inlined", &f->inlined))
		return -1;
	if (f->line < 0)
		return fail(rd, "line %u: %s.line: negative", o->line, path);
	return 0;
}

static int read_site(struct reader *rd, const struct jr_value *o, const char *path,
		     struct ht_rsite *s)
{
	const struct jr_value *frames = NULL;
	const char *alloc;
	char name[256];

	if (expect_object(rd, o, path) || get_u32(rd, o, path, "id", &s->id) ||
	    get_str(rd, o, path, "allocator", false, &alloc) || read_counts(rd, o, path, &s->c) ||
	    get_u64(rd, o, path, "aged_live_bytes", &s->aged_bytes) ||
	    get_u64(rd, o, path, "aged_live_count", &s->aged_count) ||
	    get_u64(rd, o, path, "peak_live_bytes", &s->peak_bytes) ||
	    get_u64(rd, o, path, "peak_live_count", &s->peak_count) ||
	    get_double(rd, o, path, "rate_bytes_per_s", &s->rate_bytes) ||
	    get_double(rd, o, path, "rate_allocs_per_s", &s->rate_count) ||
	    get_bool(rd, o, path, "truncated", &s->truncated) ||
	    get_array(rd, o, path, "frames", &frames))
		return -1;
	field_name(name, sizeof(name), path, "allocator");
	if (!(s->allocator = intern(rd, alloc, name)))
		return -1;
	if (frames->arr.n > UINT32_MAX)
		return fail(rd, "%s.frames: too many frames", path);
	if (frames->arr.n && !(s->frames = calloc(frames->arr.n, sizeof(*s->frames))))
		return fail(rd, "out of memory");
	s->nframes = (uint32_t)frames->arr.n;
	for (uint32_t i = 0; i < s->nframes; i++) {
		elem_name(name, sizeof(name), path, "frames", i);
		if (read_frame(rd, &frames->arr.items[i], name, &s->frames[i]))
			return -1;
	}
	return 0;
}

static int read_module(struct reader *rd, const struct jr_value *o, const char *path,
		       struct ht_rmodule *m)
{
	const char *build_id;

	if (expect_object(rd, o, path) || get_dup(rd, o, path, "path", false, &m->path) ||
	    get_hex(rd, o, path, "start", &m->start) || get_hex(rd, o, path, "end", &m->end) ||
	    get_hex(rd, o, path, "file_offset", &m->file_offset) ||
	    get_hex(rd, o, path, "bias", &m->bias) ||
	    get_str(rd, o, path, "build_id", false, &build_id))
		return -1;
	if (strlen(build_id) >= sizeof(m->build_id) ||
	    strspn(build_id, "0123456789abcdef") != strlen(build_id))
		return fail(rd, "line %u: %s.build_id: expected up to %zu lowercase hex digits",
			    jr_get(o, "build_id")->line, path, sizeof(m->build_id) - 1);
	memcpy(m->build_id, build_id, strlen(build_id) + 1);
	if (m->end < m->start)
		return fail(rd, "line %u: %s: end before start", o->line, path);
	return 0;
}

static int read_proc(struct reader *rd, const struct jr_value *o, const char *path,
		     struct ht_rproc *p)
{
	const struct jr_value *modules = NULL, *sites = NULL;
	const char *comm;
	char name[256];
	int pid;

	if (expect_object(rd, o, path) || get_int(rd, o, path, "pid", false, &pid, NULL) ||
	    get_str(rd, o, path, "comm", false, &comm) ||
	    get_dup(rd, o, path, "exe", true, &p->exe) ||
	    get_bool(rd, o, path, "exited", &p->exited) ||
	    get_int(rd, o, path, "exit_code", true, &p->exit_code, &p->exit_known) ||
	    read_counts(rd, o, path, &p->c) ||
	    get_u64(rd, o, path, "aged_live_bytes", &p->aged_bytes) ||
	    get_u64(rd, o, path, "aged_live_count", &p->aged_count) ||
	    get_u64(rd, o, path, "peak_bytes", &p->peak_bytes) ||
	    get_u64(rd, o, path, "peak_count", &p->peak_count) ||
	    get_double(rd, o, path, "peak_time_s", &p->peak_time_s) ||
	    get_double(rd, o, path, "rate_bytes_per_s", &p->rate_bytes) ||
	    get_double(rd, o, path, "rate_allocs_per_s", &p->rate_count) ||
	    get_u64(rd, o, path, "unknown_frees", &p->unknown_frees) ||
	    get_u64(rd, o, path, "reused_live", &p->reused_live) ||
	    get_u64(rd, o, path, "model_full", &p->model_full) ||
	    get_array(rd, o, path, "modules", &modules) || get_array(rd, o, path, "sites", &sites))
		return -1;
	p->pid = pid;
	/* comm is at most 15 bytes in the kernel; a longer one is cut like the kernel does */
	snprintf(p->comm, sizeof(p->comm), "%s", comm);
	if (modules->arr.n > UINT32_MAX || sites->arr.n > UINT32_MAX)
		return fail(rd, "%s: too many modules or sites", path);
	if (modules->arr.n && !(p->modules = calloc(modules->arr.n, sizeof(*p->modules))))
		return fail(rd, "out of memory");
	p->nmodules = (uint32_t)modules->arr.n;
	for (uint32_t i = 0; i < p->nmodules; i++) {
		elem_name(name, sizeof(name), path, "modules", i);
		if (read_module(rd, &modules->arr.items[i], name, &p->modules[i]))
			return -1;
	}
	if (sites->arr.n && !(p->sites = calloc(sites->arr.n, sizeof(*p->sites))))
		return fail(rd, "out of memory");
	p->nsites = (uint32_t)sites->arr.n;
	for (uint32_t i = 0; i < p->nsites; i++) {
		elem_name(name, sizeof(name), path, "sites", i);
		if (read_site(rd, &sites->arr.items[i], name, &p->sites[i]))
			return -1;
	}
	return 0;
}

static int read_loss(struct reader *rd, const struct jr_value *root, struct ht_loss *l)
{
	const struct jr_value *o = member(rd, root, "", "loss", true);
	uint64_t *b = l->bpf;

	if (!o)
		return -1;
	if (expect_object(rd, o, "loss"))
		return -1;
	return get_u64(rd, o, "loss", "ringbuf_drops", &b[HT_CNT_RINGBUF_DROPS]) ||
	       get_u64(rd, o, "loss", "thread_state_full", &b[HT_CNT_STATE_FULL]) ||
	       get_u64(rd, o, "loss", "nesting_overflow", &b[HT_CNT_NEST_OVERFLOW]) ||
	       get_u64(rd, o, "loss", "returns_without_entry", &b[HT_CNT_RET_NO_ENTRY]) ||
	       get_u64(rd, o, "loss", "stack_errors", &b[HT_CNT_STACK_ERRORS]) ||
	       get_u64(rd, o, "loss", "stacks_truncated", &b[HT_CNT_STACK_TRUNCATED]) ||
	       get_u64(rd, o, "loss", "nested_calls_folded", &b[HT_CNT_NESTED_SKIPPED]) ||
	       get_u64_opt(rd, o, "loss", "sample_map_full", &b[HT_CNT_SAMPLE_MAP_FULL]) ||
	       get_u64_opt(rd, o, "loss", "unsampled", &b[HT_CNT_UNSAMPLED]) ||
	       get_u64(rd, o, "loss", "unknown_frees", &l->unknown_frees) ||
	       get_u64(rd, o, "loss", "reused_live", &l->reused_live) ||
	       get_u64(rd, o, "loss", "model_full", &l->model_full) ||
	       get_u64(rd, o, "loss", "bad_records", &l->bad_records) ? -1 : 0;
}

/* Schema and version come first: a file from another program or version gets that
 * reason, not a complaint about the first field it lacks. */
static int check_schema(struct reader *rd, const struct jr_value *root)
{
	const struct jr_value *schema, *version;

	if (root->type != JR_OBJECT)
		return fail(rd, "expected a JSON object, found %s", jr_type_name(root->type));
	if (!(schema = member(rd, root, "", "schema", true)))
		return -1;
	if (schema->type != JR_STRING || strcmp(schema->str.s, "heaptap-report"))
		return fail(rd, "unknown schema %s%.60s%s", schema->type == JR_STRING ? "\"" : "",
			    schema->type == JR_STRING ? schema->str.s : jr_type_name(schema->type),
			    schema->type == JR_STRING ? "\"" : "");
	if (!(version = member(rd, root, "", "version", true)))
		return -1;
	if (version->type != JR_NUMBER)
		return wrong_type(rd, version, "", "version", "an integer");
	if (!version->num.is_int || version->num.i != HT_REPORT_SCHEMA) {
		if (version->num.is_int)
			return fail(rd, "unsupported version %lld", (long long)version->num.i);
		return fail(rd, "unsupported version %g", version->num.d);
	}
	return 0;
}

static int read_report(struct reader *rd, const struct jr_value *root, struct ht_report *r)
{
	const struct jr_value *procs = NULL, *mode;
	uint64_t probes, slow;
	char name[64];

	if (check_schema(rd, root) || get_bool(rd, root, "", "final", &r->final) ||
	    get_u64(rd, root, "", "start_time_unix_ns", &r->start_unix_ns) ||
	    get_u64_opt(rd, root, "", "sample_bytes", &r->sample_bytes) ||
	    get_double(rd, root, "", "elapsed_s", &r->elapsed_s) ||
	    get_double(rd, root, "", "interval_s", &r->interval_s) ||
	    get_double(rd, root, "", "min_age_s", &r->min_age_s) ||
	    get_u32(rd, root, "", "max_depth", &r->max_depth) ||
	    get_u64(rd, root, "", "events", &r->events) ||
	    get_u64(rd, root, "", "probes", &probes) ||
	    get_u64(rd, root, "", "slow_probes", &slow) ||
	    get_u64(rd, root, "", "collector_bytes", &r->collector_bytes) ||
	    get_u64(rd, root, "", "live_blocks_tracked", &r->live_blocks_tracked) ||
	    get_u64_opt(rd, root, "", "stacks_tracked", &r->stacks_tracked) ||
	    read_loss(rd, root, &r->loss) || get_array(rd, root, "", "processes", &procs))
		return -1;
	r->probes = probes;
	r->slow_probes = slow;
	/* Files from before modes existed were all "live". */
	mode = jr_get(root, "mode");
	if (mode && mode->type != JR_STRING)
		return wrong_type(rd, mode, "", "mode", "a string");
	if (!(r->mode = intern(rd, mode ? mode->str.s : "live", "mode")))
		return -1;
	if (procs->arr.n > UINT32_MAX)
		return fail(rd, "processes: too many");
	if (procs->arr.n && !(r->procs = calloc(procs->arr.n, sizeof(*r->procs))))
		return fail(rd, "out of memory");
	r->nprocs = (uint32_t)procs->arr.n;
	for (uint32_t i = 0; i < r->nprocs; i++) {
		snprintf(name, sizeof(name), "processes[%u]", i);
		if (read_proc(rd, &procs->arr.items[i], name, &r->procs[i]))
			return -1;
	}
	return 0;
}

/* The whole stream into memory (NUL bytes included: the parser rejects them). */
static char *slurp(FILE *f, size_t *len, struct reader *rd)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	if (!buf) {
		fail(rd, "out of memory");
		return NULL;
	}
	for (;;) {
		size_t got = fread(buf + n, 1, cap - n, f);

		n += got;
		if (got == 0)
			break;
		if (n == cap) {
			void *nb;

			if (cap >= MAX_JSON_BYTES) {
				fail(rd, "larger than %llu bytes", (unsigned long long)MAX_JSON_BYTES);
				free(buf);
				return NULL;
			}
			if (!(nb = realloc(buf, cap * 2))) {
				fail(rd, "out of memory");
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (ferror(f)) {
		fail(rd, "read error: %s", strerror(errno ? errno : EIO));
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

struct ht_report *report__read_json(FILE *f, char *err, size_t errlen)
{
	struct reader rd = { .err = err, .errlen = errlen };
	struct ht_report *r = NULL;
	struct jr_value *root;
	size_t len;
	char *buf;

	if (!(buf = slurp(f, &len, &rd)))
		goto fail;
	root = jr_parse(buf, len, MAX_DEPTH, err, errlen);
	free(buf);
	if (!root)
		goto fail;
	if (!(r = calloc(1, sizeof(*r))))
		fail(&rd, "out of memory");
	else if (read_report(&rd, root, r)) {
		report__free(r);
		r = NULL;
	}
	jr_free(root);
	if (r)
		return r;
fail:
	/* one line, whatever the file's keys and strings held */
	for (char *c = err; errlen && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = ' ';
	errno = EINVAL;
	return NULL;
}
