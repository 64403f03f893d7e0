/* The HTTP/1.x request parser of parse.h: a byte scan that finds the end
 * of a head and enforces its limits, a parse of the complete head into
 * spans of the caller's buffer, and a body state machine that discards.
 * Deciding the response from what is found is the responder's job. */
#include <string.h>

#include "parse.h"

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* The punctuation tchar and an authority allow, as tables: strchr() on
 * every byte of every field name was a visible share of a request. */
static const bool tchar_sym[256] = {
	['!'] = 1,  ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1,
	['\''] = 1, ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,
	['^'] = 1,  ['_'] = 1, ['`'] = 1, ['|'] = 1, ['~'] = 1,
};
static const bool host_sym[256] = {
	['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,  ['%'] = 1,
	['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1,
	[')'] = 1, ['*'] = 1, ['+'] = 1, [','] = 1,  [';'] = 1,
	['='] = 1, [':'] = 1, ['['] = 1, [']'] = 1,
};

/* RFC 9110 section 5.6.2: tchar. */
static bool is_tchar(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return tchar_sym[c];
}

/* VCHAR, obs-text, SP and HTAB: what a field value may hold (RFC 9110
 * section 5.5); CR, LF, NUL, the other controls and DEL may not. */
static bool is_field_char(unsigned char c)
{
	return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* What an authority's host and port may hold (RFC 3986 reg-name,
 * IP-literal, port): unreserved, pct-encoded, sub-delims, ":[]". No '@':
 * RFC 9110 section 4.2.4 deprecates userinfo, and a prober never sends it. */
static bool is_host_char(unsigned char c)
{
	if (is_alpha(c) || is_digit(c))
		return true;
	return host_sym[c];
}

static int hex_value(unsigned char c)
{
	if (is_digit(c))
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* ASCII only: the C library's tolower() follows the locale. */
static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static struct http_span span(uint32_t off, uint32_t len)
{
	return (struct http_span){ .off = off, .len = len };
}

bool http_span_ieq(const char *buf, struct http_span s, const char *a)
{
	size_t n = strlen(a);

	if (n != s.len)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(buf[s.off + i]) != lower(a[i]))
			return false;
	return true;
}

/* The scan's states. The error states keep their status so a caller
 * that asks again gets the same answer. */
enum {
	SC_LINE = 0, /* at the first byte of a line */
	SC_TEXT,     /* inside a line that is not empty */
	SC_CR,	     /* after a CR that ends a line that is not empty */
	SC_CR_EMPTY, /* after a CR at the start of a line */
	SC_DONE,
	SC_E400,
	SC_E414,
	SC_E431,
};

static int scan_fail(struct http_scan *s, int status)
{
	s->state = status == 414 ? SC_E414 : status == 431 ? SC_E431 : SC_E400;
	return -status;
}

/* A line ended with the byte before s->pos. Returns the head's length
 * when it was the final empty line, else 0. */
static int scan_eol(struct http_scan *s, bool empty)
{
	s->line_start = s->pos;
	s->state = SC_LINE;
	if (!empty) {
		s->lines++;
		return 0;
	}
	/* RFC 9112 section 2.2: empty lines before the request line are
	 * skipped, not taken for the end of a head that has not begun. */
	if (s->lines == 0)
		return 0;
	s->state = SC_DONE;
	return (int)s->pos;
}

/* A byte of a line's text, already counted in s->pos: the length limit
 * is checked here, byte by byte, so it is reported the moment it is
 * passed and not when the line finally ends. */
static int scan_text(struct http_scan *s)
{
	bool request_line = s->lines == 0;
	uint32_t max = request_line ? HTTP_MAX_REQUEST_LINE : HTTP_MAX_FIELD;

	s->state = SC_TEXT;
	if (s->pos - s->line_start > max)
		return scan_fail(s, request_line ? 414 : 431);
	return 0;
}

/* One byte: 0 to go on, the head's length, or a negative status. */
static int scan_byte(struct http_scan *s, unsigned char c)
{
	s->pos++;
	if (c == '\0')
		return scan_fail(s, 400);
	switch (s->state) {
	case SC_LINE:
		if (c == '\n')
			return scan_eol(s, true);
		if (c == '\r') {
			s->state = SC_CR_EMPTY;
			return 0;
		}
		/* obs-fold, or whitespace before the first field line:
		 * RFC 9112 sections 2.2 and 5.2 let a server reject both. */
		if (is_ows(c))
			return scan_fail(s, 400);
		if (s->lines > HTTP_MAX_FIELDS)
			return scan_fail(s, 431);
		return scan_text(s);
	case SC_TEXT:
		if (c == '\n')
			return scan_eol(s, false);
		if (c == '\r') {
			s->state = SC_CR;
			return 0;
		}
		return scan_text(s);
	default: /* SC_CR, SC_CR_EMPTY: a bare CR is an error (section 2.2) */
		if (c != '\n')
			return scan_fail(s, 400);
		return scan_eol(s, s->state == SC_CR_EMPTY);
	}
}

/* Inside a line most bytes are text that changes no state: skip them in
 * a tight loop and leave to scan_byte() the bytes at or below CR (NUL,
 * CR, LF and the controls) and the one that would pass a limit. Returns
 * where the run stops. */
static uint32_t scan_run(const struct http_scan *s, const char *buf, size_t len)
{
	uint32_t max = s->lines == 0 ? HTTP_MAX_REQUEST_LINE : HTTP_MAX_FIELD;
	size_t end = len;
	uint32_t i = s->pos;

	if (end > (size_t)s->line_start + max)
		end = (size_t)s->line_start + max;
	if (end > HTTP_MAX_HEAD)
		end = HTTP_MAX_HEAD;
	while (i < end && (unsigned char)buf[i] > '\r')
		i++;
	return i;
}

int http_head_scan(struct http_scan *s, const char *buf, size_t len)
{
	int rc;

	switch (s->state) {
	case SC_DONE:
		return (int)s->pos;
	case SC_E400:
		return -400;
	case SC_E414:
		return -414;
	case SC_E431:
		return -431;
	}
	while (s->pos < len) {
		/* The head's bytes are what the caller must keep: no more
		 * than HTTP_MAX_HEAD of them, whatever their lines. */
		if (s->pos >= HTTP_MAX_HEAD)
			return scan_fail(s, 431);
		if (s->state == SC_TEXT) {
			uint32_t to = scan_run(s, buf, len);

			if (to != s->pos) {
				s->pos = to;
				continue; /* the limits again, from the top */
			}
		}
		rc = scan_byte(s, (unsigned char)buf[s->pos]);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int fail(const char **why, int status, const char *msg)
{
	if (why != NULL)
		*why = msg;
	return status;
}

/* The next line of buf[*pos, len), without its CRLF or LF; false when no
 * LF is left. A CR inside a line stays in it, for the grammar to refuse. */
static bool line_next(const char *buf, uint32_t *pos, uint32_t len,
		      struct http_span *line)
{
	const char *nl = memchr(buf + *pos, '\n', len - *pos);
	uint32_t end;

	if (nl == NULL)
		return false;
	end = (uint32_t)(nl - buf);
	*line = span(*pos, end - *pos);
	if (line->len > 0 && buf[end - 1] == '\r')
		line->len--;
	*pos = end + 1;
	return true;
}

/* The next element of the comma-separated list in buf[*p, end), trimmed
 * of optional whitespace and possibly empty (RFC 9110 section 5.6.1: a
 * recipient ignores empty elements). A comma inside a quoted string does
 * not split. False once the list is exhausted. */
static bool list_next(const char *buf, uint32_t *p, uint32_t end,
		      struct http_span *el)
{
	uint32_t i = *p, s, e;
	bool quoted = false;

	if (i > end)
		return false;
	while (i < end && is_ows(buf[i]))
		i++;
	for (s = i; i < end; i++) {
		if (quoted && buf[i] == '\\' && i + 1 < end)
			i++;
		else if (buf[i] == '"')
			quoted = !quoted;
		else if (!quoted && buf[i] == ',')
			break;
	}
	for (e = i; e > s && is_ows(buf[e - 1]); e--)
		;
	*el = span(s, e - s);
	*p = i + 1;
	return true;
}

/* The length of the token at buf[off, end). */
static uint32_t token_len(const char *buf, uint32_t off, uint32_t end)
{
	uint32_t i = off;

	while (i < end && is_tchar(buf[i]))
		i++;
	return i - off;
}

bool http_list_has(const char *buf, struct http_span value, const char *tok)
{
	uint32_t p = value.off, end = value.off + value.len, n;
	struct http_span el;

	while (list_next(buf, &p, end, &el)) {
		/* Parameters after ';' are not part of the element's name. */
		for (n = 0; n < el.len && buf[el.off + n] != ';'; n++)
			;
		while (n > 0 && is_ows(buf[el.off + n - 1]))
			n--;
		if (n > 0 && http_span_ieq(buf, span(el.off, n), tok))
			return true;
	}
	return false;
}

const struct http_field *http_field_find(const struct http_request *req,
					 const char *buf, const char *name)
{
	for (uint16_t i = 0; i < req->nfields; i++)
		if (http_span_ieq(buf, req->fields[i].name, name))
			return &req->fields[i];
	return NULL;
}

/* Indexed by enum http_method. Methods are case-sensitive (RFC 9110
 * section 9.1): "get" is an unknown method, not GET. */
static const char *const method_names[] = {
	[HTTP_M_GET] = "GET",	      [HTTP_M_HEAD] = "HEAD",
	[HTTP_M_POST] = "POST",	      [HTTP_M_PUT] = "PUT",
	[HTTP_M_DELETE] = "DELETE",   [HTTP_M_CONNECT] = "CONNECT",
	[HTTP_M_OPTIONS] = "OPTIONS", [HTTP_M_TRACE] = "TRACE",
	[HTTP_M_PATCH] = "PATCH",
};

#define N_METHODS (sizeof(method_names) / sizeof(method_names[0]))

const char *http_method_name(enum http_method m)
{
	if ((unsigned)m >= N_METHODS)
		return NULL;
	return method_names[m];
}

static enum http_method method_lookup(const char *buf, struct http_span m)
{
	for (unsigned i = 1; i < N_METHODS; i++)
		if (strlen(method_names[i]) == m.len &&
		    memcmp(buf + m.off, method_names[i], m.len) == 0)
			return (enum http_method)i;
	return HTTP_M_OTHER;
}

static bool host_ok(const char *buf, struct http_span s)
{
	for (uint32_t i = 0; i < s.len; i++)
		if (!is_host_char(buf[s.off + i]))
			return false;
	return true;
}

/* RFC 3986 scheme followed by "://": the length up to the authority, or
 * 0 when t does not begin that way. */
static uint32_t scheme_len(const char *buf, struct http_span t)
{
	uint32_t i = 0;

	if (t.len == 0 || !is_alpha(buf[t.off]))
		return 0;
	for (; i < t.len; i++) {
		unsigned char c = buf[t.off + i];

		if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-' &&
		    c != '.')
			break;
	}
	if (t.len - i < 3 || memcmp(buf + t.off + i, "://", 3) != 0)
		return 0;
	return i + 3;
}

/* Splits buf[off, end) (a path and perhaps "?query") into the two. */
static void target_path_query(const char *buf, uint32_t off, uint32_t end,
			      struct http_request *req)
{
	const char *q = memchr(buf + off, '?', end - off);
	uint32_t qoff = q != NULL ? (uint32_t)(q - buf) : end;

	req->path = span(off, qoff - off);
	if (q != NULL)
		req->query = span(qoff + 1, end - qoff - 1);
}

/* Absolute form: scheme "://" authority, then the path and query. An
 * empty host is refused (RFC 9110 section 4.2.1). */
static int target_absolute(const char *buf, uint32_t slen,
			   struct http_request *req, const char **why)
{
	uint32_t off = req->target.off + slen;
	uint32_t end = req->target.off + req->target.len, i = off;

	while (i < end && buf[i] != '/' && buf[i] != '?')
		i++;
	req->form = HTTP_FORM_ABSOLUTE;
	req->authority = span(off, i - off);
	if (req->authority.len == 0 || !host_ok(buf, req->authority))
		return fail(why, 400, "bad authority in absolute form");
	if (i < end && buf[i] == '?')
		req->query = span(i + 1, end - i - 1);
	else
		target_path_query(buf, i, end, req);
	return 0;
}

/* Authority form (CONNECT): host ":" port, nothing else. */
static int target_authority(const char *buf, struct http_request *req,
			    const char **why)
{
	struct http_span t = req->target;
	uint32_t colon = t.len, i;

	for (i = 0; i < t.len; i++)
		if (buf[t.off + i] == ':')
			colon = i;
	req->form = HTTP_FORM_AUTHORITY;
	req->authority = t;
	if (colon == 0 || colon + 1 >= t.len || !host_ok(buf, t))
		return fail(why, 400, "bad authority form");
	for (i = colon + 1; i < t.len; i++)
		if (!is_digit(buf[t.off + i]))
			return fail(why, 400, "bad port in authority form");
	return 0;
}

/* Which of the four forms the target is, and whether the method allows
 * it (RFC 9112 section 3.2): "*" is for OPTIONS only, the authority form
 * for CONNECT only and CONNECT has no other. */
static int parse_target(const char *buf, struct http_request *req,
			const char **why)
{
	struct http_span t = req->target;
	bool connect = req->method == HTTP_M_CONNECT;
	uint32_t slen;

	if (connect)
		return target_authority(buf, req, why);
	if (buf[t.off] == '/') {
		req->form = HTTP_FORM_ORIGIN;
		target_path_query(buf, t.off, t.off + t.len, req);
		return 0;
	}
	if (t.len == 1 && buf[t.off] == '*') {
		req->form = HTTP_FORM_ASTERISK;
		if (req->method != HTTP_M_OPTIONS)
			return fail(why, 400, "\"*\" target without OPTIONS");
		return 0;
	}
	slen = scheme_len(buf, t);
	if (slen == 0)
		return fail(why, 400, "target in no form the method allows");
	return target_absolute(buf, slen, req, why);
}

/* method SP request-target SP HTTP-version, one SP each (RFC 9112
 * section 3): anything looser is how smuggling between parsers starts. */
static int parse_request_line(const char *buf, struct http_span line,
			      struct http_request *req, const char **why)
{
	uint32_t p = line.off, end = line.off + line.len;
	const char *v;

	req->method_name = span(p, token_len(buf, p, end));
	p += req->method_name.len;
	if (req->method_name.len == 0 || p >= end || buf[p] != ' ')
		return fail(why, 400, "bad method");
	req->target.off = ++p;
	/* Visible ASCII, '#' excepted: a fragment is the client's and never
	 * part of a request-target (RFC 9112 section 3.2). */
	while (p < end && buf[p] > 0x20 && buf[p] < 0x7f && buf[p] != '#')
		p++;
	req->target.len = p - req->target.off;
	if (req->target.len == 0 || p >= end || buf[p] != ' ')
		return fail(why, 400, "bad request-target");
	v = buf + p + 1;
	if (end - p - 1 != 8 || memcmp(v, "HTTP/", 5) != 0 || !is_digit(v[5]) ||
	    v[6] != '.' || !is_digit(v[7]))
		return fail(why, 400, "bad HTTP version");
	req->major = v[5] - '0';
	req->minor = v[7] - '0';
	/* Checked before the form: the HTTP/2 preface's "PRI *" is a 505,
	 * not an asterisk form without OPTIONS. */
	if (req->major != 1)
		return fail(why, 505, "HTTP major version other than 1");
	req->method = method_lookup(buf, req->method_name);
	return parse_target(buf, req, why);
}

/* What the fields say across lines, before it is checked at the end. */
struct head_ctx {
	bool te; /* a Transfer-Encoding line was seen */
	unsigned ncodings;
	unsigned nchunked;  /* codings named chunked, parameters or not */
	bool last_chunked;  /* the final coding is named chunked */
	bool other;         /* a coding other than a bare "chunked" */
};

/* Content-Length: 1*DIGIT, or a list of identical values taken as one
 * (RFC 9110 section 8.6). Empty elements are refused here: the field is
 * not a list by its grammar, so no tolerance beyond that one. */
static int content_length(const char *buf, struct http_span v, uint64_t *out)
{
	uint32_t p = v.off, end = v.off + v.len;
	struct http_span el;
	uint64_t n, first = 0;
	bool seen = false;

	while (list_next(buf, &p, end, &el)) {
		if (el.len == 0)
			return -1;
		n = 0;
		for (uint32_t i = 0; i < el.len; i++) {
			unsigned d = (unsigned char)buf[el.off + i] - '0';

			if (d > 9 || n > (UINT64_MAX - d) / 10)
				return -1;
			n = n * 10 + d;
		}
		if (seen && n != first)
			return -1;
		first = n;
		seen = true;
	}
	*out = first;
	return 0;
}

static int note_content_length(const char *buf, struct http_span v,
			       struct http_request *req, const char **why)
{
	uint64_t n;

	if (content_length(buf, v, &n) != 0)
		return fail(why, 400, "bad Content-Length");
	if (req->has_length && n != req->content_length)
		return fail(why, 400, "conflicting Content-Length");
	req->has_length = true;
	req->content_length = n;
	return 0;
}

/* Transfer-Encoding lines make one list (RFC 9110 section 5.3); each
 * coding is a token with perhaps parameters. Only what head_check()
 * needs to tell bad framing from an unknown coding is kept: how often
 * chunked is named, whether it is last, and whether anything else (or
 * chunked with parameters, which it does not define) is there. */
static int note_transfer_encoding(const char *buf, struct http_span v,
				  struct head_ctx *h, const char **why)
{
	uint32_t p = v.off, end = v.off + v.len, name, n;
	struct http_span el;

	h->te = true;
	while (list_next(buf, &p, end, &el)) {
		if (el.len == 0)
			continue;
		name = n = token_len(buf, el.off, el.off + el.len);
		while (n < el.len && is_ows(buf[el.off + n]))
			n++;
		if (n == 0 || (n < el.len && buf[el.off + n] != ';'))
			return fail(why, 400, "bad Transfer-Encoding");
		h->ncodings++;
		h->last_chunked = http_span_ieq(buf, span(el.off, name),
						"chunked");
		h->nchunked += h->last_chunked;
		if (!h->last_chunked || name < el.len)
			h->other = true;
	}
	return 0;
}

/* Connection options are tokens (RFC 9110 section 7.6.1), compared
 * ignoring case: "Keep-Alive, Upgrade" keeps the connection alive. */
static int note_connection(const char *buf, struct http_span v,
			   struct http_request *req, const char **why)
{
	uint32_t p = v.off, end = v.off + v.len;
	struct http_span el;

	while (list_next(buf, &p, end, &el)) {
		if (el.len == 0)
			continue;
		if (token_len(buf, el.off, el.off + el.len) != el.len)
			return fail(why, 400, "bad Connection");
		if (http_span_ieq(buf, el, "close"))
			req->conn_close = true;
		else if (http_span_ieq(buf, el, "keep-alive"))
			req->conn_keepalive = true;
	}
	return 0;
}

static void note_expect(const char *buf, struct http_span v,
			struct http_request *req)
{
	uint32_t p = v.off, end = v.off + v.len;
	struct http_span el;

	while (list_next(buf, &p, end, &el)) {
		if (el.len == 0)
			continue;
		if (http_span_ieq(buf, el, "100-continue"))
			req->expect_continue = true;
		else
			req->expect_other = true;
	}
}

/* Reads the fields that framing and connection management depend on. */
static int note_field(const char *buf, const struct http_field *f,
		      struct http_request *req, struct head_ctx *h,
		      const char **why)
{
	if (http_span_ieq(buf, f->name, "host")) {
		if (req->nhost < UINT8_MAX)
			req->nhost++;
		req->host = f->value;
		if (!host_ok(buf, f->value))
			return fail(why, 400, "bad Host");
		return 0;
	}
	if (http_span_ieq(buf, f->name, "content-length"))
		return note_content_length(buf, f->value, req, why);
	if (http_span_ieq(buf, f->name, "transfer-encoding"))
		return note_transfer_encoding(buf, f->value, h, why);
	if (http_span_ieq(buf, f->name, "connection"))
		return note_connection(buf, f->value, req, why);
	if (http_span_ieq(buf, f->name, "expect"))
		note_expect(buf, f->value, req);
	return 0;
}

/* field-name ":" OWS field-value OWS (RFC 9112 section 5). */
static int parse_field(const char *buf, struct http_span line,
		       struct http_request *req, struct head_ctx *h,
		       const char **why)
{
	uint32_t p = line.off, end = line.off + line.len, vend;
	struct http_field *f;

	if (req->nfields == HTTP_MAX_FIELDS)
		return fail(why, 431, "too many fields");
	f = &req->fields[req->nfields];
	f->name = span(p, token_len(buf, p, end));
	p += f->name.len;
	/* Section 5.1: whitespace before the colon must be refused. */
	if (f->name.len > 0 && p < end && is_ows(buf[p]))
		return fail(why, 400, "whitespace before a colon");
	if (f->name.len == 0 || p >= end || buf[p] != ':')
		return fail(why, 400, "bad field name");
	for (p++; p < end && is_ows(buf[p]); p++)
		;
	for (vend = end; vend > p && is_ows(buf[vend - 1]); vend--)
		;
	f->value = span(p, vend - p);
	for (; p < end; p++)
		if (!is_field_char(buf[p]))
			return fail(why, 400, "bad character in a field value");
	req->nfields++;
	return note_field(buf, f, req, h, why);
}

/* What can only be judged once every field is read: Host (RFC 9112
 * section 3.2) and the body's framing (section 6.1 and 6.3). */
static int head_check(struct http_request *req, const struct head_ctx *h,
		      const char **why)
{
	if (req->nhost > 1)
		return fail(why, 400, "more than one Host");
	if (req->nhost == 0 && req->minor > 0)
		return fail(why, 400, "HTTP/1.1 without Host");
	if (!h->te)
		return 0;
	/* An HTTP/1.0 recipient may not know chunked: its framing is
	 * faulty (section 6.1), and with a Content-Length it is the
	 * classic smuggling pair (section 6.3). */
	if (req->minor == 0)
		return fail(why, 400, "Transfer-Encoding in HTTP/1.0");
	if (req->has_length)
		return fail(why, 400, "Transfer-Encoding with Content-Length");
	if (h->ncodings == 0)
		return fail(why, 400, "empty Transfer-Encoding");
	/* Section 6.1: chunked is applied once at most, so twice is broken
	 * framing, not a coding we lack: 400. Any other list, chunked last
	 * or not, names a coding we do not implement: 501, as issue 7 asks
	 * ("a Transfer-Encoding other than chunked"), where section 6.3
	 * would allow 400 for a list that does not end in chunked. Both
	 * close the connection. */
	if (h->nchunked > 1)
		return fail(why, 400, "chunked applied more than once");
	if (h->other || !h->last_chunked)
		return fail(why, 501, "Transfer-Encoding other than chunked");
	req->chunked = true;
	return 0;
}

static void request_reset(struct http_request *req)
{
	/* The field table is written as fields are found; only what comes
	 * before and after it needs clearing, not its 1.6 KB. */
	memset(req, 0, offsetof(struct http_request, fields));
	req->host = span(0, 0);
	req->nhost = 0;
	req->has_length = req->chunked = false;
	req->content_length = 0;
	req->conn_close = req->conn_keepalive = false;
	req->expect_continue = req->expect_other = false;
	req->head_len = 0;
}

int http_head_parse(const char *buf, size_t len, struct http_request *req,
		    const char **why)
{
	struct head_ctx h = { 0 };
	struct http_span line;
	uint32_t pos = 0;
	int rc;

	request_reset(req);
	if (len > HTTP_MAX_HEAD)
		return fail(why, 431, "head too large");
	do {
		if (!line_next(buf, &pos, (uint32_t)len, &line))
			return fail(why, 400, "incomplete head");
	} while (line.len == 0);
	rc = parse_request_line(buf, line, req, why);
	while (rc == 0) {
		if (!line_next(buf, &pos, (uint32_t)len, &line))
			return fail(why, 400, "incomplete head");
		if (line.len == 0)
			break;
		rc = parse_field(buf, line, req, &h, why);
	}
	if (rc != 0)
		return rc;
	if (pos != len)
		return fail(why, 400, "bytes after the head");
	rc = head_check(req, &h, why);
	if (rc == 0)
		req->head_len = (uint32_t)len;
	return rc;
}

/* The body's states. Chunked framing requires CRLF everywhere, bare LF
 * included nowhere: a disagreement between parsers about where a chunk
 * ends is a smuggled request, and no client sends anything else. */
enum {
	B_LENGTH = 1, /* Content-Length data */
	B_SIZE,	      /* chunk-size hex digits */
	B_SEMI,	      /* BWS before ";" */
	B_NAME0,      /* BWS, then the first byte of an extension name */
	B_NAME,	      /* an extension name */
	B_NAME_WS,    /* BWS after a name: "=" or ";" must follow */
	B_VAL0,	      /* BWS, then a token or a quoted string */
	B_TOKEN,      /* a token value */
	B_QUOTED,     /* inside a quoted string */
	B_QPAIR,      /* after a backslash in one */
	B_AFTER_Q,    /* after a quoted string's closing quote */
	B_SIZE_LF,    /* after the size line's CR */
	B_DATA,	      /* chunk data */
	B_DATA_CR,    /* the CRLF after chunk data */
	B_DATA_LF,
	B_TR_START, /* the start of a trailer line, or the final CRLF */
	B_TR_NAME,
	B_TR_VALUE,
	B_TR_LF,
	B_END_LF, /* the final LF */
	B_E400,
	B_E413,
	B_E431,
	B_DONE = 0xff,
};

int http_body_init(struct http_body *b, const struct http_request *req,
		   uint64_t max_body)
{
	*b = (struct http_body){ .max = max_body, .state = B_DONE };
	if (req->chunked) {
		b->state = B_SIZE;
		return 0;
	}
	if (!req->has_length)
		return 0;
	if (req->content_length > max_body)
		return 413;
	b->left = req->content_length;
	if (b->left > 0)
		b->state = B_LENGTH;
	return 0;
}

/* The state after byte c of a chunk extension (RFC 9112 section 7.1.1):
 * *( BWS ";" BWS name [ BWS "=" BWS ( token / quoted-string ) ] ).
 * B_E400 when c does not fit; CR is the caller's. */
static uint8_t ext_next(uint8_t st, unsigned char c)
{
	bool ws = is_ows(c), t = is_tchar(c);

	switch (st) {
	case B_SEMI:
		return ws ? B_SEMI : c == ';' ? B_NAME0 : B_E400;
	case B_NAME0:
		return ws ? B_NAME0 : t ? B_NAME : B_E400;
	case B_NAME:
	case B_NAME_WS:
		if (c == ';' || c == '=')
			return c == ';' ? B_NAME0 : B_VAL0;
		return ws ? B_NAME_WS : t && st == B_NAME ? B_NAME : B_E400;
	case B_VAL0:
		return ws ? B_VAL0 : c == '"' ? B_QUOTED : t ? B_TOKEN : B_E400;
	case B_TOKEN:
	case B_AFTER_Q:
		if (c == ';' || ws)
			return c == ';' ? B_NAME0 : B_SEMI;
		return t && st == B_TOKEN ? B_TOKEN : B_E400;
	case B_QUOTED:
		if (c == '"' || c == '\\')
			return c == '"' ? B_AFTER_Q : B_QPAIR;
		return is_field_char(c) ? B_QUOTED : B_E400;
	case B_QPAIR:
		return is_field_char(c) ? B_QUOTED : B_E400;
	}
	return B_E400;
}

static int64_t body_fail(struct http_body *b, int status)
{
	b->state = status == 413 ? B_E413 : status == 431 ? B_E431 : B_E400;
	return -status;
}

/* A byte of the chunk-size line. The size is kept in b->left as it is
 * read; the line's length in b->line. */
static int64_t size_line_byte(struct http_body *b, unsigned char c)
{
	int d = hex_value(c);

	if (b->state == B_SIZE && d < 0 && b->line == 0)
		return body_fail(b, 400); /* a size line without a digit */
	if (c != '\r' && ++b->line > HTTP_MAX_FIELD)
		return body_fail(b, 431);
	if (b->state == B_SIZE && d >= 0) {
		/* No more than 2^60: far past any max_body, and the
		 * arithmetic on it cannot overflow. */
		if (b->left > ((UINT64_C(1) << 60) - (unsigned)d) / 16)
			return body_fail(b, 400);
		b->left = b->left * 16 + (unsigned)d;
		return 0;
	}
	if (c == '\r') {
		if (b->state != B_SIZE && b->state != B_NAME &&
		    b->state != B_TOKEN && b->state != B_AFTER_Q)
			return body_fail(b, 400);
		b->state = B_SIZE_LF;
		return 0;
	}
	if (b->state == B_SIZE) {
		/* After the size only BWS ";" may follow, as after a value. */
		if (c != ';' && !is_ows(c))
			return body_fail(b, 400);
		b->state = c == ';' ? B_NAME0 : B_SEMI;
		return 0;
	}
	b->state = ext_next(b->state, c);
	return b->state == B_E400 ? body_fail(b, 400) : 0;
}

/* The size line ended: data follows, or the trailers after "0". */
static int64_t size_line_end(struct http_body *b)
{
	b->line = 0;
	if (b->left == 0) {
		b->state = B_TR_START;
		return 0;
	}
	if (b->left > b->max - b->total)
		return body_fail(b, 413);
	b->state = B_DATA;
	return 0;
}

/* A byte of the trailer section: field lines, then CRLF (section 7.1.2).
 * Trailers are checked and discarded; nothing in them is believed. */
static int64_t trailer_byte(struct http_body *b, unsigned char c)
{
	if (++b->trailer > HTTP_MAX_HEAD)
		return body_fail(b, 431);
	switch (b->state) {
	case B_TR_START:
		if (c == '\r')
			b->state = B_END_LF;
		else if (is_tchar(c))
			b->state = B_TR_NAME;
		else
			return body_fail(b, 400);
		return 0;
	case B_TR_NAME:
		if (c == ':')
			b->state = B_TR_VALUE;
		else if (!is_tchar(c))
			return body_fail(b, 400);
		return 0;
	case B_TR_VALUE:
		if (c == '\r')
			b->state = B_TR_LF;
		else if (!is_field_char(c))
			return body_fail(b, 400);
		return 0;
	case B_TR_LF:
		if (c != '\n')
			return body_fail(b, 400);
		b->state = B_TR_START;
		return 0;
	default: /* B_END_LF */
		if (c != '\n')
			return body_fail(b, 400);
		b->state = B_DONE;
		return 0;
	}
}

/* One byte of chunked framing outside chunk data. */
static int64_t chunk_byte(struct http_body *b, unsigned char c)
{
	switch (b->state) {
	case B_SIZE_LF:
		if (c != '\n')
			return body_fail(b, 400);
		return size_line_end(b);
	case B_DATA_CR:
		if (c != '\r')
			return body_fail(b, 400);
		b->state = B_DATA_LF;
		return 0;
	case B_DATA_LF:
		if (c != '\n')
			return body_fail(b, 400);
		b->state = B_SIZE;
		return 0;
	case B_TR_START:
	case B_TR_NAME:
	case B_TR_VALUE:
	case B_TR_LF:
	case B_END_LF:
		return trailer_byte(b, c);
	default:
		return size_line_byte(b, c);
	}
}

int64_t http_body_feed(struct http_body *b, const char *buf, size_t len)
{
	size_t i = 0, n;
	int64_t rc;

	if (b->state >= B_E400 && b->state <= B_E431)
		return b->state == B_E413   ? -413
		       : b->state == B_E431 ? -431
					    : -400;
	while (i < len && b->state != B_DONE) {
		if (b->state == B_LENGTH || b->state == B_DATA) {
			/* Data is skipped in one step, not byte by byte. */
			n = len - i < b->left ? len - i : (size_t)b->left;
			i += n;
			b->left -= n;
			b->total += n;
			if (b->left == 0)
				b->state = b->state == B_LENGTH ? B_DONE
								: B_DATA_CR;
			continue;
		}
		rc = chunk_byte(b, (unsigned char)buf[i++]);
		if (rc < 0)
			return rc;
	}
	return (int64_t)i;
}
