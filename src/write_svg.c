/*
 * write_svg.c: a self-contained SVG flame graph (no external scripts, styles or fonts).
 *
 * How this works: the sites are merged into a tree keyed by (parent, frame label), as
 * folded output would be merged by a flame-graph tool: an "all" root, the process when
 * there are several, "[truncated]" for cut stacks, then the frames root first and the
 * allocator as the leaf.  Values are the folded metric's.  Children are ordered by label,
 * each node gets its offset from the left edge in value units, and every node at least
 * 0.1 px wide is drawn as a <g class="f"> holding a <title> (the full frame: function,
 * file:line, module, value with units, share), a <rect> and an elided <text> label.  The
 * node's offset, value and depth sit in data- attributes, so the inline script can zoom
 * (click, or #z=NAME in the URL), search (the Search button, or #s=REGEX in the URL) and
 * show the matched share of the total without any other data.  Label widths assume a 12 px monospace font.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define WIDTH 1200
#define PAD 10
#define FRAME_H 16
#define TOP 78      /* title, subtitle, legend */
#define BOTTOM 34   /* details line */
#define CHAR_W 7.3  /* 12 px monospace, a little generous */
#define MIN_PX 0.1  /* narrower frames are left out, as flamegraph.pl does */

enum kind { K_ROOT, K_PROC, K_TRUNC, K_C, K_CXX, K_GO, K_SYSLIB, K_ALLOC, K_UNKNOWN, K__N };

static const struct {
	const char *legend;
	unsigned char lo[3], hi[3]; /* colour range, picked from by the name's hash */
} kinds[K__N] = {
	[K_ROOT] = { NULL, { 200, 200, 210 }, { 200, 200, 210 } },
	[K_PROC] = { "process", { 170, 150, 215 }, { 195, 180, 235 } },
	[K_TRUNC] = { NULL, { 160, 160, 160 }, { 160, 160, 160 } },
	[K_C] = { "C", { 235, 110, 40 }, { 255, 175, 70 } },
	[K_CXX] = { "C++", { 215, 190, 50 }, { 240, 225, 100 } },
	[K_GO] = { "Go", { 70, 185, 205 }, { 120, 220, 235 } },
	[K_SYSLIB] = { "libc/libstdc++", { 100, 190, 100 }, { 150, 225, 140 } },
	[K_ALLOC] = { "allocator", { 215, 55, 60 }, { 245, 95, 90 } },
	[K_UNKNOWN] = { "no symbol", { 165, 165, 165 }, { 200, 200, 200 } },
};

struct node {
	char *label;
	const struct ht_rframe *frame; /* the first frame merged here, or NULL */
	uint64_t value, start;
	uint32_t parent, first_child, next_sibling, depth;
	enum kind kind;
	bool mixed_lines; /* frames with different file:line merged here */
};

struct tree {
	struct node *nodes;
	uint32_t n, cap;
	uint32_t *slots; /* (parent, class, label) -> node index + 1 */
	size_t nslots;
	uint32_t max_depth;
};

static bool metric_is_bytes(enum ht_metric m)
{
	return m != HT_METRIC_LIVE_COUNT && m != HT_METRIC_ALLOC_COUNT;
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

static uint64_t node_hash(uint32_t parent, int cls, const char *label)
{
	uint64_t x = hash_str(label) ^ ((uint64_t)parent << 2 | (uint64_t)cls) * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	return x ^ x >> 29;
}

/* Frames, allocators and the process/truncated pseudo-frames never merge with each
 * other, even when the names agree (a wrapper called "malloc"). */
static int node_class(enum kind k)
{
	return k == K_ALLOC ? 1 : k == K_PROC || k == K_TRUNC || k == K_ROOT ? 2 : 0;
}

static int grow_slots(struct tree *t)
{
	size_t ncap = t->nslots ? t->nslots * 2 : 256;
	uint32_t *ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < t->nslots; i++) {
		const struct node *nd;
		size_t k;

		if (!t->slots[i])
			continue;
		nd = &t->nodes[t->slots[i] - 1];
		for (k = node_hash(nd->parent, node_class(nd->kind), nd->label) & (ncap - 1); ns[k];
		     k = (k + 1) & (ncap - 1))
			;
		ns[k] = t->slots[i];
	}
	free(t->slots);
	t->slots = ns;
	t->nslots = ncap;
	return 0;
}

/* The child of parent called label (created with kind and frame if new), or -1. */
static int64_t child(struct tree *t, uint32_t parent, const char *label, enum kind kind,
		     const struct ht_rframe *frame)
{
	int cls = node_class(kind);
	struct node *nd;
	size_t k;

	if ((size_t)(t->n + 1) * 4 > t->nslots * 3 && grow_slots(t))
		return -1;
	for (k = node_hash(parent, cls, label) & (t->nslots - 1); t->slots[k];
	     k = (k + 1) & (t->nslots - 1)) {
		nd = &t->nodes[t->slots[k] - 1];
		if (nd->parent == parent && node_class(nd->kind) == cls && !strcmp(nd->label, label)) {
			if (frame && nd->frame && (nd->frame->line != frame->line ||
						   (nd->frame->file && frame->file &&
						    strcmp(nd->frame->file, frame->file))))
				nd->mixed_lines = true;
			return t->slots[k] - 1;
		}
	}
	if (t->n == t->cap) {
		uint32_t ncap = t->cap ? t->cap * 2 : 256;
		void *np = realloc(t->nodes, (size_t)ncap * sizeof(*t->nodes));

		if (!np)
			return -1;
		t->nodes = np;
		t->cap = ncap;
	}
	nd = &t->nodes[t->n];
	*nd = (struct node){ .label = strdup(label), .frame = frame, .parent = parent,
			     .kind = kind, .depth = t->nodes[parent].depth + 1 };
	if (!nd->label)
		return -1;
	if (nd->depth > t->max_depth)
		t->max_depth = nd->depth;
	t->slots[k] = ++t->n;
	return t->n - 1;
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && !strcmp(s + n - k, suffix);
}

static enum kind frame_kind(const struct ht_rframe *f)
{
	static const char *const syslibs[] = { "libc.so", "libc-", "libstdc++", "ld-linux",
					       "libgcc_s", "libm.so", "libpthread", "libc++" };
	const char *base;

	if (!f->function)
		return K_UNKNOWN;
	base = f->module ? strrchr(f->module, '/') : NULL;
	base = base ? base + 1 : f->module ? f->module : "";
	for (size_t i = 0; i < sizeof(syslibs) / sizeof(syslibs[0]); i++)
		if (starts_with(base, syslibs[i]))
			return K_SYSLIB;
	if ((f->file && ends_with(f->file, ".go")) || starts_with(f->function, "runtime."))
		return K_GO;
	/* demangled C++: qualified names, parameter lists, operators */
	if (strstr(f->function, "::") || strchr(f->function, '(') ||
	    starts_with(f->function, "operator"))
		return K_CXX;
	return K_C;
}

static int add_site(struct tree *t, const struct ht_report *r, const struct ht_rproc *rp,
		    const struct ht_rsite *s, uint64_t v)
{
	char label[512];
	int64_t at = 0;

	t->nodes[0].value += v;
	if (r->nprocs > 1) {
		snprintf(label, sizeof(label), "%s (%d)", rp->comm, rp->pid);
		if ((at = child(t, (uint32_t)at, label, K_PROC, NULL)) < 0)
			return -ENOMEM;
		t->nodes[at].value += v;
	}
	if (s->truncated) {
		if ((at = child(t, (uint32_t)at, "[truncated]", K_TRUNC, NULL)) < 0)
			return -ENOMEM;
		t->nodes[at].value += v;
	}
	for (uint32_t k = s->nframes; k-- > 0;) {
		const struct ht_rframe *f = &s->frames[k];

		report__frame_label(f, label, sizeof(label));
		if ((at = child(t, (uint32_t)at, label, frame_kind(f), f)) < 0)
			return -ENOMEM;
		t->nodes[at].value += v;
	}
	if ((at = child(t, (uint32_t)at, s->allocator, K_ALLOC, NULL)) < 0)
		return -ENOMEM;
	t->nodes[at].value += v;
	return 0;
}

static const struct node *g_sort_nodes; /* qsort has no context argument */

static int cmp_children(const void *a, const void *b)
{
	const struct node *x = &g_sort_nodes[*(const uint32_t *)a];
	const struct node *y = &g_sort_nodes[*(const uint32_t *)b];
	int c;

	if (x->parent != y->parent)
		return x->parent < y->parent ? -1 : 1;
	if ((c = strcmp(x->label, y->label)))
		return c;
	return node_class(x->kind) - node_class(y->kind);
}

/* Links children in label order and gives every node its offset from the left edge. */
static int layout(struct tree *t)
{
	uint32_t *order = malloc((size_t)t->n * sizeof(*order));

	if (!order)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->n; i++)
		order[i - 1] = i;
	g_sort_nodes = t->nodes;
	qsort(order, t->n - 1, sizeof(*order), cmp_children);
	for (uint32_t i = 0; i < t->n; i++)
		t->nodes[i].first_child = t->nodes[i].next_sibling = 0;
	/* backwards, so pushing at the front keeps the sorted order */
	for (uint32_t i = t->n - 1; i-- > 0;) {
		struct node *nd = &t->nodes[order[i]];

		nd->next_sibling = t->nodes[nd->parent].first_child;
		t->nodes[nd->parent].first_child = order[i];
	}
	/* Parents come before their children in creation order, so one pass places all. */
	t->nodes[0].start = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		uint64_t at = t->nodes[i].start;

		for (uint32_t c = t->nodes[i].first_child; c; c = t->nodes[c].next_sibling) {
			t->nodes[c].start = at;
			at += t->nodes[c].value;
		}
	}
	free(order);
	return 0;
}

/* --- output ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 character (and XML Char) at s, or 0. */
static int utf8_char(const unsigned char *s)
{
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return (s[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;

		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return 0;
		/* U+FFFE and U+FFFF are not XML characters */
		if (c == 0xef && s[1] == 0xbf && s[2] >= 0xbe)
			return 0;
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;

		if (s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
			return 0;
		return 4;
	}
	return 0;
}

/* Characters (code points; invalid bytes count one each) in s. */
static size_t text_chars(const char *s)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; n++) {
		int k = utf8_char(p);

		p += k ? k : 1;
	}
	return n;
}

/*
 * Writes at most max characters of s as XML text or attribute content: markup
 * characters escaped, control characters (and newlines unless keep_nl) as spaces,
 * invalid UTF-8 as U+FFFD, so any XML parser accepts the file.
 */
static void put_xml(FILE *f, const char *s, size_t max, bool keep_nl)
{
	for (const unsigned char *p = (const unsigned char *)s; *p && max; max--) {
		int k = utf8_char(p);

		if (!k) {
			fputs("\xef\xbf\xbd", f);
			p++;
			continue;
		}
		if (k > 1) {
			fwrite(p, 1, (size_t)k, f);
			p += k;
			continue;
		}
		switch (*p) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&apos;", f); break;
		case '\n':
			fputs(keep_nl ? "&#10;" : " ", f);
			break;
		default:
			fputc(*p < 0x20 || *p == 0x7f ? ' ' : *p, f);
		}
		p++;
	}
}

static const char *human(uint64_t v, bool bytes, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double d = (double)v;
	int u = 0;

	if (!bytes) {
		snprintf(buf, len, "%" PRIu64, v);
		return buf;
	}
	while (d >= 1024 && u < 4) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.2f %s", d, unit[u]);
	return buf;
}

/* A colour from the kind's range, varied by the name's hash: stable across runs. */
static void colour(enum kind k, const char *name, char *buf, size_t len)
{
	uint64_t h = hash_str(name);
	int c[3];

	for (int i = 0; i < 3; i++) {
		unsigned span = (unsigned)(kinds[k].hi[i] - kinds[k].lo[i]);
		/* one shared shade for all three channels keeps the hue, a little jitter each */
		unsigned shade = (unsigned)(h & 0xff), jitter = (unsigned)(h >> (8 + 8 * i) & 0xff);

		c[i] = kinds[k].lo[i] + (int)((span * (shade * 3 + jitter)) / (4 * 255));
	}
	snprintf(buf, len, "rgb(%d,%d,%d)", c[0], c[1], c[2]);
}

struct svg {
	FILE *f;
	const struct ht_report *r;
	const struct tree *t;
	enum ht_metric metric;
	bool bytes, inverted;
	uint32_t height;
};

static double frame_y(const struct svg *s, uint32_t depth)
{
	if (s->inverted)
		return TOP + (double)depth * FRAME_H;
	return TOP + (double)(s->t->max_depth - depth) * FRAME_H;
}

static void put_label(FILE *f, const char *label, double w)
{
	size_t fit = w > 6 ? (size_t)((w - 6) / CHAR_W) : 0, n = text_chars(label);

	if (n <= fit) {
		put_xml(f, label, n, false);
	} else if (fit >= 3) {
		put_xml(f, label, fit - 2, false);
		fputs("..", f);
	}
}

static void put_title(const struct svg *s, const struct node *nd)
{
	FILE *f = s->f;
	const struct ht_rframe *fr = nd->frame;
	uint64_t total = s->t->nodes[0].value;
	char a[32];

	put_xml(f, nd->label, SIZE_MAX, false);
	fputs("&#10;", f);
	switch (nd->kind) {
	case K_ROOT:
		fputs("all call stacks", f);
		break;
	case K_PROC:
		fputs("process", f);
		break;
	case K_TRUNC:
		fputs("stacks cut at the depth cap (-D)", f);
		break;
	case K_ALLOC:
		fputs("allocator", f);
		break;
	default:
		if (!fr)
			break;
		if (fr->file) {
			put_xml(f, fr->file, SIZE_MAX, false);
			fprintf(f, ":%d%s", fr->line, nd->mixed_lines ? " and other lines" : "");
		} else {
			fputs(fr->function ? "no line information" : "no symbol", f);
		}
		if (fr->inlined)
			fputs(" (inlined)", f);
		fputs("&#10;", f);
		put_xml(f, fr->module, SIZE_MAX, false);
		fprintf(f, " +0x%" PRIx64, fr->offset);
	}
	fprintf(f, "&#10;%s", human(nd->value, s->bytes, a, sizeof(a)));
	if (s->bytes && nd->value >= 1024)
		fprintf(f, " (%" PRIu64 " bytes)", nd->value);
	else if (!s->bytes)
		fputs(s->metric == HT_METRIC_LIVE_COUNT ? " blocks" : " allocations", f);
	fprintf(f, ", %.2f%%", total ? 100.0 * (double)nd->value / (double)total : 0.0);
}

static void put_frames(const struct svg *s)
{
	const struct tree *t = s->t;
	double scale = (double)(WIDTH - 2 * PAD) / (double)t->nodes[0].value;
	uint32_t *stack = malloc(((size_t)t->n + 1) * sizeof(*stack));
	uint32_t sp = 0;
	char fill[32];

	if (!stack)
		return;
	/* preorder without recursion: stacks from a file can be arbitrarily deep */
	stack[sp++] = 0;
	while (sp) {
		const struct node *nd = &t->nodes[stack[--sp]];
		double x = PAD + (double)nd->start * scale, w = (double)nd->value * scale;
		double y = frame_y(s, nd->depth);

		if (w < MIN_PX)
			continue;
		for (uint32_t c = nd->first_child; c; c = t->nodes[c].next_sibling)
			stack[sp++] = c;
		colour(nd->kind, nd->label, fill, sizeof(fill));
		fprintf(s->f, "<g class=\"f\" data-s=\"%" PRIu64 "\" data-v=\"%" PRIu64
			       "\" data-d=\"%u\" data-n=\"", nd->start, nd->value, nd->depth);
		put_xml(s->f, nd->label, SIZE_MAX, false);
		fputs("\"><title>", s->f);
		put_title(s, nd);
		fprintf(s->f, "</title><rect x=\"%.2f\" y=\"%.1f\" width=\"%.2f\" height=\"%d\" "
			       "fill=\"%s\"/><text x=\"%.2f\" y=\"%.1f\">", x, y, w, FRAME_H - 1,
			fill, x + 3, y + FRAME_H - 4.5);
		put_label(s->f, nd->label, w);
		fputs("</text></g>\n", s->f);
	}
	free(stack);
}

static const char *metric_title(enum ht_metric m, bool aged)
{
	switch (m) {
	case HT_METRIC_LIVE_BYTES:
		return aged ? "Live heap older than --min-age, bytes by call stack"
			    : "Live heap, bytes by call stack";
	case HT_METRIC_LIVE_COUNT:
		return aged ? "Live blocks older than --min-age, by call stack"
			    : "Live blocks by call stack";
	case HT_METRIC_ALLOC_BYTES:
		return "Bytes allocated by call stack";
	case HT_METRIC_ALLOC_COUNT:
		return "Allocations by call stack";
	case HT_METRIC_PEAK:
		return "Live heap at the peak, bytes by call stack";
	}
	return "";
}

static void put_header(const struct svg *s)
{
	FILE *f = s->f;
	const struct ht_report *r = s->r;
	uint64_t total = s->t->nodes[0].value;
	uint32_t nsites = 0;
	char a[32];
	double x = PAD;

	for (uint32_t p = 0; p < r->nprocs; p++)
		nsites += r->procs[p].nsites;
	fprintf(f, "<text class=\"title\" x=\"%d\" y=\"22\">", WIDTH / 2);
	fputs(metric_title(s->metric, r->min_age_s > 0), f);
	fputs("</text>\n", f);
	fprintf(f, "<text class=\"sub\" x=\"%d\" y=\"40\">total %s%s (%s) · %u call stacks · "
		   "%u process%s · %.2f s traced", WIDTH / 2, human(total, s->bytes, a, sizeof(a)),
		s->bytes ? "" : s->metric == HT_METRIC_LIVE_COUNT ? " blocks" : " allocations",
		metric__name(s->metric), nsites, r->nprocs, r->nprocs == 1 ? "" : "es",
		r->elapsed_s);
	if (r->min_age_s > 0)
		fprintf(f, " · min age %g s", r->min_age_s);
	if (r->sample_bytes)
		fprintf(f, " · estimates: sampled every %" PRIu64 " bytes on average",
			r->sample_bytes);
	fputs("</text>\n", f);
	for (int k = 0; k < K__N; k++) {
		char fill[32];

		if (!kinds[k].legend)
			continue;
		colour((enum kind)k, kinds[k].legend, fill, sizeof(fill));
		fprintf(f, "<rect x=\"%.0f\" y=\"50\" width=\"12\" height=\"12\" fill=\"%s\"/>"
			   "<text class=\"legend\" x=\"%.0f\" y=\"60\">%s</text>\n",
			x, fill, x + 16, kinds[k].legend);
		x += 16 + strlen(kinds[k].legend) * 6.6 + 18;
	}
	fprintf(f, "<text id=\"unzoom\" class=\"btn\" x=\"%d\" y=\"22\" display=\"none\">"
		   "Reset Zoom</text>\n", PAD);
	fprintf(f, "<text id=\"search\" class=\"btn\" x=\"%d\" y=\"22\" text-anchor=\"end\">"
		   "Search</text>\n", WIDTH - PAD);
	fprintf(f, "<text id=\"details\" x=\"%d\" y=\"%u\"> </text>\n", PAD, s->height - 12);
	fprintf(f, "<text id=\"matched\" x=\"%d\" y=\"%u\" text-anchor=\"end\"> </text>\n",
		WIDTH - PAD, s->height - 12);
}

/* Runs in the browser: zoom, search, hover details.  Reads only the DOM above. */
static const char script[] =
	"<script type=\"text/ecmascript\"><![CDATA[\n"
	"(function () {\n"
	"'use strict';\n"
	"var svg = document.documentElement, W = +svg.getAttribute('data-width');\n"
	"var PAD = 10, CW = 7.3, MIN = 0.1, total = +svg.getAttribute('data-total');\n"
	"var bytes = svg.getAttribute('data-bytes') === '1', suffix = svg.getAttribute('data-suffix');\n"
	"var frames = Array.prototype.slice.call(document.querySelectorAll('g.f'));\n"
	"var details = document.getElementById('details'), matched = document.getElementById('matched');\n"
	"var unzoomBtn = document.getElementById('unzoom'), searchBtn = document.getElementById('search');\n"
	"var term = null;\n"
	"function num(g, a) { return +g.getAttribute('data-' + a); }\n"
	"function human(v) {\n"
	"  if (!bytes) return String(v) + suffix;\n"
	"  var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'], i = 0;\n"
	"  while (v >= 1024 && i < 4) { v /= 1024; i++; }\n"
	"  return i ? v.toFixed(2) + ' ' + u[i] : v + ' B';\n"
	"}\n"
	"function label(g, w) {\n"
	"  var n = g.getAttribute('data-n'), fit = w > 6 ? Math.floor((w - 6) / CW) : 0;\n"
	"  var chars = Array.from(n);\n"
	"  if (chars.length <= fit) return n;\n"
	"  return fit >= 3 ? chars.slice(0, fit - 2).join('') + '..' : '';\n"
	"}\n"
	"function place(g, x, w) {\n"
	"  var r = g.querySelector('rect'), t = g.querySelector('text');\n"
	"  g.style.display = '';\n"
	"  r.setAttribute('x', x.toFixed(2)); r.setAttribute('width', w.toFixed(2));\n"
	"  t.setAttribute('x', (x + 3).toFixed(2)); t.textContent = label(g, w);\n"
	"}\n"
	"function zoom(g) {\n"
	"  var s0 = num(g, 's'), v0 = num(g, 'v'), d0 = num(g, 'd');\n"
	"  var scale = (W - 2 * PAD) / v0;\n"
	"  frames.forEach(function (f) {\n"
	"    var s = num(f, 's'), v = num(f, 'v'), d = num(f, 'd');\n"
	"    f.classList.remove('anc');\n"
	"    if (d < d0 && s <= s0 && s + v >= s0 + v0) { place(f, PAD, W - 2 * PAD); if (d0) f.classList.add('anc'); }\n"
	"    else if (d >= d0 && s >= s0 && s + v <= s0 + v0 && v * scale >= MIN) place(f, PAD + (s - s0) * scale, v * scale);\n"
	"    else f.style.display = 'none';\n"
	"  });\n"
	"  unzoomBtn.setAttribute('display', d0 ? 'inline' : 'none');\n"
	"}\n"
	"function frameOf(e) {\n"
	"  for (var n = e.target; n && n !== svg; n = n.parentNode)\n"
	"    if (n.classList && n.classList.contains('f')) return n;\n"
	"  return null;\n"
	"}\n"
	"function search(t) {\n"
	"  var re = null, iv = [], sum = 0, end = -1;\n"
	"  try { re = new RegExp(t); } catch (e) { re = null; }\n"
	"  term = t;\n"
	"  frames.forEach(function (f) {\n"
	"    var n = f.getAttribute('data-n'), r = f.querySelector('rect');\n"
	"    var hit = re ? re.test(n) : n.indexOf(t) >= 0;\n"
	"    if (!r.hasAttribute('data-fill')) r.setAttribute('data-fill', r.getAttribute('fill'));\n"
	"    r.setAttribute('fill', hit ? 'rgb(230,0,230)' : r.getAttribute('data-fill'));\n"
	"    if (hit) iv.push([num(f, 's'), num(f, 's') + num(f, 'v')]);\n"
	"  });\n"
	"  /* a frame matching inside a matching frame is not counted twice */\n"
	"  iv.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });\n"
	"  iv.forEach(function (i) {\n"
	"    if (i[0] >= end) { sum += i[1] - i[0]; end = i[1]; }\n"
	"    else if (i[1] > end) { sum += i[1] - end; end = i[1]; }\n"
	"  });\n"
	"  var pct = total ? 100 * sum / total : 0;\n"
	"  svg.setAttribute('data-matched', String(sum));\n"
	"  svg.setAttribute('data-matched-pct', pct.toFixed(2));\n"
	"  matched.textContent = 'Matched: ' + pct.toFixed(2) + '% (' + human(sum) + ')';\n"
	"  searchBtn.textContent = 'Reset Search';\n"
	"}\n"
	"function resetSearch() {\n"
	"  frames.forEach(function (f) {\n"
	"    var r = f.querySelector('rect');\n"
	"    if (r.hasAttribute('data-fill')) r.setAttribute('fill', r.getAttribute('data-fill'));\n"
	"  });\n"
	"  term = null; matched.textContent = ' '; searchBtn.textContent = 'Search';\n"
	"  svg.removeAttribute('data-matched'); svg.removeAttribute('data-matched-pct');\n"
	"}\n"
	"svg.addEventListener('click', function (e) {\n"
	"  var g = frameOf(e);\n"
	"  if (g) zoom(g);\n"
	"});\n"
	"svg.addEventListener('mouseover', function (e) {\n"
	"  var g = frameOf(e);\n"
	"  if (!g) return;\n"
	"  var lines = g.querySelector('title').textContent.split('\\n');\n"
	"  details.textContent = lines.slice(0, 2).join(' \\u2014 ') + ' \\u2014 ' + lines[lines.length - 1];\n"
	"});\n"
	"svg.addEventListener('mouseout', function (e) { if (frameOf(e)) details.textContent = ' '; });\n"
	"unzoomBtn.addEventListener('click', function (e) { e.stopPropagation(); zoom(frames[0]); });\n"
	"searchBtn.addEventListener('click', function (e) {\n"
	"  e.stopPropagation();\n"
	"  if (term !== null) { resetSearch(); return; }\n"
	"  var t = window.prompt('Search frames (regular expression):', '');\n"
	"  if (t) search(t);\n"
	"});\n"
	"document.addEventListener('keydown', function (e) {\n"
	"  if (e.key === 'Escape') { resetSearch(); zoom(frames[0]); }\n"
	"});\n"
	"/* #s=REGEX searches, #z=NAME zooms into the widest frame called NAME (also ?s=, &) */\n"
	"function param(k) {\n"
	"  var q = '&' + location.hash.replace(/^#/, '') + '&' + location.search.replace(/^\\?/, '');\n"
	"  var m = q.match(new RegExp('&' + k + '=([^&]*)'));\n"
	"  return m && m[1] ? decodeURIComponent(m[1]) : null;\n"
	"}\n"
	"var z = param('z'), best = null, s = param('s') || param('search');\n"
	"if (z) frames.forEach(function (f) {\n"
	"  if (f.getAttribute('data-n') === z && (!best || num(f, 'v') > num(best, 'v'))) best = f;\n"
	"});\n"
	"if (best) zoom(best);\n"
	"if (s) search(s);\n"
	"})();\n"
	"]]></script>\n";

int report__write_svg(const struct ht_report *r, FILE *f, enum ht_metric metric, bool inverted)
{
	struct tree t = { 0 };
	struct svg s = { .f = f, .r = r, .t = &t, .metric = metric, .inverted = inverted,
			 .bytes = metric_is_bytes(metric) };
	int err = -ENOMEM;

	t.nodes = calloc(256, sizeof(*t.nodes));
	if (!t.nodes || !(t.nodes[0].label = strdup("all")))
		goto out;
	t.cap = 256;
	t.n = 1;
	t.nodes[0].kind = K_ROOT;
	if (grow_slots(&t))
		goto out;
	for (uint32_t p = 0; p < r->nprocs; p++)
		for (uint32_t i = 0; i < r->procs[p].nsites; i++) {
			const struct ht_rsite *site = &r->procs[p].sites[i];
			uint64_t v = report__site_value(r, site, metric);

			if (v && add_site(&t, r, &r->procs[p], site, v))
				goto out;
		}
	if (layout(&t))
		goto out;

	s.height = TOP + (t.max_depth + 1) * FRAME_H + BOTTOM;
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
		   "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		   "height=\"%u\" viewBox=\"0 0 %d %u\" data-width=\"%d\" data-total=\"%" PRIu64
		   "\" data-bytes=\"%d\" data-suffix=\"%s\" data-metric=\"%s\">\n",
		WIDTH, s.height, WIDTH, s.height, WIDTH, t.nodes[0].value, s.bytes,
		s.bytes ? "" : metric == HT_METRIC_LIVE_COUNT ? " blocks" : " allocations",
		metric__name(metric));
	fputs("<style>\n"
	      "text { font-family: monospace; font-size: 12px; fill: #000; }\n"
	      "text.title { font-size: 17px; text-anchor: middle; }\n"
	      "text.sub { fill: #444; text-anchor: middle; }\n"
	      "text.legend { font-size: 11px; fill: #333; }\n"
	      "text.btn { fill: #06c; cursor: pointer; }\n"
	      "g.f { cursor: pointer; }\n"
	      "g.f text { pointer-events: none; }\n"
	      "g.f:hover rect { stroke: #000; stroke-width: 0.5; }\n"
	      "g.anc { opacity: 0.55; }\n"
	      "</style>\n",
	      f);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%u\" fill=\"#fbfbf5\"/>\n", WIDTH,
		s.height);
	put_header(&s);
	if (t.nodes[0].value)
		put_frames(&s);
	else
		fprintf(f, "<text class=\"sub\" x=\"%d\" y=\"%d\">nothing to show: every call stack "
			   "is 0 for %s</text>\n", WIDTH / 2, TOP + 12, metric__name(metric));
	fputs(script, f);
	fputs("</svg>\n", f);
	err = ferror(f) ? -EIO : 0;
out:
	for (uint32_t i = 0; i < t.n; i++)
		free(t.nodes[i].label);
	free(t.nodes);
	free(t.slots);
	return err;
}
