#include <errno.h>
#include <string.h>

#include "log.h"
#include "outputs.h"
#include "report.h"

static const struct {
	const char *name;
	const char *suffixes[3];
} formats[] = {
	[HT_FMT_FOLDED] = { "folded", { ".folded", ".collapsed", NULL } },
	[HT_FMT_JSON] = { "json", { ".json", NULL } },
	[HT_FMT_PPROF] = { "pprof", { ".pb.gz", ".pprof", ".pb" } },
	[HT_FMT_SVG] = { "svg", { ".svg", NULL } },
	[HT_FMT_TEXT] = { "text", { ".txt", NULL } },
};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

int output__parse_format(const char *name, enum ht_format *fmt)
{
	for (size_t i = 0; i < NFORMATS; i++)
		if (!strcmp(name, formats[i].name)) {
			*fmt = (enum ht_format)i;
			return 0;
		}
	return -EINVAL;
}

const char *output__format_name(enum ht_format fmt)
{
	return formats[fmt].name;
}

bool output__format_from_path(const char *path, enum ht_format *fmt)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < NFORMATS; i++)
		for (size_t k = 0; k < 3 && formats[i].suffixes[k]; k++) {
			size_t sl = strlen(formats[i].suffixes[k]);

			if (len > sl && !strcmp(path + len - sl, formats[i].suffixes[k])) {
				*fmt = (enum ht_format)i;
				return true;
			}
		}
	return false;
}

int output__write(const struct ht_report *r, enum ht_format fmt, const struct ht_write_opts *o,
		  FILE *f)
{
	switch (fmt) {
	case HT_FMT_FOLDED:
		return report__write_folded(r, f, o->metric);
	case HT_FMT_JSON:
		return report__write_json(r, f);
	case HT_FMT_PPROF:
		return report__write_pprof(r, f);
	case HT_FMT_SVG:
		return report__write_svg(r, f, o->metric, o->inverted);
	case HT_FMT_TEXT:
		report__write_text(r, f, o->top);
		return ferror(f) ? -EIO : 0;
	}
	return -EINVAL;
}

int outputs__open(struct ht_outputs *o, const struct ht_output_spec *specs, int n)
{
	int err;

	memset(o, 0, sizeof(*o));
	for (int i = 0; i < n; i++) {
		if ((err = outfile__open(&o->files[i], specs[i].path))) {
			outputs__discard(o);
			return err;
		}
		o->formats[i] = specs[i].format;
		o->n++;
	}
	return 0;
}

int outputs__commit(struct ht_outputs *o, const struct ht_report *r, const struct ht_write_opts *w)
{
	int first = 0;

	for (int i = 0; i < o->n; i++) {
		int err;

		if (!o->files[i].f)
			continue;
		err = output__write(r, o->formats[i], w, o->files[i].f);
		if (err) {
			log_error("cannot write '%s' as %s: %s", o->files[i].path,
				  output__format_name(o->formats[i]), strerror(-err));
			outfile__discard(&o->files[i]);
		} else {
			err = outfile__commit(&o->files[i]);
		}
		if (err && !first)
			first = err;
	}
	return first;
}

void outputs__discard(struct ht_outputs *o)
{
	for (int i = 0; i < o->n; i++)
		outfile__discard(&o->files[i]);
}
