/* Routes of the http plugin: one `route =` line parsed into what a match
 * answers, its body file read at check time (start and reload) and kept,
 * so a file removed later keeps being served as loaded. Matching is by
 * path only, never by query; exact paths first, then prefixes in file
 * order. Knows no connection and no host. */
#ifndef RINGD_HTTP_ROUTE_H
#define RINGD_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

/* A body file larger than this is a mistake for a probe responder. */
#define ROUTE_MAX_BODY (1 << 20)

struct http_route {
	char *pattern;   /* as written, a final star included; the metrics label */
	size_t path_len; /* bytes of pattern that match (without the '*') */
	bool prefix;     /* pattern ended in '*' */
	bool reflect;    /* answer with the request itself */
	int status;
	char *type;      /* Content-Type */
	char *headers;   /* "Name: value\r\n"..., validated */
	size_t headers_len;
	char *body;
	size_t body_len;
};

/* Parses one route line into *r (zeroed first). Returns 0, or -1 with a
 * message in err (nothing to free then). */
int route_parse(const char *line, struct http_route *r, char *err,
		size_t errlen);
void route_free(struct http_route *r);

/* Whether s[0, n) is a path a route or endpoint may name: '/' first,
 * then visible ASCII other than '?' and '#'; with star, a final '*'
 * is allowed too. */
bool route_path_valid(const char *s, size_t n, bool star);

/* Whether v[0, n) may be a field value: no CR, LF, NUL or other
 * control but HTAB, no blank first or last. */
bool route_value_valid(const char *v, size_t n);

/* The route for path[0, len) among r[0, n), or NULL. */
const struct http_route *route_match(const struct http_route *r, size_t n,
				     const char *path, size_t len);

#endif
