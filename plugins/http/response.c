/* Response rendering: see response.h. The reason table is the contract
 * for which statuses a route may use. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "response.h"

char *hbuf_reserve(struct hbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return NULL;
	if (b->cap - b->len >= n)
		return b->p + b->len;
	cap = b->cap ? b->cap : 512;
	while (cap - b->len < n) {
		if (cap > SIZE_MAX / 2) {
			b->oom = true;
			return NULL;
		}
		cap *= 2;
	}
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return NULL;
	}
	b->p = p;
	b->cap = cap;
	return b->p + b->len;
}

void hbuf_put(struct hbuf *b, const void *s, size_t n)
{
	char *d = hbuf_reserve(b, n);

	if (!d)
		return;
	memcpy(d, s, n);
	b->len += n;
}

void hbuf_puts(struct hbuf *b, const char *s)
{
	hbuf_put(b, s, strlen(s));
}

void hbuf_printf(struct hbuf *b, const char *fmt, ...)
{
	va_list ap;
	char *d;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !(d = hbuf_reserve(b, (size_t)n + 1)))
		return;
	va_start(ap, fmt);
	vsnprintf(d, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void hbuf_reset(struct hbuf *b, size_t keep)
{
	b->len = 0;
	b->oom = false;
	if (b->cap > keep) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

void hbuf_free(struct hbuf *b)
{
	free(b->p);
	*b = (struct hbuf){ 0 };
}

/* RFC 9110 section 15 and the IANA registry's common extensions. 1xx are
 * here for the 100 Continue we send; routes refuse them. */
static const struct {
	short status;
	const char *reason;
} reasons[] = {
	{ 100, "Continue" },
	{ 200, "OK" }, { 201, "Created" }, { 202, "Accepted" },
	{ 203, "Non-Authoritative Information" }, { 204, "No Content" },
	{ 205, "Reset Content" },
	{ 300, "Multiple Choices" }, { 301, "Moved Permanently" },
	{ 302, "Found" }, { 303, "See Other" }, { 307, "Temporary Redirect" },
	{ 308, "Permanent Redirect" },
	{ 400, "Bad Request" }, { 401, "Unauthorized" },
	{ 402, "Payment Required" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 406, "Not Acceptable" }, { 408, "Request Timeout" },
	{ 409, "Conflict" }, { 410, "Gone" }, { 411, "Length Required" },
	{ 412, "Precondition Failed" }, { 413, "Content Too Large" },
	{ 414, "URI Too Long" }, { 415, "Unsupported Media Type" },
	{ 417, "Expectation Failed" }, { 418, "I'm a teapot" },
	{ 421, "Misdirected Request" }, { 422, "Unprocessable Content" },
	{ 425, "Too Early" }, { 426, "Upgrade Required" },
	{ 428, "Precondition Required" }, { 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 451, "Unavailable For Legal Reasons" },
	{ 500, "Internal Server Error" }, { 501, "Not Implemented" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 505, "HTTP Version Not Supported" },
	{ 507, "Insufficient Storage" }, { 511, "Network Authentication Required" },
};

const char *http_reason(int status)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return NULL;
}

static void put2(char *d, int v)
{
	d[0] = (char)('0' + v / 10);
	d[1] = (char)('0' + v % 10);
}

void http_date_format(int64_t unix_sec, char out[HTTP_DATE_LEN + 1])
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed",
					 "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
					    "May", "Jun", "Jul", "Aug",
					    "Sep", "Oct", "Nov", "Dec" };
	time_t t = (time_t)unix_sec;
	struct tm tm;

	/* gmtime_r, not strftime: %a and %b follow the locale. */
	if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 ||
	    tm.tm_year + 1900 < 0) {
		memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", HTTP_DATE_LEN + 1);
		return;
	}
	/* Written digit by digit: fixed width by construction. */
	memcpy(out, days[tm.tm_wday], 3);
	memcpy(out + 3, ", 00 ", 5);
	put2(out + 5, tm.tm_mday);
	memcpy(out + 8, months[tm.tm_mon], 3);
	out[11] = ' ';
	put2(out + 12, (tm.tm_year + 1900) / 100);
	put2(out + 14, (tm.tm_year + 1900) % 100);
	memcpy(out + 16, " 00:00:00 GMT", 14);
	put2(out + 17, tm.tm_hour);
	put2(out + 20, tm.tm_min);
	put2(out + 23, tm.tm_sec);
}

size_t http_head_render(struct hbuf *b, const struct http_head_spec *s)
{
	size_t date_off;

	hbuf_printf(b, "HTTP/1.1 %d %s\r\n", s->status, http_reason(s->status));
	if (s->server && s->server[0])
		hbuf_printf(b, "Server: %s\r\n", s->server);
	hbuf_puts(b, "Date: ");
	date_off = b->len;
	hbuf_put(b, s->date, HTTP_DATE_LEN);
	hbuf_puts(b, "\r\n");
	if (s->type)
		hbuf_printf(b, "Content-Type: %s\r\n", s->type);
	if (s->length)
		hbuf_printf(b, "Content-Length: %llu\r\n",
			    (unsigned long long)s->body_len);
	if (s->allow)
		hbuf_printf(b, "Allow: %s\r\n", s->allow);
	if (s->no_store)
		hbuf_puts(b, "Cache-Control: no-store\r\n");
	if (s->extra_len)
		hbuf_put(b, s->extra, s->extra_len);
	return date_off;
}

void http_head_end(struct hbuf *b, enum http_conn_mode mode)
{
	if (mode == HTTP_CONN_KEEPALIVE)
		hbuf_puts(b, "Connection: keep-alive\r\n\r\n");
	else if (mode == HTTP_CONN_CLOSE)
		hbuf_puts(b, "Connection: close\r\n\r\n");
	else
		hbuf_puts(b, "\r\n");
}
