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

static void fake_close(struct ringd_conn *c)
{
	(void)c;
	fake.closes++;
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

	(void)inst;
	(void)lvl;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static int64_t fake_now(void)
{
	return fake.now_ns;
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

const struct ringd_key *fake_plugin_key(const char *name)
{
	for (const struct ringd_key *k = ringd_plugin.keys; k->name; k++)
		if (strcmp(k->name, name) == 0)
			return k;
	fail_msg("no key %s", name);
	return NULL;
}
