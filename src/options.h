/*
 * options: the command line.  One declarative table drives getopt_long and --help, so the
 * help text cannot drift from what is parsed.  Every number is checked in full (no
 * trailing junk, in range).
 */
#ifndef HEAPTAP_OPTIONS_H
#define HEAPTAP_OPTIONS_H

#include "config.h"

enum ht_parse_result { HT_PARSE_OK, HT_PARSE_EXIT_OK, HT_PARSE_USAGE };

/* Fills cfg from argv.  HT_PARSE_EXIT_OK after --help/--version (printed), HT_PARSE_USAGE
 * after a usage error (one line printed on stderr). */
enum ht_parse_result options__parse(int argc, char **argv, struct ht_config *cfg);

#endif
