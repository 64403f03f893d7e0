/* Private to check.c (sockets, ops, deadline) and reply.c (what each
 * protocol sends and how its reply is judged): the state of one check. */
#ifndef RINGD_PROBE_CHECK_PRIV_H
#define RINGD_PROBE_CHECK_PRIV_H

#include "probe/check.h"
#include "probe/verify.h"

/* What a check keeps of a reply: daytime and time need a line, QOTD
 * under 512 bytes, HTTP its head and the start of its body (for
 * --expect-body). Anything beyond is judged or counted, not kept. */
#define KEEP_LINE 1024
#define KEEP_HTTP_HEAD 16384
#define KEEP_HTTP_BODY 65536
#define UDP_MAX 65536

/* PH_KEEPING: the reply is complete and the connection is kept, but the
 * request's send has yet to complete; PH_KEPT: between two tries of a
 * kept connection. */
enum phase {
	PH_IDLE,
	PH_CONNECT,
	PH_EXCHANGE,
	PH_CLOSING,
	PH_KEEPING,
	PH_KEPT
};

struct probe_check {
	struct loop *l;
	const struct probe_target *t;
	const struct addrinfo *ai_head, *ai;
	const struct probe_opts *o;
	probe_done_cb done;
	void *arg;

	enum phase phase;
	int fd;
	unsigned inflight;
	bool send_live, recv_live; /* which of the two ops is in flight */
	bool reuse;   /* this try's reply leaves the connection usable */
	bool stale;   /* a kept connection got bytes or its end: unusable */
	bool restart; /* closing a stale connection, then connecting */
	bool reused;  /* this try runs on a kept connection */
	uint64_t connects;
	uint64_t rng; /* later payloads: cheap, seeded by the first */
	struct loop_op send_op, recv_op;
	struct loop_timer deadline, resend;
	int64_t start, end; /* end: 0 until check_ms() reads the clock */

	unsigned char *out; /* the request: echo payload, HTTP head */
	size_t out_len, out_off;
	bool sent;         /* all of out is sent (stream) or once (UDP) */
	unsigned char *in; /* kept reply bytes (see KEEP_*), in_cap long */
	size_t in_len, in_cap;
	uint64_t got; /* reply bytes seen, kept or not */
	struct verify_chargen cg;
	struct verify_http http;
	uint64_t body_got;
	struct verify_chunked chunks;

	struct msghdr msg, smsg; /* UDP: the reply's, the request's */
	struct iovec iov, siov;
	bool udp_sending;        /* UDP: a request datagram in flight */
	struct probe_result res;
};

void check_finish(struct probe_check *c, enum probe_state s,
		  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Milliseconds since the try began, for a message; the check_finish()
 * it is an argument of takes the same instant as the check's time. */
double check_ms(struct probe_check *c);

/* reply.c: builds c->out for the try (0 or -ENOMEM) and sizes c->in. */
int reply_prepare(struct probe_check *c);
/* reply.c: bytes of a stream reply, then its end (EOF). Either may
 * finish the check. */
void reply_data(struct probe_check *c, const unsigned char *buf, size_t n);
void reply_eof(struct probe_check *c);
/* reply.c: every byte of c->out has been sent on a stream. */
void reply_sent(struct probe_check *c);
/* reply.c: one datagram reply. */
void reply_datagram(struct probe_check *c, const unsigned char *buf,
		    size_t n);

/* reply_http.c: the request, and the stream reply of an http:// check. */
int reply_http_request(struct probe_check *c);
void reply_http_data(struct probe_check *c, const unsigned char *buf,
		     size_t n);
void reply_http_eof(struct probe_check *c);

#endif
