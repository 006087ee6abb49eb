#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaptap.h"
#include "options.h"
#include "outputs.h"

#define HT_VERSION "0.1.0"

enum opt_id {
	OPT_PID = 'p',
	OPT_ALL = 'a',
	OPT_DURATION = 'd',
	OPT_INTERVAL = 'i',
	OPT_OUTPUT = 'o',
	OPT_DEPTH = 'D',
	OPT_VERBOSE = 'v',
	OPT_QUIET = 'q',
	OPT_HELP = 'h',
	OPT_VERSION = 'V',
	OPT_METRIC = 256,
	OPT_JSON,
	OPT_MIN_AGE,
	OPT_TOP,
	OPT_RING_MB,
	OPT_MAX_BLOCKS,
	OPT_FORMAT,
	OPT_INVERTED,
	OPT_MODE,
	OPT_SAMPLE,
	OPT_UNWIND,
	OPT_STACK_BYTES,
	OPT_GO_EXACT,
	OPT_GC,
	OPT_COMM,
	OPT_CGROUP,
	OPT_MAX_PROCS,
};

struct opt_def {
	const char *name;
	int id;
	const char *arg; /* NULL: no argument */
	const char *help;
};

static const struct opt_def opts[] = {
	{ "pid", OPT_PID, "PID", "trace the running process PID (until Ctrl-C or its exit)" },
	{ "all", OPT_ALL, NULL, "system-wide: every process, new ones included (until Ctrl-C or -d)" },
	{ "comm", OPT_COMM, "NAMES", "-a: only processes with these comma-separated command names "
	  "(attached per process: others pay nothing)" },
	{ "cgroup", OPT_CGROUP, "PATH", "-a: only processes in this cgroup (v2 directory) and below" },
	{ "max-procs", OPT_MAX_PROCS, "N", "-a: processes kept in the table, exited ones evicted "
	  "first (default 4096)" },
	{ "duration", OPT_DURATION, "SECONDS", "stop after SECONDS" },
	{ "interval", OPT_INTERVAL, "SECONDS", "print a report every SECONDS (rates cover one interval)" },
	{ "output", OPT_OUTPUT, "PATH",
	  "write the final report to PATH (repeatable); format from the name: .folded, .json, "
	  ".pb.gz (pprof), .svg, .txt, else --format" },
	{ "format", OPT_FORMAT, "FMT", "format of -o paths with no known suffix: folded (default), "
	  "json, pprof, svg, text" },
	{ "metric", OPT_METRIC, "METRIC",
	  "folded/SVG value: live-bytes (default), live-count, alloc-bytes, alloc-count, peak" },
	{ "inverted", OPT_INVERTED, NULL, "SVG: icicle graph (roots at the top)" },
	{ "json", OPT_JSON, "PATH", "same as -o PATH --format json" },
	{ "mode", OPT_MODE, "MODE",
	  "live (default: live heap and rates), rate (allocation rates only, cheapest); "
	  "floor-live, floor-rate: empty programs at the same probes (benchmark baselines)" },
	{ "sample", OPT_SAMPLE, "BYTES",
	  "sample allocations in BPF, one per BYTES allocated on average (e.g. 524288); "
	  "figures become scaled estimates" },
	{ "go-exact", OPT_GO_EXACT, NULL,
	  "Go: every allocation (runtime.mallocgc) instead of Go's own sampler; a probe per "
	  "allocation: costly, combine with --sample; no in-use figures" },
	{ "gc", OPT_GC, NULL, "Go: print the GC timeline, one line per cycle" },
	{ "min-age", OPT_MIN_AGE, "SECONDS", "live view: only blocks at least SECONDS old (leaks)" },
	{ "max-depth", OPT_DEPTH, "N", "user frames per stack, 1-126 (default 64)" },
	{ "unwind", OPT_UNWIND, "HOW",
	  "user stacks: auto (default: DWARF where the code has no frame pointers), fp, dwarf" },
	{ "stack-bytes", OPT_STACK_BYTES, "N",
	  "dwarf/auto: user stack bytes copied per sampled stack, 512-16384 (default 8192)" },
	{ "top", OPT_TOP, "N", "call stacks per process in the text report (default 10, 0 = all)" },
	{ "ring-mb", OPT_RING_MB, "MIB", "ring buffer size in MiB, a power of two (default 16)" },
	{ "max-blocks", OPT_MAX_BLOCKS, "N", "cap on live blocks tracked (default 100000000)" },
	{ "quiet", OPT_QUIET, NULL, "no text report on stdout" },
	{ "verbose", OPT_VERBOSE, NULL, "more diagnostics on stderr (-vv: libbpf debug too)" },
	{ "help", OPT_HELP, NULL, "show this help" },
	{ "version", OPT_VERSION, NULL, "show the version" },
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const char *const metric_names[] = {
	[HT_METRIC_LIVE_BYTES] = "live-bytes", [HT_METRIC_LIVE_COUNT] = "live-count",
	[HT_METRIC_ALLOC_BYTES] = "alloc-bytes", [HT_METRIC_ALLOC_COUNT] = "alloc-count",
	[HT_METRIC_PEAK] = "peak",
};

const char *metric__name(enum ht_metric m)
{
	return metric_names[m];
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: heaptap [OPTIONS] -p PID\n"
		   "       heaptap [OPTIONS] -- COMMAND [ARGS...]\n"
		   "       heaptap report REPORT.json [-o PATH]... [--metric M] [--format F]\n\n"
		   "Traces heap allocations (malloc, free, new, delete, ...) of a process with eBPF\n"
		   "uprobes and reports live heap and allocation rate by call stack.\n\n");
	for (size_t i = 0; i < NOPTS; i++) {
		char left[64];

		if (opts[i].id < 256)
			snprintf(left, sizeof(left), "-%c, --%s%s%s", opts[i].id, opts[i].name,
				 opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
		else
			snprintf(left, sizeof(left), "    --%s%s%s", opts[i].name,
				 opts[i].arg ? " " : "", opts[i].arg ? opts[i].arg : "");
		fprintf(f, "  %-28s %s\n", left, opts[i].help);
	}
}

static const struct opt_def *find_def(int id)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (opts[i].id == id)
			return &opts[i];
	return NULL;
}

static int bad_value(int id, const char *val, const char *why)
{
	fprintf(stderr, "heaptap: invalid value '%s' for --%s: %s\n", val, find_def(id)->name, why);
	return -1;
}

static int parse_seconds(int id, const char *s, double *out, int allow_zero)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || errno || !isfinite(v))
		return bad_value(id, s, "not a number of seconds");
	if (v < 0 || (!allow_zero && v == 0))
		return bad_value(id, s, allow_zero ? "must be >= 0" : "must be > 0");
	*out = v;
	return 0;
}

static int parse_uint(int id, const char *s, unsigned long long lo, unsigned long long hi,
		      unsigned long long *out)
{
	unsigned long long v;
	char *end;

	errno = 0;
	if (*s == '-' || *s == '+')
		return bad_value(id, s, "not a positive integer");
	v = strtoull(s, &end, 10);
	if (end == s || *end || errno)
		return bad_value(id, s, "not a positive integer");
	if (v < lo || v > hi) {
		char why[64];

		snprintf(why, sizeof(why), "must be in %llu..%llu", lo, hi);
		return bad_value(id, s, why);
	}
	*out = v;
	return 0;
}

static int apply(struct ht_config *cfg, int id, const char *arg)
{
	unsigned long long v;

	switch (id) {
	case OPT_PID:
		if (parse_uint(id, arg, 1, INT_MAX, &v))
			return -1;
		cfg->pid = (pid_t)v;
		return 0;
	case OPT_DURATION:
		return parse_seconds(id, arg, &cfg->duration_s, 0);
	case OPT_INTERVAL:
		return parse_seconds(id, arg, &cfg->interval_s, 0);
	case OPT_MIN_AGE:
		return parse_seconds(id, arg, &cfg->min_age_s, 1);
	case OPT_OUTPUT:
	case OPT_JSON:
		if (cfg->noutputs == HT_MAX_OUTPUTS) {
			fprintf(stderr, "heaptap: at most %d outputs\n", HT_MAX_OUTPUTS);
			return -1;
		}
		cfg->outputs[cfg->noutputs].path = arg;
		/* JSON by option; others by name, resolved after --format is known */
		cfg->outputs[cfg->noutputs++].format = id == OPT_JSON ? HT_FMT_JSON : (enum ht_format)-1;
		return 0;
	case OPT_FORMAT:
		if (output__parse_format(arg, &cfg->default_format))
			return bad_value(id, arg, "one of folded, json, pprof, svg, text");
		return 0;
	case OPT_INVERTED:
		cfg->write.inverted = true;
		return 0;
	case OPT_ALL:
		cfg->system = true;
		return 0;
	case OPT_COMM: {
		size_t n = 1;
		char *copy, *tok, *save = NULL;

		for (const char *c = arg; *c; c++)
			n += *c == ',';
		free(cfg->comms);
		if (!(cfg->comms = calloc(n + 1, sizeof(char *))) || !(copy = strdup(arg)))
			return bad_value(id, arg, "out of memory");
		n = 0;
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
			if (*tok)
				cfg->comms[n++] = tok; /* lives until exit, like argv */
		if (!n)
			return bad_value(id, arg, "a comma-separated list of command names");
		return 0;
	}
	case OPT_CGROUP:
		cfg->cgroup = arg;
		return 0;
	case OPT_MAX_PROCS:
		if (parse_uint(id, arg, 1, 10000000, &v))
			return -1;
		cfg->max_procs = (uint32_t)v;
		return 0;
	case OPT_GO_EXACT:
		cfg->go_exact = true;
		return 0;
	case OPT_GC:
		cfg->write.gc_timeline = true;
		return 0;
	case OPT_MODE:
		if (!strcmp(arg, "live") || !strcmp(arg, "floor-live"))
			cfg->mode = HT_TRACE_LIVE;
		else if (!strcmp(arg, "rate") || !strcmp(arg, "floor-rate"))
			cfg->mode = HT_TRACE_RATE;
		else
			return bad_value(id, arg, "one of live, rate, floor-live, floor-rate");
		cfg->floor = !strncmp(arg, "floor-", 6);
		return 0;
	case OPT_SAMPLE:
		if (parse_uint(id, arg, 1, 1ULL << 40, &v))
			return -1;
		cfg->sample_bytes = v;
		return 0;
	case OPT_METRIC:
		for (size_t m = 0; m < sizeof(metric_names) / sizeof(metric_names[0]); m++) {
			if (!strcmp(arg, metric_names[m])) {
				cfg->write.metric = (enum ht_metric)m;
				return 0;
			}
		}
		return bad_value(id, arg, "one of live-bytes, live-count, alloc-bytes, alloc-count, peak");
	case OPT_DEPTH:
		if (parse_uint(id, arg, 1, 126, &v))
			return -1;
		cfg->max_depth = v;
		return 0;
	case OPT_UNWIND:
		cfg->unwind_given = true;
		if (!strcmp(arg, "auto"))
			cfg->unwind = HT_UNWIND_MODE_AUTO;
		else if (!strcmp(arg, "fp"))
			cfg->unwind = HT_UNWIND_MODE_FP;
		else if (!strcmp(arg, "dwarf"))
			cfg->unwind = HT_UNWIND_MODE_DWARF;
		else
			return bad_value(id, arg, "one of auto, fp, dwarf");
		return 0;
	case OPT_STACK_BYTES:
		if (parse_uint(id, arg, 512, HT_MAX_STACK_BYTES, &v))
			return -1;
		if (v % 8)
			return bad_value(id, arg, "must be a multiple of 8");
		cfg->stack_bytes = v;
		return 0;
	case OPT_TOP:
		if (parse_uint(id, arg, 0, UINT32_MAX, &v))
			return -1;
		cfg->write.top = v;
		return 0;
	case OPT_RING_MB:
		cfg->ring_given = true;
		if (parse_uint(id, arg, 1, 1024, &v))
			return -1;
		if (v & (v - 1))
			return bad_value(id, arg, "must be a power of two");
		cfg->ring_mb = v;
		return 0;
	case OPT_MAX_BLOCKS:
		if (parse_uint(id, arg, 1, 1ULL << 40, &v))
			return -1;
		cfg->max_blocks = v;
		return 0;
	case OPT_QUIET:
		cfg->quiet = 1;
		return 0;
	case OPT_VERBOSE:
		cfg->verbosity++;
		return 0;
	}
	return -1;
}

enum ht_parse_result options__parse(int argc, char **argv, struct ht_config *cfg)
{
	struct option lopts[NOPTS + 1];
	char sopts[2 * NOPTS + 2];
	size_t ns = 0;
	int c;

	*cfg = (struct ht_config){ .max_depth = 64, .write.top = 10, .ring_mb = 16,
				   .max_blocks = 100000000, .drain_ms = 10, .stack_bytes = 8192,
				   .max_procs = 4096 };
	if (argc > 1 && !strcmp(argv[1], "report")) {
		/* `heaptap report FILE ...`: the same options, minus what needs a target */
		cfg->report_input = "";
		argv++;
		argc--;
	}
	/* Stop at the first non-option: COMMAND's own options are its.  `heaptap report`
	 * has no command, so its file may come before or after the options. */
	if (!cfg->report_input)
		sopts[ns++] = '+';
	for (size_t i = 0; i < NOPTS; i++) {
		lopts[i] = (struct option){ opts[i].name, opts[i].arg ? required_argument : no_argument,
					    NULL, opts[i].id };
		if (opts[i].id < 256) {
			sopts[ns++] = (char)opts[i].id;
			if (opts[i].arg)
				sopts[ns++] = ':';
		}
	}
	sopts[ns] = 0;
	lopts[NOPTS] = (struct option){ 0 };

	opterr = 0;
	while ((c = getopt_long(argc, argv, sopts, lopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			return HT_PARSE_EXIT_OK;
		}
		if (c == OPT_VERSION) {
			printf("heaptap %s\n", HT_VERSION);
			return HT_PARSE_EXIT_OK;
		}
		if (c == '?' || c == ':') {
			if (optopt && find_def(optopt))
				fprintf(stderr, "heaptap: option -%c needs a value (try --help)\n", optopt);
			else
				fprintf(stderr, "heaptap: unknown option '%s' (try --help)\n", argv[optind - 1]);
			return HT_PARSE_USAGE;
		}
		if (apply(cfg, c, optarg))
			return HT_PARSE_USAGE;
	}
	for (int i = 0; i < cfg->noutputs; i++)
		if ((int)cfg->outputs[i].format == -1 &&
		    !output__format_from_path(cfg->outputs[i].path, &cfg->outputs[i].format))
			cfg->outputs[i].format = cfg->default_format;
	if (cfg->report_input) {
		if (optind != argc - 1 || cfg->pid) {
			fprintf(stderr, "heaptap: report takes one REPORT.json and no -p/COMMAND (try --help)\n");
			return HT_PARSE_USAGE;
		}
		cfg->report_input = argv[optind];
		return HT_PARSE_OK;
	}
	if (optind < argc)
		cfg->cmd = &argv[optind];
	if ((cfg->comms || cfg->cgroup) && !cfg->system) {
		fprintf(stderr, "heaptap: --comm and --cgroup select processes of a system-wide "
			"session: add -a (try --help)\n");
		return HT_PARSE_USAGE;
	}
	if (cfg->system) {
		if (cfg->pid || cfg->cmd) {
			fprintf(stderr, "heaptap: -a traces every process: no -p PID or COMMAND "
				"(try --help)\n");
			return HT_PARSE_USAGE;
		}
		/* Every process's allocations share one ring: frame-pointer stacks (no 8 KiB
		 * stack copies per record) and a bigger ring, unless asked otherwise. */
		if (!cfg->unwind_given)
			cfg->unwind = HT_UNWIND_MODE_FP;
		if (!cfg->ring_given)
			cfg->ring_mb = 64;
		return HT_PARSE_OK;
	}
	if (!cfg->pid == !cfg->cmd) {
		fprintf(stderr, "heaptap: %s (try --help)\n",
			cfg->pid ? "give either -p PID or -- COMMAND, not both"
				 : "nothing to trace: give -p PID or -- COMMAND");
		return HT_PARSE_USAGE;
	}
	return HT_PARSE_OK;
}
