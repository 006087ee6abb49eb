/* heaptap: eBPF heap-allocation tracer.  main() only parses and hands over. */
#include <stdlib.h>

#include "cmd_report.h"
#include "log.h"
#include "options.h"
#include "session.h"

int main(int argc, char **argv)
{
	struct ht_config cfg;

	switch (options__parse(argc, argv, &cfg)) {
	case HT_PARSE_EXIT_OK:
		return 0;
	case HT_PARSE_USAGE:
		return 2;
	case HT_PARSE_OK:
		break;
	}
	/* libdwfl would ask debuginfod servers over the network for every module without
	 * local debug info: a tracer must not stall (or phone out) while reporting. */
	unsetenv("DEBUGINFOD_URLS");
	log__set_verbosity(cfg.verbosity);
	log__hook_libbpf();
	return cfg.report_input ? cmd_report(&cfg) : session__run(&cfg);
}
