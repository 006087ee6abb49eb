/* cmd_report: `heaptap report REPORT.json [-o PATH]...` re-renders a saved JSON report in
 * any output format, without access to the traced processes. */
#ifndef HEAPTAP_CMD_REPORT_H
#define HEAPTAP_CMD_REPORT_H

#include "config.h"

/* Returns the exit code: 0, or 1 with one line on stderr. */
int cmd_report(const struct ht_config *cfg);

#endif
