/* http: an HTTP/1.1 responder for probes. The request parser (parse.c)
 * finds and reads heads; this file is the state machine around it: one
 * response per request, in order, pipelined or not, keep-alive and its
 * limits, bodies discarded, input held behind large queued output, and
 * the drain. Responses of fixed routes are pre-rendered per worker and
 * only their Date is refreshed, so a hit is one send of one buffer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "metrics_text.h"
#include "reflect.h"

/* Past this much queued output, pipelined requests wait (input held)
 * until the client has read: one read cannot queue megabytes. */
#define HTTP_HOLD_BYTES (64 * 1024)
/* A route body larger than this leaves by reference after its head
 * instead of being copied into every response. */
#define HTTP_INLINE_BODY (16 * 1024)
/* Scratch buffers keep this much between requests. */
#define HTTP_SCRATCH_KEEP (64 * 1024)
#define HTTP_LOG_PER_SEC 10
/* On a reload, how long an idle keep-alive connection waits for the
 * request it may be sending (see http_drain()). */
#define HTTP_RELOAD_IDLE_MS 1000
#define HTTP_ALLOW "GET, HEAD, OPTIONS"
#define HTTP_CONTINUE "HTTP/1.1 100 Continue\r\n\r\n"

/* Pre-rendered responses, per worker. */
enum { PRE_HEALTHZ, PRE_READY, PRE_NOTREADY, PRE_404, PRE_405, PRE_501,
       PRE_OPTIONS, PRE_ROUTES };

struct pre {
	struct hbuf buf;  /* head up to its Connection slot, CRLF, body */
	size_t head_len;  /* bytes before that CRLF */
	size_t date_off;  /* where the Date value is, to refresh it */
	const char *body; /* the body (in buf too when inline) */
	size_t body_len;
	bool inline_body;
	int status;
};

enum {
	HC_TIMED = 1u << 0,  /* header_timeout armed for the current head */
	HC_HELD = 1u << 1,   /* input held; buf holds unserved requests */
	HC_DRAIN = 1u << 2,  /* stopping: the next response closes */
	HC_CLOSED = 1u << 3, /* close() called: input is ignored */
};

/* What one request was answered with. */
struct answer {
	int status;
	unsigned route_ctr;
	enum http_conn_mode mode;
	bool head_only;
	size_t bytes;
};

/* A request's method and path as its log line names them: in the head,
 * or in a copy of their first LOG_TEXT_MAX bytes (a length past that
 * marks a cut). NULL when there was no parsed head. */
#define LOG_TEXT_MAX 256

struct req_text {
	const char *method, *path;
	size_t method_len, path_len;
};

/* A request whose body is still arriving: its response is kept until
 * the body has been read, so answers never overtake their requests. It
 * is counted and logged when it leaves (or replaced by the body's error
 * status), so each request counts once; the head is gone by then, hence
 * the copy of what the log line names. */
struct hbody {
	struct http_body b;
	struct hbuf resp;
	struct answer a;
	bool close;
	uint16_t method_len, path_len;
	char text[2 * LOG_TEXT_MAX]; /* the method, then the path */
};

/* A connection's state while it has a request in progress. Idle
 * keep-alive connections are most of them, so between requests none is
 * allocated: c->data then packs the little that survives a request into
 * the pointer itself (see hc_get). buf exists only while a head is split
 * across reads or input is held, and is freed when it empties. */
struct hconn {
	struct http_scan scan;
	uint32_t nreq;
	uint32_t len; /* bytes in buf; its size (realloc keeps it exact) */
	uint8_t flags;
	char *buf;
	struct hbody *body;
	int64_t t0; /* the request's first byte, for the log */
};

_Static_assert(sizeof(struct hconn) <= 48, "keep per-connection state tiny");

struct http_worker {
	const struct ringd_host *host;
	const struct ringd_instance *inst;
	const struct http_config *cfg;
	bool has_mono, has_hold, has_count, has_metrics, has_reason;
	bool has_no_linger, has_loop_time;
	int64_t date_sec;
	int64_t date_recheck; /* loop time at which the second may change */
	char date[HTTP_DATE_LEN + 1];
	struct pre *pre;
	size_t npre;
	struct hbuf out, body; /* scratch: a response, a dynamic body */
	int64_t log_sec;
	unsigned log_lines, log_dropped;
	struct hconn tmp;        /* an idle connection's state, unpacked */
	struct http_request req; /* the head being answered */
};


static int64_t http_mono(const struct http_worker *w)
{
	return w->has_mono ? w->host->monotonic() : w->host->now();
}

/* When a request began: the loop's time where the daemon offers it,
 * which reads no clock. */
static int64_t http_start_time(const struct http_worker *w,
			       const struct ringd_conn *c)
{
	return w->has_loop_time ? w->host->loop_time(c) : http_mono(w);
}

/* The Date is formatted once per second per worker and patched into
 * every pre-rendered response: it has a fixed width. The wall clock is
 * read only once the loop's time passes the next second's start, which
 * keeps clock reads off the per-request path; a step of the wall clock
 * shows within a second. c is NULL outside a connection. */
static void http_clock(struct http_worker *w, const struct ringd_conn *c)
{
	int64_t now, sec, t = 0;

	if (c != NULL && w->has_loop_time) {
		t = w->host->loop_time(c);
		if (t < w->date_recheck)
			return;
	}
	now = w->host->now();
	sec = now / 1000000000 - (now % 1000000000 < 0);
	if (c != NULL && w->has_loop_time)
		w->date_recheck = t + (sec + 1) * 1000000000 - now;
	if (sec == w->date_sec)
		return;
	w->date_sec = sec;
	http_date_format(sec, w->date);
	for (size_t i = 0; i < w->npre; i++)
		if (w->pre[i].buf.p) /* a reflect route has none */
			memcpy(w->pre[i].buf.p + w->pre[i].date_off, w->date,
			       HTTP_DATE_LEN);
}

static int pre_build(struct pre *p, const struct http_head_spec *spec,
		     const char *body)
{
	p->status = spec->status;
	p->body = body;
	p->body_len = spec->body_len;
	p->inline_body = spec->body_len <= HTTP_INLINE_BODY;
	p->date_off = http_head_render(&p->buf, spec);
	p->head_len = p->buf.len;
	hbuf_puts(&p->buf, "\r\n");
	if (p->inline_body)
		hbuf_put(&p->buf, body, p->body_len);
	return p->buf.oom ? -1 : 0;
}

/* The plugin's own short answers: the reason phrase is the body. */
static int pre_own(struct http_worker *w, struct pre *p, int status,
		   const char *body, bool no_store, const char *allow)
{
	struct http_head_spec s = {
		.status = status, .server = w->cfg->server, .date = w->date,
		.type = "text/plain", .no_store = no_store, .allow = allow,
		.length = true, .body_len = strlen(body),
	};

	return pre_build(p, &s, body);
}

static int pre_route(struct http_worker *w, struct pre *p,
		     const struct http_route *r)
{
	struct http_head_spec s = {
		.status = r->status, .server = w->cfg->server, .date = w->date,
		.type = r->type, .extra = r->headers,
		.extra_len = r->headers_len, .length = r->status != 204,
		.body_len = r->body_len,
	};

	return pre_build(p, &s, r->body ? r->body : "");
}

static int pre_all(struct http_worker *w)
{
	const struct http_config *cfg = w->cfg;
	int rc = 0;

	w->npre = PRE_ROUTES + cfg->nroutes;
	w->pre = calloc(w->npre, sizeof(*w->pre));
	if (!w->pre)
		return -1;
	rc |= pre_own(w, &w->pre[PRE_HEALTHZ], 200, "ok\n", true, NULL);
	rc |= pre_own(w, &w->pre[PRE_READY], 200, "ready\n", true, NULL);
	rc |= pre_own(w, &w->pre[PRE_NOTREADY], 503, "draining\n", true, NULL);
	rc |= pre_own(w, &w->pre[PRE_404], 404, "Not Found\n", false, NULL);
	rc |= pre_own(w, &w->pre[PRE_405], 405, "Method Not Allowed\n", false,
		      HTTP_ALLOW);
	rc |= pre_own(w, &w->pre[PRE_501], 501, "Not Implemented\n", false,
		      NULL);
	rc |= pre_own(w, &w->pre[PRE_OPTIONS], 200, "", false, HTTP_ALLOW);
	for (size_t i = 0; i < cfg->nroutes; i++)
		if (!cfg->routes[i].reflect)
			rc |= pre_route(w, &w->pre[PRE_ROUTES + i],
					&cfg->routes[i]);
	return rc;
}

static void http_stop(void *wstate)
{
	struct http_worker *w = wstate;

	for (size_t i = 0; w->pre && i < w->npre; i++)
		hbuf_free(&w->pre[i].buf);
	free(w->pre);
	hbuf_free(&w->out);
	hbuf_free(&w->body);
	free(w);
}

static void *http_start(const struct ringd_host *host,
			const struct ringd_instance *inst, const void *config)
{
	struct http_worker *w = calloc(1, sizeof(*w));

	if (!w) {
		host->log(inst, RINGD_LOG_ERR, "http: out of memory");
		return NULL;
	}
	w->host = host;
	w->inst = inst;
	w->cfg = config;
	/* Members appended to the ABI: an older daemon lacks them, and the
	 * plugin then does without (see doc/http.md). */
	w->has_mono = RINGD_HAS(host, monotonic);
	w->has_hold = RINGD_HAS(host, hold_input);
	w->has_count = RINGD_HAS(host, count);
	w->has_metrics = RINGD_HAS(host, metrics);
	w->has_reason = RINGD_HAS(host, close_reason);
	w->has_no_linger = RINGD_HAS(host, close_no_linger);
	w->has_loop_time = RINGD_HAS(host, loop_time);
	w->date_sec = INT64_MIN;
	w->date_recheck = INT64_MIN;
	http_clock(w, NULL);
	if (pre_all(w) < 0) {
		host->log(inst, RINGD_LOG_ERR, "http: out of memory");
		http_stop(w);
		return NULL;
	}
	return w;
}

/* At most HTTP_LOG_PER_SEC lines a second per worker, so a scanner
 * cannot flood the journal; the first line of a later second says how
 * many were left out. */
static bool log_admit(struct http_worker *w)
{
	int64_t sec = http_mono(w) / 1000000000;

	if (sec != w->log_sec) {
		if (w->log_dropped)
			w->host->log(w->inst, RINGD_LOG_NOTICE,
				     "http: request lines suppressed count=%u",
				     w->log_dropped);
		w->log_sec = sec;
		w->log_lines = w->log_dropped = 0;
	}
	if (w->log_lines >= HTTP_LOG_PER_SEC) {
		w->log_dropped++;
		return false;
	}
	w->log_lines++;
	return true;
}

/* Request bytes in a log line: anything but visible ASCII, and the
 * quote and backslash, as \xHH, so a request cannot forge log lines or
 * put control characters into a terminal; long paths are cut. */

static void log_escape(char *out, const char *s, size_t n)
{
	size_t o = 0;

	if (!s) {
		memcpy(out, "-", 2);
		return;
	}
	for (size_t i = 0; i < n && i < LOG_TEXT_MAX; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c > 0x20 && c < 0x7f && c != '"' && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
	}
	if (n > LOG_TEXT_MAX) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

/* The method and path of the request in w->req; buf is its head, or
 * NULL when the head could not be parsed. */
static struct req_text req_text(const struct http_request *req,
				const char *buf)
{
	if (!buf)
		return (struct req_text){ 0 };
	/* The path without its query; "*" and "http://host" have none. */
	return (struct req_text){
		.method = buf + req->method_name.off,
		.method_len = req->method_name.len,
		.path = buf + (req->path.len ? req->path.off : req->target.off),
		.path_len = req->path.len ? req->path.len : req->target.len,
	};
}

static void log_request(struct http_worker *w, struct ringd_conn *c,
			const struct hconn *h, const struct req_text *t,
			int status, size_t bytes)
{
	char method[LOG_TEXT_MAX * 4 + 4], path[LOG_TEXT_MAX * 4 + 4];
	char peer[PEER_MAX];
	int mode = w->cfg->log_requests;

	if (mode == HTTP_LOG_NO || (mode == HTTP_LOG_ERRORS && status < 400) ||
	    !log_admit(w))
		return;
	log_escape(method, t ? t->method : NULL, t ? t->method_len : 0);
	log_escape(path, t ? t->path : NULL, t ? t->path_len : 0);
	peer_format(c->peer, c->peerlen, peer);
	w->host->log(w->inst, RINGD_LOG_INFO,
		     "http: request method=%s path=\"%s\" status=%d bytes=%zu "
		     "duration_us=%lld peer=%s",
		     method, path, status, bytes,
		     (long long)((http_mono(w) - h->t0) / 1000), peer);
}

static void conn_end(struct http_worker *w, struct ringd_conn *c,
		     struct hconn *h)
{
	h->flags |= HC_CLOSED;
	w->host->close(c);
}

/* The client said this request is its last and nothing came after it:
 * no need to read on until its FIN (RFC 9112 section 9.6 asks for that
 * drain where more input may follow, which close() does). */
static void conn_end_last(struct http_worker *w, struct ringd_conn *c,
			  struct hconn *h)
{
	h->flags |= HC_CLOSED;
	if (w->has_no_linger)
		w->host->close_no_linger(c);
	else
		w->host->close(c);
}

/* Out of memory mid-response: a cut response must not look whole. */
static void conn_fail(struct http_worker *w, struct ringd_conn *c,
		      struct hconn *h)
{
	h->flags |= HC_CLOSED;
	w->host->abort(c);
}

/* Every byte of a response goes through here, so a response that waits
 * for its request's body is kept instead of sent. A send the daemon
 * cannot queue would leave a cut response: the connection is aborted. */
static size_t out_send(struct http_worker *w, struct ringd_conn *c,
		       struct hconn *h, const void *buf, size_t len, bool ref)
{
	int rc;

	if (h->flags & HC_CLOSED)
		return 0;
	if (h->body) {
		hbuf_put(&h->body->resp, buf, len);
		return len;
	}
	rc = ref ? w->host->send_ref(c, buf, len) : w->host->send(c, buf, len);
	if (rc < 0) {
		conn_fail(w, c, h);
		return 0;
	}
	return len;
}

/* A 1.1 keep-alive hit of a fixed route is one send of the pre-rendered
 * buffer; any other mode copies its head and says Connection. */
static void send_pre(struct http_worker *w, struct ringd_conn *c,
		     struct hconn *h, const struct pre *p, struct answer *a)
{
	struct hbuf *o = &w->out;

	a->status = p->status;
	if (a->mode == HTTP_CONN_NONE && (a->head_only || p->inline_body)) {
		a->bytes = out_send(w, c, h, p->buf.p,
				    a->head_only ? p->head_len + 2 : p->buf.len,
				    false);
		return;
	}
	hbuf_reset(o, HTTP_SCRATCH_KEEP);
	hbuf_put(o, p->buf.p, p->head_len);
	http_head_end(o, a->mode);
	if (!a->head_only && p->inline_body)
		hbuf_put(o, p->body, p->body_len);
	if (o->oom) {
		conn_fail(w, c, h);
		return;
	}
	a->bytes = out_send(w, c, h, o->p, o->len, false);
	if (!a->head_only && !p->inline_body)
		a->bytes += out_send(w, c, h, p->body, p->body_len, true);
}

/* A response whose body is in w->body (metrics, reflect, errors). */
static void send_dynamic(struct http_worker *w, struct ringd_conn *c,
			 struct hconn *h, struct http_head_spec *spec,
			 struct answer *a)
{
	struct hbuf *o = &w->out;

	spec->server = w->cfg->server;
	spec->date = w->date;
	spec->length = true;
	spec->body_len = w->body.len;
	hbuf_reset(o, HTTP_SCRATCH_KEEP);
	http_head_render(o, spec);
	http_head_end(o, a->mode);
	if (!a->head_only)
		hbuf_put(o, w->body.p, w->body.len);
	a->status = spec->status;
	if (o->oom || w->body.oom) {
		conn_fail(w, c, h);
		return;
	}
	a->bytes = out_send(w, c, h, o->p, o->len, false);
}

static void send_metrics(struct http_worker *w, struct ringd_conn *c,
			 struct hconn *h, struct answer *a)
{
	struct http_head_spec spec = { .status = 200,
				       .type = METRICS_CONTENT_TYPE,
				       .no_store = true };

	hbuf_reset(&w->body, HTTP_SCRATCH_KEEP);
	if (w->has_metrics)
		metrics_text_write(&w->body, w->host->metrics, w->inst);
	else
		hbuf_puts(&w->body, "# this ringd offers no metrics walk "
			  "to plugins\n");
	send_dynamic(w, c, h, &spec, a);
}

static void send_reflect(struct http_worker *w, struct ringd_conn *c,
			 struct hconn *h, const char *buf,
			 const struct http_route *r, struct answer *a)
{
	bool json = reflect_wants_json(buf, &w->req);
	struct http_head_spec spec = {
		.status = r->status,
		.type = json ? "application/json" : "text/plain",
		.extra = r->headers, .extra_len = r->headers_len,
	};
	char peer[PEER_MAX];

	peer_format(c->peer, c->peerlen, peer);
	hbuf_reset(&w->body, HTTP_SCRATCH_KEEP);
	reflect_render(&w->body, buf, &w->req, peer, json);
	send_dynamic(w, c, h, &spec, a);
}

/* Counts and logs a response that went out (or was queued to). */
static void account(struct http_worker *w, struct ringd_conn *c,
		    const struct hconn *h, const struct req_text *t,
		    const struct answer *a)
{
	if (w->has_count) {
		w->host->count(c, http_code_index(w->cfg, a->status), 1);
		w->host->count(c, a->route_ctr, 1);
	}
	log_request(w, c, h, t, a->status, a->bytes);
}

/* Whether the request says the client closes after it (RFC 9112
 * section 9.3: 1.1 persists unless told not to, 1.0 only when asked). */
static bool client_closes(const struct http_request *req)
{
	return req->conn_close || (req->minor == 0 && !req->conn_keepalive);
}

/* The client's word, then the drain and keepalive_requests. */
static enum http_conn_mode conn_mode(const struct http_worker *w,
				     const struct hconn *h)
{
	const struct http_request *req = &w->req;

	if (client_closes(req) || (h->flags & HC_DRAIN) ||
	    h->nreq >= (uint64_t)w->cfg->keepalive_requests)
		return HTTP_CONN_CLOSE;
	return req->minor == 0 ? HTTP_CONN_KEEPALIVE : HTTP_CONN_NONE;
}

static bool path_is(const char *ep, const char *p, size_t n)
{
	return ep && ep[0] && strlen(ep) == n && memcmp(ep, p, n) == 0;
}

/* GET and HEAD: the endpoints first, then routes, else 404. */
static void answer_get(struct http_worker *w, struct ringd_conn *c,
		       struct hconn *h, const char *buf, struct answer *a)
{
	const struct http_config *cfg = w->cfg;
	const struct http_request *req = &w->req;
	/* The absolute form may have no path: it means "/". */
	const char *p = req->path.len ? buf + req->path.off : "/";
	size_t n = req->path.len ? req->path.len : 1;
	const struct http_route *r;

	if (path_is(cfg->endpoint[EP_HEALTHZ], p, n)) {
		a->route_ctr = CTR_REQ_EP(cfg, EP_HEALTHZ);
		send_pre(w, c, h, &w->pre[PRE_HEALTHZ], a);
	} else if (path_is(cfg->endpoint[EP_READYZ], p, n)) {
		a->route_ctr = CTR_REQ_EP(cfg, EP_READYZ);
		send_pre(w, c, h,
			 &w->pre[w->host->state(w->inst) == RINGD_DRAINING
					 ? PRE_NOTREADY : PRE_READY], a);
	} else if (path_is(cfg->endpoint[EP_METRICS], p, n)) {
		a->route_ctr = CTR_REQ_EP(cfg, EP_METRICS);
		send_metrics(w, c, h, a);
	} else if ((r = route_match(cfg->routes, cfg->nroutes, p, n))) {
		a->route_ctr = CTR_REQ_ROUTE(cfg, r - cfg->routes);
		if (r->reflect)
			send_reflect(w, c, h, buf, r, a);
		else
			send_pre(w, c, h, &w->pre[PRE_ROUTES + (r - cfg->routes)],
				 a);
	} else {
		send_pre(w, c, h, &w->pre[PRE_404], a);
	}
}

/* Answers the request in w->req; returns whether the connection ends. */
static bool answer(struct http_worker *w, struct ringd_conn *c,
		   struct hconn *h, const char *buf)
{
	struct answer a = { .mode = conn_mode(w, h),
			    .head_only = w->req.method == HTTP_M_HEAD,
			    .route_ctr = CTR_REQ_NONE(w->cfg) };

	switch (w->req.method) {
	case HTTP_M_GET:
	case HTTP_M_HEAD:
		answer_get(w, c, h, buf, &a);
		break;
	case HTTP_M_OPTIONS:
		send_pre(w, c, h, &w->pre[PRE_OPTIONS], &a);
		break;
	case HTTP_M_OTHER:
		send_pre(w, c, h, &w->pre[PRE_501], &a);
		break;
	default:
		send_pre(w, c, h, &w->pre[PRE_405], &a);
		break;
	}
	if (h->body) {
		h->body->a = a;
	} else {
		struct req_text t = req_text(&w->req, buf);

		account(w, c, h, &t, &a);
	}
	return a.mode == HTTP_CONN_CLOSE;
}

/* A request the parser refused, or one we cannot serve: its status with
 * Connection: close, then FIN (the daemon's close() lingers, reading, so
 * the peer reads the response instead of a reset). t is NULL when the
 * head could not be parsed. */
static void answer_error(struct http_worker *w, struct ringd_conn *c,
			 struct hconn *h, int status, const struct req_text *t)
{
	struct http_head_spec spec = { .status = status, .type = "text/plain" };
	struct answer a = { .mode = HTTP_CONN_CLOSE,
			    .route_ctr = CTR_REQ_NONE(w->cfg) };

	if (!http_reason(status))
		spec.status = 400;
	hbuf_reset(&w->body, HTTP_SCRATCH_KEEP);
	hbuf_printf(&w->body, "%s\n", http_reason(spec.status));
	send_dynamic(w, c, h, &spec, &a);
	account(w, c, h, t, &a);
	conn_end(w, c, h);
}

/* The head asked for a body: the response waits for it (hbody), and an
 * HTTP/1.1 client that sent Expect: 100-continue is told to go on
 * (RFC 9110 section 10.1.1; a 1.0 client's Expect is ignored). The
 * body gets a deadline of its own, header_timeout again. */
static int body_begin(struct http_worker *w, struct ringd_conn *c,
		      struct hconn *h, const struct http_body *b,
		      const char *buf)
{
	struct hbody *hb = malloc(sizeof(*hb));
	struct req_text t = req_text(&w->req, buf);
	size_t m = t.method_len < LOG_TEXT_MAX ? t.method_len : LOG_TEXT_MAX;
	size_t p = t.path_len < LOG_TEXT_MAX ? t.path_len : LOG_TEXT_MAX;

	if (!hb) {
		conn_fail(w, c, h);
		return -1;
	}
	/* The text array is written only as far as the lengths say. */
	*hb = (struct hbody){ .b = *b,
			      .method_len = (uint16_t)(m + (m < t.method_len)),
			      .path_len = (uint16_t)(p + (p < t.path_len)) };
	memcpy(hb->text, t.method, m);
	memcpy(hb->text + LOG_TEXT_MAX, t.path, p);
	if (w->req.expect_continue && w->req.minor >= 1)
		out_send(w, c, h, HTTP_CONTINUE, strlen(HTTP_CONTINUE), false);
	h->body = hb;
	w->host->set_timeout(c, w->cfg->header_timeout_ms);
	return 0;
}

/* The kept copy of a request's method and path, as req_text() gives
 * them from a head. */
static struct req_text hbody_text(const struct hbody *hb)
{
	return (struct req_text){ .method = hb->text,
				  .method_len = hb->method_len,
				  .path = hb->text + LOG_TEXT_MAX,
				  .path_len = hb->path_len };
}

static void hbody_free(struct hbody *hb)
{
	hbuf_free(&hb->resp);
	free(hb);
}

static void body_free(struct hconn *h)
{
	if (!h->body)
		return;
	hbody_free(h->body);
	h->body = NULL;
}

/* A request head in buf[0, len); after: the bytes that followed it in
 * the same read. */
static void on_head(struct http_worker *w, struct ringd_conn *c,
		    struct hconn *h, const char *buf, size_t len, size_t after)
{
	const char *why = NULL;
	struct http_body b;
	bool close;
	int rc;

	http_clock(w, c);
	rc = http_head_parse(buf, len, &w->req, &why);
	if (rc) {
		answer_error(w, c, h, rc, NULL);
		return;
	}
	h->nreq++;
	rc = http_body_init(&b, &w->req, (uint64_t)w->cfg->max_body);
	if (rc == 0 && w->req.expect_other)
		rc = 417; /* RFC 9110 section 10.1.1 */
	if (rc) {
		struct req_text t = req_text(&w->req, buf);

		answer_error(w, c, h, rc, &t);
		return;
	}
	if (!http_body_done(&b) && body_begin(w, c, h, &b, buf) < 0)
		return;
	close = answer(w, c, h, buf);
	if (h->body)
		h->body->close = close;
	else if (close && !(h->flags & HC_CLOSED) && after == 0 &&
		 client_closes(&w->req))
		conn_end_last(w, c, h);
	else if (close && !(h->flags & HC_CLOSED))
		conn_end(w, c, h);
}

/* The response kept for a body that was still arriving when the drain
 * began was rendered to keep the connection: its head ends with the
 * Connection line (if any) and the empty line, so that line is replaced
 * or added. On no memory it goes as it was, and the close still comes. */
static void resp_force_close(struct hbuf *r)
{
	static const char ka[] = "Connection: keep-alive\r\n";
	const char *end = memmem(r->p, r->len, "\r\n\r\n", 4);
	struct hbuf n = { 0 };
	size_t head;

	if (end == NULL)
		return;
	head = (size_t)(end - r->p) + 2;
	if (head >= sizeof(ka) - 1 &&
	    memcmp(r->p + head - (sizeof(ka) - 1), ka, sizeof(ka) - 1) == 0)
		head -= sizeof(ka) - 1;
	hbuf_put(&n, r->p, head);
	hbuf_puts(&n, "Connection: close\r\n");
	hbuf_put(&n, end + 2, r->len - (size_t)(end + 2 - r->p));
	if (n.oom) {
		hbuf_free(&n);
		return;
	}
	hbuf_free(r);
	*r = n;
}

/* Body bytes: discarded as they come; the kept response leaves when the
 * body is complete. Returns the bytes that were the body's. */
static size_t body_step(struct http_worker *w, struct ringd_conn *c,
			struct hconn *h, const char *p, size_t n)
{
	int64_t r = http_body_feed(&h->body->b, p, n);
	struct hbody *hb = h->body;
	struct req_text t = hbody_text(hb);

	if (r < 0) {
		/* The error replaces the kept response: it alone counts.
		 * The body may have taken seconds: a Date of its own. */
		h->body = NULL;
		http_clock(w, c);
		answer_error(w, c, h, (int)-r, &t);
		hbody_free(hb);
		return n;
	}
	if (http_body_done(&hb->b)) {
		h->body = NULL;
		/* The drain began while the body came in: this is the last
		 * response. */
		if ((h->flags & HC_DRAIN) && !hb->close) {
			resp_force_close(&hb->resp);
			hb->close = true;
		}
		hb->a.bytes = out_send(w, c, h, hb->resp.p, hb->resp.len, false);
		account(w, c, h, &t, &hb->a);
		if (hb->close && !(h->flags & HC_CLOSED))
			conn_end(w, c, h);
		hbody_free(hb);
	}
	return (size_t)r;
}

/* Looks for the end of the head that starts at p. Returns the bytes it
 * used: the head's, or 0 while it is incomplete (then the caller keeps
 * p[0, n) for the next read), or n after an error. */
static size_t head_step(struct http_worker *w, struct ringd_conn *c,
			struct hconn *h, const char *p, size_t n)
{
	int rc;

	if (h->scan.pos == 0 && w->cfg->log_requests != HTTP_LOG_NO)
		h->t0 = http_start_time(w, c);
	rc = http_head_scan(&h->scan, p, n);
	if (rc < 0) {
		http_clock(w, c);
		answer_error(w, c, h, -rc, NULL);
		return n;
	}
	if (rc == 0) {
		/* One deadline for the whole head, not one per byte. */
		if (!(h->flags & HC_TIMED))
			w->host->set_timeout(c, w->cfg->header_timeout_ms);
		h->flags |= HC_TIMED;
		return 0;
	}
	on_head(w, c, h, p, (size_t)rc, n - (size_t)rc);
	http_scan_init(&h->scan);
	h->flags &= ~HC_TIMED;
	return (size_t)rc;
}

/* Serves the requests in p[0, n) in order. Returns the bytes used; the
 * rest (an incomplete head, or requests held back behind queued
 * output) is the caller's to keep. */
static size_t serve(struct http_worker *w, struct ringd_conn *c,
		    struct hconn *h, const char *p, size_t n)
{
	size_t off = 0, used;

	while (off < n && !(h->flags & HC_CLOSED)) {
		if (h->body) {
			off += body_step(w, c, h, p + off, n - off);
			continue;
		}
		if (h->scan.pos == 0 && w->has_hold &&
		    w->host->queued(c) >= HTTP_HOLD_BYTES) {
			h->flags |= HC_HELD;
			w->host->hold_input(c, true);
			break;
		}
		used = head_step(w, c, h, p + off, n - off);
		if (used == 0)
			break;
		off += used;
	}
	return (h->flags & HC_CLOSED) ? n : off;
}

/* Appends to the connection's buffer. It holds at most an incomplete
 * head (the scan refuses one over HTTP_MAX_HEAD) plus one read, or the
 * rest of the read that made us hold input. */
static int keep_bytes(struct hconn *h, const void *p, size_t n)
{
	char *buf;

	if (n > UINT32_MAX - h->len)
		return -1;
	buf = realloc(h->buf, h->len + n);
	if (!buf)
		return -1;
	memcpy(buf + h->len, p, n);
	h->buf = buf;
	h->len += (uint32_t)n;
	return 0;
}

/* Serves what the buffer holds; frees it once it is empty. */
static void serve_kept(struct http_worker *w, struct ringd_conn *c,
		       struct hconn *h)
{
	size_t used = serve(w, c, h, h->buf, h->len);

	if (used < h->len) {
		memmove(h->buf, h->buf + used, h->len - used);
		h->len -= (uint32_t)used;
		return;
	}
	free(h->buf);
	h->buf = NULL;
	h->len = 0;
}

/* Between requests a keep-alive connection has keepalive_timeout; a
 * held one too, which closes a client that stops reading its answers. */
static void after_serve(struct http_worker *w, struct ringd_conn *c,
			struct hconn *h)
{
	if (h->flags & HC_CLOSED)
		return;
	if ((h->len == 0 && !h->body) || (h->flags & HC_HELD))
		w->host->set_timeout(c, w->cfg->keepalive_timeout_ms);
}

/* c->data of an idle connection: bit 0 set (a malloc'd pointer never
 * has it), the flags above it, the request count from bit 8. Only
 * flags and the count outlive a request, so an idle keep-alive
 * connection costs the plugin no allocation at all. */
#define HC_PACKED 1u
_Static_assert(sizeof(uintptr_t) >= 8, "nreq needs the bits of a 64-bit word");

static bool hc_idle(const struct hconn *h)
{
	return h->len == 0 && !h->body && h->scan.pos == 0;
}

/* The connection's state: its own, or an idle one unpacked into the
 * worker's tmp (hooks do not nest: no host call calls back into the
 * plugin, so one tmp per worker is enough). */
static struct hconn *hc_get(struct http_worker *w, struct ringd_conn *c)
{
	uintptr_t v = (uintptr_t)c->data;

	if (!(v & HC_PACKED))
		return c->data;
	w->tmp = (struct hconn){ .flags = (uint8_t)((v >> 1) & 0x7f),
				 .nreq = (uint32_t)(v >> 8) };
	return &w->tmp;
}

/* Stores h back: packed when idle (freeing an allocated one, so the
 * memory goes when the request completes), allocated when a request is
 * in progress. Without memory for that, the connection is aborted. */
static void hc_put(struct http_worker *w, struct ringd_conn *c,
		   struct hconn *h)
{
	struct hconn *heap;

	if (hc_idle(h)) {
		c->data = (void *)(((uintptr_t)h->nreq << 8) |
				   ((uintptr_t)(h->flags & 0x7f) << 1) |
				   HC_PACKED);
		if (h != &w->tmp)
			free(h);
		return;
	}
	if (h != &w->tmp) {
		c->data = h;
		return;
	}
	heap = malloc(sizeof(*heap));
	if (heap) {
		*heap = *h;
		c->data = heap;
		return;
	}
	free(h->buf);
	body_free(h);
	*h = (struct hconn){ .flags = HC_CLOSED, .nreq = h->nreq };
	hc_put(w, c, h);
	w->host->abort(c);
}

static void data_in(struct http_worker *w, struct ringd_conn *c,
		    struct hconn *h, const void *data, size_t len)
{
	size_t used;

	if (h->flags & HC_CLOSED)
		return;
	if (h->len == 0) {
		/* Zero copy: the head is parsed in the daemon's buffer. */
		used = serve(w, c, h, data, len);
		if (used < len &&
		    keep_bytes(h, (const char *)data + used, len - used) < 0) {
			conn_fail(w, c, h);
			return;
		}
	} else {
		if (keep_bytes(h, data, len) < 0) {
			conn_fail(w, c, h);
			return;
		}
		serve_kept(w, c, h);
	}
	after_serve(w, c, h);
}

static void http_data(struct ringd_conn *c, const void *data, size_t len)
{
	struct http_worker *w = c->wstate;
	struct hconn *h = hc_get(w, c);

	data_in(w, c, h, data, len);
	hc_put(w, c, h);
}

/* The client read enough of what was queued: serve the requests held
 * back, and let input flow again unless they queued as much again. */
static void http_writable(struct ringd_conn *c)
{
	struct http_worker *w = c->wstate;
	struct hconn *h = hc_get(w, c);

	if ((h->flags & (HC_HELD | HC_CLOSED)) == HC_HELD &&
	    w->host->queued(c) < HTTP_HOLD_BYTES) {
		h->flags &= ~HC_HELD;
		serve_kept(w, c, h);
		if (!(h->flags & (HC_HELD | HC_CLOSED)))
			w->host->hold_input(c, false);
		after_serve(w, c, h);
	}
	hc_put(w, c, h);
}

/* The daemon stops: an idle connection ends now, one with a request in
 * progress after that request's response (Connection: close). On a
 * reload (the daemon still runs) an idle connection is given a moment
 * for its next request, answered with Connection: close: closed at once,
 * it would meet a client that is sending that request, which then sees a
 * reset instead of an answer. */
static void http_drain(struct ringd_conn *c)
{
	struct http_worker *w = c->wstate;
	struct hconn *h = hc_get(w, c);

	h->flags |= HC_DRAIN;
	if (!(h->flags & HC_CLOSED) && hc_idle(h)) {
		if (w->host->state(w->inst) == RINGD_RUNNING)
			w->host->set_timeout(c, HTTP_RELOAD_IDLE_MS);
		else
			conn_end(w, c, h);
	}
	hc_put(w, c, h);
}

static int http_open(struct ringd_conn *c)
{
	struct http_worker *w = c->wstate;

	/* The first head's deadline runs from the connection's start. */
	w->tmp = (struct hconn){ .flags = HC_TIMED };
	hc_put(w, c, &w->tmp);
	w->host->set_timeout(c, w->cfg->header_timeout_ms);
	return 0;
}

static const char *const close_reasons[] = {
	"peer", "service", "idle", "deadline", "reset", "stop",
};

/* A request cut short (a head that never ended, a body that stopped) is
 * worth an error line: it is what a slowloris looks like. */
static void http_close(struct ringd_conn *c)
{
	struct http_worker *w = c->wstate;
	struct hconn *h = hc_get(w, c);
	enum ringd_close_reason why;
	char peer[PEER_MAX];

	if ((h->len || h->body) && !(h->flags & (HC_CLOSED | HC_HELD)) &&
	    w->cfg->log_requests != HTTP_LOG_NO && log_admit(w)) {
		why = w->has_reason ? w->host->close_reason(c) : RINGD_CLOSE_PEER;
		peer_format(c->peer, c->peerlen, peer);
		w->host->log(w->inst, RINGD_LOG_INFO,
			     "http: request incomplete reason=%s bytes=%u "
			     "peer=%s",
			     !w->has_reason ? "unknown"
			     : (unsigned)why < 6 ? close_reasons[why] : "?",
			     h->len, peer);
	}
	free(h->buf);
	body_free(h);
	if (h != &w->tmp)
		free(h);
	c->data = NULL;
}

__attribute__((visibility("default"))) const struct ringd_plugin ringd_plugin = {
	.abi = RINGD_PLUGIN_ABI,
	.size = sizeof(struct ringd_plugin),
	.name = "http",
	.description = "HTTP/1.1 responder for probes: /healthz, /readyz, "
		       "/metrics and configured routes",
	.transports = RINGD_STREAM,
	.keys = http_keys,
	.config_size = sizeof(struct http_config),
	.check = http_config_check,
	.release = http_config_release,
	.start = http_start,
	.stop = http_stop,
	.on_open = http_open,
	.on_data = http_data,
	.on_writable = http_writable,
	.on_close = http_close,
	.counters = http_config_counters,
	.on_drain = http_drain,
	.stream_flags = RINGD_PEER_FIRST,
};
