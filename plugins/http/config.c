/* The http plugin's keys and check(): endpoint paths, routes (parsed and
 * their files loaded here, at -t, start and reload) and the counters the
 * configuration implies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

static const char *const log_modes[] = { "no", "errors", "all", NULL };

#define EP_KEY(n, def_, what)                                             \
	{ .name = n, .type = RINGD_KEY_STRING, .def = def_,               \
	  .offset = offsetof(struct http_config, endpoint) +              \
		    sizeof(const char *) * (what),                        \
	  .help = "path of the " n " endpoint; empty disables it" }

const struct ringd_key http_keys[] = {
	{ .name = "route", .type = RINGD_KEY_LIST,
	  .offset = offsetof(struct http_config, route),
	  .help = "one route per line: PATH [STATUS] [reflect] [type=T] "
		  "[header=\"Name: value\"]... [body=\"text\" | file=FILE]; "
		  "PATH exact or a prefix ending in *; exact paths match "
		  "first, then prefixes in file order" },
	EP_KEY("healthz", "/healthz", EP_HEALTHZ),
	EP_KEY("readyz", "/readyz", EP_READYZ),
	EP_KEY("metrics", "/metrics", EP_METRICS),
	{ .name = "server", .type = RINGD_KEY_STRING, .def = "ringd",
	  .offset = offsetof(struct http_config, server),
	  .help = "the Server field of every response; empty leaves it out" },
	{ .name = "keepalive_requests", .type = RINGD_KEY_INT, .def = "1000",
	  .min = 1, .max = 1000000000,
	  .offset = offsetof(struct http_config, keepalive_requests),
	  .help = "requests served on one connection before it closes "
		  "(1: no keep-alive)" },
	{ .name = "keepalive_timeout", .type = RINGD_KEY_DURATION,
	  .def = "60s", .min = 1, .max = 86400000,
	  .offset = offsetof(struct http_config, keepalive_timeout_ms),
	  .help = "close a keep-alive connection idle this long between "
		  "requests" },
	{ .name = "header_timeout", .type = RINGD_KEY_DURATION, .def = "10s",
	  .min = 1, .max = 86400000,
	  .offset = offsetof(struct http_config, header_timeout_ms),
	  .help = "deadline for a whole request head (and its body) from "
		  "its first byte; not reset by more bytes" },
	{ .name = "max_body", .type = RINGD_KEY_SIZE, .def = "1m", .min = 0,
	  .max = (int64_t)1 << 40,
	  .offset = offsetof(struct http_config, max_body),
	  .help = "largest request body read (and discarded); larger: 413 "
		  "and close" },
	{ .name = "log_requests", .type = RINGD_KEY_ENUM, .def = "errors",
	  .choices = log_modes,
	  .offset = offsetof(struct http_config, log_requests),
	  .help = "no, errors (status 400 and up) or all: one line per "
		  "request, at most 10 a second per worker" },
	{ .name = NULL },
};

/* The statuses the plugin answers with on its own. */
static const short own_codes[] = { 200, 400, 404, 405, 413, 414, 417,
				   431, 500, 501, 503, 505 };

static void add_code(struct http_config *cfg, int status)
{
	for (size_t i = 0; i < cfg->ncodes; i++)
		if (cfg->codes[i] == status)
			return;
	if (cfg->ncodes == HTTP_MAX_CODES)
		return;
	cfg->codes[cfg->ncodes] = (short)status;
	/* Statuses are three digits (100-599), checked before. */
	cfg->code_text[cfg->ncodes][0] = (char)('0' + status / 100 % 10);
	cfg->code_text[cfg->ncodes][1] = (char)('0' + status / 10 % 10);
	cfg->code_text[cfg->ncodes][2] = (char)('0' + status % 10);
	cfg->code_text[cfg->ncodes][3] = '\0';
	cfg->ncodes++;
}

unsigned http_code_index(const struct http_config *cfg, int status)
{
	for (size_t i = 0; i < cfg->ncodes; i++)
		if (cfg->codes[i] == status)
			return (unsigned)i;
	return (unsigned)cfg->ncounters; /* past the end: count() ignores */
}

static const char *const ep_names[EP_COUNT] = { "healthz", "readyz",
						"metrics" };

static int check_endpoints(struct http_config *cfg, struct ringd_check *chk,
			   ringd_check_error_fn err)
{
	int bad = 0;

	for (int i = 0; i < EP_COUNT; i++) {
		const char *p = cfg->endpoint[i];

		if (!p || !p[0])
			continue;
		if (!route_path_valid(p, strlen(p), false)) {
			err(chk, ep_names[i], "\"%s\": a path is '/' then "
			    "visible ASCII without ? # or *", p);
			bad = -1;
		}
		for (int j = 0; j < i; j++)
			if (cfg->endpoint[j] && strcmp(cfg->endpoint[j], p) == 0) {
				err(chk, ep_names[i], "%s is already the %s "
				    "endpoint", p, ep_names[j]);
				bad = -1;
			}
	}
	if (cfg->server && !route_value_valid(cfg->server, strlen(cfg->server))) {
		err(chk, "server", "holds a control character or an outer "
		    "blank");
		bad = -1;
	}
	return bad;
}

/* A route with the exact path of an endpoint could never be reached (the
 * endpoints match first) and says the operator expected otherwise. */
static int check_route_clash(const struct http_config *cfg, size_t i,
			     char *msg, size_t len)
{
	const struct http_route *r = &cfg->routes[i];

	for (int e = 0; e < EP_COUNT && !r->prefix; e++)
		if (cfg->endpoint[e] && strcmp(cfg->endpoint[e], r->pattern) == 0)
			return snprintf(msg, len, "%s is the %s endpoint "
					"(set %s = to another path, or empty)",
					r->pattern, ep_names[e], ep_names[e]);
	for (size_t j = 0; j < i; j++)
		if (cfg->routes[j].prefix == r->prefix &&
		    strcmp(cfg->routes[j].pattern, r->pattern) == 0)
			return snprintf(msg, len, "%s: an earlier route "
					"line has the same path", r->pattern);
	return 0;
}

static int check_routes(struct http_config *cfg, struct ringd_check *chk,
			ringd_check_error_fn err)
{
	char key[32], msg[512];
	int bad = 0;

	if (cfg->route.n == 0)
		return 0;
	cfg->routes = calloc(cfg->route.n, sizeof(*cfg->routes));
	if (!cfg->routes) {
		err(chk, "route", "out of memory");
		return -1;
	}
	for (size_t i = 0; i < cfg->route.n; i++) {
		struct http_route *r = &cfg->routes[cfg->nroutes];

		snprintf(key, sizeof(key), "route[%zu]", i);
		if (route_parse(cfg->route.items[i], r, msg, sizeof(msg)) < 0) {
			err(chk, key, "%s", msg);
			bad = -1;
			continue;
		}
		cfg->nroutes++;
		if (check_route_clash(cfg, cfg->nroutes - 1, msg, sizeof(msg))) {
			err(chk, key, "%s", msg);
			bad = -1;
		}
	}
	return bad;
}

static void set_counter(struct ringd_counter *c, bool resp, const char *v)
{
	if (resp)
		*c = (struct ringd_counter){
			.name = "ringd_http_responses_total",
			.help = "HTTP responses sent, by status code",
			.label = "code", .value = v };
	else
		*c = (struct ringd_counter){
			.name = "ringd_http_requests_total",
			.help = "HTTP requests answered, by the route or "
				"endpoint they matched (none: no route)",
			.label = "route", .value = v };
}

/* Every endpoint has a series, a disabled one included (it stays 0), so
 * the counter indices do not depend on which are enabled. */
static int build_counters(struct http_config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < sizeof(own_codes) / sizeof(own_codes[0]); i++)
		add_code(cfg, own_codes[i]);
	for (size_t i = 0; i < cfg->nroutes; i++)
		add_code(cfg, cfg->routes[i].status);
	cfg->ncounters = cfg->ncodes + EP_COUNT + 1 + cfg->nroutes;
	cfg->counters = calloc(cfg->ncounters, sizeof(*cfg->counters));
	if (!cfg->counters)
		return -1;
	for (size_t i = 0; i < cfg->ncodes; i++)
		set_counter(&cfg->counters[n++], true, cfg->code_text[i]);
	for (int e = 0; e < EP_COUNT; e++)
		set_counter(&cfg->counters[n++], false,
			    cfg->endpoint[e] && cfg->endpoint[e][0]
				    ? cfg->endpoint[e] : ep_names[e]);
	set_counter(&cfg->counters[n++], false, "none");
	for (size_t i = 0; i < cfg->nroutes; i++)
		set_counter(&cfg->counters[n++], false, cfg->routes[i].pattern);
	return 0;
}

void http_config_release(void *config)
{
	struct http_config *cfg = config;

	for (size_t i = 0; i < cfg->nroutes; i++)
		route_free(&cfg->routes[i]);
	free(cfg->routes);
	free(cfg->counters);
	cfg->routes = NULL;
	cfg->counters = NULL;
	cfg->nroutes = cfg->ncounters = cfg->ncodes = 0;
}

int http_config_check(void *config, struct ringd_check *chk,
		      ringd_check_error_fn err)
{
	struct http_config *cfg = config;
	int bad = check_endpoints(cfg, chk, err);

	if (check_routes(cfg, chk, err) < 0)
		bad = -1;
	if (bad == 0 && build_counters(cfg) < 0) {
		err(chk, NULL, "out of memory");
		bad = -1;
	}
	if (bad)
		http_config_release(cfg);
	return bad;
}

size_t http_config_counters(const void *config, struct ringd_counter *out,
			    size_t max)
{
	const struct http_config *cfg = config;

	for (size_t i = 0; i < cfg->ncounters && i < max; i++)
		out[i] = cfg->counters[i];
	return cfg->ncounters;
}
