/* Judging replies: time arithmetic, printable-text rules, the chargen
 * pattern and the HTTP response head. Pure functions over bytes. */
#include "probe/verify.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RFC868_EPOCH 2208988800LL /* seconds from 1900 to 1970 */
#define WRAP (1LL << 32)

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t verify_time_unix(uint32_t v, int64_t now_unix)
{
	int64_t base = (int64_t)v - RFC868_EPOCH;
	int64_t k = floor_div(now_unix - base + WRAP / 2, WRAP);

	return base + k * WRAP;
}

uint32_t verify_time_rfc868(int64_t unix_time)
{
	return (uint32_t)((uint64_t)(unix_time + RFC868_EPOCH) & 0xffffffffu);
}

static bool printable(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) || c == '\t';
}

bool verify_daytime(const unsigned char *buf, size_t len, const char **why)
{
	size_t i = 0;

	while (i < len && printable(buf[i]))
		i++;
	if (i == 0 && (len == 0 || buf[0] == '\r' || buf[0] == '\n'))
		return *why = "empty daytime line", false;
	if (i < len && buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')
		i += 2;
	else if (i < len && buf[i] == '\n')
		i++;
	if (i != len)
		return *why = "daytime reply is not one printable line", false;
	return true;
}

bool verify_qotd(const unsigned char *buf, size_t len, const char **why)
{
	if (len == 0)
		return *why = "empty quote", false;
	if (len >= 512)
		return *why = "quote of 512 bytes or more", false;
	for (size_t i = 0; i < len; i++)
		if (!printable(buf[i]) && buf[i] != '\r' && buf[i] != '\n')
			return *why = "quote is not printable ASCII", false;
	return true;
}

#define CG_WIDTH 72

/* Whether c may follow prev in the ring; the first wrap fixes the ring:
 * from '~' or '}' down to ' ' or '!'. */
static bool chargen_next(struct verify_chargen *st, unsigned char prev,
			 unsigned char c)
{
	if (st->lo)
		return c == (prev == st->hi ? st->lo : prev + 1);
	if (prev < 0x7e && c == prev + 1)
		return true;
	if ((prev == 0x7d || prev == 0x7e) && (c == 0x20 || c == 0x21)) {
		st->hi = prev;
		st->lo = c;
		return true;
	}
	return false;
}

static bool chargen_byte(struct verify_chargen *st, unsigned char c)
{
	bool ok;

	if (st->col == 0) {
		if (!st->started)
			ok = c >= 0x20 && c <= 0x7e;
		else
			ok = chargen_next(st, st->first, c) || c == st->origin;
		if (!st->started)
			st->origin = c;
		st->started = true;
		st->first = st->prev = c;
	} else if (st->col < CG_WIDTH) {
		ok = chargen_next(st, st->prev, c);
		st->prev = c;
	} else {
		ok = c == (st->col == CG_WIDTH ? '\r' : '\n');
	}
	st->col = st->col == CG_WIDTH + 1 ? 0 : st->col + 1;
	return ok;
}

bool verify_chargen_feed(struct verify_chargen *st, const unsigned char *buf,
			 size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (!chargen_byte(st, buf[i]))
			return false;
		st->offset++;
	}
	return true;
}

static const char *find_crlf(const char *p, const char *end)
{
	for (; p + 1 < end; p++)
		if (p[0] == '\r' && p[1] == '\n')
			return p;
	return NULL;
}

static int http_status_line(struct verify_http *h, const char *p,
			    const char *eol, const char **why)
{
	if (eol - p < 12 || strncmp(p, "HTTP/1.", 7) != 0 ||
	    !isdigit((unsigned char)p[7]) || p[8] != ' ')
		return *why = "not an HTTP/1.x status line", -1;
	for (int i = 9; i < 12; i++)
		if (!isdigit((unsigned char)p[i]))
			return *why = "bad HTTP status code", -1;
	if (eol - p > 12 && p[12] != ' ')
		return *why = "bad HTTP status code", -1;
	h->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (h->status < 100)
		return *why = "bad HTTP status code", -1;
	return 0;
}

/* RFC 9110's OWS: optional whitespace around values and list elements. */
static bool ows(char c)
{
	return c == ' ' || c == '\t';
}

/* RFC 9112 section 6.3: the body is chunked when chunked is the final
 * coding, the last element of the list, as a whole token ("xchunked" is
 * another coding, whose body runs to the close). */
static bool last_coding_is_chunked(const char *v, size_t n)
{
	const char *end = v + n, *p = end;

	while (p > v && p[-1] != ',')
		p--;
	while (p < end && ows(*p))
		p++;
	while (end > p && ows(end[-1]))
		end--;
	return end - p == 7 && strncasecmp(p, "chunked", 7) == 0;
}

static int http_framing(struct verify_http *h, const char *head,
			const char **why)
{
	size_t vlen;
	const char *v = verify_http_header(head, h->head_len,
					   "Content-Length", &vlen);

	h->clen = -1;
	if (v) {
		char *end;
		long long n;

		if (vlen == 0 || !isdigit((unsigned char)*v))
			return *why = "bad Content-Length", -1;
		n = strtoll(v, &end, 10);
		if (end != v + vlen || n < 0)
			return *why = "bad Content-Length", -1;
		h->clen = n;
	}
	v = verify_http_header(head, h->head_len, "Transfer-Encoding", &vlen);
	h->chunked = v && last_coding_is_chunked(v, vlen);
	return 0;
}

int verify_http_head(struct verify_http *h, const char *buf, size_t len,
		     const char **why)
{
	const char *end = buf + len;
	const char *eol = find_crlf(buf, end);
	const char *p;

	memset(h, 0, sizeof(*h));
	/* Garbage shows in its first bytes; no need to wait for a CRLF. */
	if (strncmp(buf, "HTTP/1.", len < 7 ? len : 7) != 0)
		return *why = "not an HTTP/1.x status line", -1;
	if (!eol)
		return 0;
	if (http_status_line(h, buf, eol, why) < 0)
		return -1;
	for (p = eol + 2;; p = eol + 2) {
		eol = find_crlf(p, end);
		if (!eol)
			return h->status = 0, 0;
		if (eol == p)
			break;
		if (*p == ' ' || *p == '\t' || !memchr(p, ':', (size_t)(eol - p)))
			return *why = "malformed HTTP header line", -1;
	}
	h->head_len = (size_t)(eol + 2 - buf);
	return http_framing(h, buf, why) < 0 ? -1 : 1;
}

const char *verify_http_header(const char *head, size_t head_len,
			       const char *name, size_t *vlen)
{
	const char *end = head + head_len;
	const char *p = find_crlf(head, end);
	size_t n = strlen(name);

	while (p && p + 2 < end) {
		const char *line = p + 2;
		const char *eol = find_crlf(line, end);

		if (!eol || eol == line)
			return NULL;
		if ((size_t)(eol - line) > n && line[n] == ':' &&
		    strncasecmp(line, name, n) == 0) {
			const char *v = line + n + 1;
			const char *ve = eol;

			while (v < ve && ows(*v))
				v++;
			while (ve > v && ows(ve[-1]))
				ve--;
			*vlen = (size_t)(ve - v);
			return v;
		}
		p = eol;
	}
	return NULL;
}

bool verify_http_has_token(const char *v, size_t n, const char *token)
{
	size_t len = strlen(token);
	const char *end = v + n;

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end;

		while (v < e && ows(*v))
			v++;
		while (e > v && ows(e[-1]))
			e--;
		if ((size_t)(e - v) == len && strncasecmp(v, token, len) == 0)
			return true;
		if (!comma)
			break;
		v = comma + 1;
	}
	return false;
}

enum { CK_SIZE, CK_EXT, CK_DATA, CK_DATA_END, CK_TRAILER, CK_TRAILER_LINE,
       CK_DONE };

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The LF of a size line: data follows, or the trailers of the end. */
static int chunk_size_end(struct verify_chunked *st, const char **why)
{
	if (st->digits == 0)
		return *why = "bad chunk size", -1;
	st->state = st->size ? CK_DATA : CK_TRAILER;
	return 0;
}

/* One byte of the framing (everything but chunk data): 1 done, -1 bad. */
static int chunked_frame(struct verify_chunked *st, unsigned char c,
			 const char **why)
{
	switch (st->state) {
	case CK_SIZE:
		if (hex_value(c) >= 0) {
			if (++st->digits > 15)
				return *why = "chunk size too large", -1;
			st->size = st->size * 16 + (uint64_t)hex_value(c);
			return 0;
		}
		if (c != '\n' && c != '\r' && c != ';' && c != ' ' &&
		    c != '\t')
			return *why = "bad chunk size", -1;
		st->state = CK_EXT;
		return c == '\n' ? chunk_size_end(st, why) : 0;
	case CK_EXT:
		return c == '\n' ? chunk_size_end(st, why) : 0;
	case CK_DATA_END:
		if (c == '\r')
			return 0;
		if (c != '\n')
			return *why = "chunk not followed by CRLF", -1;
		st->state = CK_SIZE;
		st->size = st->digits = 0;
		return 0;
	case CK_TRAILER:
		if (c == '\n')
			return st->state = CK_DONE, 1;
		if (c != '\r')
			st->state = CK_TRAILER_LINE;
		return 0;
	case CK_TRAILER_LINE:
		if (c == '\n')
			st->state = CK_TRAILER;
		return 0;
	default:
		return 1;
	}
}

int verify_chunked_feed(struct verify_chunked *st, const unsigned char *in,
			size_t n, unsigned char *out, size_t out_cap,
			size_t *out_len, const char **why)
{
	size_t i = 0, o = 0;
	int r = 0;

	while (i < n && r == 0 && st->state != CK_DONE) {
		if (st->state == CK_DATA) {
			size_t k = n - i < st->size ? n - i : (size_t)st->size;
			size_t keep = out_cap - o < k ? out_cap - o : k;

			memmove(out + o, in + i, keep);
			o += keep;
			i += k;
			st->data += k;
			st->size -= k;
			if (st->size == 0)
				st->state = CK_DATA_END;
			continue;
		}
		r = chunked_frame(st, in[i++], why);
	}
	*out_len = o;
	if (st->state != CK_DONE)
		return r;
	st->after += n - i;
	return 1;
}

static int parse_code(const char **s)
{
	int v = 0, digits = 0;

	while (isdigit((unsigned char)**s) && digits < 4) {
		v = v * 10 + (**s - '0');
		(*s)++;
		digits++;
	}
	return digits == 3 && v >= 100 ? v : -1;
}

int verify_status_match(const char *spec, int status)
{
	const char *s = spec;
	int match = 0;

	for (;;) {
		int lo = parse_code(&s), hi = lo;

		if (lo < 0)
			return -1;
		if (*s == '-') {
			s++;
			hi = parse_code(&s);
			if (hi < lo)
				return -1;
		}
		if (status >= lo && status <= hi)
			match = 1;
		if (*s == '\0')
			return match;
		if (*s++ != ',')
			return -1;
	}
}
