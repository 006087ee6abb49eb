#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "log.h"

static int verbosity;

void log__set_verbosity(int v)
{
	verbosity = v;
}

int log__verbosity(void)
{
	return verbosity;
}

static void vlog(enum ht_log_level lvl, const char *fmt, va_list ap)
{
	static const char *const tag[] = { "error: ", "warning: ", "", "debug: " };

	if ((lvl == HT_LOG_INFO && verbosity < 1) || (lvl == HT_LOG_DEBUG && verbosity < 2))
		return;
	fprintf(stderr, "heaptap: %s", tag[lvl]);
	vfprintf(stderr, fmt, ap);
	if (!*fmt || fmt[strlen(fmt) - 1] != '\n')
		fputc('\n', stderr);
}

void log__msg(enum ht_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && verbosity < 2)
		return 0;
	if (level == LIBBPF_INFO && verbosity < 1)
		return 0;
	/* libbpf warnings are mostly noise we turn into our own one-line errors; show them
	 * only when asked. */
	if (level == LIBBPF_WARN && verbosity < 1)
		return 0;
	fputs("heaptap: libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

void log__hook_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
