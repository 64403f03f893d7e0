/* What each protocol sends and how its reply is judged, on top of the
 * I/O in check.c. Every reply path ends in exactly one check_finish(). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"
#include "probe/check_priv.h"

static void fill_random(unsigned char *p, size_t n)
{
	size_t off = 0;

	while (off < n) {
		ssize_t k = getrandom(p + off, n - off, GRND_NONBLOCK);

		if (k <= 0)
			break;
		off += (size_t)k;
	}
	/* Without entropy yet (early boot), any varied bytes will do: the
	 * payload only has to be unlikely for a wrong server to produce. */
	for (uint32_t x = (uint32_t)(uintptr_t)p | 1; off < n; off++) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		p[off] = (unsigned char)x;
	}
}

/* The first payload comes from getrandom(); later ones (--count, load
 * mode) from a xorshift generator it seeds, which costs no syscall per
 * request and still leaves a wrong server nothing to predict. */
static void next_payload(struct probe_check *c)
{
	uint64_t x = c->rng;

	if (!x) {
		fill_random(c->out, c->out_len);
		fill_random((unsigned char *)&c->rng, sizeof(c->rng));
		c->rng |= 1;
		return;
	}
	for (size_t i = 0; i < c->out_len; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		c->out[i] = (unsigned char)(x >> 32);
	}
	c->rng = x;
}

static size_t keep_size(const struct probe_check *c)
{
	if (c->t->udp)
		return UDP_MAX;
	switch (c->t->proto) {
	case PROBE_DAYTIME:
		return KEEP_LINE;
	case PROBE_TIME:
		return 5; /* one more than a reply, to tell a longer one */
	case PROBE_QOTD:
		return 512;
	case PROBE_HTTP:
		/* The body is kept only for --expect-body to match. */
		return KEEP_HTTP_HEAD +
		       (c->o->expect_body ? KEEP_HTTP_BODY : 0);
	default:
		return 0;
	}
}

int reply_prepare(struct probe_check *c)
{
	enum probe_proto p = c->t->proto;

	if (!c->in && keep_size(c)) {
		c->in_cap = keep_size(c);
		/* One byte more for the NUL that printing and regexec want. */
		c->in = malloc(c->in_cap + 1);
		if (!c->in)
			return -ENOMEM;
	}
	if (p == PROBE_HTTP)
		return c->out ? 0 : reply_http_request(c);
	if (p != PROBE_ECHO && p != PROBE_DISCARD)
		return 0;
	if (!c->out) {
		c->out = malloc(c->o->size);
		if (!c->out)
			return -ENOMEM;
		c->out_len = c->o->size;
	}
	next_payload(c);
	return 0;
}

/* Keeps n more bytes; false when they do not fit in the cap. */
static bool keep(struct probe_check *c, const unsigned char *buf, size_t n)
{
	if (n > c->in_cap - c->in_len)
		return false;
	memcpy(c->in + c->in_len, buf, n);
	c->in_len += n;
	return true;
}

static void judge_time(struct probe_check *c, const unsigned char *buf,
		       size_t n)
{
	struct timespec ts;
	uint32_t v;
	double now, offset, max = c->o->max_offset_ns / 1e9;

	if (n != 4) {
		check_finish(c, PROBE_CRITICAL, "time reply of %zu bytes, not 4",
			     n);
		return;
	}
	memcpy(&v, buf, 4);
	clock_gettime(CLOCK_REALTIME, &ts);
	now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	offset = (double)verify_time_unix(ntohl(v), ts.tv_sec) - now;
	/* The reply counts whole seconds, so a true clock reads up to a
	 * second behind. */
	if (offset > max || offset < -(max + 1.0)) {
		check_finish(c, PROBE_CRITICAL,
			     "clock offset %+.1f s exceeds %.1f s", offset, max);
		return;
	}
	check_finish(c, PROBE_OK, "offset %+.1f s in %.2f ms", offset,
		     check_ms(c));
}

static void judge_text(struct probe_check *c, const unsigned char *buf,
		       size_t n)
{
	const char *why = "empty reply";
	char *text = (char *)c->in;
	size_t len = n;

	if (c->t->proto == PROBE_QOTD) {
		if (!verify_qotd(buf, n, &why))
			check_finish(c, PROBE_CRITICAL, "%s", why);
		else
			check_finish(c, PROBE_OK, "%zu-byte quote in %.2f ms", n,
				     check_ms(c));
		return;
	}
	if (!verify_daytime(buf, n, &why)) {
		check_finish(c, PROBE_CRITICAL, "%s", why);
		return;
	}
	if (buf != c->in)
		memcpy(text, buf, n);
	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	text[len] = '\0';
	check_finish(c, PROBE_OK, "'%.100s' in %.2f ms", text, check_ms(c));
}


static void echo_data(struct probe_check *c, const unsigned char *buf,
		      size_t n)
{
	if (n > c->out_len - c->got) {
		check_finish(c, PROBE_CRITICAL,
			     "echo returned more than the %zu bytes sent",
			     c->out_len);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (buf[i] != c->out[c->got + i]) {
			check_finish(c, PROBE_CRITICAL,
				     "echo reply differs at byte %llu",
				     (unsigned long long)(c->got + i));
			return;
		}
	c->got += n;
	if (c->got == c->out_len)
		check_finish(c, PROBE_OK, "%zu bytes echoed in %.2f ms",
			     c->out_len, check_ms(c));
}

static void chargen_data(struct probe_check *c, const unsigned char *buf,
			 size_t n)
{
	size_t want = c->o->size - (size_t)c->got;

	if (n > want)
		n = want;
	if (!verify_chargen_feed(&c->cg, buf, n)) {
		check_finish(c, PROBE_CRITICAL,
			     "not the RFC 864 pattern at byte %llu",
			     (unsigned long long)c->cg.offset);
		return;
	}
	c->got += n;
	if (c->got == c->o->size)
		check_finish(c, PROBE_OK, "%zu bytes of RFC 864 pattern in %.2f ms",
			     c->o->size, check_ms(c));
}

void reply_data(struct probe_check *c, const unsigned char *buf, size_t n)
{
	switch (c->t->proto) {
	case PROBE_ECHO:
		echo_data(c, buf, n);
		return;
	case PROBE_CHARGEN:
		chargen_data(c, buf, n);
		return;
	case PROBE_DISCARD:
		check_finish(c, PROBE_CRITICAL, "discard answered %zu bytes", n);
		return;
	case PROBE_HTTP:
		reply_http_data(c, buf, n);
		return;
	default:
		break;
	}
	c->got += n;
	if (keep(c, buf, n))
		return;
	if (c->t->proto == PROBE_QOTD)
		check_finish(c, PROBE_CRITICAL, "quote of 512 bytes or more");
	else
		check_finish(c, PROBE_CRITICAL, "%s reply longer than %zu bytes",
			     probe_proto_name(c->t->proto),
			     c->t->proto == PROBE_TIME ? (size_t)4 : c->in_cap);
}

void reply_eof(struct probe_check *c)
{
	switch (c->t->proto) {
	case PROBE_ECHO:
	case PROBE_CHARGEN:
		check_finish(c, PROBE_CRITICAL,
			     "short reply: %llu of %zu bytes, then close",
			     (unsigned long long)c->got,
			     c->t->proto == PROBE_ECHO ? c->out_len : c->o->size);
		return;
	case PROBE_DISCARD:
		if (c->sent)
			check_finish(c, PROBE_OK, "%zu bytes discarded in %.2f ms",
				     c->out_len, check_ms(c));
		else
			check_finish(c, PROBE_CRITICAL,
				     "closed after %zu of %zu bytes", c->out_off,
				     c->out_len);
		return;
	case PROBE_HTTP:
		reply_http_eof(c);
		return;
	case PROBE_TIME:
		judge_time(c, c->in, c->in_len);
		return;
	default:
		if (c->in_len == 0)
			check_finish(c, PROBE_CRITICAL, "closed without a reply");
		else
			judge_text(c, c->in, c->in_len);
	}
}

void reply_sent(struct probe_check *c)
{
	/* discard reads until our end: its close answers our FIN, which
	 * tells that it took every byte. */
	if (c->t->proto == PROBE_DISCARD)
		shutdown(c->fd, SHUT_WR);
}

void reply_datagram(struct probe_check *c, const unsigned char *buf,
		    size_t n)
{
	c->got = n;
	switch (c->t->proto) {
	case PROBE_ECHO:
		if (n != c->out_len || memcmp(buf, c->out, n) != 0)
			check_finish(c, PROBE_CRITICAL,
				     "echo datagram of %zu bytes differs from "
				     "the %zu sent", n, c->out_len);
		else
			check_finish(c, PROBE_OK, "%zu bytes echoed in %.2f ms",
				     n, check_ms(c));
		return;
	case PROBE_TIME:
		judge_time(c, buf, n);
		return;
	default:
		if (n == 0)
			check_finish(c, PROBE_CRITICAL, "empty datagram");
		else
			judge_text(c, buf, n);
	}
}
