/* Route syntax, validation and matching: see route.h and doc/http.md.
 *
 *   route = PATH [STATUS] [reflect] [type=T] [header="N: V"]... [body=".."|file=F]
 *
 * Words are separated by blanks; a value may be double-quoted, and inside
 * quotes \n \r \t \\ \" and \xHH escapes are read. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "response.h"
#include "route.h"

/* One word of the line, unquoted and unescaped, NUL-terminated (a NUL
 * written as \x00 is refused where it matters, through has_nul). */
struct word {
	char key[16];   /* before '=', or "" for a bare word */
	struct hbuf val;
	bool has_nul;
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 0x20);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads a quoted value after its opening quote; *pp ends past the
 * closing one. */
static int word_quoted(const char **pp, struct word *w, char *err,
		       size_t errlen)
{
	const char *p = *pp;
	char c;

	for (; *p && *p != '"'; p++) {
		c = *p;
		if (c == '\\') {
			p++;
			switch (*p) {
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			case '\\': c = '\\'; break;
			case '"': c = '"'; break;
			case 'x':
				if (hexval(p[1]) < 0 || hexval(p[2]) < 0)
					return fail(err, errlen, "\\x needs two "
						    "hex digits");
				c = (char)(hexval(p[1]) * 16 + hexval(p[2]));
				p += 2;
				break;
			default:
				return fail(err, errlen, "unknown escape \\%c "
					    "(use \\n \\r \\t \\\\ \\\" \\xHH)",
					    *p ? *p : ' ');
			}
			w->has_nul |= c == '\0';
		}
		hbuf_put(&w->val, &c, 1);
	}
	if (*p != '"')
		return fail(err, errlen, "unterminated quote");
	*pp = p + 1;
	if (**pp && **pp != ' ' && **pp != '\t')
		return fail(err, errlen, "a blank must follow a closing quote");
	return 0;
}

/* Reads the next word at *pp; returns 1 for a word, 0 at the end. */
static int word_next(const char **pp, struct word *w, char *err,
		     size_t errlen)
{
	const char *p = *pp + strspn(*pp, " \t"), *eq;
	size_t n;

	hbuf_reset(&w->val, 4096);
	w->key[0] = '\0';
	w->has_nul = false;
	if (!*p)
		return 0;
	n = strcspn(p, " \t\"=");
	eq = p[n] == '=' ? p + n : NULL;
	if (eq) {
		if (n == 0 || n >= sizeof(w->key))
			return fail(err, errlen, "bad option near \"%.20s\"", p);
		memcpy(w->key, p, n);
		w->key[n] = '\0';
		p = eq + 1;
	}
	if (*p == '"') {
		p++;
		if (word_quoted(&p, w, err, errlen) < 0)
			return -1;
	} else {
		n = strcspn(p, " \t\"");
		if (p[n] == '"')
			return fail(err, errlen, "a quote may only start a value");
		hbuf_put(&w->val, p, n);
		p += n;
	}
	hbuf_put(&w->val, "", 1);
	w->val.len--;
	*pp = p;
	return w->val.oom ? fail(err, errlen, "out of memory") : 1;
}

bool route_path_valid(const char *s, size_t n, bool star)
{
	if (n == 0 || s[0] != '/')
		return false;
	for (size_t i = 1; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '*' && star && i == n - 1)
			continue;
		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '*')
			return false;
	}
	return true;
}

static bool is_tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* A field value may hold visible ASCII, obs-text, blanks inside; never
 * CR, LF, NUL or another control: configured text must not be able to
 * end a header line. */
bool route_value_valid(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return n == 0 || (v[0] != ' ' && v[0] != '\t' && v[n - 1] != ' ' &&
			  v[n - 1] != '\t');
}

/* Fields the plugin writes itself: a second copy would contradict it. */
static const char *const own_fields[] = {
	"content-length", "content-type", "date", "server", "connection",
	"transfer-encoding", "keep-alive", "upgrade", "trailer", "te", NULL
};

static int route_header(struct http_route *r, const struct word *w,
			char *err, size_t errlen)
{
	const char *s = w->val.p, *colon = memchr(s, ':', w->val.len);
	size_t nlen = colon ? (size_t)(colon - s) : 0;
	const char *v = colon ? colon + 1 + strspn(colon + 1, " \t") : NULL;
	struct hbuf b = { .p = r->headers, .len = r->headers_len,
			  .cap = r->headers_len };

	if (w->has_nul || !colon || nlen == 0)
		return fail(err, errlen, "header=\"Name: value\" needed");
	for (size_t i = 0; i < nlen; i++)
		if (!is_tchar((unsigned char)s[i]))
			return fail(err, errlen, "header name \"%.*s\" is not "
				    "a token", (int)nlen, s);
	if (!route_value_valid(v, w->val.len - (size_t)(v - s)))
		return fail(err, errlen, "header %.*s: value holds a control "
			    "character (CR, LF, NUL...) or trailing blank",
			    (int)nlen, s);
	for (size_t i = 0; own_fields[i]; i++)
		if (strlen(own_fields[i]) == nlen &&
		    strncasecmp(own_fields[i], s, nlen) == 0)
			return fail(err, errlen, "header %.*s is the plugin's "
				    "own%s", (int)nlen, s,
				    i == 1 ? " (use type=)" : "");
	hbuf_put(&b, s, nlen);
	hbuf_puts(&b, ": ");
	hbuf_puts(&b, v);
	hbuf_puts(&b, "\r\n");
	r->headers = b.p;
	r->headers_len = b.len;
	return b.oom ? fail(err, errlen, "out of memory") : 0;
}

/* Relative names are taken from the current directory: the daemon
 * resolves RINGD_KEY_PATH keys against the INI file, not words inside a
 * list item. O_NONBLOCK: a FIFO must fail the S_ISREG test, not hang. */
static int route_file(struct http_route *r, const char *path, char *err,
		      size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st = { 0 };
	size_t got = 0;
	ssize_t n = 1;

	if (fd < 0)
		return fail(err, errlen, "file %s: %s", path, strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > ROUTE_MAX_BODY) {
		close(fd);
		return fail(err, errlen, "file %s: %s", path,
			    !S_ISREG(st.st_mode) ? "not a regular file"
						 : "larger than 1 MiB");
	}
	r->body = malloc((size_t)st.st_size + 1);
	while (r->body && got < (size_t)st.st_size && n > 0) {
		n = read(fd, r->body + got, (size_t)st.st_size - got);
		got += n > 0 ? (size_t)n : 0;
	}
	close(fd);
	if (!r->body || n < 0)
		return fail(err, errlen, "file %s: %s", path,
			    r->body ? strerror(errno) : "out of memory");
	r->body_len = got;
	return 0;
}

static int route_status(struct http_route *r, const char *s, char *err,
			size_t errlen)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (*end || end - s != 3 || v < 200 || v > 599 || v == 304 ||
	    !http_reason((int)v))
		return fail(err, errlen, "status %s: not one a route can "
			    "answer (200-599 with a registered reason "
			    "phrase, 304 excepted)", s);
	r->status = (int)v;
	return 0;
}

static int route_option(struct http_route *r, const struct word *w,
			bool *bodyset, char *err, size_t errlen)
{
	const char *k = w->key;

	if (strcmp(k, "header") == 0)
		return route_header(r, w, err, errlen);
	if (strcmp(k, "type") == 0) {
		if (r->type)
			return fail(err, errlen, "type= given twice");
		if (w->has_nul || w->val.len == 0 ||
		    !route_value_valid(w->val.p, w->val.len))
			return fail(err, errlen, "type= needs a media type "
				    "without control characters");
		r->type = strdup(w->val.p);
		return r->type ? 0 : fail(err, errlen, "out of memory");
	}
	if (strcmp(k, "body") != 0 && strcmp(k, "file") != 0)
		return fail(err, errlen, "unknown option %s= (type=, header=, "
			    "body=, file=)", k);
	if (*bodyset || r->reflect)
		return fail(err, errlen, "%s: only one of body=, file= or "
			    "reflect", k);
	*bodyset = true;
	if (k[0] == 'f')
		return w->has_nul || !w->val.len
			       ? fail(err, errlen, "file= needs a file name")
			       : route_file(r, w->val.p, err, errlen);
	r->body = malloc(w->val.len + 1);
	if (!r->body)
		return fail(err, errlen, "out of memory");
	memcpy(r->body, w->val.p, w->val.len);
	r->body_len = w->val.len;
	return 0;
}

/* The bare words after the path: a status and the reflect kind. */
static int route_word(struct http_route *r, const struct word *w,
		      bool bodyset, char *err, size_t errlen)
{
	if (strcmp(w->val.p, "reflect") == 0) {
		if (r->reflect || bodyset)
			return fail(err, errlen, "reflect: only one of body=, "
				    "file= or reflect");
		r->reflect = true;
		return 0;
	}
	if (w->val.p[0] >= '0' && w->val.p[0] <= '9') {
		if (r->status)
			return fail(err, errlen, "a second status %s",
				    w->val.p);
		return route_status(r, w->val.p, err, errlen);
	}
	return fail(err, errlen, "unknown word \"%.40s\" (a status, reflect, "
		    "or an option such as type=)", w->val.p);
}

static int route_path(struct http_route *r, const struct word *w, char *err,
		      size_t errlen)
{
	if (w->key[0] || w->has_nul ||
	    !route_path_valid(w->val.p, w->val.len, true))
		return fail(err, errlen, "a route starts with its path: '/' "
			    "then visible ASCII without ? or #, a final * "
			    "for a prefix");
	r->pattern = strdup(w->val.p);
	if (!r->pattern)
		return fail(err, errlen, "out of memory");
	r->prefix = w->val.p[w->val.len - 1] == '*';
	r->path_len = w->val.len - r->prefix;
	return 0;
}

int route_parse(const char *line, struct http_route *r, char *err,
		size_t errlen)
{
	struct word w = { 0 };
	bool bodyset = false;
	int rc;

	*r = (struct http_route){ 0 };
	rc = word_next(&line, &w, err, errlen);
	if (rc == 0)
		rc = fail(err, errlen, "empty route (a path, then what it "
			  "answers)");
	if (rc > 0)
		rc = route_path(r, &w, err, errlen);
	while (rc >= 0 && (rc = word_next(&line, &w, err, errlen)) > 0)
		rc = w.key[0] ? route_option(r, &w, &bodyset, err, errlen)
			      : route_word(r, &w, bodyset, err, errlen);
	if (rc == 0 && !r->status)
		r->status = 200;
	if (rc == 0 && r->status == 204 && (r->body_len || r->reflect))
		rc = fail(err, errlen, "204 has no body");
	if (rc == 0 && r->reflect && r->type)
		rc = fail(err, errlen, "reflect picks its own type (text or "
			  "JSON)");
	if (rc == 0 && !r->type && r->status != 204 && !r->reflect)
		rc = (r->type = strdup("text/plain")) ? 0 :
			fail(err, errlen, "out of memory");
	hbuf_free(&w.val);
	if (rc < 0)
		route_free(r);
	return rc < 0 ? -1 : 0;
}

void route_free(struct http_route *r)
{
	free(r->pattern);
	free(r->type);
	free(r->headers);
	free(r->body);
	*r = (struct http_route){ 0 };
}

static bool route_hit(const struct http_route *r, const char *path,
		      size_t len)
{
	return r->prefix ? len >= r->path_len &&
				   memcmp(r->pattern, path, r->path_len) == 0
			 : len == r->path_len &&
				   memcmp(r->pattern, path, len) == 0;
}

const struct http_route *route_match(const struct http_route *r, size_t n,
				     const char *path, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (!r[i].prefix && route_hit(&r[i], path, len))
			return &r[i];
	for (size_t i = 0; i < n; i++)
		if (r[i].prefix && route_hit(&r[i], path, len))
			return &r[i];
	return NULL;
}
