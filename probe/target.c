/* Target URLs: scheme, host (name, IPv4, [IPv6]), port, path. Resolution
 * is left to check.c. */
#include "probe/target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct scheme {
	const char *name;
	enum probe_proto proto;
	bool udp;
	const char *port;
};

/* The well-known ports: echo 7, discard 9, daytime 13, qotd 17,
 * chargen 19, time 37, http 80. */
static const struct scheme schemes[] = {
	{ "echo", PROBE_ECHO, false, "7" },
	{ "echo+udp", PROBE_ECHO, true, "7" },
	{ "daytime", PROBE_DAYTIME, false, "13" },
	{ "daytime+udp", PROBE_DAYTIME, true, "13" },
	{ "time", PROBE_TIME, false, "37" },
	{ "time+udp", PROBE_TIME, true, "37" },
	{ "qotd", PROBE_QOTD, false, "17" },
	{ "qotd+udp", PROBE_QOTD, true, "17" },
	{ "discard", PROBE_DISCARD, false, "9" },
	{ "chargen", PROBE_CHARGEN, false, "19" },
	{ "http", PROBE_HTTP, false, "80" },
};

const char *probe_proto_name(enum probe_proto p)
{
	static const char *const names[] = {
		[PROBE_ECHO] = "echo",	     [PROBE_DAYTIME] = "daytime",
		[PROBE_TIME] = "time",	     [PROBE_QOTD] = "qotd",
		[PROBE_DISCARD] = "discard", [PROBE_CHARGEN] = "chargen",
		[PROBE_HTTP] = "http",
	};
	return names[p];
}

static const struct scheme *scheme_find(const char *s, size_t n)
{
	for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
		if (strlen(schemes[i].name) == n &&
		    strncasecmp(schemes[i].name, s, n) == 0)
			return &schemes[i];
	return NULL;
}

static int parse_port(const char *s, size_t n, char *out)
{
	unsigned long v = 0;

	if (n == 0 || n > 5)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	snprintf(out, 8, "%lu", v);
	return 0;
}

static bool host_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

/* Splits "HOST[:PORT]" (or "[V6][:PORT]") of length n into t. */
static int parse_authority(struct probe_target *t, const char *s, size_t n,
			   const char **why)
{
	const char *hend, *port = NULL;
	const char *h = s;

	if (n > 0 && s[0] == '[') {
		hend = memchr(s, ']', n);
		if (!hend || hend == s + 1)
			return *why = "bad [IPv6] address", -EINVAL;
		h = s + 1;
		if (hend + 1 < s + n) {
			if (hend[1] != ':')
				return *why = "junk after ']'", -EINVAL;
			port = hend + 2;
		}
		for (const char *p = h; p < hend; p++)
			if (!strchr("0123456789abcdefABCDEF:.", *p))
				return *why = "bad [IPv6] address", -EINVAL;
	} else {
		hend = memchr(s, ':', n);
		if (hend)
			port = hend + 1;
		else
			hend = s + n;
		for (const char *p = h; p < hend; p++)
			if (!host_char_ok(*p))
				return *why = "bad character in host", -EINVAL;
	}
	if (hend == h)
		return *why = "missing host", -EINVAL;
	if ((size_t)(hend - h) >= sizeof(t->host))
		return *why = "host name too long", -EINVAL;
	memcpy(t->host, h, (size_t)(hend - h));
	t->host[hend - h] = '\0';
	if (port && parse_port(port, (size_t)(s + n - port), t->port) < 0)
		return *why = "bad port (1-65535)", -EINVAL;
	return 0;
}

static int parse_path(struct probe_target *t, const char *p, const char **why)
{
	if (t->proto != PROBE_HTTP) {
		if (*p && strcmp(p, "/") != 0)
			return *why = "only http:// takes a path", -EINVAL;
		return 0;
	}
	if (!*p)
		p = "/";
	if (strlen(p) >= sizeof(t->path))
		return *why = "path too long", -EINVAL;
	for (const char *c = p; *c; c++)
		if ((unsigned char)*c <= ' ' || *c == 0x7f)
			return *why = "blank or control character in path",
			       -EINVAL;
	strcpy(t->path, p);
	return 0;
}

int probe_target_parse(struct probe_target *t, const char *url,
		       const char **why)
{
	const char *sep = strstr(url, "://");
	const struct scheme *sc;
	const char *auth, *slash;

	memset(t, 0, sizeof(*t));
	if (strlen(url) >= sizeof(t->url))
		return *why = "URL too long", -EINVAL;
	strcpy(t->url, url);
	if (!sep)
		return *why = "not a URL (SCHEME://HOST[:PORT])", -EINVAL;
	sc = scheme_find(url, (size_t)(sep - url));
	if (!sc)
		return *why = "unknown scheme", -EINVAL;
	t->proto = sc->proto;
	t->udp = sc->udp;
	strcpy(t->port, sc->port);
	auth = sep + 3;
	slash = strchr(auth, '/');
	if (!slash)
		slash = auth + strlen(auth);
	if (memchr(auth, '@', (size_t)(slash - auth)))
		return *why = "user info is not supported", -EINVAL;
	if (parse_authority(t, auth, (size_t)(slash - auth), why) < 0)
		return -EINVAL;
	return parse_path(t, slash, why);
}

void probe_target_hostport(const struct probe_target *t, char *out,
			   size_t size)
{
	if (strchr(t->host, ':'))
		snprintf(out, size, "[%s]:%s", t->host, t->port);
	else
		snprintf(out, size, "%s:%s", t->host, t->port);
}
