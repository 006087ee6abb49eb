#include <errno.h>

#include "report.h"

int report__write_pprof(const struct ht_report *r, FILE *f)
{
	(void)r, (void)f;
	return -ENOTSUP;
}
