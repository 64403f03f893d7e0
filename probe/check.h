/* One check of one target over the loop: connect (with a deadline),
 * send what the protocol needs, read what it answers (bounded), and judge
 * it with verify.c. It knows nothing of output or of how many tries a
 * caller makes, so the output layer, --count and a load mode all drive
 * the same state machine. */
#ifndef RINGD_PROBE_CHECK_H
#define RINGD_PROBE_CHECK_H

#include <netdb.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/loop.h"
#include "probe/target.h"

enum probe_state {
	PROBE_OK = 0,
	PROBE_WARNING = 1,
	PROBE_CRITICAL = 2,
	PROBE_UNKNOWN = 3,
};

/* What every check of a call shares, read-only while checks run. */
struct probe_opts {
	int64_t timeout_ns;    /* connect plus the whole check */
	size_t size;           /* echo, discard, chargen: bytes */
	int64_t max_offset_ns; /* time: allowed clock difference */
	const char *method;    /* http: GET, HEAD or OPTIONS */
	const char *expect_status; /* http: "200-399" and the like */
	const void *expect_body;   /* http: a compiled regex_t, or NULL */
	const void *expect_header; /* http: a compiled regex_t, or NULL */
	const char *expect_header_name;
	/* Load mode: HTTP requests go without Connection: close, and a
	 * try that succeeded on a connection that can carry another
	 * request leaves it open for the next try (see done below). */
	bool keepalive;
	/* Load mode, a connection per request: after a good HTTP reply the
	 * check waits (within the timeout) for the server to close, as a
	 * Connection: close client does, before it calls done. */
	bool await_close;
	/* Load mode, a connection per request to an address in 127/8: each
	 * connection binds its source to the next of 127.0.0.2-254 (the
	 * port still picked at connect), so the client's TIME_WAIT sockets
	 * (echo closes first) never leave connect() searching one source
	 * address's ephemeral ports for a free one. */
	bool spread_source;
};

/* The outcome of one check. message is one line without the verdict
 * word or the URL: "200 in 0.41 ms", "connection refused". */
struct probe_result {
	enum probe_state state; /* OK, CRITICAL or UNKNOWN; thresholds later */
	int64_t duration_ns;    /* connect start to verdict */
	int http_status;        /* 0 unless an HTTP status line was read */
	uint64_t reply_bytes;	/* bytes of the reply received */
	char message[256];
};

struct probe_check;
typedef void (*probe_done_cb)(struct probe_check *c, void *arg);

/* Creates the loop checks run on (nbufs RECV buffers, a power of 2). On
 * failure prints the one UNKNOWN line that says why to f and returns
 * -errno. */
int probe_loop_new(struct loop **out, enum loop_backend backend, unsigned nbufs,
		   FILE *f);

/* Resolves t's host and port with getaddrinfo (blocking: call it before
 * the loop runs, or accept the stall). Returns 0 and *out (free with
 * freeaddrinfo), or fills r with UNKNOWN and the reason and returns
 * -EHOSTUNREACH. A --unix target resolves to its path. */
int probe_resolve(const struct probe_target *t, struct addrinfo **out,
		  struct probe_result *r);

/* Allocates a check of t at the addresses ai (borrowed: keep them until
 * done), or returns NULL. */
struct probe_check *probe_check_new(struct loop *l,
				    const struct probe_target *t,
				    const struct addrinfo *ai,
				    const struct probe_opts *o);
/* Starts one try; done(c, arg) is called once when it ends, after
 * every op of the check has completed and its socket is closed, so the
 * callback may start the next try or free the check. That is from the
 * loop, or before probe_check_start() returns when the try fails at
 * once (no socket, a unix path that does not exist, out of memory).
 *
 * With o->keepalive, a try that succeeded (echo; HTTP/1.1 framed by
 * Content-Length or chunks, without Connection: close) keeps its socket
 * open and its receive armed when done is called, and the next
 * probe_check_start() sends its request on it. If the server closed it
 * or sent bytes in between, that start closes it and connects anew.
 * Only loop_free() may end a kept connection's ops, so free the loop
 * before such a check. */
void probe_check_start(struct probe_check *c, probe_done_cb done, void *arg);
const struct probe_result *probe_check_result(const struct probe_check *c);
/* Connections the check opened so far (connect attempts that started). */
uint64_t probe_check_connects(const struct probe_check *c);
/* Bytes of the request a try sends (echo's payload, HTTP's head), 0
 * before the first try. */
size_t probe_check_request_bytes(const struct probe_check *c);
void probe_check_free(struct probe_check *c);

#endif
