/* The http:// check: one request (with Connection: close unless load
 * mode keeps connections), the response
 * head parsed as it arrives, the body (chunks decoded) kept up to
 * KEEP_HTTP_BODY for --expect-body and counted beyond it, then status,
 * header and body judged. */
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
		     "\r\nAccept: */*\r\n%s\r\n",
		     c->o->method, t->path, host, RINGD_VERSION,
		     c->o->keepalive ? "" : "Connection: close\r\n");
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

/* Bytes after a complete response fail a kept connection's try (they
 * would be read as the next response); a closing one ignores them. */
static int body_after(struct probe_check *c, uint64_t n)
{
	if (!n || !c->o->keepalive)
		return 1;
	check_finish(c, PROBE_CRITICAL, "%d, %llu bytes after the body",
		     c->http.status, (unsigned long long)n);
	return -1;
}

/* Takes n body bytes (buf may point into c->in itself, at c->in_len):
 * keeps what fits, decodes chunks. 1 when the body is complete, 0 when
 * more is due, -1 after finishing the check on a malformed body. */
static int body_take(struct probe_check *c, const unsigned char *buf,
		     size_t n)
{
	size_t room = c->in_cap - c->in_len, w = 0;
	const char *why = "bad chunked body";
	int r;

	if (!body_expected(c))
		return body_after(c, n);
	if (c->http.chunked) {
		r = verify_chunked_feed(&c->chunks, buf, n, c->in + c->in_len,
					room, &w, &why);
		c->in_len += w;
		/* What was received, not what fit in c->in. */
		c->body_got = c->chunks.data;
		if (r < 0)
			check_finish(c, PROBE_CRITICAL,
				     "%d, bad chunked body: %s", c->http.status,
				     why);
		return r == 1 ? body_after(c, c->chunks.after) : r;
	}
	w = n < room ? n : room;
	memmove(c->in + c->in_len, buf, w);
	c->in_len += w;
	c->body_got += n;
	if (c->http.clen < 0 || c->body_got < (uint64_t)c->http.clen)
		return 0;
	return body_after(c, c->body_got - (uint64_t)c->http.clen);
}

/* Whether a kept connection can carry the next request after this
 * response: HTTP/1.1, a body whose end the framing tells, and no
 * Connection: close. */
static bool http_reusable(const struct probe_check *c)
{
	const char *head = (const char *)c->in, *v;
	size_t n;

	if (!c->o->keepalive || strncmp(head, "HTTP/1.1 ", 9) != 0)
		return false;
	if (body_expected(c) && c->http.clen < 0 && !c->http.chunked)
		return false;
	v = verify_http_header(head, c->http.head_len, "Connection", &n);
	return !v || !verify_http_has_token(v, n, "close");
}

static void head_data(struct probe_check *c, const unsigned char *buf,
		      size_t n)
{
	const char *why = "bad response";
	size_t take = n < c->in_cap - c->in_len ? n : c->in_cap - c->in_len;
	size_t extra;
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
	c->reuse = http_reusable(c);
	/* What came with the head is the body's start: taken again, in
	 * place, so chunks are decoded like later ones. */
	extra = c->in_len - c->http.head_len;
	c->in_len = c->http.head_len;
	r = body_take(c, c->in + c->http.head_len, extra);
	/* What did not fit is taken too, even after a complete body. */
	if (r >= 0 && take < n)
		r = body_take(c, buf + take, n - take);
	if (r == 1)
		http_judge(c);
}

void reply_http_data(struct probe_check *c, const unsigned char *buf,
		     size_t n)
{
	c->got += n;
	if (!c->http.head_len)
		head_data(c, buf, n);
	else if (body_take(c, buf, n) == 1)
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
	if (body_expected(c) && c->http.chunked) {
		check_finish(c, PROBE_CRITICAL,
			     "%d, chunked body cut short after %llu bytes",
			     c->http.status, (unsigned long long)c->body_got);
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
