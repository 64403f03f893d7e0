/* The protocol knowledge of ringd-probe, without sockets or a loop: is
 * this reply what the service must send? Each function judges bytes
 * already received and, on a bad reply, gives a short static or
 * caller-buffered reason for the output line. */
#ifndef RINGD_PROBE_VERIFY_H
#define RINGD_PROBE_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 868 counts seconds since 1900 in 32 bits, so the count wraps on
 * 2036-02-07. A reply v means the Unix time closest to now among
 * v - 2208988800 + k * 2^32 (k any integer): the wrap-safe reading,
 * valid within 68 years of now. */
int64_t verify_time_unix(uint32_t v, int64_t now_unix);

/* RFC 868 seconds for a Unix time, modulo 2^32 (the server's side). */
uint32_t verify_time_rfc868(int64_t unix_time);

/* Daytime (RFC 867): one line of printable ASCII (tabs allowed), ended
 * by LF or CRLF or by the close, and nothing after it. */
bool verify_daytime(const unsigned char *buf, size_t len, const char **why);

/* QOTD (RFC 865): printable ASCII with CR, LF and tabs, non-empty,
 * under 512 bytes. */
bool verify_qotd(const unsigned char *buf, size_t len, const char **why);

/* Chargen (RFC 864): lines of 72 characters, each the one after the
 * character before it in a ring of printable ASCII, each line starting
 * one later than the line before, CRLF after each. The RFC's ring is the
 * 95 characters from space to '~'; xinetd's leaves out space and '~' (93,
 * '!' to '}'), so the checker learns the ring at the first wrap it sees
 * and holds the stream to it from then on. xinetd also starts its
 * pattern over every 95 lines, so a line may go back to the reply's
 * first line instead of advancing. Incremental: a reply starts at the
 * beginning of a line, whose first character fixes the phase. */
struct verify_chargen {
	bool started;
	unsigned char origin; /* the reply's first character */
	unsigned char first;  /* the current line's first character */
	unsigned char prev;  /* the last character of the line so far */
	unsigned char lo, hi; /* the ring, 0 until the first wrap */
	unsigned col;    /* position within the line: 0..71, CR 72, LF 73 */
	uint64_t offset; /* bytes accepted so far */
};
/* Feeds len bytes; returns false at the first byte off the pattern and
 * leaves st->offset at that byte's position. */
bool verify_chargen_feed(struct verify_chargen *st, const unsigned char *buf,
			 size_t len);

/* An HTTP/1.x response head, parsed in place from buf (not copied). */
struct verify_http {
	int status;         /* 100..999; 0 until parsed */
	size_t head_len;    /* bytes up to and including the blank line */
	long long clen;     /* Content-Length, -1 when absent */
	bool chunked;       /* Transfer-Encoding: chunked */
};

/* Parses the response head in buf[0, len). Returns 1 when the head is
 * complete and valid (*h filled), 0 when more bytes are needed, -1 on
 * a malformed head (*why says what). */
int verify_http_head(struct verify_http *h, const char *buf, size_t len,
		     const char **why);

/* Finds the first header called name (case-insensitive) in a complete
 * head; returns its value (leading and trailing blanks dropped) and its
 * length in *vlen, or NULL. */
const char *verify_http_header(const char *head, size_t head_len,
			       const char *name, size_t *vlen);

/* Whether the comma-separated list value v[0, n) (a Connection header's,
 * say) holds token, case-insensitively: each element with the optional
 * whitespace of RFC 9110 (spaces and tabs) around it dropped. */
bool verify_http_has_token(const char *v, size_t n, const char *token);

/* A chunked body (RFC 9112 7.1), decoded as it arrives: sizes in hex
 * with optional extensions, data, CRLF; a zero size, trailers and a blank
 * line end it. Bare LFs are taken for CRLFs. */
struct verify_chunked {
	int state;
	uint64_t size;   /* of the chunk being read, or left of it */
	unsigned digits;
	uint64_t data;   /* chunk data decoded so far, kept or dropped */
	uint64_t after;  /* bytes fed after the body's end */
};
/* Decodes n bytes of in, writing at most out_cap of the data to out
 * (out may be in itself: it never runs ahead) and dropping the rest;
 * *out_len is what was written. Returns 1 once the body is complete
 * (bytes fed after its end, in this call or a later one, are not decoded
 * but counted in st->after: on a kept connection they are a server's
 * error), 0 when it needs more, -1 on a malformed body with *why set. */
int verify_chunked_feed(struct verify_chunked *st, const unsigned char *in,
			size_t n, unsigned char *out, size_t out_cap,
			size_t *out_len, const char **why);

/* Status in a --expect-status list ("200", "200-399", "200,204,300-399").
 * Returns 1 when it matches, 0 when not, -1 when spec is malformed. */
int verify_status_match(const char *spec, int status);

#endif
