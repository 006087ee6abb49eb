#include <errno.h>

#include "report.h"

int report__write_svg(const struct ht_report *r, FILE *f, enum ht_metric metric, bool inverted)
{
	(void)r, (void)f, (void)metric, (void)inverted;
	return -ENOTSUP;
}
