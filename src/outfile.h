/*
 * outfile: an output file written whole or not at all.  Opened at start (so a path that
 * cannot be written fails before a long trace, not after), written to PATH.tmp-heaptap-PID
 * and renamed over PATH on commit; discarded on error or interrupt.
 */
#ifndef HEAPTAP_OUTFILE_H
#define HEAPTAP_OUTFILE_H

#include <stdio.h>

struct ht_outfile {
	char *path;
	char *tmp;
	FILE *f;
};

/* 0 or -errno (message logged: "cannot write 'PATH': reason"). */
int outfile__open(struct ht_outfile *o, const char *path);
/* Flushes and renames into place.  0 or -errno (logged). */
int outfile__commit(struct ht_outfile *o);
/* Removes the temporary file.  NULL-safe and idempotent. */
void outfile__discard(struct ht_outfile *o);

#endif
