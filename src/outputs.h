/*
 * outputs: the files a session (or `heaptap report`) writes, and the one place that maps a
 * format to its writer.  Formats come from the file name (.folded, .json, .pb.gz/.pprof,
 * .svg, .txt) or --format.  Files are opened at start (outfile.h), so a bad path fails
 * before tracing, and committed whole at the end.
 */
#ifndef HEAPTAP_OUTPUTS_H
#define HEAPTAP_OUTPUTS_H

#include <stdbool.h>

#include "config.h"
#include "outfile.h"

struct ht_report;

/* Parses a --format name.  0 or -EINVAL. */
int output__parse_format(const char *name, enum ht_format *fmt);
const char *output__format_name(enum ht_format fmt);
/* The format a path's extension names; false if it names none. */
bool output__format_from_path(const char *path, enum ht_format *fmt);

/* Writes r in fmt.  0 or -errno (-ENOTSUP: format not built in). */
int output__write(const struct ht_report *r, enum ht_format fmt, const struct ht_write_opts *o,
		  FILE *f);

struct ht_outputs {
	struct ht_outfile files[HT_MAX_OUTPUTS];
	enum ht_format formats[HT_MAX_OUTPUTS];
	int n;
};

/* Opens every output of cfg (temporary files).  0 or -errno, logged. */
int outputs__open(struct ht_outputs *o, const struct ht_output_spec *specs, int n);
/* Writes r to every output and renames them into place.  0 or the first -errno. */
int outputs__commit(struct ht_outputs *o, const struct ht_report *r, const struct ht_write_opts *w);
/* Removes whatever was not committed.  Idempotent. */
void outputs__discard(struct ht_outputs *o);

#endif
