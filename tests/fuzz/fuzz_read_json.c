/*
 * libFuzzer harness for report__read_json(): any bytes in, either a report or a one-line
 * reason out, never a crash, a leak or undefined behaviour.  A report that is accepted is
 * then rendered by every writer (to /dev/null), since `heaptap report` feeds whatever the
 * reader accepts straight to them.  Built by tests/fuzz/fuzz.mk (make fuzz).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *sink;
	struct ht_report *r;
	char err[256] = "";
	FILE *f;

	if (!sink && !(sink = fopen("/dev/null", "w")))
		abort();
	/* fmemopen() refuses a zero-length buffer */
	f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
	if (!f)
		abort();
	r = report__read_json(f, err, sizeof(err));
	fclose(f);
	if (!r) {
		/* the reason is one non-empty line */
		if (!err[0] || strpbrk(err, "\n\r"))
			abort();
		return 0;
	}
	for (int m = HT_METRIC_LIVE_BYTES; m <= HT_METRIC_PEAK; m++) {
		report__write_folded(r, sink, (enum ht_metric)m);
		report__write_svg(r, sink, (enum ht_metric)m, m & 1);
	}
	report__write_pprof(r, sink);
	report__write_json(r, sink);
	report__write_text(r, sink, 0);
	report__free(r);
	return 0;
}
