/* Configuration: the INI file read through inih with a line-counting
 * reader, -s overrides, the [ringd] and per-service core keys, each
 * plugin's key table and check(). Every problem is collected as
 * "FILE:LINE: [section] key: message" so an operator sees all of them at
 * once. The result is read-only once loaded. */
#ifndef RINGD_CONF_H
#define RINGD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ringd/plugin.h>

#include "conf_value.h"
#include "listen_addr.h"
#include "plugin.h"

struct conf_errors {
	char **msg;
	size_t n, cap;
};
void conf_errors_add(struct conf_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void conf_errors_print(const struct conf_errors *e, FILE *f);
void conf_errors_free(struct conf_errors *e);

struct service_conf {
	char *name; /* the section name */
	const char *file;
	unsigned line; /* of the [section] header */
	struct plugin *plugin;
	struct listen_addr *listen;
	size_t nlisten;

	/* core per-service keys (conf_service_keys) */
	char *plugin_name;
	int64_t idle_timeout_ms;
	int64_t socket_mode;

	void *pconf; /* plugin->p->config_size bytes, keys parsed, checked */
	bool checked; /* release() is owed */
};

enum conf_backend { CONF_BACKEND_AUTO, CONF_BACKEND_IO_URING, CONF_BACKEND_EPOLL };

struct ringd_conf {
	char *path;

	/* [ringd] (conf_core_keys) */
	int backend;             /* enum conf_backend */
	char *workers;           /* "auto" or a number; see workers_n */
	int64_t workers_n;       /* resolved: CPUs for auto */
	char *plugin_dir;
	int log_level;           /* index into error..debug */
	int64_t max_connections;
	int64_t shutdown_timeout_ms;
	char *user;
	bool reuseport;
	int64_t udp_rate;        /* replies per second per source */
	int64_t udp_burst;
	int64_t udp_global_rate; /* replies per second in all; 0: no cap */

	struct service_conf *svc;
	size_t nsvc;
	struct plugin_set plugins;
};

/* The key tables, also printed by -K. */
extern const struct ringd_key conf_core_keys[];
extern const struct ringd_key conf_service_keys[];

/* Read path, apply sets ("SECTION.KEY=VALUE", each replacing the file's
 * value), load plugins from [ringd] plugin_dir (default_plugin_dir when the
 * key is absent), parse every key and run each plugin's check(). Returns
 * 0 with *out set, or -1 with every problem in errs.
 * A set replaces every earlier value of its key (the last set
 * wins) and creates a missing section; its errors are located as
 * "-s SECTION.KEY=VALUE". Relative PATH values from the file (and PATH
 * defaults) are made absolute against the file's directory, those from a
 * set against the working directory. Errors are appended to errs (which
 * the caller zeroes) sorted by line, then -s order, then whole-file. */
int conf_load(const char *path, const char *const *sets, size_t nsets,
	      const char *default_plugin_dir, struct ringd_conf **out,
	      struct conf_errors *errs);
void conf_free(struct ringd_conf *c);

/* Map the log_level key to enum ringd_log_level. */
enum ringd_log_level conf_log_level(const struct ringd_conf *c);

/* -K: print a key table, one key per line with type, default, bounds and
 * help. */
void conf_print_keys(FILE *f, const char *title, const struct ringd_key *k);

#endif
