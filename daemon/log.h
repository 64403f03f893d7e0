/* Logging to stderr: "<N>" priority prefixes when journald reads us
 * (JOURNAL_STREAM set), plain level words on a terminal. Messages are
 * lowercase "subject: what: why" with key=value fields after them. The
 * level is the one piece of process-wide state outside the daemon's
 * context: set before threads start, changed only atomically (reload). */
#ifndef RINGD_LOG_H
#define RINGD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ringd/plugin.h>

/* Reads JOURNAL_STREAM once to choose the prefix style. */
void log_init(enum ringd_log_level level);
void log_set_level(enum ringd_log_level level);
enum ringd_log_level log_level(void);

void log_msgv(enum ringd_log_level lvl, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
void log_msg(enum ringd_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* log_warn appends the field error="strerror(errno)"; log_warnx does
 * not. */
#define log_err(...) log_msg(RINGD_LOG_ERR, __VA_ARGS__)
#define log_warnx(...) log_msg(RINGD_LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(RINGD_LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(RINGD_LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(RINGD_LOG_DEBUG, __VA_ARGS__)
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

struct sockaddr;
/* A peer address as a key=value field value: "127.0.0.1:5131",
 * "[::1]:5131", or "unix" for any other family. Returns buf. */
#define LOG_ADDR_MAX 64
const char *log_addr(const struct sockaddr *sa, char *buf, size_t len);

/* A key=value field's value as logfmt writes it: as it is when it is
 * non-empty and has no blank, quote, backslash, '=' or control
 * character, else in double quotes with '"' and '\\' escaped by a
 * backslash and control characters as \n, \r, \t or \xHH:
 * error="Permission denied". Cut to fit len, quotes kept. Returns buf. */
#define LOG_VALUE_MAX 256
const char *log_value(char *buf, size_t len, const char *value);

/* An error that may repeat at the rate of an attack (accept failing
 * with EMFILE, memory running out) is logged at most once per interval;
 * the lines held back are counted and the next line that goes out
 * reports them as suppressed=N. One per source of such lines, owned by
 * one thread; zero it to start. */
struct log_limit {
	int64_t last; /* when the last line went out, if used */
	uint64_t held;
	bool used;
};

/* True when a line may go out at now_ns (then *suppressed is the number
 * held back since the previous one, and the count starts again); false
 * when it must be held back, and is counted. */
bool log_limit_take(struct log_limit *ll, int64_t now_ns,
		    int64_t interval_ns, uint64_t *suppressed);

/* " name=count" for every non-zero one of n counts, which are zeroed: the
 * counts behind one line of a message logged at most once per interval.
 * Returns buf, always terminated. */
const char *log_counts(char *buf, size_t len, const char *const *names,
		       uint64_t *counts, size_t n);

#endif
