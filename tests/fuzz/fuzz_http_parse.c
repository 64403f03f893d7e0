/* libFuzzer target for plugins/http/parse.c: the input (after its first
 * byte) is a connection's bytes, read once whole and once in two reads
 * split where the first byte says; both must find the same requests, and
 * every span must lie inside its head. Aborts on any disagreement. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plugins/http/parse.h"

#define MAX_BODY     4096
#define MAX_REQUESTS 32

/* What one request came to; compared byte for byte between the ways. */
struct rec {
	int32_t scan, parse, init;
	int64_t body;
	uint32_t head_len;
	struct http_request req; /* its field table past nfields is zeroed */
	uint64_t total;
};

struct conn {
	char head[HTTP_MAX_HEAD + 1];
	uint32_t hlen;
	struct http_scan scan;
	struct http_body body;
	bool in_body, stopped;
	struct rec *cur;
	struct rec recs[MAX_REQUESTS];
	unsigned n;
};

static void span_check(struct http_span s, uint32_t head_len)
{
	if ((uint64_t)s.off + s.len > head_len)
		abort();
}

static void spans_check(const struct http_request *r)
{
	uint32_t hl = r->head_len;

	span_check(r->method_name, hl);
	span_check(r->target, hl);
	span_check(r->authority, hl);
	span_check(r->path, hl);
	span_check(r->query, hl);
	span_check(r->host, hl);
	if (r->nfields > HTTP_MAX_FIELDS || r->major != 1)
		abort();
	for (uint16_t i = 0; i < r->nfields; i++) {
		span_check(r->fields[i].name, hl);
		span_check(r->fields[i].value, hl);
	}
}

static void request_end(struct conn *c)
{
	c->cur->total = c->body.total;
	c->in_body = false;
	http_scan_init(&c->scan);
	if (++c->n == MAX_REQUESTS)
		c->stopped = true;
}

static size_t conn_body(struct conn *c, const char *in, size_t n)
{
	int64_t r = http_body_feed(&c->body, in, n);

	if (r < 0 || (uint64_t)r > n)
		c->cur->body = r;
	if (r < 0) {
		if (r != -400 && r != -413 && r != -431)
			abort();
		c->stopped = true;
		return n;
	}
	if ((uint64_t)r > n || c->body.total > MAX_BODY)
		abort();
	if (http_body_done(&c->body))
		request_end(c);
	else if ((size_t)r != n)
		abort();
	return (size_t)r;
}

static void conn_scan(struct conn *c);

static void conn_head(struct conn *c, uint32_t len)
{
	struct rec *r = &c->recs[c->n];
	const char *why = NULL;
	size_t used = len;

	c->cur = r;
	r->head_len = len;
	r->parse = http_head_parse(c->head, len, &r->req, &why);
	if (r->parse != 0) {
		if (why == NULL)
			abort();
		/* Spans of a refused head are not compared. */
		memset(&r->req, 0, sizeof(r->req));
		c->stopped = true;
		return;
	}
	spans_check(&r->req);
	memset(&r->req.fields[r->req.nfields], 0,
	       (HTTP_MAX_FIELDS - r->req.nfields) * sizeof(r->req.fields[0]));
	r->init = http_body_init(&c->body, &r->req, MAX_BODY);
	if (r->init != 0) {
		c->stopped = true;
		return;
	}
	c->in_body = true;
	if (http_body_done(&c->body))
		request_end(c);
	else
		used += conn_body(c, c->head + len, c->hlen - len);
	if (c->stopped)
		return;
	memmove(c->head, c->head + used, c->hlen - used);
	c->hlen -= (uint32_t)used;
	if (c->hlen > 0) {
		if (c->in_body)
			abort();
		conn_scan(c);
	}
}

static void conn_scan(struct conn *c)
{
	int rc = http_head_scan(&c->scan, c->head, c->hlen);

	if (rc == 0) {
		if (c->hlen >= sizeof(c->head) || c->scan.pos != c->hlen)
			abort();
		return;
	}
	if (rc < 0) {
		if (rc != -400 && rc != -414 && rc != -431)
			abort();
		if (http_head_scan(&c->scan, c->head, c->hlen) != rc)
			abort();
		c->recs[c->n].scan = rc;
		c->stopped = true;
		return;
	}
	if ((uint32_t)rc > c->hlen)
		abort();
	conn_head(c, (uint32_t)rc);
}

static void conn_feed(struct conn *c, const char *in, size_t n)
{
	size_t take;

	while (n > 0 && !c->stopped) {
		if (c->in_body) {
			take = conn_body(c, in, n);
		} else {
			take = sizeof(c->head) - c->hlen;
			take = n < take ? n : take;
			memcpy(c->head + c->hlen, in, take);
			c->hlen += (uint32_t)take;
			conn_scan(c);
		}
		in += take;
		n -= take;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conn *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
	const char *in = (const char *)data + 1;
	size_t len, k;

	if (a == NULL || b == NULL || size == 0)
		goto out;
	len = size - 1;
	k = len * data[0] / 255;
	conn_feed(a, in, len);
	conn_feed(b, in, k);
	conn_feed(b, in + k, len - k);
	/* After a refusal the bytes buffered depend on the reads: the
	 * refusal itself is what is compared. */
	if (a->n != b->n || a->in_body != b->in_body ||
	    a->stopped != b->stopped || (!a->stopped && a->hlen != b->hlen) ||
	    memcmp(a->recs, b->recs, sizeof(a->recs)) != 0)
		abort();
out:
	free(a);
	free(b);
	return 0;
}
