/* The struct ringd_host handed to every plugin: adapters from the ABI to
 * the core's connection, datagram and log code. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/timex.h>
#include <time.h>

#include "conn.h"
#include "daemon.h"
#include "dgram.h"
#include "host.h"
#include "log.h"
#include "metrics.h"

static int host_send(struct ringd_conn *c, const void *buf, size_t len)
{
	return conn_send(c, buf, len, 1);
}

static int host_send_ref(struct ringd_conn *c, const void *buf, size_t len)
{
	return conn_send(c, buf, len, 0);
}

static void host_log(const struct ringd_instance *inst,
		     enum ringd_log_level lvl, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (lvl > log_level())
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_msg(lvl, "%s svc=%s", line, inst->sc->name);
}

static int64_t host_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static enum ringd_state host_state(const struct ringd_instance *inst)
{
	return daemon_state(inst->d);
}

static int host_clock_synced(void)
{
	struct timex tx = { 0 };
	int state = adjtimex(&tx);

	if (state < 0)
		return -errno;
	return state != TIME_ERROR && !(tx.status & STA_UNSYNC);
}

static int64_t host_monotonic(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static size_t host_metrics(const struct ringd_instance *inst,
			   ringd_metric_fn emit, void *arg)
{
	return metrics_walk(inst->d, emit, arg);
}

const struct ringd_host host_api = {
	.size = sizeof(struct ringd_host),
	.send = host_send,
	.send_ref = host_send_ref,
	.close = conn_close,
	.abort = conn_abort,
	.queued = conn_queued,
	.set_timeout = conn_set_timeout,
	.reply = dgram_reply,
	.log = host_log,
	.now = host_now,
	.state = host_state,
	.clock_synced = host_clock_synced,
	.monotonic = host_monotonic,
	.hold_input = conn_hold_input,
	.close_reason = conn_close_reason,
	.count = conn_count,
	.metrics = host_metrics,
	.send_input = conn_send_input,
	.close_no_linger = conn_close_no_linger,
	.loop_time = conn_loop_time,
};
