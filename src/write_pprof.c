/*
 * write_pprof.c: the report as a gzipped pprof profile (profile.proto), the heap-profile
 * conventions of Go's runtime/pprof, so `go tool pprof`, Pyroscope and Parca read it.
 *
 * What goes in:
 *  - sample types alloc_objects/count, alloc_space/bytes, inuse_objects/count,
 *    inuse_space/bytes; default inuse_space.  One sample per site: alloc_count,
 *    alloc_bytes, live_count, live_bytes.  inuse is the live heap now, whatever --min-age
 *    said (pprof's meaning of in-use).
 *  - locations innermost first, as pprof wants, starting at the allocator's caller; the
 *    allocator itself is the sample's "allocator" label (as Go's profiles start at the
 *    caller of mallocgc, so flat figures land on the code that allocated).  A truncated
 *    stack gets a "[truncated]" root location, as in folded output.  Several processes:
 *    labels "pid" (num) and "comm" (str) on every sample.
 *  - a location per distinct return address of a process, with all the frames inlined at
 *    that address as its lines, innermost first (pprof's representation of inlining); an
 *    address without symbols is a location with no line (pprof shows module+offset).
 *  - a mapping per module the frames point into; has_functions, has_filenames,
 *    has_line_numbers and has_inline_frames say whether every location of the mapping
 *    has them, so pprof only tries to symbolize what we could not.
 *  - time_nanos and duration_nanos; period_type space/bytes, period 1 (every allocation
 *    traced) or the sampling mean.
 *
 * Scaling: when allocations are sampled (sample_bytes), the heap model already holds
 * each sampled block's scaled estimate (1/(1-exp(-size/period)), Go's scaleHeapSample),
 * so the report's figures are what pprof expects in a sample and are written unchanged.
 *
 * The encoder: protobuf's wire format needs only varints and length-delimited fields.
 * Each section (samples, locations, ...) is encoded into its own growing buffer, one
 * message at a time through a scratch buffer, then the sections are concatenated — field
 * order does not matter in protobuf — and deflated to f with a gzip header.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "report.h"

/* --- protobuf encoding ------------------------------------------------------------- */

struct pbuf {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };

static void pb_reserve(struct pbuf *b, size_t more)
{
	size_t ncap;
	void *np;

	if (b->oom || b->len + more <= b->cap)
		return;
	ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + more)
		ncap *= 2;
	if (!(np = realloc(b->p, ncap))) {
		b->oom = true;
		return;
	}
	b->p = np;
	b->cap = ncap;
}

static void pb_raw(struct pbuf *b, const void *data, size_t n)
{
	pb_reserve(b, n);
	if (b->oom || !n)
		return;
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void pb_varint(struct pbuf *b, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;

	do {
		tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	pb_raw(b, tmp, n);
}

static size_t varint_len(uint64_t v)
{
	size_t n = 1;

	while (v > 0x7f) {
		v >>= 7;
		n++;
	}
	return n;
}

static void pb_key(struct pbuf *b, unsigned field, unsigned wire)
{
	pb_varint(b, (uint64_t)field << 3 | wire);
}

/* proto3 scalars: zero is the default and is left out. */
static void pb_uint(struct pbuf *b, unsigned field, uint64_t v)
{
	if (!v)
		return;
	pb_key(b, field, WIRE_VARINT);
	pb_varint(b, v);
}

/* int64 fields are varints of the two's complement. */
static void pb_int(struct pbuf *b, unsigned field, int64_t v)
{
	pb_uint(b, field, (uint64_t)v);
}

static void pb_bool(struct pbuf *b, unsigned field, bool v)
{
	pb_uint(b, field, v);
}

static void pb_bytes(struct pbuf *b, unsigned field, const void *data, size_t n)
{
	pb_key(b, field, WIRE_LEN);
	pb_varint(b, n);
	pb_raw(b, data, n);
}

/* A sub-message built in msg, appended as field; msg is emptied for reuse. */
static void pb_msg(struct pbuf *b, unsigned field, struct pbuf *msg)
{
	if (msg->oom)
		b->oom = true;
	pb_bytes(b, field, msg->p, msg->len);
	msg->len = 0;
}

/* A packed repeated varint field (location ids, values). */
static void pb_packed(struct pbuf *b, unsigned field, const uint64_t *v, size_t n)
{
	size_t len = 0;

	if (!n)
		return;
	for (size_t i = 0; i < n; i++)
		len += varint_len(v[i]);
	pb_key(b, field, WIRE_LEN);
	pb_varint(b, len);
	for (size_t i = 0; i < n; i++)
		pb_varint(b, v[i]);
}

/* profile.proto field numbers */
enum {
	PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE, PROFILE_MAPPING, PROFILE_LOCATION,
	PROFILE_FUNCTION, PROFILE_STRING_TABLE, PROFILE_TIME_NANOS = 9, PROFILE_DURATION_NANOS,
	PROFILE_PERIOD_TYPE, PROFILE_PERIOD, PROFILE_DEFAULT_SAMPLE_TYPE = 14,
};
enum { VALUE_TYPE_TYPE = 1, VALUE_TYPE_UNIT };
enum { SAMPLE_LOCATION_ID = 1, SAMPLE_VALUE, SAMPLE_LABEL };
enum { LABEL_KEY = 1, LABEL_STR, LABEL_NUM };
enum {
	MAPPING_ID = 1, MAPPING_START, MAPPING_LIMIT, MAPPING_OFFSET, MAPPING_FILENAME,
	MAPPING_BUILD_ID, MAPPING_HAS_FUNCTIONS, MAPPING_HAS_FILENAMES,
	MAPPING_HAS_LINE_NUMBERS, MAPPING_HAS_INLINE_FRAMES,
};
enum { LOCATION_ID = 1, LOCATION_MAPPING_ID, LOCATION_ADDRESS, LOCATION_LINE };
enum { LINE_FUNCTION_ID = 1, LINE_LINE };
enum { FUNCTION_ID = 1, FUNCTION_NAME, FUNCTION_SYSTEM_NAME, FUNCTION_FILENAME };

/* --- interning tables --------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ b;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ x >> 29;
}

/*
 * Open addressing from a key to a 1-based index (0 = empty slot).  Strings: the key is
 * the string (borrowed: every string lives in the report or is static); pairs: two u64.
 */
struct table {
	uint32_t *slots;
	size_t cap, n;
	const char **strs; /* string table: index -> string */
	uint64_t (*keys)[2]; /* pair table: index-1 -> key */
	size_t items_cap;
};

static int table_grow(struct table *t, uint64_t (*hash_of)(const struct table *, uint32_t))
{
	size_t ncap = t->cap ? t->cap * 2 : 64;
	uint32_t *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < t->cap; i++) {
		uint32_t id = t->slots[i];
		size_t k;

		if (!id)
			continue;
		for (k = hash_of(t, id) & (ncap - 1); ns[k]; k = (k + 1) & (ncap - 1))
			;
		ns[k] = id;
	}
	free(t->slots);
	t->slots = ns;
	t->cap = ncap;
	return 0;
}

static void table_free(struct table *t)
{
	free(t->slots);
	free(t->strs);
	free(t->keys);
}

/* Strings: index 0 is "" (profile.proto requires it); ids here are index + 1. */
static uint64_t str_hash_of(const struct table *t, uint32_t id)
{
	return hash_str(t->strs[id - 1]);
}

static int64_t str_index(struct table *t, const char *s)
{
	uint64_t h;
	size_t k;

	if (!s)
		s = "";
	if ((t->n + 1) * 4 > t->cap * 3 && table_grow(t, str_hash_of))
		return -1;
	h = hash_str(s);
	for (k = h & (t->cap - 1); t->slots[k]; k = (k + 1) & (t->cap - 1))
		if (!strcmp(t->strs[t->slots[k] - 1], s))
			return t->slots[k] - 1;
	if (t->n == t->items_cap) {
		size_t ncap = t->items_cap ? t->items_cap * 2 : 64;
		void *np = realloc(t->strs, ncap * sizeof(*t->strs));

		if (!np)
			return -1;
		t->strs = np;
		t->items_cap = ncap;
	}
	t->strs[t->n++] = s;
	t->slots[k] = (uint32_t)t->n;
	return (int64_t)t->n - 1;
}

static uint64_t pair_hash_of(const struct table *t, uint32_t id)
{
	return mix(t->keys[id - 1][0], t->keys[id - 1][1]);
}

/* The id (1-based) of key (a, b); *is_new when it was just added.  0 on ENOMEM. */
static uint32_t pair_id(struct table *t, uint64_t a, uint64_t b, bool *is_new)
{
	size_t k;

	*is_new = false;
	if ((t->n + 1) * 4 > t->cap * 3 && table_grow(t, pair_hash_of))
		return 0;
	for (k = mix(a, b) & (t->cap - 1); t->slots[k]; k = (k + 1) & (t->cap - 1))
		if (t->keys[t->slots[k] - 1][0] == a && t->keys[t->slots[k] - 1][1] == b)
			return t->slots[k];
	if (t->n == t->items_cap) {
		size_t ncap = t->items_cap ? t->items_cap * 2 : 64;
		void *np = realloc(t->keys, ncap * sizeof(*t->keys));

		if (!np)
			return 0;
		t->keys = np;
		t->items_cap = ncap;
	}
	t->keys[t->n][0] = a;
	t->keys[t->n][1] = b;
	t->slots[k] = (uint32_t)++t->n;
	*is_new = true;
	return (uint32_t)t->n;
}

/* --- the profile ------------------------------------------------------------------- */

/* What a mapping's locations had, to set its has_* flags truthfully. */
struct mapping_info {
	const struct ht_rmodule *mod;
	uint64_t id;
	bool used, all_functions, all_files, all_lines;
};

struct pprof {
	const struct ht_report *r;
	struct table strings, functions, locations;
	struct pbuf samples, locs, funcs;
	struct pbuf scratch, line, fn; /* message under construction, one per nesting level */
	struct mapping_info *maps; /* per process, per module: index proc_base[p] + m */
	uint32_t *proc_base;
	uint64_t *loc_ids;
	size_t loc_ids_cap;
	uint64_t truncated_loc; /* the "[truncated]" location, once made */
	bool oom;
};

static int64_t S(struct pprof *pp, const char *s)
{
	int64_t i = str_index(&pp->strings, s);

	if (i < 0) {
		pp->oom = true;
		return 0;
	}
	return i;
}

/* The module of proc p that holds addr (modules do not overlap), or NULL. */
static struct mapping_info *find_mapping(struct pprof *pp, uint32_t p, uint64_t addr)
{
	const struct ht_rproc *rp = &pp->r->procs[p];

	for (uint32_t m = 0; m < rp->nmodules; m++)
		if (addr >= rp->modules[m].start && addr < rp->modules[m].end)
			return &pp->maps[pp->proc_base[p] + m];
	return NULL;
}

static uint64_t function_id(struct pprof *pp, const struct ht_rframe *f)
{
	int64_t name = S(pp, f->function), file = S(pp, f->file);
	bool is_new;
	uint32_t id = pair_id(&pp->functions, (uint64_t)name, (uint64_t)file, &is_new);

	if (!id) {
		pp->oom = true;
		return 0;
	}
	if (is_new) {
		struct pbuf *m = &pp->fn; /* may be called while a location is in scratch */

		pb_uint(m, FUNCTION_ID, id);
		pb_int(m, FUNCTION_NAME, name);
		/* We only have the demangled name; it is also what the system calls it here. */
		pb_int(m, FUNCTION_SYSTEM_NAME, name);
		pb_int(m, FUNCTION_FILENAME, file);
		pb_msg(&pp->funcs, PROFILE_FUNCTION, m);
	}
	return id;
}

/* frames[0..n) share one return address: the innermost inlined frames, then the function
 * they were inlined into.  One location for all, keyed by (process, address). */
static uint64_t location_id(struct pprof *pp, uint32_t p, const struct ht_rframe *frames,
			    uint32_t n)
{
	struct mapping_info *mi = find_mapping(pp, p, frames[0].addr);
	struct pbuf *m = &pp->scratch;
	bool is_new, has_function = false, has_file = true, has_line = true;
	uint32_t id = pair_id(&pp->locations, p, frames[0].addr, &is_new);

	if (!id) {
		pp->oom = true;
		return 0;
	}
	if (!is_new)
		return id;
	/* A location's fields go to scratch, each line through pp->line: one level deep. */
	pb_uint(m, LOCATION_ID, id);
	pb_uint(m, LOCATION_MAPPING_ID, mi ? mi->id : 0);
	pb_uint(m, LOCATION_ADDRESS, frames[0].addr);
	for (uint32_t i = 0; i < n; i++) {
		if (!frames[i].function)
			continue;
		has_function = true;
		has_file &= frames[i].file != NULL;
		has_line &= frames[i].line > 0;
		pb_uint(&pp->line, LINE_FUNCTION_ID, function_id(pp, &frames[i]));
		pb_int(&pp->line, LINE_LINE, frames[i].line);
		pb_msg(m, LOCATION_LINE, &pp->line);
	}
	pb_msg(&pp->locs, PROFILE_LOCATION, m);
	if (mi) {
		mi->used = true;
		mi->all_functions &= has_function;
		mi->all_files &= has_function && has_file;
		mi->all_lines &= has_function && has_line;
	}
	return id;
}

static uint64_t truncated_location(struct pprof *pp)
{
	static const struct ht_rframe root = { .function = "[truncated]", .module = "" };
	struct pbuf *m = &pp->scratch;
	bool is_new;
	uint64_t id;

	if (pp->truncated_loc)
		return pp->truncated_loc;
	/* location ids are pair ids: take one under a key no real frame has */
	id = pair_id(&pp->locations, UINT64_MAX, 0, &is_new);
	if (!id) {
		pp->oom = true;
		return 0;
	}
	pb_uint(m, LOCATION_ID, id);
	pb_uint(&pp->line, LINE_FUNCTION_ID, function_id(pp, &root));
	pb_msg(m, LOCATION_LINE, &pp->line);
	pb_msg(&pp->locs, PROFILE_LOCATION, m);
	return pp->truncated_loc = id;
}

static void label(struct pprof *pp, struct pbuf *sample, const char *key, const char *str,
		  int64_t num)
{
	struct pbuf *l = &pp->line;

	pb_int(l, LABEL_KEY, S(pp, key));
	if (str)
		pb_int(l, LABEL_STR, S(pp, str));
	else
		pb_int(l, LABEL_NUM, num);
	pb_msg(sample, SAMPLE_LABEL, l);
}

static void add_sample(struct pprof *pp, uint32_t p, const struct ht_rsite *s)
{
	const struct ht_rproc *rp = &pp->r->procs[p];
	uint64_t values[4] = { s->c.alloc_count, s->c.alloc_bytes, s->c.live_count,
			       s->c.live_bytes };
	struct pbuf sample = { 0 };
	size_t n = 0;

	if (pp->loc_ids_cap < (size_t)s->nframes + 1) {
		void *np = realloc(pp->loc_ids, ((size_t)s->nframes + 1) * sizeof(*pp->loc_ids));

		if (!np) {
			pp->oom = true;
			return;
		}
		pp->loc_ids = np;
		pp->loc_ids_cap = (size_t)s->nframes + 1;
	}
	for (uint32_t i = 0; i < s->nframes;) {
		uint32_t j = i;

		/* frames inlined at the same address belong to the next real frame's location */
		while (s->frames[j].inlined && j + 1 < s->nframes &&
		       s->frames[j + 1].addr == s->frames[i].addr)
			j++;
		pp->loc_ids[n++] = location_id(pp, p, &s->frames[i], j - i + 1);
		i = j + 1;
	}
	if (s->truncated)
		pp->loc_ids[n++] = truncated_location(pp);

	pb_packed(&sample, SAMPLE_LOCATION_ID, pp->loc_ids, n);
	pb_packed(&sample, SAMPLE_VALUE, values, 4);
	label(pp, &sample, "allocator", s->allocator, 0);
	if (pp->r->nprocs > 1) {
		label(pp, &sample, "pid", NULL, rp->pid);
		label(pp, &sample, "comm", rp->comm, 0);
	}
	pb_msg(&pp->samples, PROFILE_SAMPLE, &sample);
	free(sample.p);
}

static void value_type(struct pprof *pp, struct pbuf *out, unsigned field, const char *type,
		       const char *unit)
{
	struct pbuf *m = &pp->scratch;

	pb_int(m, VALUE_TYPE_TYPE, S(pp, type));
	pb_int(m, VALUE_TYPE_UNIT, S(pp, unit));
	pb_msg(out, field, m);
}

static void mappings(struct pprof *pp, struct pbuf *out, uint32_t total)
{
	struct pbuf *m = &pp->scratch;

	for (uint32_t i = 0; i < total; i++) {
		const struct mapping_info *mi = &pp->maps[i];

		if (!mi->used)
			continue;
		pb_uint(m, MAPPING_ID, mi->id);
		pb_uint(m, MAPPING_START, mi->mod->start);
		pb_uint(m, MAPPING_LIMIT, mi->mod->end);
		pb_uint(m, MAPPING_OFFSET, mi->mod->file_offset);
		pb_int(m, MAPPING_FILENAME, S(pp, mi->mod->path));
		pb_int(m, MAPPING_BUILD_ID, S(pp, mi->mod->build_id));
		pb_bool(m, MAPPING_HAS_FUNCTIONS, mi->all_functions);
		pb_bool(m, MAPPING_HAS_FILENAMES, mi->all_files);
		pb_bool(m, MAPPING_HAS_LINE_NUMBERS, mi->all_lines);
		/* symbolization expands inline chains wherever there is line information */
		pb_bool(m, MAPPING_HAS_INLINE_FRAMES, mi->all_lines);
		pb_msg(out, PROFILE_MAPPING, m);
	}
}

static int deflate_to(FILE *f, const struct pbuf *const *parts, size_t nparts)
{
	uint8_t out[1 << 16];
	z_stream z = { 0 };
	int zerr = Z_OK;

	/* windowBits 15 + 16: a gzip header and trailer instead of zlib's */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY))
		return -ENOMEM;
	for (size_t i = 0; i < nparts && zerr != Z_STREAM_ERROR; i++) {
		bool last = i + 1 == nparts;
		const uint8_t *p = parts[i]->p ? parts[i]->p : (const uint8_t *)"";
		size_t left = parts[i]->len;

		/* avail_in is 32 bits: feed huge sections in pieces */
		do {
			uInt chunk = left > (1u << 30) ? 1u << 30 : (uInt)left;
			int flush = last && chunk == left ? Z_FINISH : Z_NO_FLUSH;

			z.next_in = (Bytef *)p;
			z.avail_in = chunk;
			do {
				z.next_out = out;
				z.avail_out = sizeof(out);
				zerr = deflate(&z, flush);
				if (zerr == Z_STREAM_ERROR)
					break;
				fwrite(out, 1, sizeof(out) - z.avail_out, f);
			} while (z.avail_out == 0);
			p += chunk;
			left -= chunk;
		} while (left && zerr != Z_STREAM_ERROR);
	}
	deflateEnd(&z);
	if (zerr != Z_STREAM_END)
		return -EIO;
	return ferror(f) ? -EIO : 0;
}

int report__write_pprof(const struct ht_report *r, FILE *f)
{
	struct pprof pp = { .r = r };
	struct pbuf head = { 0 }, tail = { 0 };
	uint32_t total = 0;
	int err = 0;

	/* string 0 must be "" */
	S(&pp, "");
	if (!(pp.proc_base = calloc(r->nprocs ? r->nprocs : 1, sizeof(*pp.proc_base)))) {
		err = -ENOMEM;
		goto out;
	}
	for (uint32_t p = 0; p < r->nprocs; p++) {
		pp.proc_base[p] = total;
		total += r->procs[p].nmodules;
	}
	if (!(pp.maps = calloc(total ? total : 1, sizeof(*pp.maps)))) {
		err = -ENOMEM;
		goto out;
	}
	for (uint32_t p = 0, i = 0; p < r->nprocs; p++)
		for (uint32_t m = 0; m < r->procs[p].nmodules; m++, i++)
			pp.maps[i] = (struct mapping_info){ .mod = &r->procs[p].modules[m],
							    .id = i + 1, .all_functions = true,
							    .all_files = true, .all_lines = true };

	value_type(&pp, &head, PROFILE_SAMPLE_TYPE, "alloc_objects", "count");
	value_type(&pp, &head, PROFILE_SAMPLE_TYPE, "alloc_space", "bytes");
	value_type(&pp, &head, PROFILE_SAMPLE_TYPE, "inuse_objects", "count");
	value_type(&pp, &head, PROFILE_SAMPLE_TYPE, "inuse_space", "bytes");
	for (uint32_t p = 0; p < r->nprocs && !pp.oom; p++)
		for (uint32_t i = 0; i < r->procs[p].nsites && !pp.oom; i++)
			add_sample(&pp, p, &r->procs[p].sites[i]);
	mappings(&pp, &tail, total);
	pb_int(&tail, PROFILE_TIME_NANOS, (int64_t)r->start_unix_ns);
	/* a report read from a file can hold any double: keep the conversion defined */
	if (r->elapsed_s > 0 && r->elapsed_s < 9e9)
		pb_int(&tail, PROFILE_DURATION_NANOS, (int64_t)(r->elapsed_s * 1e9));
	value_type(&pp, &tail, PROFILE_PERIOD_TYPE, "space", "bytes");
	pb_int(&tail, PROFILE_PERIOD, r->sample_bytes ? (int64_t)r->sample_bytes : 1);
	pb_int(&tail, PROFILE_DEFAULT_SAMPLE_TYPE, S(&pp, "inuse_space"));
	/* last: every string is interned by now */
	for (size_t i = 0; i < pp.strings.n; i++)
		pb_bytes(&tail, PROFILE_STRING_TABLE, pp.strings.strs[i], strlen(pp.strings.strs[i]));

	if (pp.oom || head.oom || tail.oom || pp.samples.oom || pp.locs.oom || pp.funcs.oom ||
	    pp.scratch.oom || pp.line.oom || pp.fn.oom) {
		err = -ENOMEM;
	} else {
		const struct pbuf *parts[] = { &head, &pp.samples, &pp.locs, &pp.funcs, &tail };

		err = deflate_to(f, parts, sizeof(parts) / sizeof(parts[0]));
	}
out:
	table_free(&pp.strings);
	table_free(&pp.functions);
	table_free(&pp.locations);
	free(head.p);
	free(tail.p);
	free(pp.samples.p);
	free(pp.locs.p);
	free(pp.funcs.p);
	free(pp.scratch.p);
	free(pp.line.p);
	free(pp.fn.p);
	free(pp.maps);
	free(pp.proc_base);
	free(pp.loc_ids);
	return err;
}
