/* The http plugin against the fake host: golden responses byte for
 * byte (the Date fixed through now()), pipelining, splits at every byte,
 * keep-alive rules, errors that close, 100-continue, input held behind
 * queued output, the drain, route configuration errors, the metrics
 * text, counters and request logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include <ringd/plugin.h>

#include "fake_host.h"
#include "plugins/http/metrics_text.h"
#include "plugins/http/route.h"

/* 2026-12-01 12:00:00 UTC, a Tuesday. */
#define NOW_NS (1796126400LL * 1000000000LL)

/* The plugin's config, filled in through the key table as the daemon
 * would (defaults first, then the test's keys). */
struct inst {
	void *cfg;
	void *w;
	int rc;
	const char *routes[32];
	size_t nroutes;
	struct ringd_list list;
};

static int64_t parse_scaled(const char *v, enum ringd_key_type t)
{
	char *end;
	int64_t n = strtoll(v, &end, 10);

	if (t == RINGD_KEY_DURATION)
		return strcmp(end, "ms") == 0 ? n : n * 1000;
	if (t == RINGD_KEY_SIZE)
		return *end == 'k' ? n << 10 : *end == 'm' ? n << 20 : n;
	return n;
}

static void set_key(struct inst *in, const char *name, const char *v)
{
	const struct ringd_key *k = fake_plugin_key(name);
	char *at = (char *)in->cfg + k->offset;
	int64_t n;
	int idx = 0;

	switch (k->type) {
	case RINGD_KEY_STRING:
	case RINGD_KEY_PATH:
		memcpy(at, &v, sizeof(v));
		break;
	case RINGD_KEY_ENUM:
		while (k->choices[idx] && strcmp(k->choices[idx], v) != 0)
			idx++;
		assert_non_null(k->choices[idx]);
		memcpy(at, &idx, sizeof(idx));
		break;
	case RINGD_KEY_BOOL:
		*(bool *)at = strcmp(v, "yes") == 0;
		break;
	case RINGD_KEY_LIST:
		in->routes[in->nroutes++] = v;
		in->list = (struct ringd_list){ in->nroutes, in->routes };
		memcpy(at, &in->list, sizeof(in->list));
		break;
	default:
		n = parse_scaled(v, k->type);
		memcpy(at, &n, sizeof(n));
		break;
	}
}

/* keys: NULL-terminated name, value pairs. */
static void configure(struct inst *in, const char *const *keys)
{
	struct ringd_check chk = { .instance = "web",
				   .transports = RINGD_STREAM };

	memset(in, 0, sizeof(*in));
	fake_nerrs = 0;
	in->cfg = calloc(1, ringd_plugin.config_size);
	assert_non_null(in->cfg);
	for (const struct ringd_key *k = ringd_plugin.keys; k->name; k++)
		if (k->def)
			set_key(in, k->name, k->def);
	for (; keys && keys[0]; keys += 2)
		set_key(in, keys[0], keys[1]);
	in->rc = ringd_plugin.check(in->cfg, &chk, fake_check_err);
}

static void start(struct inst *in)
{
	struct fake_host *f;

	assert_int_equal(in->rc, 0);
	fake_host_reset();
	f = fake_host_get();
	f->now_ns = NOW_NS;
	f->mono_ns = 5000000000LL;
	f->quiet = true;
	in->w = ringd_plugin.start(&f->host, NULL, in->cfg);
	assert_non_null(in->w);
}

static void unload(struct inst *in)
{
	if (in->w)
		ringd_plugin.stop(in->w);
	if (in->rc == 0)
		ringd_plugin.release(in->cfg);
	free(in->cfg);
}

static struct sockaddr_in peer4;

static void conn_open(struct inst *in, struct ringd_conn *c)
{
	peer4 = (struct sockaddr_in){ .sin_family = AF_INET,
				      .sin_port = htons(40000) };
	inet_pton(AF_INET, "127.0.0.1", &peer4.sin_addr);
	*c = (struct ringd_conn){ .wstate = in->w,
				  .peer = (struct sockaddr *)&peer4,
				  .peerlen = sizeof(peer4) };
	assert_int_equal(ringd_plugin.on_open(c), 0);
}

static void feed(struct ringd_conn *c, const char *s)
{
	ringd_plugin.on_data(c, s, strlen(s));
}

/* The instance most tests use: every endpoint and one route of each
 * kind. */
static const char *const std_keys[] = {
	"route", "/version 200 type=text/plain body=\"ringd 0.1.0\\n\"",
	"route", "/old/* 301 header=\"Location: /new\"",
	"route", "/maint* 503 type=text/html file=" DATA_DIR "/http_maint.html"
		 " header=\"Retry-After: 120\"",
	"route", "/whoami reflect",
	"route", "/empty 204",
	"log_requests", "no",
	NULL,
};

static void std_start(struct inst *in)
{
	configure(in, std_keys);
	start(in);
}

/* An instance configured with keys (std_keys when NULL), started, and
 * one connection open on it. */
static struct fake_host *open_with(struct inst *in, const char *const *keys,
				   struct ringd_conn *c)
{
	configure(in, keys ? keys : std_keys);
	start(in);
	conn_open(in, c);
	return fake_host_get();
}

/* What the fake host holds as sent, as a string. */
static const char *sent(void)
{
	struct fake_host *f = fake_host_get();

	f->out[f->outlen] = '\0';
	return f->out;
}


/* Compares what was sent with golden/http/NAME; RINGD_GOLDEN_UPDATE=1
 * in the environment rewrites the file instead. */
static void golden(const char *name)
{
	struct fake_host *f = fake_host_get();
	char path[512], *want;
	FILE *fp;
	long n;

	snprintf(path, sizeof(path), "%s/http/%s", GOLDEN_DIR, name);
	if (getenv("RINGD_GOLDEN_UPDATE")) {
		fp = fopen(path, "wb");
		assert_non_null(fp);
		fwrite(f->out, 1, f->outlen, fp);
		fclose(fp);
		return;
	}
	fp = fopen(path, "rb");
	if (!fp)
		fail_msg("no golden file %s", path);
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	want = calloc(1, (size_t)n + 1);
	assert_int_equal(fread(want, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	if ((size_t)n != f->outlen || memcmp(want, f->out, f->outlen) != 0)
		fail_msg("%s differs:\n--- want\n%s\n--- got\n%s", name, want,
			 sent());
	free(want);
}

struct gcase {
	const char *name;
	const char *req;
	bool draining;
	int closes; /* whether the connection is to be closed after it */
};

static const struct gcase gcases[] = {
	{ "healthz", "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "healthz_head", "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "readyz", "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "readyz_draining", "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n", true, 0 },
	{ "metrics", "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "not_found", "GET /nope?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "absolute_form", "GET http://a/healthz HTTP/1.1\r\nHost: a\r\n\r\n",
	  false, 0 },
	{ "options_star_10", "OPTIONS * HTTP/1.0\r\n\r\n", false, 1 },
	{ "options_path", "OPTIONS / HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "post_405", "POST /healthz HTTP/1.1\r\nHost: a\r\n"
		      "Content-Length: 3\r\n\r\nabc", false, 0 },
	{ "unknown_501", "BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "no_host_400", "GET / HTTP/1.1\r\n\r\n", false, 1 },
	{ "two_hosts_400", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	  false, 1 },
	{ "http2_505", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", false, 1 },
	{ "te_gzip_501", "POST / HTTP/1.1\r\nHost: a\r\n"
			 "Transfer-Encoding: gzip\r\n\r\n", false, 1 },
	{ "te_chunked_twice_400", "POST / HTTP/1.1\r\nHost: a\r\n"
				  "Transfer-Encoding: chunked, chunked\r\n\r\n",
	  false, 1 },
	{ "te_and_cl_400", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
			   "Transfer-Encoding: chunked\r\n\r\n", false, 1 },
	{ "body_413", "POST / HTTP/1.1\r\nHost: a\r\n"
		      "Content-Length: 2000000\r\n\r\n", false, 1 },
	{ "expect_417", "GET / HTTP/1.1\r\nHost: a\r\nExpect: tea\r\n\r\n",
	  false, 1 },
	{ "space_colon_400", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", false, 1 },
	{ "route_version", "GET /version HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "route_prefix", "GET /old/page?q HTTP/1.1\r\nHost: a\r\n\r\n", false,
	  0 },
	{ "route_file", "GET /maintenance HTTP/1.1\r\nHost: a\r\n\r\n", false,
	  0 },
	{ "route_204", "GET /empty HTTP/1.1\r\nHost: a\r\n\r\n", false, 0 },
	{ "reflect_text", "GET /whoami?x=1 HTTP/1.1\r\nHost: a\r\n"
			  "User-Agent: t\r\n\r\n", false, 0 },
	{ "reflect_json", "GET /whoami HTTP/1.1\r\nHost: a\r\n"
			  "Accept: text/html, application/json;q=0.9\r\n\r\n",
	  false, 0 },
	{ "http10", "GET /healthz HTTP/1.0\r\n\r\n", false, 1 },
	{ "http10_keepalive", "GET /healthz HTTP/1.0\r\n"
			      "Connection: keep-alive\r\n\r\n", false, 0 },
	{ "http11_close", "GET /healthz HTTP/1.1\r\nHost: a\r\n"
			  "Connection: close\r\n\r\n", false, 1 },
	{ "expect_continue", "POST /healthz HTTP/1.1\r\nHost: a\r\n"
			     "Expect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
	  false, 0 },
	{ "expect_continue_10", "POST /healthz HTTP/1.0\r\n"
				"Expect: 100-continue\r\nContent-Length: 2\r\n"
				"\r\nhi", false, 1 },
	{ "chunked_body", "POST /x HTTP/1.1\r\nHost: a\r\n"
			  "Transfer-Encoding: chunked\r\n\r\n"
			  "3;ext=1\r\nabc\r\n0\r\nTrailer: x\r\n\r\n", false, 0 },
	{ "bad_chunk_400", "POST /x HTTP/1.1\r\nHost: a\r\n"
			   "Transfer-Encoding: chunked\r\n\r\nzz\r\n", false, 1 },
};

static void test_http_golden_responses(void **state)
{
	struct inst in;
	struct ringd_conn c;

	(void)state;
	std_start(&in);
	for (size_t i = 0; i < sizeof(gcases) / sizeof(gcases[0]); i++) {
		struct fake_host *f = fake_host_get();
		char name[64];

		f->outlen = f->queue = 0;
		f->closes = 0;
		f->state = gcases[i].draining ? RINGD_DRAINING : RINGD_RUNNING;
		conn_open(&in, &c);
		feed(&c, gcases[i].req);
		snprintf(name, sizeof(name), "%s.txt", gcases[i].name);
		golden(name);
		if (f->closes != gcases[i].closes)
			fail_msg("%s: %d closes, want %d", gcases[i].name,
				 f->closes, gcases[i].closes);
		ringd_plugin.on_close(&c);
	}
	unload(&in);
}

/* Long lines: built, not written out. */
static void test_http_golden_limits(void **state)
{
	static char req[40000];
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;
	size_t n;

	(void)state;
	std_start(&in);
	f = fake_host_get();
	n = (size_t)snprintf(req, sizeof(req), "GET /");
	memset(req + n, 'a', 9000);
	strcpy(req + n + 9000, " HTTP/1.1\r\nHost: a\r\n\r\n");
	conn_open(&in, &c);
	feed(&c, req);
	golden("uri_414.txt");
	ringd_plugin.on_close(&c);

	f->outlen = f->queue = 0;
	n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: a\r\nX: ");
	memset(req + n, 'b', 9000);
	strcpy(req + n + 9000, "\r\n\r\n");
	conn_open(&in, &c);
	feed(&c, req);
	golden("field_431.txt");
	assert_int_equal(f->closes, 2);
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* What a request stream gets when it arrives in one piece. */
static void whole(struct inst *in, const char *req, size_t len, char *out,
		  size_t *outlen, int *closes)
{
	struct fake_host *f = fake_host_get();
	struct ringd_conn c;

	f->outlen = f->queue = 0;
	f->closes = 0;
	conn_open(in, &c);
	ringd_plugin.on_data(&c, req, len);
	memcpy(out, f->out, f->outlen);
	*outlen = f->outlen;
	*closes = f->closes;
	ringd_plugin.on_close(&c);
}

static const char pipeline[] =
	"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
	"HEAD /version HTTP/1.1\r\nHost: a\r\n\r\n"
	"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
	"5\r\nhello\r\n0\r\n\r\n"
	"PUT /y HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
	"\r\nGET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
	"GET /readyz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";

/* Responses in request order, the last request after Connection: close
 * ignored; the same stream split anywhere gives the same bytes. */
static void test_http_pipelining_and_splits(void **state)
{
	static char want[16384];
	size_t len = strlen(pipeline), wantlen;
	struct fake_host *f;
	struct inst in;
	struct ringd_conn c;
	int closes;

	(void)state;
	std_start(&in);
	f = fake_host_get();
	whole(&in, pipeline, len, want, &wantlen, &closes);
	golden("pipeline.txt");
	assert_int_equal(closes, 1);
	for (size_t cut = 1; cut < len; cut++) {
		f->outlen = f->queue = 0;
		f->closes = 0;
		conn_open(&in, &c);
		ringd_plugin.on_data(&c, pipeline, cut);
		ringd_plugin.on_data(&c, pipeline + cut, len - cut);
		if (f->outlen != wantlen || memcmp(f->out, want, wantlen))
			fail_msg("split at %zu differs:\n%s", cut, sent());
		assert_int_equal(f->closes, 1);
		ringd_plugin.on_close(&c);
	}
	f->outlen = f->queue = 0;
	conn_open(&in, &c);
	for (size_t i = 0; i < len; i++)
		ringd_plugin.on_data(&c, pipeline + i, 1);
	assert_int_equal(f->outlen, wantlen);
	assert_memory_equal(f->out, want, wantlen);
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* The Date is refreshed once the second changes, in the pre-rendered
 * responses too (a reflect route, which has none, among them). The
 * wall clock is read once the loop's time (mono_ns here) reaches the
 * next second's start, not for every request. */
static void test_http_date_changes(void **state)
{
	const char *first;
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;
	int nows;

	(void)state;
	f = open_with(&in, NULL, &c);
	feed(&c, "GET /version HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_non_null(strstr(sent(), "Date: Tue, 01 Dec 2026 12:00:00 GMT\r\n"));
	nows = f->nows;
	f->now_ns += 999999999;
	f->mono_ns += 999999999;
	for (int i = 0; i < 5; i++)
		feed(&c, "GET /version HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_null(strstr(sent(), "12:00:01"));
	assert_int_equal(f->nows, nows); /* the second cannot have changed */
	f->now_ns += 1;
	f->mono_ns += 1;
	f->outlen = 0;
	feed(&c, "GET /version HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_non_null(strstr(sent(), "Date: Tue, 01 Dec 2026 12:00:01 GMT\r\n"));
	assert_int_equal(f->nows, nows + 1);
	/* A step of the wall clock shows once the loop's second is up. */
	f->now_ns += 86400LL * 1000000000 * 31;
	f->mono_ns += 1000000000;
	f->outlen = 0;
	feed(&c, "GET /version HTTP/1.1\r\nHost: a\r\n\r\n"
		 "GET /whoami HTTP/1.1\r\nHost: a\r\n\r\n");
	first = strstr(sent(), "Date: Fri, 01 Jan 2027 12:00:01 GMT\r\n");
	assert_non_null(first);
	assert_non_null(strstr(first + 1, "Date: Fri, 01 Jan 2027 12:00:01 GMT\r\n"));
	assert_null(strstr(sent(), "12:00:00"));
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* A body's error goes out when the body fails, maybe seconds after its
 * head: its Date is that moment's, not the head's. */
static void test_http_body_error_date(void **state)
{
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	f = open_with(&in, NULL, &c);
	feed(&c, "POST /healthz HTTP/1.1\r\nHost: a\r\n"
		 "Transfer-Encoding: chunked\r\n\r\n");
	f->now_ns += 5LL * 1000000000;
	f->mono_ns += 5LL * 1000000000;
	f->outlen = 0;
	feed(&c, "zz\r\n");
	assert_non_null(strstr(sent(), "HTTP/1.1 400 "));
	assert_non_null(strstr(sent(), "Date: Tue, 01 Dec 2026 12:00:05 GMT\r\n"));
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* The plugin started by a daemon whose struct ringd_host ends at size:
 * an older one, without the members appended after it. */
static struct fake_host *open_old(struct inst *in, struct ringd_conn *c,
				  size_t size)
{
	struct fake_host *f;

	configure(in, NULL);
	fake_host_reset();
	f = fake_host_get();
	f->host.size = (uint32_t)size;
	f->now_ns = NOW_NS;
	f->quiet = true;
	in->w = ringd_plugin.start(&f->host, NULL, in->cfg);
	assert_non_null(in->w);
	conn_open(in, c);
	return f;
}

/* A daemon without loop_time(): the wall clock is read per request and
 * the Date still follows it. */
static void test_http_date_without_loop_time(void **state)
{
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	f = open_old(&in, &c, offsetof(struct ringd_host, loop_time));
	feed(&c, "GET /version HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_non_null(strstr(sent(), "Date: Tue, 01 Dec 2026 12:00:00 GMT\r\n"));
	f->now_ns += 1000000000;
	f->outlen = 0;
	feed(&c, "GET /version HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_non_null(strstr(sent(), "Date: Tue, 01 Dec 2026 12:00:01 GMT\r\n"));
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* HEAD: the GET's head exactly, Content-Length included, no body. */
static void test_http_head_matches_get(void **state)
{
	static char get[8192], head[8192];
	size_t getlen, headlen;
	struct inst in;
	int closes;

	(void)state;
	std_start(&in);
	for (int i = 0; i < 3; i++) {
		const char *path[] = { "/version", "/metrics", "/maint" }, *end;
		char req[128];

		snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n",
			 path[i]);
		whole(&in, req, strlen(req), get, &getlen, &closes);
		snprintf(req, sizeof(req), "HEAD %s HTTP/1.1\r\nHost: a\r\n\r\n",
			 path[i]);
		whole(&in, req, strlen(req), head, &headlen, &closes);
		get[getlen] = '\0';
		end = strstr(get, "\r\n\r\n");
		assert_non_null(end);
		assert_int_equal(headlen, (size_t)(end + 4 - get));
		assert_memory_equal(head, get, headlen);
		assert_non_null(strstr(head, "Content-Length: "));
		assert_null(strstr(head, "Content-Length: 0\r\n"));
	}
	unload(&in);
}

/* How a request's connection ends: nolinger 1 when the plugin may close
 * without draining (the client said this is its last request and sent
 * nothing after it), 0 for a plain close(). */
static void expect_close(struct inst *in, const char *req, int nolinger)
{
	struct fake_host *f = fake_host_get();
	struct ringd_conn c;

	f->outlen = f->queue = 0;
	f->closes = f->nolingers = 0;
	conn_open(in, &c);
	ringd_plugin.on_data(&c, req, strlen(req));
	if (f->closes != 1 || f->nolingers != nolinger)
		fail_msg("%s: %d closes, %d without linger, want 1 and %d", req,
			 f->closes, f->nolingers, nolinger);
	ringd_plugin.on_close(&c);
}

static void test_http_close_without_linger(void **state)
{
	static const char *const keys[] = { "keepalive_requests", "1", NULL };
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	std_start(&in);
	expect_close(&in, "GET /healthz HTTP/1.1\r\nHost: a\r\n"
			  "Connection: close\r\n\r\n", 1);
	expect_close(&in, "GET /healthz HTTP/1.0\r\n\r\n", 1);
	expect_close(&in, "HEAD /healthz HTTP/1.0\r\nUser-Agent: x\r\n\r\n", 1);
	/* More came after the last request: it may be a pipelined request
	 * the client will wait for, so the drain protects our answer. */
	expect_close(&in, "GET /healthz HTTP/1.0\r\n\r\nGET /", 0);
	expect_close(&in, "GET /healthz HTTP/1.1\r\nHost: a\r\n"
			  "Connection: close\r\n\r\nGET / HTTP/1.1\r\n", 0);
	/* Framing errors always drain (the rest of a bad head may follow). */
	expect_close(&in, "GET / HTTP/1.1\r\n\r\n", 0);
	expect_close(&in, "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 0);
	/* A body still arriving when the response went out. */
	expect_close(&in, "POST /x HTTP/1.0\r\nContent-Length: 3\r\n\r\nab"
			  "c", 0);
	unload(&in);

	/* We end a keep-alive client: it may have sent more already. */
	f = open_with(&in, keys, &c);
	feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(f->closes, 1);
	assert_int_equal(f->nolingers, 0);
	ringd_plugin.on_close(&c);
	unload(&in);

	/* A daemon without close_no_linger(): a plain close. */
	configure(&in, std_keys);
	fake_host_reset();
	f = fake_host_get();
	f->quiet = true;
	f->host.size = offsetof(struct ringd_host, close_no_linger);
	in.w = ringd_plugin.start(&f->host, NULL, in.cfg);
	assert_non_null(in.w);
	expect_close(&in, "GET /healthz HTTP/1.0\r\n\r\n", 0);
	unload(&in);
}

static void test_http_keepalive_requests(void **state)
{
	static const char *const keys[] = { "keepalive_requests", "2", NULL };
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	f = open_with(&in, keys, &c);
	feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_null(strstr(sent(), "Connection:"));
	assert_int_equal(f->closes, 0);
	feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_non_null(strstr(sent(), "Connection: close\r\n"));
	assert_int_equal(f->closes, 1);
	/* Nothing more is read once the connection closes. */
	f->outlen = 0;
	feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(f->outlen, 0);
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* header_timeout runs from a head's first byte (or the connection's
 * start), unmoved by later bytes; keepalive_timeout between requests. */
static void test_http_timeouts(void **state)
{
	static const char *const keys[] = { "header_timeout", "7s",
					    "keepalive_timeout", "30s", NULL };
	const char *req = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n";
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	f = open_with(&in, keys, &c);
	assert_int_equal(f->timeout_ms, 7000);
	assert_int_equal(f->timeouts, 1);
	for (size_t i = 0; i + 1 < strlen(req); i++)
		ringd_plugin.on_data(&c, req + i, 1);
	assert_int_equal(f->timeouts, 1);
	feed(&c, "\n");
	assert_int_equal(f->timeout_ms, 30000);
	assert_int_equal(f->timeouts, 2);
	feed(&c, "GET /hea");
	assert_int_equal(f->timeout_ms, 7000);
	feed(&c, "lthz HTTP/1.1\r\n");
	feed(&c, "Host: a\r\n");
	assert_int_equal(f->timeouts, 3);
	feed(&c, "\r\n");
	assert_int_equal(f->timeout_ms, 30000);
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* Pipelined /metrics: once 64 KiB are queued the plugin stops, holds
 * input and keeps the rest; on_writable serves it as the client reads. */
static void test_http_hold_input_on_metrics_flood(void **state)
{
	static char flood[300 * 40];
	const char *one = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	size_t n = 0, per, served;
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	std_start(&in);
	f = fake_host_get();
	for (int i = 0; i < 300; i++)
		n += (size_t)sprintf(flood + n, "%s", one);
	conn_open(&in, &c);
	feed(&c, one);
	per = f->outlen;
	fake_host_drain(f->queue);
	f->outlen = 0;
	ringd_plugin.on_data(&c, flood, n);
	assert_true(f->held);
	assert_int_equal(f->holds, 1);
	/* It stopped at the bound, not after all 300. */
	assert_true(f->queue >= 64 * 1024);
	assert_true(f->queue < 64 * 1024 + per);
	served = f->queue / per;
	/* Still over the bound: on_writable does nothing. */
	ringd_plugin.on_writable(&c);
	assert_int_equal(f->queue / per, served);
	while (f->held) {
		fake_host_drain(f->queue);
		f->outlen = 0;
		ringd_plugin.on_writable(&c);
		served += f->queue / per;
	}
	assert_int_equal(served, 300);
	assert_int_equal(f->releases, 1);
	assert_true(f->holds > 1);
	assert_int_equal(f->closes, 0);
	ringd_plugin.on_close(&c);
	unload(&in);
}

static void test_http_drain(void **state)
{
	struct inst in;
	struct ringd_conn idle, busy, later;
	struct fake_host *f;

	(void)state;
	std_start(&in);
	f = fake_host_get();
	conn_open(&in, &idle);
	feed(&idle, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	conn_open(&in, &busy);
	feed(&busy, "GET /readyz HTTP/1.1\r\nHo");
	f->state = RINGD_DRAINING;
	f->outlen = 0;
	ringd_plugin.on_drain(&idle);
	assert_int_equal(f->closes, 1);
	ringd_plugin.on_drain(&busy);
	assert_int_equal(f->closes, 1);
	feed(&busy, "st: a\r\n\r\n");
	assert_int_equal(f->closes, 2);
	assert_non_null(strstr(sent(), "HTTP/1.1 503 Service Unavailable\r\n"));
	assert_non_null(strstr(sent(), "Connection: close\r\n\r\ndraining\n"));
	/* A connection opened during the drain gets on_drain at once. */
	conn_open(&in, &later);
	ringd_plugin.on_drain(&later);
	assert_int_equal(f->closes, 3);
	ringd_plugin.on_close(&idle);
	ringd_plugin.on_close(&busy);
	ringd_plugin.on_close(&later);
	unload(&in);
}

/* Errors name the route line they belong to (route[i]). */
static void test_http_route_errors(void **state)
{
	static const char *const keys[] = {
		"route", "/ok 200 body=\"fine\"",
		"route", "/a 299",
		"route", "/b 100",
		"route", "/c 304",
		"route", "/d header=\"X-A: one\\r\\nSet-Cookie: evil=1\"",
		"route", "/e header=\"Bad Name: v\"",
		"route", "/f header=\"Content-Length: 5\"",
		"route", "/g file=/nonexistent/body.html",
		"route", "/h color=blue",
		"route", "/ok 404",
		"route", "/metrics 200",
		"route", "/i body=\"open",
		"route", "/j body=\"\\q\"",
		"route", "/k 204 body=\"x\"",
		"route", "/l reflect body=\"x\"",
		"route", "nopath 200",
		"route", "/m 200 201",
		"route", "/n* 200 type=\"text/html\\n\"",
		"route", "/o banana",
		"healthz", "/same",
		"readyz", "/same",
		"server", "ringd\r\nX: y",
		NULL,
	};
	char got[16384] = "", path[512], want[16384] = "";
	struct inst in;
	FILE *fp;
	size_t n;

	(void)state;
	configure(&in, keys);
	assert_int_equal(in.rc, -1);
	for (int i = 0; i < fake_nerrs; i++) {
		strcat(got, fake_errs[i]);
		strcat(got, "\n");
	}
	snprintf(path, sizeof(path), "%s/http/route_errors.txt", GOLDEN_DIR);
	if (getenv("RINGD_GOLDEN_UPDATE")) {
		fp = fopen(path, "w");
		fputs(got, fp);
		fclose(fp);
	}
	fp = fopen(path, "r");
	assert_non_null(fp);
	n = fread(want, 1, sizeof(want) - 1, fp);
	want[n] = '\0';
	fclose(fp);
	assert_string_equal(got, want);
	unload(&in);
}

/* A body file is read at check time: removing it later changes nothing. */
static void test_http_route_file_kept(void **state)
{
	char path[] = "/tmp/test_http.XXXXXX", route[128];
	const char *keys[] = { "route", route, NULL };
	struct inst in;
	struct ringd_conn c;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "loaded\n", 7), 7);
	close(fd);
	snprintf(route, sizeof(route), "/f file=%s", path);
	configure(&in, keys);
	unlink(path);
	start(&in);
	conn_open(&in, &c);
	feed(&c, "GET /f HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_non_null(strstr(sent(), "Content-Length: 7\r\n\r\nloaded\n"));
	ringd_plugin.on_close(&c);
	unload(&in);
}

static void test_http_metrics_text(void **state)
{
	struct hbuf b = { 0 };
	size_t n;

	(void)state;
	fake_host_reset();
	n = metrics_text_write(&b, fake_host_get()->host.metrics, NULL);
	assert_int_equal(n, FAKE_METRICS_SERIES);
	hbuf_put(&b, "", 1);
	assert_string_equal(b.p,
		"# HELP ringd_connections_accepted_total Connections accepted"
		"\\\\ by \"service\"\\nsecond line\n"
		"# TYPE ringd_connections_accepted_total counter\n"
		"ringd_connections_accepted_total{service=\"web\","
		"transport=\"tcp\"} 12\n"
		"ringd_connections_accepted_total{service=\"a\\\\b\\\"c\\nd\","
		"transport=\"tcp\"} 1000000000000001\n"
		"# HELP process_resident_memory_bytes Resident memory size in "
		"bytes.\n"
		"# TYPE process_resident_memory_bytes gauge\n"
		"process_resident_memory_bytes 1048576\n"
		"# HELP process_cpu_seconds_total Total user and system CPU "
		"time spent in seconds.\n"
		"# TYPE process_cpu_seconds_total counter\n"
		"process_cpu_seconds_total 0.25\n");
	hbuf_free(&b);
}

static const struct ringd_counter *find_counter(const struct ringd_counter *c,
						size_t n, const char *name,
						const char *value,
						unsigned *idx)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].name, name) == 0 &&
		    strcmp(c[i].value, value) == 0) {
			*idx = (unsigned)i;
			return &c[i];
		}
	fail_msg("no counter %s{%s}", name, value);
	return NULL;
}

static void test_http_counters(void **state)
{
	struct ringd_counter ctr[128];
	unsigned i200, i404, i301, ihealth, inone, iold;
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;
	size_t n;

	(void)state;
	std_start(&in);
	f = fake_host_get();
	n = ringd_plugin.counters(in.cfg, ctr, 128);
	assert_true(n > 10 && n < 128);
	find_counter(ctr, n, "ringd_http_responses_total", "200", &i200);
	find_counter(ctr, n, "ringd_http_responses_total", "404", &i404);
	find_counter(ctr, n, "ringd_http_responses_total", "301", &i301);
	find_counter(ctr, n, "ringd_http_requests_total", "/healthz", &ihealth);
	find_counter(ctr, n, "ringd_http_requests_total", "none", &inone);
	find_counter(ctr, n, "ringd_http_requests_total", "/old/*", &iold);
	assert_string_equal(ctr[i200].label, "code");
	assert_string_equal(ctr[iold].label, "route");
	/* A caller with too little room learns how many there are. */
	assert_int_equal(ringd_plugin.counters(in.cfg, ctr, 1), n);
	conn_open(&in, &c);
	feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
		 "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
		 "GET /old/x HTTP/1.1\r\nHost: a\r\n\r\n"
		 "GET /zzz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(f->counts[i200], 2);
	assert_int_equal(f->counts[ihealth], 2);
	assert_int_equal(f->counts[i301], 1);
	assert_int_equal(f->counts[iold], 1);
	assert_int_equal(f->counts[i404], 1);
	assert_int_equal(f->counts[inone], 1);
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* A request with a body is counted and logged once, when its response
 * leaves: the kept answer once the body is in, or only the 400 when the
 * body's framing fails, and nothing for a body the client never ends
 * (no response went out). */
static void test_http_body_counted_once(void **state)
{
	static const char *const keys[] = { "log_requests", "all", NULL };
	static const char head[] = "POST /healthz HTTP/1.1\r\nHost: a\r\n"
				   "Transfer-Encoding: chunked\r\n\r\n";
	struct ringd_counter ctr[128];
	unsigned i400, i405, inone;
	char want[128];
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;
	size_t n;

	(void)state;
	f = open_with(&in, keys, &c);
	n = ringd_plugin.counters(in.cfg, ctr, 128);
	find_counter(ctr, n, "ringd_http_responses_total", "400", &i400);
	find_counter(ctr, n, "ringd_http_responses_total", "405", &i405);
	find_counter(ctr, n, "ringd_http_requests_total", "none", &inone);

	feed(&c, head);
	assert_int_equal(f->counts[i405] + f->counts[inone] + f->logs, 0);
	feed(&c, "3\r\nabc\r\n0\r\n\r\n");
	assert_int_equal(f->counts[i405], 1);
	assert_int_equal(f->counts[inone], 1);
	assert_int_equal(f->logs, 1);
	/* The log names the request and the bytes of the response sent. */
	snprintf(want, sizeof(want), "method=POST path=\"/healthz\" "
		 "status=405 bytes=%zu ", f->outlen);
	assert_non_null(strstr(f->log, want));

	f->loglen = 0;
	feed(&c, head);
	feed(&c, "zz\r\n");
	assert_int_equal(f->counts[i405], 1);
	assert_int_equal(f->counts[i400], 1);
	assert_int_equal(f->counts[inone], 2);
	assert_int_equal(f->logs, 2);
	assert_non_null(strstr(f->log, "method=POST path=\"/healthz\" "
				       "status=400 "));
	assert_int_equal(f->closes, 1);
	ringd_plugin.on_close(&c);

	conn_open(&in, &c);
	feed(&c, head);
	feed(&c, "3\r\nab");
	ringd_plugin.on_close(&c);
	assert_int_equal(f->counts[i405] + f->counts[i400], 2);
	assert_int_equal(f->counts[inone], 2);
	unload(&in);
}

/* One key=value line per request, escaped, at most 10 a second. */
static void test_http_request_log(void **state)
{
	static const char *const keys[] = { "log_requests", "all", NULL };
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	f = open_with(&in, keys, &c);
	f->mono_ns += 1500000000LL;
	feed(&c, "GET /nope?secret=1 HTTP/1.1\r\nHo");
	f->mono_ns += 1500000;
	feed(&c, "st: a\r\n\r\n");
	assert_string_equal(f->log,
		"http: request method=GET path=\"/nope\" status=404 bytes=134 "
		"duration_us=1500 peer=127.0.0.1:40000\n");
	for (int i = 0; i < 25; i++)
		feed(&c, "GET /a\\b%22 HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(f->logs, 10);
	assert_non_null(strstr(f->log, "path=\"/a\\x5cb%22\""));
	f->mono_ns += 1000000000LL;
	f->loglen = 0;
	feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_non_null(strstr(f->log, "http: request lines suppressed "
				       "count=16\n"));
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* Between requests a connection holds no allocation of the plugin's
 * (c->data packs its state, bit 0 set); a head split across reads gets
 * one, freed once the request is answered. */
static void test_http_idle_connection_allocates_nothing(void **state)
{
	struct inst in;
	struct ringd_conn c;

	(void)state;
	std_start(&in);
	conn_open(&in, &c);
	assert_true((uintptr_t)c.data & 1);
	feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_true((uintptr_t)c.data & 1);
	feed(&c, "GET /healthz HTTP/1.1\r\nHo");
	assert_false((uintptr_t)c.data & 1);
	feed(&c, "st: a\r\n\r\nGET /version HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_true((uintptr_t)c.data & 1);
	/* The request count survives packing: keepalive_requests holds. */
	for (int i = 4; i < 1000; i++) {
		/* The client reads: nothing is held back. */
		fake_host_drain(fake_host_get()->queue);
		fake_host_get()->outlen = 0;
		feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	}
	assert_int_equal(fake_host_get()->closes, 0);
	feed(&c, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_int_equal(fake_host_get()->closes, 1);
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* A head that never ends is what a slowloris looks like: one line with
 * why the connection went. */
static void test_http_incomplete_logged(void **state)
{
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	f = open_with(&in, (const char *const[]){ NULL }, &c);
	feed(&c, "GET / HTTP/1.1\r\nHo");
	f->close_reason = RINGD_CLOSE_DEADLINE;
	ringd_plugin.on_close(&c);
	assert_string_equal(f->log, "http: request incomplete reason=deadline "
				    "bytes=18 peer=127.0.0.1:40000\n");
	unload(&in);
}

/* A daemon older than the appended members: no monotonic, no hold, no
 * counters, no metrics walk. The plugin still serves. */
static void test_http_old_host(void **state)
{
	struct inst in;
	struct ringd_conn c;
	struct fake_host *f;

	(void)state;
	f = open_old(&in, &c, offsetof(struct ringd_host, monotonic));
	feed(&c, "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
		 "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
	assert_non_null(strstr(sent(), "# this ringd offers no metrics walk"));
	assert_non_null(strstr(sent(), "\r\n\r\nok\n"));
	assert_int_equal(f->counts[0], 0);
	assert_int_equal(f->holds, 0);
	ringd_plugin.on_close(&c);
	unload(&in);
}

/* Keys and their help: what ringd -K http prints. */
static void test_http_keys(void **state)
{
	const char *names[] = { "route", "healthz", "readyz", "metrics",
				"server", "keepalive_requests",
				"keepalive_timeout", "header_timeout",
				"max_body", "log_requests" };

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		assert_non_null(fake_plugin_key(names[i])->help);
	assert_int_equal(fake_plugin_key("route")->type, RINGD_KEY_LIST);
}

/* A relative file= is read from the INI file's directory, as the
 * daemon resolves PATH keys; an absolute one as written. */
static void test_http_route_file_relative_to_config_dir(void **state)
{
	struct http_route r;
	char err[512], dir[] = "/tmp/ringd-route-XXXXXX", path[600], line[700];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/body.txt", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("from the config dir\n", f);
	fclose(f);
	assert_int_equal(route_parse("/r file=body.txt", dir, &r, err,
				     sizeof(err)), 0);
	assert_int_equal(r.body_len, 20);
	assert_memory_equal(r.body, "from the config dir\n", 20);
	route_free(&r);
	assert_int_equal(route_parse("/r file=body.txt", "/nonexistent", &r,
				     err, sizeof(err)), -1);
	assert_non_null(strstr(err, "/nonexistent/body.txt"));
	snprintf(line, sizeof(line), "/r file=%s", path);
	assert_int_equal(route_parse(line, "/nonexistent", &r, err,
				     sizeof(err)), 0);
	route_free(&r);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_route_file_relative_to_config_dir),
		cmocka_unit_test(test_http_golden_responses),
		cmocka_unit_test(test_http_golden_limits),
		cmocka_unit_test(test_http_pipelining_and_splits),
		cmocka_unit_test(test_http_date_changes),
		cmocka_unit_test(test_http_date_without_loop_time),
		cmocka_unit_test(test_http_body_error_date),
		cmocka_unit_test(test_http_head_matches_get),
		cmocka_unit_test(test_http_keepalive_requests),
		cmocka_unit_test(test_http_close_without_linger),
		cmocka_unit_test(test_http_timeouts),
		cmocka_unit_test(test_http_hold_input_on_metrics_flood),
		cmocka_unit_test(test_http_drain),
		cmocka_unit_test(test_http_route_errors),
		cmocka_unit_test(test_http_route_file_kept),
		cmocka_unit_test(test_http_metrics_text),
		cmocka_unit_test(test_http_counters),
		cmocka_unit_test(test_http_body_counted_once),
		cmocka_unit_test(test_http_request_log),
		cmocka_unit_test(test_http_idle_connection_allocates_nothing),
		cmocka_unit_test(test_http_incomplete_logged),
		cmocka_unit_test(test_http_old_host),
		cmocka_unit_test(test_http_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
