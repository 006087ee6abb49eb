/*
 * session: one tracing run.  Owns everything: the BPF skeleton, the probes, the launched
 * child, the model (heap, stacks, processes) and the output files.  session__run() returns
 * the process exit code heaptap should end with (the command's own status in `-- CMD`
 * mode, 0 after a clean trace of -p PID, 1 on failure).
 */
#ifndef HEAPTAP_SESSION_H
#define HEAPTAP_SESSION_H

#include "config.h"

int session__run(const struct ht_config *cfg);

#endif
