/* Parsing and formatting of listen addresses. Only numeric hosts: resolving
 * names would make start-up depend on DNS and bind to whatever it answered. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_value.h"
#include "listen_addr.h"

static int port_parse(const char *s, const char *whole, struct listen_addr *a,
		      char *err, size_t errlen)
{
	char why[64];
	int64_t port;

	if (*s == '\0') {
		snprintf(err, errlen, "missing port in '%s'", whole);
		return -1;
	}
	/* conf_parse_int() would take a sign; a port is digits only. */
	if (!isdigit((unsigned char)*s) ||
	    conf_parse_int(s, 0, 65535, &port, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "bad port '%s' in '%s' (0..65535)", s,
			 whole);
		return -1;
	}
	if (a->ss.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&a->ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)&a->ss)->sin_port = htons(port);
	return 0;
}

static void addr_set6(struct listen_addr *a, const struct in6_addr *ip)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = *ip;
	a->sslen = sizeof(*sin6);
}

/* HOST:PORT after the scheme. */
static int hostport_parse(const char *hp, const char *whole,
			  struct listen_addr *a, char *err, size_t errlen)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
	bool v6 = hp[0] == '[';
	const char *h = hp + v6, *end, *port;
	char host[INET6_ADDRSTRLEN + 2];
	struct in6_addr ip6;

	end = v6 ? strchr(h, ']') : strrchr(h, ':');
	if (end == NULL)
		end = h + strlen(h);
	port = *end == ']' ? end + 1 : end;
	if (v6 && *end == ']' && *port != ':' && *port != '\0') {
		snprintf(err, errlen, "expected ':' after ']' in '%s'", whole);
		return -1;
	}
	if ((v6 && *end != ']') || (*port != ':' && *port != '\0') ||
	    (size_t)(end - h) >= sizeof(host))
		goto bad;
	memcpy(host, h, end - h);
	host[end - h] = '\0';
	port += *port == ':';
	if (v6 && inet_pton(AF_INET6, host, &ip6) == 1) {
		addr_set6(a, &ip6);
	} else if (!v6 && strcmp(host, "*") == 0) {
		a->any = true;
		addr_set6(a, &in6addr_any);
	} else if (!v6 && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		a->sslen = sizeof(*sin);
	} else if (!v6 && strchr(host, ':') != NULL) {
		snprintf(err, errlen, "IPv6 address needs brackets: '%s' "
			 "(e.g. tcp://[::1]:7)", host);
		return -1;
	} else {
		goto bad;
	}
	return port_parse(port, whole, a, err, errlen);
bad:
	snprintf(err, errlen, "not a numeric address: '%.*s' "
		 "(use 127.0.0.1 or [::1])", (int)(end - h), h);
	return -1;
}

int listen_addr_parse(const char *s, struct listen_addr *out, char *err,
		      size_t errlen)
{
	size_t len;

	memset(out, 0, sizeof(*out));
	if (strncmp(s, "tcp://", 6) == 0 || strncmp(s, "udp://", 6) == 0) {
		out->kind = s[0] == 't' ? LISTEN_TCP : LISTEN_UDP;
		return hostport_parse(s + 6, s, out, err, errlen);
	}
	if (strncmp(s, "unix:", 5) != 0) {
		snprintf(err, errlen, "not a listen address: '%s' (use "
			 "tcp://HOST:PORT, udp://HOST:PORT or unix:PATH)", s);
		return -1;
	}
	out->kind = LISTEN_UNIX;
	len = strlen(s + 5);
	if (len == 0) {
		snprintf(err, errlen, "missing path in '%s'", s);
		return -1;
	}
	if (len >= sizeof(out->path)) {
		snprintf(err, errlen, "unix socket path too long: %zu "
			 "characters (max %zu)", len, sizeof(out->path) - 1);
		return -1;
	}
	memcpy(out->path, s + 5, len + 1);
	return 0;
}

int listen_addr_each(const char *text, listen_addr_fn fn, void *arg)
{
	char *copy = strdup(text), *tok, *save = NULL, why[512];
	struct listen_addr a;
	int n = 0, stop = 0;

	if (copy == NULL)
		return -ENOMEM;
	for (tok = strtok_r(copy, ", \t\n", &save); tok != NULL && !stop;
	     tok = strtok_r(NULL, ", \t\n", &save)) {
		n++;
		if (listen_addr_parse(tok, &a, why, sizeof(why)) < 0)
			stop = fn(NULL, why, arg);
		else
			stop = fn(&a, NULL, arg);
	}
	free(copy);
	return n;
}

void listen_addr_format(const struct listen_addr *a, char *buf, size_t len)
{
	const char *scheme = a->kind == LISTEN_TCP ? "tcp" : "udp";
	const struct sockaddr_in6 *sin6 = (const void *)&a->ss;
	const struct sockaddr_in *sin = (const void *)&a->ss;
	char host[INET6_ADDRSTRLEN];

	if (a->kind == LISTEN_UNIX) {
		snprintf(buf, len, "unix:%s", a->path);
	} else if (a->ss.ss_family == AF_INET6) {
		if (a->any)
			snprintf(host, sizeof(host), "*");
		else
			inet_ntop(AF_INET6, &sin6->sin6_addr, host,
				  sizeof(host));
		snprintf(buf, len, a->any ? "%s://%s:%u" : "%s://[%s]:%u",
			 scheme, host, ntohs(sin6->sin6_port));
	} else {
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s://%s:%u", scheme, host,
			 ntohs(sin->sin_port));
	}
}

bool listen_addr_same(const struct listen_addr *a, const struct listen_addr *b)
{
	if (a->kind != b->kind)
		return false;
	if (a->kind == LISTEN_UNIX)
		return strcmp(a->path, b->path) == 0;
	/* The parser zeroes the whole address first, so padding compares
	 * equal too. */
	return a->any == b->any && a->sslen == b->sslen &&
	       memcmp(&a->ss, &b->ss, a->sslen) == 0;
}
