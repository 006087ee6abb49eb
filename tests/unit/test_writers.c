/*
 * Unit test for the report writers (write_folded.c, write_json.c, write_text.c) on a
 * report built by hand, so every case has a known answer: frames with and without a
 * function name, an inlined frame, a truncated site, names holding ';', quotes,
 * backslashes and control characters, sites that are zero in some metrics, one process
 * and two.  Folded output is compared exactly for every metric; JSON is parsed by python3
 * (skipped with a message if python3 is missing) and checked field by field; the text
 * report is checked for its key lines.  Exit status 0 when every check passes; every
 * failed check is printed to stderr with its file:line.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "report.h"

#include "check.h"

#define CHECK_STR(got, want) check_str((got), (want), #got, __FILE__, __LINE__)

static void check_str(const char *got, const char *want, const char *what, const char *file,
		      int line)
{
	if (got && !strcmp(got, want))
		return;
	fprintf(stderr, "%s:%d: check failed: %s\n--- got:\n%s--- want:\n%s---\n", file, line,
		what, got ? got : "(null)\n", want);
	failures++;
}

#define CHECK_HAS(text, needle) check_has((text), (needle), __FILE__, __LINE__)

static void check_has(const char *text, const char *needle, const char *file, int line)
{
	if (text && strstr(text, needle))
		return;
	fprintf(stderr, "%s:%d: check failed: output lacks \"%s\"\n", file, line, needle);
	failures++;
}

/* ---- the report ---------------------------------------------------------------- */

static struct ht_rframe frames0[] = {
	/* innermost first: leaf_fn's call, inside inl_helper inlined into main */
	{ .addr = 0x401010, .function = "leaf_fn", .file = "demo.c", .line = 10,
	  .module = "/usr/bin/demo", .offset = 0x1010 },
	{ .addr = 0x401234, .function = "inl_helper", .file = "util.h", .line = 5,
	  .module = "/usr/bin/demo", .offset = 0x1234, .inlined = true },
	{ .addr = 0x401234, .function = "main", .file = "demo.c", .line = 20,
	  .module = "/usr/bin/demo", .offset = 0x1234 },
};

static struct ht_rframe frames1[] = {
	{ .addr = 0x7f0000001234, .function = NULL, .module = "/usr/lib/libfoo.so",
	  .offset = 0x1234 },
	{ .addr = 0x401500, .function = "tmpl<a;b>", .module = "/usr/bin/demo",
	  .offset = 0x1500 },
	{ .addr = 0x401600, .function = "say \"hi\" \\ back", .file = "dir\\x.c", .line = 7,
	  .module = "/usr/bin/demo", .offset = 0x1600 },
};

static struct ht_rframe frames2[] = {
	{ .addr = 0x401700, .function = "deep_fn", .module = "/usr/bin/demo", .offset = 0x1700 },
};

static struct ht_rframe frames3[] = {
	{ .addr = 0x401800, .function = "zero_fn", .file = "a\tb\x01.c", .line = 1,
	  .module = "/usr/bin/demo", .offset = 0x1800 },
};

static struct ht_rframe frames10[] = {
	{ .addr = 0x500000, .function = "thread_fn", .file = "worker.c", .line = 3,
	  .module = "/usr/bin/worker", .offset = 0x100000 },
};

static struct ht_rsite sites0[] = {
	{ .id = 0, .allocator = "malloc",
	  .c = { .alloc_count = 10, .alloc_bytes = 1000, .free_count = 7, .free_bytes = 700,
		 .live_count = 3, .live_bytes = 300, .last_iv_count = 4, .last_iv_bytes = 2048 },
	  .peak_bytes = 500, .peak_count = 5, .aged_bytes = 200, .aged_count = 2,
	  .rate_bytes = 2048, .rate_count = 4, .frames = frames0, .nframes = 3 },
	/* nothing live: left out of the live metrics */
	{ .id = 1, .allocator = "calloc",
	  .c = { .alloc_count = 2, .alloc_bytes = 64, .free_count = 2, .free_bytes = 64 },
	  .peak_bytes = 64, .peak_count = 1, .frames = frames1, .nframes = 3 },
	/* not live at the peak: left out of the peak metric */
	{ .id = 2, .allocator = "operator new", .truncated = true,
	  .c = { .alloc_count = 1, .alloc_bytes = 16, .live_count = 1, .live_bytes = 16 },
	  .frames = frames2, .nframes = 1 },
	/* zero everywhere: never in folded output */
	{ .id = 3, .allocator = "malloc", .frames = frames3, .nframes = 1 },
	/* no frames at all */
	{ .id = 4, .allocator = "realloc",
	  .c = { .alloc_count = 1, .alloc_bytes = 7, .free_count = 1, .free_bytes = 7 } },
};

static struct ht_rsite sites1[] = {
	{ .id = 10, .allocator = "malloc",
	  .c = { .alloc_count = 1, .alloc_bytes = 8, .live_count = 1, .live_bytes = 8 },
	  .peak_bytes = 8, .peak_count = 1, .aged_bytes = 8, .aged_count = 1,
	  .frames = frames10, .nframes = 1 },
};

static struct ht_rmodule modules0[] = {
	{ .path = "/usr/bin/demo", .start = 0x400000, .end = 0x402000, .file_offset = 0,
	  .bias = 0, .build_id = "0123456789abcdef0123456789abcdef01234567" },
	{ .path = "/usr/lib/libfoo.so", .start = 0x7f0000000000, .end = 0x7f0000010000,
	  .file_offset = 0x1000, .bias = 0x7effffff0000, .build_id = "" },
};

static void make_procs(struct ht_rproc procs[2], const char *comm1)
{
	memset(procs, 0, 2 * sizeof(*procs));
	procs[0] = (struct ht_rproc){
		.pid = 1234, .comm = "demo", .exe = "/usr/bin/demo",
		.modules = modules0, .nmodules = 2,
		.exited = true, .exit_known = true, .exit_code = 3,
		.c = { .alloc_count = 14, .alloc_bytes = 1087, .free_count = 10, .free_bytes = 771,
		       .live_count = 4, .live_bytes = 316 },
		.peak_bytes = 580, .peak_count = 6, .peak_time_s = 1.25,
		.rate_bytes = 2048, .rate_count = 4, .unknown_frees = 1, .reused_live = 2,
		.aged_bytes = 200, .aged_count = 2,
		.sites = sites0, .nsites = sizeof(sites0) / sizeof(sites0[0]),
	};
	procs[1] = (struct ht_rproc){
		.pid = 99, .exe = NULL,
		.c = { .alloc_count = 1, .alloc_bytes = 8, .live_count = 1, .live_bytes = 8 },
		.peak_bytes = 8, .peak_count = 1, .rate_bytes = NAN,
		.aged_bytes = 8, .aged_count = 1,
		.sites = sites1, .nsites = 1,
	};
	snprintf(procs[1].comm, sizeof(procs[1].comm), "%s", comm1);
}

static void make_report(struct ht_report *r, struct ht_rproc *procs, uint32_t nprocs)
{
	*r = (struct ht_report){
		.final = true, .start_unix_ns = 1700000000123456789ULL, .mode = "live",
		.elapsed_s = 12.5, .interval_s = 1, .max_depth = 64,
		.events = 777, .collector_bytes = 1536, .live_blocks_tracked = 4,
		.stacks_tracked = 3,
		.probes = 42, .slow_probes = 2, .procs = procs, .nprocs = nprocs,
	};
	r->loss.bpf[HT_CNT_RINGBUF_DROPS] = 5;
	r->loss.bpf[HT_CNT_STACK_TRUNCATED] = 1;
	r->loss.unknown_frees = 1;
	r->loss.reused_live = 2;
}

/* ---- folded --------------------------------------------------------------------- */

static char *folded(const struct ht_report *r, enum ht_metric m)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (!f) {
		perror("open_memstream");
		exit(1);
	}
	ret = report__write_folded(r, f, m);
	fclose(f);
	CHECK(ret == 0);
	return buf;
}

#define LEAF0 "main;inl_helper;leaf_fn;malloc"
#define LEAF1 "say \"hi\" \\ back;tmpl<a:b>;libfoo.so+0x1234;calloc"
#define LEAF2 "[truncated];deep_fn;operator new"

static const char *const want_one[] = {
	[HT_METRIC_LIVE_BYTES] = LEAF0 " 300\n" LEAF2 " 16\n",
	[HT_METRIC_LIVE_COUNT] = LEAF0 " 3\n" LEAF2 " 1\n",
	[HT_METRIC_ALLOC_BYTES] = LEAF0 " 1000\n" LEAF1 " 64\n" LEAF2 " 16\nrealloc 7\n",
	[HT_METRIC_ALLOC_COUNT] = LEAF0 " 10\n" LEAF1 " 2\n" LEAF2 " 1\nrealloc 1\n",
	[HT_METRIC_PEAK] = LEAF0 " 500\n" LEAF1 " 64\n",
};

/* with --min-age: the live metrics count only the aged blocks */
static const char *const want_aged[] = {
	[HT_METRIC_LIVE_BYTES] = LEAF0 " 200\n",
	[HT_METRIC_LIVE_COUNT] = LEAF0 " 2\n",
	[HT_METRIC_ALLOC_BYTES] = LEAF0 " 1000\n" LEAF1 " 64\n" LEAF2 " 16\nrealloc 7\n",
	[HT_METRIC_ALLOC_COUNT] = LEAF0 " 10\n" LEAF1 " 2\n" LEAF2 " 1\nrealloc 1\n",
	[HT_METRIC_PEAK] = LEAF0 " 500\n" LEAF1 " 64\n",
};

#define P0 "demo (1234);"
#define P1 "worker (99);thread_fn;malloc"

static const char *const want_two[] = {
	[HT_METRIC_LIVE_BYTES] = P0 LEAF0 " 300\n" P0 LEAF2 " 16\n" P1 " 8\n",
	[HT_METRIC_LIVE_COUNT] = P0 LEAF0 " 3\n" P0 LEAF2 " 1\n" P1 " 1\n",
	[HT_METRIC_ALLOC_BYTES] = P0 LEAF0 " 1000\n" P0 LEAF1 " 64\n" P0 LEAF2 " 16\n"
				  P0 "realloc 7\n" P1 " 8\n",
	[HT_METRIC_ALLOC_COUNT] = P0 LEAF0 " 10\n" P0 LEAF1 " 2\n" P0 LEAF2 " 1\n"
				  P0 "realloc 1\n" P1 " 1\n",
	[HT_METRIC_PEAK] = P0 LEAF0 " 500\n" P0 LEAF1 " 64\n" P1 " 8\n",
};

static const enum ht_metric metrics[] = {
	HT_METRIC_LIVE_BYTES, HT_METRIC_LIVE_COUNT, HT_METRIC_ALLOC_BYTES,
	HT_METRIC_ALLOC_COUNT, HT_METRIC_PEAK,
};

static void test_folded(void)
{
	struct ht_rproc procs[2];
	struct ht_report r;
	char *out;

	make_procs(procs, "worker");
	for (size_t i = 0; i < sizeof(metrics) / sizeof(metrics[0]); i++) {
		enum ht_metric m = metrics[i];
		int before = failures;

		make_report(&r, procs, 1);
		out = folded(&r, m);
		CHECK_STR(out, want_one[m]);
		free(out);

		r.min_age_s = 1.5;
		out = folded(&r, m);
		CHECK_STR(out, want_aged[m]);
		free(out);

		make_report(&r, procs, 2);
		out = folded(&r, m);
		CHECK_STR(out, want_two[m]);
		free(out);
		if (failures != before)
			fprintf(stderr, "^ folded, metric %s\n", metric__name(m));
	}

	/* nothing to show: empty output, no error */
	make_report(&r, procs, 0);
	out = folded(&r, HT_METRIC_LIVE_BYTES);
	CHECK_STR(out, "");
	free(out);

	/* a newline in a name would end the line early */
	{
		struct ht_rframe fr = { .addr = 1, .function = "two\nlines", .module = "m" };
		struct ht_rsite s = { .allocator = "malloc", .c = { .alloc_count = 1 },
				      .frames = &fr, .nframes = 1 };
		struct ht_rproc p = { .pid = 1, .comm = "x", .sites = &s, .nsites = 1 };

		make_report(&r, &p, 1);
		out = folded(&r, HT_METRIC_ALLOC_COUNT);
		CHECK_STR(out, "two lines;malloc 1\n");
		free(out);
	}

	/*
	 * The process root frame is a frame name like any other: a ';' in the comm (any
	 * byte but NUL is allowed there, see prctl(PR_SET_NAME)) must not split it.
	 */
	make_procs(procs, "wk;x");
	make_report(&r, procs, 2);
	out = folded(&r, HT_METRIC_LIVE_COUNT);
	CHECK_STR(out, P0 LEAF0 " 3\n" P0 LEAF2 " 1\nwk:x (99);thread_fn;malloc 1\n");
	free(out);
}

/* ---- JSON ----------------------------------------------------------------------- */

static char *json(const struct ht_report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int ret;

	if (!f) {
		perror("open_memstream");
		exit(1);
	}
	ret = report__write_json(r, f);
	fclose(f);
	CHECK(ret == 0);
	return buf;
}

/* The system's python3 when there is one: a version-manager shim on PATH costs seconds. */
static const char *python(void)
{
	return access("/usr/bin/python3", X_OK) ? "python3" : "/usr/bin/python3";
}

/* Runs python3 -c 'import json,sys; json.load(sys.stdin)' on text: 1 valid, 0 not, -1 none. */
static int python_valid(const char *text)
{
	char cmd[128];
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s -c 'import json,sys; json.load(sys.stdin)' 2>&1", python());
	p = popen(cmd, "w");

	if (!p)
		return -1;
	fputs(text, p);
	st = pclose(p);
	if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
		return -1;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/*
 * What python reads back from the report in argv[1]: one line per process, module, site
 * and frame ('|' between fields); then a line for the empty report in argv[2].
 */
static const char extract_py[] =
	"import json, sys\n"
	"d = json.load(open(sys.argv[1], encoding='utf-8'))\n"
	"def j(*a): print('|'.join(str(x) for x in a))\n"
	"l = d['loss']\n"
	"j(d['schema'], d['version'], d['final'], d['start_time_unix_ns'], d['mode'],\n"
	"  d['sample_bytes'], d['elapsed_s'], d['events'], d['probes'],\n"
	"  d['collector_bytes'], d['stacks_tracked'], l['ringbuf_drops'], l['stacks_truncated'],\n"
	"  l['unknown_frees'], l['reused_live'], len(d['processes']))\n"
	"for p in d['processes']:\n"
	"    j(p['pid'], p['comm'], p['exe'], p['exited'], p['exit_code'], p['live_bytes'],\n"
	"      p['peak_bytes'], p['peak_time_s'], p['rate_bytes_per_s'], p['unknown_frees'],\n"
	"      len(p['sites']))\n"
	"    for m in p['modules']:\n"
	"        j(' m', m['path'], m['start'], m['end'], m['file_offset'], m['bias'],\n"
	"          m['build_id'])\n"
	"    for s in p['sites']:\n"
	"        j(' ', s['id'], s['allocator'], s['live_bytes'], s['alloc_count'],\n"
	"          s['interval_alloc_bytes'], s['peak_live_bytes'], s['aged_live_bytes'],\n"
	"          s['truncated'], len(s['frames']))\n"
	"        for f in s['frames']:\n"
	"            j('   ', f['addr'], f['function'], f['file'], f['line'], f['module'],\n"
	"              f['offset'], f['inlined'])\n"
	"e = json.load(open(sys.argv[2], encoding='utf-8'))\n"
	"j('empty', e['schema'], e['mode'], e['processes'])\n";

static const char want_extract[] =
	"heaptap-report|1|True|1700000000123456789|live|0|12.5|777|42|1536|3|5|1|1|2|2\n"
	"1234|demo|/usr/bin/demo|True|3|316|580|1.25|2048|1|5\n"
	" m|/usr/bin/demo|0x400000|0x402000|0x0|0x0|0123456789abcdef0123456789abcdef01234567\n"
	" m|/usr/lib/libfoo.so|0x7f0000000000|0x7f0000010000|0x1000|0x7effffff0000|\n"
	" |0|malloc|300|10|2048|500|200|False|3\n"
	"   |0x401010|leaf_fn|demo.c|10|/usr/bin/demo|0x1010|False\n"
	"   |0x401234|inl_helper|util.h|5|/usr/bin/demo|0x1234|True\n"
	"   |0x401234|main|demo.c|20|/usr/bin/demo|0x1234|False\n"
	" |1|calloc|0|2|0|64|0|False|3\n"
	"   |0x7f0000001234|None|None|0|/usr/lib/libfoo.so|0x1234|False\n"
	"   |0x401500|tmpl<a;b>|None|0|/usr/bin/demo|0x1500|False\n"
	"   |0x401600|say \"hi\" \\ back|dir\\x.c|7|/usr/bin/demo|0x1600|False\n"
	" |2|operator new|16|1|0|0|0|True|1\n"
	"   |0x401700|deep_fn|None|0|/usr/bin/demo|0x1700|False\n"
	" |3|malloc|0|0|0|0|0|False|1\n"
	"   |0x401800|zero_fn|a\tb\x01.c|1|/usr/bin/demo|0x1800|False\n"
	" |4|realloc|0|1|0|0|0|False|0\n"
	"99|worker|None|False|None|8|8|0|None|0|1\n"
	" |10|malloc|8|1|0|8|8|False|1\n"
	"   |0x500000|thread_fn|worker.c|3|/usr/bin/worker|0x100000|False\n"
	"empty|heaptap-report|live|[]\n";

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static char *python_extract(const char *text, const char *empty)
{
	char dir[] = "/tmp/test_writers.XXXXXX", js[64], js2[64], py[64], cmd[256];
	char *out = NULL;
	size_t len = 0, n;
	char chunk[4096];
	FILE *p, *o;

	if (!mkdtemp(dir))
		return NULL;
	snprintf(js, sizeof(js), "%s/r.json", dir);
	snprintf(js2, sizeof(js2), "%s/e.json", dir);
	snprintf(py, sizeof(py), "%s/x.py", dir);
	if (!write_file(js, text) && !write_file(js2, empty) && !write_file(py, extract_py)) {
		snprintf(cmd, sizeof(cmd), "%s %s %s %s", python(), py, js, js2);
		p = popen(cmd, "r");
		o = open_memstream(&out, &len);
		while (p && o && (n = fread(chunk, 1, sizeof(chunk), p)) > 0)
			fwrite(chunk, 1, n, o);
		if (o)
			fclose(o);
		if (p && pclose(p) != 0)
			CHECK(!"python3 could not read the report back");
	}
	unlink(js);
	unlink(js2);
	unlink(py);
	rmdir(dir);
	return out;
}

static void test_json(void)
{
	struct ht_rproc procs[2];
	struct ht_report r;
	char *out, *empty;
	int v;

	/* an empty report */
	make_procs(procs, "worker");
	make_report(&r, procs, 0);
	empty = json(&r);
	CHECK_HAS(empty, "\"processes\": []");

	make_report(&r, procs, 2);
	out = json(&r);
	CHECK_HAS(out, "\"schema\": \"heaptap-report\"");
	CHECK_HAS(out, "\"function\": \"say \\\"hi\\\" \\\\ back\"");
	CHECK_HAS(out, "\"file\": \"dir\\\\x.c\"");
	CHECK_HAS(out, "\"file\": \"a\\tb\\u0001.c\"");
	CHECK_HAS(out, "\"addr\": \"0x7f0000001234\"");
	CHECK_HAS(out, "\"offset\": \"0x1234\"");
	CHECK_HAS(out, "\"function\": null");
	CHECK_HAS(out, "\"exe\": null");
	CHECK_HAS(out, "\"exit_code\": 3");
	CHECK_HAS(out, "\"rate_bytes_per_s\": null"); /* NaN is not JSON */
	CHECK_HAS(out, "\"inlined\": true");
	CHECK_HAS(out, "\"ringbuf_drops\": 5");

	v = python_valid(out);
	if (v < 0) {
		fprintf(stderr, "test_writers: python3 not found, JSON not parsed (skipped)\n");
	} else {
		char *x;

		CHECK(v == 1);
		x = python_extract(out, empty);
		CHECK_STR(x, want_extract);
		free(x);
	}
	free(out);
	free(empty);
}

/* ---- text ----------------------------------------------------------------------- */

static char *text(const struct ht_report *r, uint32_t top)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f) {
		perror("open_memstream");
		exit(1);
	}
	report__write_text(r, f, top);
	fclose(f);
	return buf;
}

static void test_text(void)
{
	struct ht_rproc procs[2];
	struct ht_report r;
	char *out;

	make_procs(procs, "worker");
	make_report(&r, procs, 2);
	out = text(&r, 0);
	CHECK_HAS(out, "=== heaptap final report: 12.50s traced, 42 probes "
		       "(2 single-stepped: -v lists them), 777 events");
	CHECK_HAS(out, "\nprocess 1234 (demo) exited with status 3\n");
	CHECK_HAS(out, "\n  live now:    316 B in 4 blocks\n");
	CHECK_HAS(out, "\n  peak:        580 B in 6 blocks, at 1.250s\n");
	CHECK_HAS(out, "\n        leaf_fn  demo.c:10\n");
	CHECK_HAS(out, "\n        (inlined) inl_helper  util.h:5\n");
	CHECK_HAS(out, "\n        libfoo.so+0x1234\n");
	CHECK_HAS(out, "\n        deep_fn  [demo]\n");
	CHECK_HAS(out, "\n        [truncated: deeper than --max-depth]\n");
	CHECK_HAS(out, "\nprocess 99 (worker)\n");
	CHECK_HAS(out, "\n  #5 realloc: live 0 B in 0 blocks");
	CHECK_HAS(out, "\nloss: ring buffer drops 5, thread state full 0, nesting overflow 0, "
		       "returns without entry 0, stack errors 0, stacks truncated 1, "
		       "unknown frees 1, model full 0, reused live 2, bad records 0");
	CHECK(!strstr(out, "figures are estimates")); /* not sampled */
	CHECK(!strstr(out, "rate mode"));
	CHECK_HAS(out, "\ncollector: 1.50 KiB for 4 live blocks and 3 stacks\n");
	CHECK(!strstr(out, "more call stacks"));
	/* total and rate are two different figures: 1000 B allocated, 2 KiB/s */
	CHECK_HAS(out, "\n  #1 malloc: live 300 B in 3 blocks | peak 500 B | "
		       "total 1000 B in 10 | rate 2.00 KiB/s, 4/s\n");
	free(out);

	make_report(&r, procs, 1);
	out = text(&r, 1);
	CHECK_HAS(out, "\n  #1 malloc: live 300 B in 3 blocks | peak 500 B");
	CHECK(!strstr(out, "#2 "));
	CHECK_HAS(out, "\n  ... 4 more call stacks (--top 0 shows all)\n");
	CHECK_HAS(out, "\nloss: ring buffer drops 5, ");
	free(out);

	r.min_age_s = 1.5;
	out = text(&r, 0);
	CHECK_HAS(out, "\n  live now:    316 B in 4 blocks (200 B in 2 blocks older than 1.5s)\n");
	CHECK_HAS(out, "\n  #1 malloc: live 200 B in 2 blocks (aged) | peak 500 B");
	free(out);

	make_report(&r, procs, 0);
	r.final = false;
	r.slow_probes = 0;
	out = text(&r, 10);
	CHECK_HAS(out, "=== heaptap interval report: 12.50s traced, 42 probes, 777 events");
	CHECK_HAS(out, "\nno allocations seen\n");
	CHECK_HAS(out, "\nloss: ring buffer drops 5, ");
	free(out);
}

int main(void)
{
	test_folded();
	test_json();
	test_text();
	if (failures) {
		fprintf(stderr, "test_writers: %d check(s) failed\n", failures);
		return 1;
	}
	fprintf(stderr, "test_writers: all checks passed\n");
	return 0;
}
