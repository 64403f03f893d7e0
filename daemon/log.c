/* Logging to stderr, one write(2) per line so lines from worker threads
 * never interleave. The level and the prefix style are the only mutable
 * globals of the daemon: they are process-wide by nature. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

/* Long enough for any message we write; longer ones are cut, not split,
 * because a split line would lose its priority prefix. */
#define LOG_LINE_MAX 2048

static atomic_int log_cur_level = RINGD_LOG_INFO;
/* Written once by log_init() before any thread starts, read-only after. */
static bool log_journal;

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected
 * to stderr. The variable is inherited by children whose stderr went
 * elsewhere (a script running "ringd -t" to a terminal), so it counts
 * only while stderr is still that stream. */
static bool log_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int end = 0;

	if (!js || sscanf(js, "%llu:%llu%n", &dev, &ino, &end) != 2 ||
	    js[end] != '\0' || fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

void log_init(enum ringd_log_level level)
{
	log_journal = log_stderr_is_journal();
	atomic_store(&log_cur_level, level);
}

void log_set_level(enum ringd_log_level level)
{
	atomic_store(&log_cur_level, level);
}

enum ringd_log_level log_level(void)
{
	return (enum ringd_log_level)atomic_load(&log_cur_level);
}

static const char *log_word(enum ringd_log_level lvl)
{
	switch (lvl) {
	case RINGD_LOG_ERR:
		return "error: ";
	case RINGD_LOG_WARNING:
		return "warning: ";
	case RINGD_LOG_NOTICE:
		return "notice: ";
	case RINGD_LOG_INFO:
		return "info: ";
	default:
		return "debug: ";
	}
}

/* Formats prefix, message and the error field (suffix) into one buffer
 * and writes it once. */
static void log_emit(enum ringd_log_level lvl, const char *suffix,
		     const char *fmt, va_list ap)
{
	char buf[LOG_LINE_MAX];
	size_t n, room = sizeof(buf) - 1; /* keep one byte for '\n' */
	int r;

	if (log_journal)
		r = snprintf(buf, room, "<%d>", (int)lvl);
	else
		r = snprintf(buf, room, "%s", log_word(lvl));
	n = r > 0 ? (size_t)r : 0;
	r = vsnprintf(buf + n, room - n, fmt, ap);
	if (r > 0)
		n = (size_t)r < room - n ? n + (size_t)r : room - 1;
	if (suffix != NULL && n < room - 1) {
		char v[LOG_VALUE_MAX];

		r = snprintf(buf + n, room - n, " error=%s",
			     log_value(v, sizeof(v), suffix));
		if (r > 0)
			n = (size_t)r < room - n ? n + (size_t)r : room - 1;
	}
	/* A newline or escape inside a message (a file name, say) would
	 * forge a second log line or drive a terminal: one line per call. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = buf[i] == '\t' ? ' ' : '?';
	buf[n++] = '\n';
	/* A short or failed write to stderr has nowhere to be reported. */
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

void log_msgv(enum ringd_log_level lvl, const char *fmt, va_list ap)
{
	int saved = errno;

	if ((int)lvl <= atomic_load(&log_cur_level))
		log_emit(lvl, NULL, fmt, ap);
	errno = saved;
}

void log_msg(enum ringd_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(lvl, fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	int saved = errno;
	char ebuf[128];
	va_list ap;

	if (RINGD_LOG_WARNING > atomic_load(&log_cur_level))
		return;
	va_start(ap, fmt);
	log_emit(RINGD_LOG_WARNING, strerror_r(saved, ebuf, sizeof(ebuf)), fmt,
		 ap);
	va_end(ap);
	errno = saved;
}

const char *log_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	const struct sockaddr_in *sin = (const void *)sa;
	const struct sockaddr_in6 *sin6 = (const void *)sa;
	char addr[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		snprintf(buf, len, "%s:%u", addr, ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		snprintf(buf, len, "[%s]:%u", addr, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, len, "unix");
	}
	return buf;
}

bool log_limit_take(struct log_limit *ll, int64_t now_ns, int64_t interval_ns,
		    uint64_t *suppressed)
{
	if (ll->used && now_ns - ll->last < interval_ns) {
		ll->held++;
		return false;
	}
	ll->used = true;
	ll->last = now_ns;
	*suppressed = ll->held;
	ll->held = 0;
	return true;
}

static bool log_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* How c is written inside quotes: into e, returning its length. A
 * control character becomes an escape, so a value (a path, a peer's
 * text in an error) can never start a line of its own in the journal. */
static size_t log_escape_char(unsigned char c, char e[4])
{
	static const char hex[] = "0123456789abcdef";

	if (c == '"' || c == '\\') {
		e[0] = '\\';
		e[1] = (char)c;
		return 2;
	}
	if (!log_ctl(c)) {
		e[0] = (char)c;
		return 1;
	}
	e[0] = '\\';
	if (c == '\n' || c == '\r' || c == '\t') {
		e[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		return 2;
	}
	e[1] = 'x';
	e[2] = hex[c >> 4];
	e[3] = hex[c & 15];
	return 4;
}

static bool log_plain(const char *v)
{
	if (!*v)
		return false;
	for (; *v; v++)
		if (log_ctl((unsigned char)*v) || strchr(" \"\\=", *v))
			return false;
	return true;
}

const char *log_value(char *buf, size_t len, const char *v)
{
	size_t o = 0, n;
	char e[4];

	if (len < 3) {
		if (len)
			buf[0] = '\0';
		return buf;
	}
	if (log_plain(v)) {
		snprintf(buf, len, "%s", v);
		return buf;
	}
	buf[o++] = '"';
	for (; *v; v++) {
		n = log_escape_char((unsigned char)*v, e);
		/* The closing quote and the NUL always fit; an escape is
		 * never split. */
		if (o + n + 2 > len)
			break;
		memcpy(buf + o, e, n);
		o += n;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

const char *log_counts(char *buf, size_t len, const char *const *names,
		       uint64_t *counts, size_t n)
{
	size_t off = 0;
	int w;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!counts[i])
			continue;
		w = snprintf(buf + off, len - off, " %s=%llu", names[i],
			     (unsigned long long)counts[i]);
		if (w > 0 && (size_t)w < len - off)
			off += (size_t)w;
		counts[i] = 0;
	}
	return buf;
}
