/*
 * write_folded.c: folded stacks, one line per call stack: "root;...;caller;allocator N".
 * Root first, inline frames as their own frames, the allocator function as the leaf, a
 * "[truncated]" root when the depth cap cut the stack, and the process as the root frame
 * when the report holds more than one.  Zero-valued stacks are left out.
 */
#include <errno.h>
#include <inttypes.h>

#include "report.h"

/* ';' separates frames and the last ' ' the value: keep them out of names. */
static void put_frame(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == ';' ? ':' : *s == '\n' ? ' ' : *s, f);
}

int report__write_folded(const struct ht_report *r, FILE *f, enum ht_metric metric)
{
	char label[512];

	for (uint32_t p = 0; p < r->nprocs; p++) {
		const struct ht_rproc *rp = &r->procs[p];

		for (uint32_t i = 0; i < rp->nsites; i++) {
			const struct ht_rsite *s = &rp->sites[i];
			uint64_t v = report__site_value(r, s, metric);

			if (!v)
				continue;
			if (r->nprocs > 1) {
				snprintf(label, sizeof(label), "%s (%d)", rp->comm, rp->pid);
				put_frame(f, label);
				fputc(';', f);
			}
			if (s->truncated)
				fputs("[truncated];", f);
			for (uint32_t k = s->nframes; k-- > 0;) {
				report__frame_label(&s->frames[k], label, sizeof(label));
				put_frame(f, label);
				fputc(';', f);
			}
			put_frame(f, s->allocator);
			fprintf(f, " %" PRIu64 "\n", v);
		}
	}
	return ferror(f) ? -EIO : 0;
}
