/* Rendering HTTP/1.1 responses: the growable buffer every writer of the
 * plugin appends to, reason phrases, the IMF-fixdate Date, and the head
 * of a response up to (not including) its Connection line, so one
 * pre-rendered head serves every connection mode. Knows no connection. */
#ifndef RINGD_HTTP_RESPONSE_H
#define RINGD_HTTP_RESPONSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A byte buffer that grows on demand. Once an append failed for lack of
 * memory, oom stays set and later appends do nothing, so a writer checks
 * once at the end instead of after every call. */
struct hbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

void hbuf_put(struct hbuf *b, const void *s, size_t n);
void hbuf_puts(struct hbuf *b, const char *s);
void hbuf_printf(struct hbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Make room for n more bytes; returns where they go, or NULL (oom). */
char *hbuf_reserve(struct hbuf *b, size_t n);
/* Forget the contents; keep up to keep bytes of capacity allocated (a
 * worker's scratch buffer stays warm, a one-off /metrics spike does not
 * stay resident). */
void hbuf_reset(struct hbuf *b, size_t keep);
void hbuf_free(struct hbuf *b);

/* The reason phrase of a status RFC 9110 (or a registered extension)
 * defines, or NULL: routes may use only these. */
const char *http_reason(int status);

/* "Sun, 06 Nov 1994 08:49:37 GMT": always HTTP_DATE_LEN bytes, which is
 * what lets a pre-rendered response be refreshed in place. */
#define HTTP_DATE_LEN 29
void http_date_format(int64_t unix_sec, char out[HTTP_DATE_LEN + 1]);

/* What goes into a response head besides the status. */
struct http_head_spec {
	int status;
	const char *server;      /* NULL or "": no Server field */
	const char *date;        /* HTTP_DATE_LEN bytes */
	const char *type;        /* Content-Type; NULL: none (204 only) */
	const char *extra;       /* whole field lines, each ending CRLF */
	size_t extra_len;
	bool no_store;           /* Cache-Control: no-store */
	const char *allow;       /* Allow field value, or NULL */
	bool length;             /* Content-Length (every status but 204) */
	uint64_t body_len;
};

/* Appends the status line and fields of spec, each line with its CRLF,
 * but neither a Connection line nor the empty line that ends the head.
 * Returns the offset of the Date value within b (for in-place refresh). */
size_t http_head_render(struct hbuf *b, const struct http_head_spec *spec);

/* How a response ends its head. */
enum http_conn_mode {
	HTTP_CONN_NONE,      /* HTTP/1.1 keep-alive: nothing to say */
	HTTP_CONN_KEEPALIVE, /* HTTP/1.0 keep-alive: say so (ab needs it) */
	HTTP_CONN_CLOSE,     /* the connection closes after this response */
};

/* Appends the Connection line mode asks for and the empty line. */
void http_head_end(struct hbuf *b, enum http_conn_mode mode);

#endif
