/* What the http plugin's files share: the parsed configuration (read
 * only after check()), the per-worker state and the counter layout. */
#ifndef RINGD_HTTP_H
#define RINGD_HTTP_H

#include <ringd/plugin.h>

#include "parse.h"
#include "response.h"
#include "route.h"

enum http_log_mode { HTTP_LOG_NO, HTTP_LOG_ERRORS, HTTP_LOG_ALL };

/* The built-in endpoints, in counter order. */
enum http_endpoint { EP_HEALTHZ, EP_READYZ, EP_METRICS, EP_COUNT };

/* Statuses counted in ringd_http_responses_total: the ones the plugin
 * sends itself plus every status a route names. */
#define HTTP_MAX_CODES 64

struct http_config {
	/* keys */
	struct ringd_list route;
	const char *endpoint[EP_COUNT]; /* "" disables */
	const char *server;
	int64_t keepalive_requests;
	int64_t keepalive_timeout_ms;
	int64_t header_timeout_ms;
	int64_t max_body;
	int log_requests; /* enum http_log_mode */

	/* derived by check() */
	struct http_route *routes;
	size_t nroutes;
	short codes[HTTP_MAX_CODES];
	char code_text[HTTP_MAX_CODES][4];
	size_t ncodes;
	struct ringd_counter *counters; /* codes, endpoints, "none", routes */
	size_t ncounters;
};

/* Counter indices: responses by code first, then requests by route. */
#define CTR_REQ_EP(cfg, ep) ((unsigned)(cfg)->ncodes + (unsigned)(ep))
#define CTR_REQ_NONE(cfg) ((unsigned)(cfg)->ncodes + EP_COUNT)
#define CTR_REQ_ROUTE(cfg, i) (CTR_REQ_NONE(cfg) + 1 + (unsigned)(i))

int http_config_check(void *config, struct ringd_check *chk,
		      ringd_check_error_fn err);
void http_config_release(void *config);
size_t http_config_counters(const void *config, struct ringd_counter *out,
			    size_t max);
unsigned http_code_index(const struct http_config *cfg, int status);

extern const struct ringd_key http_keys[];

#endif
