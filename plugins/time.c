/* time (RFC 868) and daytime (RFC 867): the clock's reading on connect or
 * per datagram, then close. The daemon owns sockets, the FIN, draining any
 * input and the UDP guard; the clock itself comes from host->now(). */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ringd/plugin.h>

/* Seconds from 1900-01-01 00:00 UTC (RFC 868's epoch) to the Unix epoch. */
#define RFC868_OFFSET INT64_C(2208988800)

/* A daytime line, CRLF included, stays under the 512 bytes the daemon's
 * UDP guard allows a reply, so TCP and UDP always send the same line. */
#define DAYTIME_MAX 512

/* RFC 867 suggests "Weekday, Month Day, Year Time-Zone"; %-d (glibc: no
 * padding) writes the day as the RFC's example does ("February 22"). */
#define DAYTIME_DEFAULT "%A, %B %-d, %Y %H:%M:%S-%Z"

enum time_format { FMT_TIME, FMT_DAYTIME };
enum time_zone { TZ_UTC, TZ_LOCAL };

struct time_config {
	int format; /* enum time_format */
	const char *daytime_format;
	int timezone; /* enum time_zone */
	bool require_synced_clock;
	/* Made by check(): the clock state last logged by any worker, so a
	 * change is logged once per instance, not once per worker. The one
	 * field that changes after start, and only atomically. */
	_Atomic int *refusing;
};

struct time_worker {
	const struct ringd_host *host;
	const struct ringd_instance *inst;
	const struct time_config *cfg;
};

static const char *const format_names[] = { "time", "daytime", NULL };
static const char *const zone_names[] = { "utc", "local", NULL };

/* The default is RFC 868, the service this plugin is named after and the
 * one clients (rdate, check_time, ntpdate -r) parse; daytime is text for
 * people and is asked for by name. */
static const struct ringd_key time_keys[] = {
	{ .name = "format",
	  .type = RINGD_KEY_ENUM,
	  .def = "time",
	  .choices = format_names,
	  .offset = offsetof(struct time_config, format),
	  .help = "time: RFC 868, 4 bytes; daytime: RFC 867, one text line" },
	{ .name = "daytime_format",
	  .type = RINGD_KEY_STRING,
	  .def = DAYTIME_DEFAULT,
	  .offset = offsetof(struct time_config, daytime_format),
	  .help = "strftime(3) format of the daytime line (CRLF is added)" },
	{ .name = "timezone",
	  .type = RINGD_KEY_ENUM,
	  .def = "utc",
	  .choices = zone_names,
	  .offset = offsetof(struct time_config, timezone),
	  .help = "zone of the daytime line: utc, or local (TZ, "
		  "/etc/localtime)" },
	{ .name = "require_synced_clock",
	  .type = RINGD_KEY_BOOL,
	  .def = "no",
	  .offset = offsetof(struct time_config, require_synced_clock),
	  .help = "send nothing while the kernel says the clock is "
		  "unsynchronised" },
	{ .name = NULL },
};

/* Whole seconds since the Unix epoch, rounded down, so an instant just
 * before 1970 is second -1 and not 0. */
static int64_t time_unix_seconds(int64_t ns)
{
	int64_t s = ns / 1000000000;

	if (ns % 1000000000 < 0)
		s--;
	return s;
}

/* RFC 868 is 32 bits of seconds since 1900 and silently wraps: 0xFFFFFFFF
 * is 2036-02-07 06:28:15 UTC and 0 follows it, the start of era 1 (clients
 * such as rdate pick the era nearest their own clock). The sum cannot
 * overflow int64 for any int64 ns; converting it through uint64 is
 * arithmetic modulo 2^32, which also maps instants before 1900 (negative
 * sums) to their place in era -1. */
static uint32_t time_rfc868(int64_t ns)
{
	int64_t since1900 = time_unix_seconds(ns) + RFC868_OFFSET;

	return (uint32_t)((uint64_t)since1900 & 0xffffffffu);
}

static bool time_printable(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* Formats the daytime text (without CRLF) into buf. Returns its length, or
 * 0 when strftime produced nothing or did not fit. The daemon never calls
 * setlocale, so names are the C locale's English ones as RFC 867 shows. */
static size_t time_strftime(const char *fmt, int zone, int64_t ns, char *buf,
			    size_t size)
{
	time_t t = (time_t)time_unix_seconds(ns);
	struct tm tm;

	if (zone == TZ_LOCAL) {
		if (!localtime_r(&t, &tm))
			return 0;
	} else {
		if (!gmtime_r(&t, &tm))
			return 0;
		/* glibc's gmtime names the zone GMT; the service says UTC. */
		tm.tm_zone = "UTC";
	}
	return strftime(buf, size, fmt, &tm);
}

/* The whole daytime line, CRLF included, or 0 when the format cannot
 * produce a valid one at this instant (check() tried a sample instant, but
 * a format may still misbehave at another). */
static size_t time_daytime(const struct time_config *cfg, int64_t ns, char *buf,
			   size_t size)
{
	size_t n = time_strftime(cfg->daytime_format, cfg->timezone, ns, buf,
				 size - 2);

	if (n == 0 || !time_printable(buf, n))
		return 0;
	buf[n++] = '\r';
	buf[n++] = '\n';
	return n;
}

/* True for the one caller that sees the state flip. check() always runs
 * before start(), so the shared flag is always there. */
static bool time_state_changed(struct time_worker *w, bool refuse)
{
	return atomic_exchange(w->cfg->refusing, refuse) != refuse;
}

/* Whether to answer at all. A clock whose state the kernel cannot report
 * counts as unsynchronised: the operator asked never to hand out a time
 * that might be wrong. Each change is logged once. */
static bool time_may_answer(struct time_worker *w)
{
	bool refuse;

	if (!w->cfg->require_synced_clock)
		return true;
	refuse = w->host->clock_synced() != 1;
	if (time_state_changed(w, refuse)) {
		if (refuse)
			w->host->log(w->inst, RINGD_LOG_WARNING,
				     "time: clock not synchronised; refusing");
		else
			w->host->log(w->inst, RINGD_LOG_NOTICE,
				     "time: clock synchronised; answering");
	}
	return !refuse;
}

/* The reply for this instant in buf (at least DAYTIME_MAX bytes). Returns
 * its length, 0 for "send nothing". */
static size_t time_reply(struct time_worker *w, char *buf)
{
	int64_t ns;
	uint32_t v;

	if (!time_may_answer(w))
		return 0;
	ns = w->host->now();
	if (w->cfg->format == FMT_DAYTIME)
		return time_daytime(w->cfg, ns, buf, DAYTIME_MAX);
	v = time_rfc868(ns);
	buf[0] = (char)(v >> 24);
	buf[1] = (char)(v >> 16);
	buf[2] = (char)(v >> 8);
	buf[3] = (char)v;
	return 4;
}

/* check() renders this instant: Wednesday, September, the longest names in
 * the C locale, at 23:59:59 (2026-09-30 UTC). */
#define CHECK_SAMPLE_NS (INT64_C(1790812799) * 1000000000)

/* A format that misbehaves is a configuration error even where format =
 * time leaves it unused: the value in the file is wrong either way. */
static int time_check(void *config, struct ringd_check *chk,
		      ringd_check_error_fn err)
{
	struct time_config *cfg = config;
	char big[4 * DAYTIME_MAX];
	size_t n;

	/* The zone is read once, before workers start: localtime_r need not
	 * look at TZ again, and glibc's does not. */
	tzset();
	n = time_strftime(cfg->daytime_format, cfg->timezone, CHECK_SAMPLE_NS,
			  big, sizeof(big));
	if (n == 0) {
		err(chk, "daytime_format",
		    "gives empty or over-long output (at most %d bytes)",
		    DAYTIME_MAX - 3);
		return -1;
	}
	if (n > DAYTIME_MAX - 3) {
		err(chk, "daytime_format",
		    "gives %zu bytes; at most %d fit a reply", n,
		    DAYTIME_MAX - 3);
		return -1;
	}
	if (!time_printable(big, n)) {
		err(chk, "daytime_format",
		    "gives characters other than printable ASCII");
		return -1;
	}
	cfg->refusing = calloc(1, sizeof(*cfg->refusing));
	if (!cfg->refusing) {
		err(chk, NULL, "out of memory");
		return -1;
	}
	return 0;
}

static void time_release(void *config)
{
	struct time_config *cfg = config;

	free((void *)cfg->refusing);
	cfg->refusing = NULL;
}

static void *time_start(const struct ringd_host *host,
			const struct ringd_instance *inst, const void *config)
{
	struct time_worker *w = malloc(sizeof(*w));

	if (!w) {
		host->log(inst, RINGD_LOG_ERR, "time: out of memory");
		return NULL;
	}
	*w = (struct time_worker){ .host = host, .inst = inst, .cfg = config };
	return w;
}

static void time_stop(void *wstate)
{
	free(wstate);
}

/* Send and close; input is never read (no on_data), and the daemon drains
 * whatever the client sends after our FIN. Refusing closes without a byte,
 * as RFC 868 allows when the server cannot tell the time. */
static int time_open(struct ringd_conn *c)
{
	struct time_worker *w = c->wstate;
	char buf[DAYTIME_MAX];
	size_t n = time_reply(w, buf);

	if (n > 0)
		w->host->send(c, buf, n);
	w->host->close(c);
	return 0;
}

/* Any datagram, whatever it holds, asks for the time. */
static void time_datagram(struct ringd_dgram *d, const void *buf, size_t len)
{
	struct time_worker *w = d->wstate;
	char out[DAYTIME_MAX];
	size_t n = time_reply(w, out);

	(void)buf;
	(void)len;
	if (n > 0)
		w->host->reply(d, out, n);
}

__attribute__((visibility("default")))
const struct ringd_plugin ringd_plugin = {
	.abi = RINGD_PLUGIN_ABI,
	.size = sizeof(struct ringd_plugin),
	.name = "time",
	.description = "RFC 868 time (4 bytes) or RFC 867 daytime (a line)",
	.transports = RINGD_STREAM | RINGD_DGRAM,
	.keys = time_keys,
	.config_size = sizeof(struct time_config),
	.check = time_check,
	.release = time_release,
	.start = time_start,
	.stop = time_stop,
	.on_open = time_open,
	.on_datagram = time_datagram,
};
