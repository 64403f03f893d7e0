/* ringd-probe --config: from a ringd.ini to probe targets. conf_ini.c
 * reads and syntax-checks the file, listen_addr.c parses each listen
 * entry, and this file maps every service's plugin and listeners to the
 * URL that checks them. */
#include "probe/selfcheck.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/conf_ini.h"
#include "daemon/conf_value.h"
#include "daemon/listen_addr.h"

struct reader {
	struct conf_errlog log;
	struct selfcheck *out;
	size_t cap;
};

/* What one service is checked with; scheme NULL: nothing checks it. */
struct service {
	struct conf_section *sec;
	const char *scheme;
	bool udp_ok;	  /* the protocol has a UDP check */
	const char *path; /* http: the endpoint to GET */
	bool any_status;
};

/* The entry of a key that may appear once, a repeat reported as ringd
 * does; NULL when absent. Its value is NULL on a refused line (already
 * reported). */
static const struct conf_entry *entry_of(struct reader *rd,
					 struct conf_section *sec,
					 const char *key)
{
	return conf_ini_claim(sec, &rd->log, sec->name, key, false);
}

/* time serves RFC 868 or RFC 867 by its format key (default time). */
static const char *time_scheme(struct reader *rd, struct conf_section *sec)
{
	static const char *const formats[] = { "time", "daytime", NULL };
	const struct conf_entry *e = entry_of(rd, sec, "format");
	char why[256];
	int i = 0;

	if (e != NULL && e->value != NULL &&
	    conf_parse_enum(e->value, formats, &i, why, sizeof(why)) < 0)
		conf_err_at(&rd->log, &e->loc, sec->name, "format", "%s", why);
	return formats[i];
}

/* The first endpoint left enabled, as the http plugin's defaults and an
 * empty value (disabled) have it. A path the probe cannot send is an
 * error at its line (ringd -t refuses it too). */
static void http_path(struct reader *rd, struct service *s)
{
	static const char *const keys[] = { "healthz", "readyz", "metrics" };
	static const char *const defs[] = { "/healthz", "/readyz", "/metrics" };
	char url[PROBE_URL_MAX];
	struct probe_target t;
	const char *why = NULL;

	for (size_t i = 0; i < 3; i++) {
		const struct conf_entry *e = entry_of(rd, s->sec, keys[i]);
		const char *v = e != NULL ? e->value : defs[i];

		if (v == NULL || v[0] == '\0')
			continue;
		snprintf(url, sizeof(url), "http://localhost%s", v);
		if (v[0] != '/')
			why = "a path starts with '/'";
		else if (strlen(v) >= PROBE_PATH_MAX - 1)
			why = "path too long";
		else
			probe_target_parse(&t, url, &why);
		/* A default is valid: a refused path is on a line. */
		if (why != NULL)
			conf_err_at(&rd->log, &e->loc, s->sec->name, keys[i],
				    "\"%s\": %s", v, why);
		s->path = v;
		return;
	}
	s->path = "/";
	s->any_status = true;
}

static void service_kind(struct reader *rd, struct service *s)
{
	const struct conf_entry *e = entry_of(rd, s->sec, "plugin");
	const char *plugin = e != NULL ? e->value : NULL;

	if (plugin == NULL || plugin[0] == '\0')
		plugin = s->sec->name;
	s->udp_ok = true;
	if (strcmp(plugin, "echo") == 0 || strcmp(plugin, "qotd") == 0) {
		s->scheme = plugin;
	} else if (strcmp(plugin, "time") == 0) {
		s->scheme = time_scheme(rd, s->sec);
	} else if (strcmp(plugin, "discard") == 0 ||
		   strcmp(plugin, "chargen") == 0) {
		s->scheme = plugin;
		s->udp_ok = false;
	} else if (strcmp(plugin, "http") == 0) {
		s->scheme = "http";
		s->udp_ok = false;
		http_path(rd, s);
	}
}

/* The address a client reaches a listener at, a wildcard's loopback,
 * as a URL writes it; returns the port. */
static unsigned host_of(const struct listen_addr *a, char *host, size_t len)
{
	const struct sockaddr_in6 *sin6 = (const void *)&a->ss;
	const struct sockaddr_in *sin = (const void *)&a->ss;
	char ip[INET6_ADDRSTRLEN] = "";

	if (a->ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		if (a->any)
			snprintf(host, len, "127.0.0.1");
		else if (IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
			snprintf(host, len, "[::1]");
		else
			snprintf(host, len, "[%s]", ip);
		return ntohs(sin6->sin6_port);
	}
	if (sin->sin_addr.s_addr == htonl(INADDR_ANY))
		snprintf(host, len, "127.0.0.1");
	else
		inet_ntop(AF_INET, &sin->sin_addr, host, len);
	return ntohs(sin->sin_port);
}

static struct selfcheck_target *target_add(struct reader *rd)
{
	struct selfcheck *c = rd->out;

	if (conf_grow(&c->v, &rd->cap, c->n, sizeof(*c->v)) < 0) {
		rd->log.oom = true;
		return NULL;
	}
	memset(&c->v[c->n], 0, sizeof(c->v[c->n]));
	return &c->v[c->n++];
}

/* One listener of a service the probe knows. */
static void listener_add(struct reader *rd, const struct service *s,
			 const struct listen_addr *a,
			 const struct conf_entry *e)
{
	/* Room in t.url for "[SECTION] " and " via unix:PATH" around it. */
	char host[INET6_ADDRSTRLEN + 2] = "localhost", url[PROBE_URL_MAX - 200];
	const char *path = s->path ? s->path : "", *why = NULL;
	struct selfcheck_target *ct;
	unsigned port = 0;

	if (a->kind == LISTEN_UDP && !s->udp_ok) {
		rd->out->skipped++;
		return;
	}
	if (a->kind != LISTEN_UNIX)
		port = host_of(a, host, sizeof(host));
	if (a->kind == LISTEN_UNIX)
		snprintf(url, sizeof(url), "%s://localhost%s", s->scheme, path);
	else
		snprintf(url, sizeof(url), "%s%s://%s:%u%s", s->scheme,
			 a->kind == LISTEN_UDP ? "+udp" : "", host, port, path);
	ct = target_add(rd);
	if (ct == NULL)
		return;
	if (a->kind != LISTEN_UNIX && port == 0)
		ct->why = "port 0 is chosen when ringd starts: not in the file";
	else if (probe_target_parse(&ct->t, url, &why) < 0)
		/* http_path() checked the path; the rest is an address. */
		conf_err_at(&rd->log, &e->loc, s->sec->name, "listen", "%s: %s",
			    url, why);
	ct->any_status = s->any_status;
	if (a->kind == LISTEN_UNIX)
		memcpy(ct->t.unix_path, a->path, sizeof(ct->t.unix_path));
	snprintf(ct->t.url, sizeof(ct->t.url), "[%.64s] %s%s%.107s",
		 s->sec->name, url, a->kind == LISTEN_UNIX ? " via unix:" : "",
		 a->kind == LISTEN_UNIX ? a->path : "");
}

struct listen_ctx {
	struct reader *rd;
	const struct service *s;
	const struct conf_entry *e;
};

static int listen_one(const struct listen_addr *a, const char *why, void *arg)
{
	struct listen_ctx *lc = arg;

	if (a == NULL)
		conf_err_at(&lc->rd->log, &lc->e->loc, lc->s->sec->name,
			    "listen", "%s", why);
	else if (lc->s->scheme == NULL)
		lc->rd->out->skipped++;
	else
		listener_add(lc->rd, lc->s, a, lc->e);
	return 0;
}

/* Every address of one listen line, split and parsed as ringd does. */
static void listen_line(struct reader *rd, const struct service *s,
			const struct conf_entry *e)
{
	struct listen_ctx lc = { .rd = rd, .s = s, .e = e };
	int n = listen_addr_each(e->value, listen_one, &lc);

	if (n < 0)
		rd->log.oom = true;
	else if (n == 0)
		conf_err_at(&rd->log, &e->loc, s->sec->name, "listen",
			    "no address given");
}

static void service_read(struct reader *rd, struct conf_section *sec)
{
	struct service s = { .sec = sec };
	bool listens = false;

	service_kind(rd, &s);
	for (size_t i = 0; i < sec->n; i++) {
		if (strcmp(sec->e[i].key, "listen") != 0)
			continue;
		listens = true;
		if (sec->e[i].value != NULL)
			listen_line(rd, &s, &sec->e[i]);
	}
	if (!listens)
		conf_err_at(&rd->log, &sec->loc, sec->name, "listen",
			    "required key missing");
}

/* The first error, in the order ringd -t prints them, into err. */
static void first_error(struct reader *rd, const char *path, char *err,
			size_t errlen)
{
	struct conf_errors errs = { 0 };

	conf_err_flush(&rd->log, &errs);
	if (errs.n > 0)
		snprintf(err, errlen, "%s", errs.msg[0]);
	else
		snprintf(err, errlen, "%s: out of memory", path);
	conf_errors_free(&errs);
}

int selfcheck_load(const char *path, struct selfcheck *out, char *err,
		   size_t errlen)
{
	struct reader rd = { .log = { .file = path }, .out = out };
	struct conf_ini ini = { 0 };
	size_t nsvc = 0;

	memset(out, 0, sizeof(*out));
	if (conf_ini_read(&ini, &rd.log) == 0) {
		for (size_t i = 0; i < ini.n; i++) {
			if (strcmp(ini.sec[i].name, "ringd") == 0)
				continue;
			nsvc++;
			service_read(&rd, &ini.sec[i]);
		}
		if (nsvc == 0)
			conf_err_at(&rd.log, NULL, NULL, NULL,
				    "no services configured");
	}
	/* Messages name sections the ini owns: take them before freeing. */
	if (rd.log.n > 0 || rd.log.oom) {
		first_error(&rd, path, err, errlen);
		selfcheck_free(out);
		conf_ini_free(&ini);
		return -1;
	}
	conf_ini_free(&ini);
	return 0;
}

void selfcheck_free(struct selfcheck *c)
{
	free(c->v);
	memset(c, 0, sizeof(*c));
}
