/* The http plugin's HTTP/1.x request parser: RFC 9112 framing and the
 * RFC 9110 rules a prober can tell apart, over bytes that may end anywhere.
 * It knows no host, no socket and no connection, allocates nothing and
 * copies nothing: what it finds are offsets into the caller's buffer.
 *
 * Ours rather than a library: Debian 12 packages only the deprecated
 * nodejs http-parser, and a probe responder needs a strict, small parser
 * whose every refusal maps to the status RFC 9112 asks for.
 *
 * A request is read in two steps. http_head_scan() finds where the head
 * ends, resuming where it stopped, so a head that arrives one byte at a
 * time costs one pass over its bytes in all; it enforces the size limits
 * as bytes arrive, so a client cannot make the caller buffer more than
 * HTTP_MAX_HEAD. http_head_parse() then reads the complete head once. A
 * body, if any, goes through http_body_feed(), which discards it as it
 * streams by and never needs more than the bytes in hand.
 *
 * Strict on purpose (request smuggling): whatever RFC 9112 says to reject
 * is rejected with its status, nothing is "fixed up". Every error status
 * this file returns means the caller answers it and closes the connection. */
#ifndef RINGD_HTTP_PARSE_H
#define RINGD_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits (issue text and RFC 9112 "at least 8000 octets" for the line). */
#define HTTP_MAX_REQUEST_LINE 8192 /* over it: 414 */
#define HTTP_MAX_FIELD 8192        /* one field line; over it: 431 */
#define HTTP_MAX_HEAD 32768        /* the whole head; over it: 431 */
#define HTTP_MAX_FIELDS 100        /* field lines; more: 431 */

/* Methods RFC 9110 and RFC 5789 define; anything else that is a valid
 * token is HTTP_M_OTHER (the responder answers 501). */
enum http_method {
	HTTP_M_OTHER = 0,
	HTTP_M_GET,
	HTTP_M_HEAD,
	HTTP_M_POST,
	HTTP_M_PUT,
	HTTP_M_DELETE,
	HTTP_M_CONNECT,
	HTTP_M_OPTIONS,
	HTTP_M_TRACE,
	HTTP_M_PATCH,
};

/* Request-target forms (RFC 9112 section 3.2). */
enum http_form {
	HTTP_FORM_ORIGIN,    /* /path?query */
	HTTP_FORM_ABSOLUTE,  /* http://authority/path?query */
	HTTP_FORM_AUTHORITY, /* host:port, CONNECT only */
	HTTP_FORM_ASTERISK,  /* *, OPTIONS only */
};

/* A piece of the caller's buffer: buf + off, len bytes. Offsets rather
 * than pointers so a caller may move a partial head between reads. */
struct http_span {
	uint32_t off;
	uint32_t len;
};

struct http_field {
	struct http_span name;  /* a token, as sent (compare ignoring case) */
	struct http_span value; /* without leading and trailing whitespace */
};

/* A parsed head. Large (the field table); a caller keeps one per worker,
 * not per connection: the response is decided while the head's bytes are
 * still in hand. */
struct http_request {
	enum http_method method;
	struct http_span method_name;
	enum http_form form;
	struct http_span target;    /* the whole request-target */
	struct http_span authority; /* absolute and authority forms */
	/* The path without the query: what routes match. Empty (len 0) in
	 * absolute form with no path (it means "/") and in the asterisk and
	 * authority forms. Never percent-decoded. */
	struct http_span path;
	struct http_span query; /* after '?', without it; len 0 if none */
	uint8_t major, minor;   /* major is always 1 after a successful parse */

	uint16_t nfields;
	struct http_field fields[HTTP_MAX_FIELDS];

	/* What framing and connection management need, read from the fields
	 * while parsing (the fields stay available for the rest). */
	struct http_span host; /* the Host field's value, when nhost == 1 */
	uint8_t nhost;
	bool has_length; /* Content-Length present (and consistent) */
	bool chunked;    /* Transfer-Encoding: chunked */
	uint64_t content_length;
	bool conn_close;     /* Connection: close */
	bool conn_keepalive; /* Connection: keep-alive */
	bool expect_continue; /* Expect: 100-continue */
	bool expect_other;    /* an Expect value other than 100-continue */

	uint32_t head_len; /* bytes of the head, up to the final empty line */
};

/* Where http_head_scan() stopped; zero it (or call http_scan_init) before
 * the first byte of each request. Small, so a connection can keep one. */
struct http_scan {
	uint32_t pos;        /* bytes of the buffer already examined */
	uint32_t line_start; /* offset of the line being read */
	uint16_t lines;      /* lines ended so far, request line included */
	uint8_t state;       /* private */
	uint8_t flags;       /* private */
};

static inline void http_scan_init(struct http_scan *s)
{
	*s = (struct http_scan){ 0 };
}

/* Look for the end of a request head in buf[0, len), where buf holds the
 * request's bytes from its first one (the same bytes as on the previous
 * call, plus more at the end). Resumes at s->pos.
 * Returns the head's length (> 0) once its final empty line is in buf;
 * 0 when more bytes are needed (everything up to len has been checked);
 * or a negative error status (negative, as http_body_feed's, because a
 * head may well be 400 bytes long): -414 when the request line passes
 * HTTP_MAX_REQUEST_LINE, -431 when a field line passes HTTP_MAX_FIELD,
 * the head HTTP_MAX_HEAD or the field count HTTP_MAX_FIELDS, -400 for a
 * NUL, a CR not followed by LF, or a line that starts with whitespace
 * (obs-fold, or before the request line's method). A line's length does
 * not count its CRLF or LF. Limits are reported as soon as they are
 * passed, not at the end of the line. Empty lines before the request
 * line (RFC 9112 section 2.2) are part of the head and skipped by
 * http_head_parse(); a line ends with CRLF or a bare LF. Once it has
 * returned a length or an error, it returns the same again. */
int http_head_scan(struct http_scan *s, const char *buf, size_t len);

/* Parse a complete head: buf[0, len) where len is what http_head_scan()
 * returned. Fills *req and returns 0, or returns an error status and
 * points *why at a static phrase for the log:
 * 400 malformed request line or field line (whitespace before a colon, a
 *     character outside its grammar), HTTP/1.1 (or 1.x, x > 0) without
 *     Host or any version with more than one, a Host value that is no
 *     authority, both Transfer-Encoding and Content-Length, a bad or
 *     conflicting Content-Length, Transfer-Encoding in HTTP/1.0, a
 *     Transfer-Encoding that names chunked more than once ("chunked,
 *     chunked": RFC 9112 section 6.1), a form the method does not allow
 *     (authority form without CONNECT, CONNECT in any other form, "*"
 *     without OPTIONS);
 * 501 any other Transfer-Encoding than chunked alone ("gzip", "gzip,
 *     chunked", "chunked, gzip", chunked with parameters);
 * 505 a major version other than 1 (the HTTP/2 preface included).
 * An unknown method is not an error here: it parses as HTTP_M_OTHER.
 * Given a len the scan would not have returned, it still reads no byte
 * past len: 400 when buf[0, len) is not exactly one head, 431 when it is
 * over HTTP_MAX_HEAD or has more than HTTP_MAX_FIELDS fields. */
int http_head_parse(const char *buf, size_t len, struct http_request *req,
		    const char **why);

/* Body framing of one request: Content-Length or chunked (with chunk
 * extensions and trailers), discarded as it is fed. */
struct http_body {
	uint64_t left;  /* Content-Length: bytes still to come; chunked:
			   bytes left in the current chunk */
	uint64_t total; /* body bytes seen so far (chunk data only) */
	uint64_t max;   /* http_body_init's max_body */
	uint32_t line;  /* chunked: length of the current size/trailer line */
	uint32_t trailer; /* chunked: trailer bytes so far */
	uint8_t state;  /* private */
};

/* Set b up for the body req announces; max_body bounds it (0: no body is
 * allowed at all). Returns 0, or 413 when a Content-Length is over
 * max_body already. A request without a body gets a body that is done at
 * once (http_body_done() is true). */
int http_body_init(struct http_body *b, const struct http_request *req,
		   uint64_t max_body);

static inline bool http_body_done(const struct http_body *b)
{
	return b->state == 0xff;
}

/* Feed body bytes. Consumes what belongs to this body from buf[0, len)
 * and returns that count (less than len when the body ended inside buf:
 * the rest is the next request's), or a negative status: -400 for bad
 * chunk framing (a size that is not hex, a size over 2^60, a missing CRLF
 * after chunk data, a malformed trailer line, a line ended by a bare LF:
 * chunked framing takes CRLF only), -413 when the chunks pass max_body,
 * -431 when the trailers pass HTTP_MAX_HEAD or a chunk size line (with
 * its extensions) passes HTTP_MAX_FIELD. After an error it returns the
 * same error again; once done, 0. */
int64_t http_body_feed(struct http_body *b, const char *buf, size_t len);

/* Helpers over a parsed request. */

/* Whether a and the span s of buf are equal ignoring ASCII case. */
bool http_span_ieq(const char *buf, struct http_span s, const char *a);

/* The first field named name (ignoring case), or NULL. */
const struct http_field *http_field_find(const struct http_request *req,
					 const char *buf, const char *name);

/* Whether the comma-separated list in value (a field's value) holds the
 * token tok, ignoring case and optional whitespace; parameters after ';'
 * are ignored (so "text/html;q=0.9" holds "text/html"). */
bool http_list_has(const char *buf, struct http_span value, const char *tok);

/* A method's canonical name ("GET"...), NULL for HTTP_M_OTHER. */
const char *http_method_name(enum http_method m);

#endif
