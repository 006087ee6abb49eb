/*
 * log: the one funnel for diagnostics.  Everything goes to stderr (stdout belongs to the
 * report writers), prefixed "heaptap: ".  libbpf's own messages come through here too:
 * warnings at -v, debug at -vv.
 */
#ifndef HEAPTAP_LOG_H
#define HEAPTAP_LOG_H

enum ht_log_level { HT_LOG_ERROR, HT_LOG_WARN, HT_LOG_INFO, HT_LOG_DEBUG };

/* 0: errors and warnings (default), 1: -v info, 2: -vv debug (and libbpf debug). */
void log__set_verbosity(int v);
int log__verbosity(void);
/* Routes libbpf's print callback into this funnel. */
void log__hook_libbpf(void);

void log__msg(enum ht_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log__msg(HT_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log__msg(HT_LOG_WARN, __VA_ARGS__)
#define log_info(...) log__msg(HT_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log__msg(HT_LOG_DEBUG, __VA_ARGS__)

#endif
