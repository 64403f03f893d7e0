/* The http:// check: one request with Connection: close, the response
 * head parsed as it arrives, the body kept up to KEEP_HTTP_BODY for
 * --expect-body and counted beyond it, then status, header and body
 * judged. */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "probe/check_priv.h"

int reply_http_request(struct probe_check *c)
{
	const struct probe_target *t = c->t;
	char host[PROBE_HOST_MAX + 16];
	int n;

	if (strcmp(t->port, "80") == 0 || t->unix_path[0])
		snprintf(host, sizeof(host), strchr(t->host, ':') ? "[%s]" : "%s",
			 t->host);
	else
		probe_target_hostport(t, host, sizeof(host));
	n = asprintf((char **)&c->out,
		     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ringd-probe/%s"
		     "\r\nAccept: */*\r\nConnection: close\r\n\r\n",
		     c->o->method, t->path, host, RINGD_VERSION);
	if (n < 0) {
		c->out = NULL;
		return -ENOMEM;
	}
	c->out_len = (size_t)n;
	return 0;
}

static bool body_expected(const struct probe_check *c)
{
	int s = c->http.status;

	return strcmp(c->o->method, "HEAD") != 0 && s >= 200 && s != 204 &&
	       s != 304;
}

/* Matches re against n bytes that may hold NULs (REG_STARTEND). */
static bool regex_match(const void *re, const char *s, size_t n)
{
	regmatch_t m = { .rm_so = 0, .rm_eo = (regoff_t)n };

	return regexec(re, s, 1, &m, REG_STARTEND) == 0;
}

static bool judge_header(struct probe_check *c, const char *head)
{
	const char *name = c->o->expect_header_name;
	size_t vlen;
	const char *v = verify_http_header(head, c->http.head_len, name, &vlen);

	if (!v) {
		check_finish(c, PROBE_CRITICAL, "%d without a %s header",
			     c->http.status, name);
		return false;
	}
	if (!regex_match(c->o->expect_header, v, vlen)) {
		check_finish(c, PROBE_CRITICAL,
			     "%d, header %s: '%.*s' does not match",
			     c->http.status, name, (int)(vlen > 80 ? 80 : vlen),
			     v);
		return false;
	}
	return true;
}

static void http_judge(struct probe_check *c)
{
	const char *head = (const char *)c->in;
	size_t kept = c->in_len - c->http.head_len;

	if (verify_status_match(c->o->expect_status, c->http.status) != 1) {
		check_finish(c, PROBE_CRITICAL, "%d, expected %s, in %.2f ms",
			     c->http.status, c->o->expect_status, check_ms(c));
		return;
	}
	if (c->o->expect_header && !judge_header(c, head))
		return;
	if (c->o->expect_body &&
	    !regex_match(c->o->expect_body, head + c->http.head_len, kept)) {
		check_finish(c, PROBE_CRITICAL,
			     "%d, body does not match --expect-body, in %.2f ms",
			     c->http.status, check_ms(c));
		return;
	}
	check_finish(c, PROBE_OK, "%d in %.2f ms", c->http.status, check_ms(c));
}

/* The terminating zero-size chunk, found across buffer boundaries by
 * keeping the last bytes seen. */
static bool chunked_end(struct probe_check *c, const unsigned char *buf,
			size_t n)
{
	static const char end[] = "0\r\n\r\n";
	size_t t = sizeof(c->tail);

	if (n >= t) {
		memcpy(c->tail, buf + n - t, t);
	} else {
		memmove(c->tail, c->tail + n, t - n);
		memcpy(c->tail + t - n, buf, n);
	}
	return memcmp(c->tail, end, t) == 0;
}

static bool body_complete(struct probe_check *c, const unsigned char *buf,
			  size_t n)
{
	if (!body_expected(c))
		return true;
	if (c->http.clen >= 0)
		return c->body_got >= (uint64_t)c->http.clen;
	return c->http.chunked && chunked_end(c, buf, n);
}

static void head_data(struct probe_check *c, const unsigned char *buf,
		      size_t n)
{
	const char *why = "bad response";
	size_t take = n < c->in_cap - c->in_len ? n : c->in_cap - c->in_len;
	size_t body;
	int r;

	memcpy(c->in + c->in_len, buf, take);
	c->in_len += take;
	r = verify_http_head(&c->http, (const char *)c->in, c->in_len, &why);
	if (r < 0) {
		check_finish(c, PROBE_CRITICAL, "%s", why);
		return;
	}
	if (r == 0) {
		if (c->in_len >= KEEP_HTTP_HEAD)
			check_finish(c, PROBE_CRITICAL,
				     "response head over %d bytes",
				     KEEP_HTTP_HEAD);
		return;
	}
	c->res.http_status = c->http.status;
	body = c->in_len - c->http.head_len;
	c->body_got = body + (n - take);
	if (body_complete(c, c->in + c->http.head_len, body))
		http_judge(c);
}

void reply_http_data(struct probe_check *c, const unsigned char *buf,
		     size_t n)
{
	size_t room = c->in_cap - c->in_len;

	c->got += n;
	if (!c->http.head_len) {
		head_data(c, buf, n);
		return;
	}
	memcpy(c->in + c->in_len, buf, n < room ? n : room);
	c->in_len += n < room ? n : room;
	c->body_got += n;
	if (body_complete(c, buf, n))
		http_judge(c);
}

void reply_http_eof(struct probe_check *c)
{
	if (!c->http.head_len) {
		if (c->got)
			check_finish(c, PROBE_CRITICAL,
				     "closed in the response head after %llu "
				     "bytes", (unsigned long long)c->got);
		else
			check_finish(c, PROBE_CRITICAL,
				     "closed without a response");
		return;
	}
	if (body_expected(c) && c->http.clen >= 0 &&
	    c->body_got < (uint64_t)c->http.clen) {
		check_finish(c, PROBE_CRITICAL,
			     "%d, body cut short at %llu of %lld bytes",
			     c->http.status, (unsigned long long)c->body_got,
			     c->http.clen);
		return;
	}
	http_judge(c);
}
