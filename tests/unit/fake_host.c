/* The fake host behind fake_host.h. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "fake_host.h"

static struct fake_host fake;

static int fake_append(const void *buf, size_t len)
{
	if (fake.outlen + len > sizeof(fake.out))
		return -ENOBUFS;
	memcpy(fake.out + fake.outlen, buf, len);
	fake.outlen += len;
	return 0;
}

static int fake_send(struct ringd_conn *c, const void *buf, size_t len)
{
	int rc;

	(void)c;
	fake.sends++;
	rc = fake_append(buf, len);
	if (rc == 0)
		fake.queue += len;
	return rc;
}

static int fake_send_input(struct ringd_conn *c, const void *buf, size_t len)
{
	fake.inputs++;
	return fake_send(c, buf, len);
}

static void fake_close(struct ringd_conn *c)
{
	(void)c;
	fake.closes++;
}

static void fake_close_no_linger(struct ringd_conn *c)
{
	fake.nolingers++;
	fake_close(c);
}

static void fake_abort(struct ringd_conn *c)
{
	(void)c;
	fake.aborts++;
}

static size_t fake_queued(const struct ringd_conn *c)
{
	(void)c;
	return fake.queue;
}

static void fake_set_timeout(struct ringd_conn *c, int64_t ms)
{
	(void)c;
	fake.timeouts++;
	fake.timeout_ms = ms;
}

static int fake_reply(struct ringd_dgram *d, const void *buf, size_t len)
{
	if (len > fake.max_reply && len > d->len)
		return -EMSGSIZE;
	fake.replies++;
	return fake_append(buf, len);
}

static void fake_log(const struct ringd_instance *inst,
		     enum ringd_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	int n;

	(void)inst;
	(void)lvl;
	fake.logs++;
	va_start(ap, fmt);
	n = vsnprintf(fake.log + fake.loglen, sizeof(fake.log) - fake.loglen,
		      fmt, ap);
	va_end(ap);
	if (n > 0 && fake.loglen + (size_t)n + 1 < sizeof(fake.log)) {
		fake.loglen += (size_t)n;
		fake.log[fake.loglen++] = '\n';
		fake.log[fake.loglen] = '\0';
	}
	if (fake.quiet)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t fake_monotonic(void)
{
	return fake.mono_ns;
}

static void fake_hold_input(struct ringd_conn *c, bool hold)
{
	(void)c;
	if (hold)
		fake.holds++;
	else
		fake.releases++;
	fake.held = hold;
}

static enum ringd_close_reason fake_close_reason(const struct ringd_conn *c)
{
	(void)c;
	return fake.close_reason;
}

static void fake_count(struct ringd_conn *c, unsigned idx, uint64_t n)
{
	(void)c;
	if (idx < sizeof(fake.counts) / sizeof(fake.counts[0]))
		fake.counts[idx] += n;
}

static size_t fake_metrics(const struct ringd_instance *inst,
			   ringd_metric_fn emit, void *arg)
{
	struct ringd_metric m = {
		.name = "ringd_connections_accepted_total",
		.help = "Connections accepted\\ by \"service\"\nsecond line",
		.type = RINGD_METRIC_COUNTER,
		.nlabels = 2,
		.label_names = { "service", "transport" },
		.label_values = { "web", "tcp" },
		.value = 12,
	};

	(void)inst;
	emit(arg, &m);
	m.label_values[0] = "a\\b\"c\nd";
	m.value = 1e15 + 1;
	emit(arg, &m);
	m = (struct ringd_metric){
		.name = "process_resident_memory_bytes",
		.help = "Resident memory size in bytes.",
		.type = RINGD_METRIC_GAUGE,
		.value = 1048576,
	};
	emit(arg, &m);
	m.name = "process_cpu_seconds_total";
	m.help = "Total user and system CPU time spent in seconds.";
	m.type = RINGD_METRIC_COUNTER;
	m.value = 0.25;
	emit(arg, &m);
	return FAKE_METRICS_SERIES;
}

static int64_t fake_now(void)
{
	fake.nows++;
	return fake.now_ns;
}

static int64_t fake_loop_time(const struct ringd_conn *c)
{
	(void)c;
	return fake.mono_ns;
}

static enum ringd_state fake_state(const struct ringd_instance *inst)
{
	(void)inst;
	return fake.state;
}

static int fake_clock_synced(void)
{
	return fake.clock_synced;
}

void fake_host_reset(void)
{
	memset(&fake, 0, sizeof(fake));
	fake.max_reply = 512;
	fake.host = (struct ringd_host){
		.size = sizeof(struct ringd_host),
		.send = fake_send,
		.send_ref = fake_send,
		.close = fake_close,
		.abort = fake_abort,
		.queued = fake_queued,
		.set_timeout = fake_set_timeout,
		.reply = fake_reply,
		.log = fake_log,
		.now = fake_now,
		.state = fake_state,
		.clock_synced = fake_clock_synced,
		.monotonic = fake_monotonic,
		.hold_input = fake_hold_input,
		.close_reason = fake_close_reason,
		.count = fake_count,
		.metrics = fake_metrics,
		.send_input = fake_send_input,
		.close_no_linger = fake_close_no_linger,
		.loop_time = fake_loop_time,
	};
	fake.clock_synced = 1;
}

void fake_host_drain(size_t n)
{
	if (n > fake.queue)
		fail_msg("drain %zu bytes with %zu queued", n, fake.queue);
	fake.queue -= n;
}

struct fake_host *fake_host_get(void)
{
	return &fake;
}

char fake_errs[FAKE_MAX_ERRS][1024];
int fake_nerrs;

void fake_check_err(struct ringd_check *chk, const char *key, const char *fmt,
		    ...)
{
	va_list ap;
	int n;

	(void)chk;
	assert_true(fake_nerrs < FAKE_MAX_ERRS);
	n = snprintf(fake_errs[fake_nerrs], sizeof(fake_errs[0]), "%s: ",
		     key ? key : "-");
	va_start(ap, fmt);
	vsnprintf(fake_errs[fake_nerrs] + n, sizeof(fake_errs[0]) - (size_t)n,
		  fmt, ap);
	va_end(ap);
	fake_nerrs++;
}

const struct ringd_key *fake_plugin_key(const char *name)
{
	for (const struct ringd_key *k = ringd_plugin.keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	fail_msg("no key %s", name);
	return NULL;
}
