/* What ringd-probe checks: a target URL parsed into protocol, transport,
 * host, port and (HTTP) path. Parsing only; resolution happens in check.c.
 * The --config mode (another issue) builds the same structs. */
#ifndef RINGD_PROBE_TARGET_H
#define RINGD_PROBE_TARGET_H

#include <stdbool.h>
#include <stddef.h>

enum probe_proto {
	PROBE_ECHO,
	PROBE_DAYTIME,
	PROBE_TIME,
	PROBE_QOTD,
	PROBE_DISCARD,
	PROBE_CHARGEN,
	PROBE_HTTP,
};

#define PROBE_HOST_MAX 256
#define PROBE_PATH_MAX 2048
#define PROBE_URL_MAX (PROBE_HOST_MAX + PROBE_PATH_MAX + 32)

struct probe_target {
	enum probe_proto proto;
	bool udp;
	char host[PROBE_HOST_MAX]; /* without the brackets of [IPv6] */
	char port[8];              /* decimal, the well-known one if omitted */
	char path[PROBE_PATH_MAX]; /* HTTP: starts with '/'; else empty */
	/* --unix PATH: connect there instead of host:port (stream only) */
	char unix_path[108];
	char url[PROBE_URL_MAX]; /* as given, for output */
};

/* Parses url into *t. Schemes: echo, daytime, time, qotd, with an
 * optional "+udp"; discard, chargen; http. HOST is a name, an IPv4
 * address or [IPv6]; ":PORT" (1..65535) is optional; only http takes a
 * path (default "/"), the others at most a trailing "/". Returns 0, or
 * -EINVAL and a static reason in *why (unknown scheme, bad port...). */
int probe_target_parse(struct probe_target *t, const char *url,
		       const char **why);

/* The protocol's name as in the scheme ("echo"...). */
const char *probe_proto_name(enum probe_proto p);

/* "host:port" for messages, with brackets around an IPv6 literal. */
void probe_target_hostport(const struct probe_target *t, char *out,
			   size_t size);

#endif
