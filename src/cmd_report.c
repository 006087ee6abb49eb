#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cmd_report.h"
#include "log.h"
#include "outputs.h"
#include "report.h"

int cmd_report(const struct ht_config *cfg)
{
	struct ht_outputs out;
	struct ht_report *r;
	char why[256] = "";
	FILE *f;
	int err;

	if (outputs__open(&out, cfg->outputs, cfg->noutputs))
		return 1;
	f = fopen(cfg->report_input, "r");
	if (!f) {
		log_error("cannot read '%s': %s", cfg->report_input, strerror(errno));
		outputs__discard(&out);
		return 1;
	}
	r = report__read_json(f, why, sizeof(why));
	fclose(f);
	if (!r) {
		log_error("'%s' is not a heaptap report: %s", cfg->report_input, why);
		outputs__discard(&out);
		return 1;
	}
	/* No -o: the text report, as a session would print it. */
	if (!cfg->noutputs && !cfg->quiet)
		report__write_text(r, stdout, cfg->write.top);
	err = outputs__commit(&out, r, &cfg->write);
	outputs__discard(&out);
	report__free(r);
	return err ? 1 : 0;
}
