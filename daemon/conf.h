/* What a configuration is: the daemon's key tables, the loaded and typed
 * result, and its release. Reading the INI text is conf_ini's job,
 * collecting FILE:LINE errors conf_err's, one value's syntax
 * conf_value's. The result is read-only once loaded. */
#ifndef RINGD_CONF_H
#define RINGD_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <ringd/plugin.h>

#include "cidr.h"
#include "conf_err.h"
#include "conf_value.h"
#include "listen_addr.h"
#include "plugin.h"

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
	/* Effective admission keys: the section's own when it sets them,
	 * else [ringd]'s (a copy this service owns). Empty allow admits
	 * everyone; deny wins over allow; unix: listeners are exempt. */
	struct cidr_list allow, deny;
	int64_t max_per_source; /* max_connections_per_source; 0: none */
	bool log_connections;   /* a line per closed connection */
	bool defer_accept;      /* TCP_DEFER_ACCEPT for RINGD_PEER_FIRST */

	void *pconf; /* plugin->p->config_size bytes, keys parsed, checked */
	bool checked; /* release() is owed */
};

enum conf_backend { CONF_BACKEND_AUTO, CONF_BACKEND_IO_URING, CONF_BACKEND_EPOLL };

struct ringd_conf {
	char *path;

	/* [ringd] (conf_core_keys) */
	int backend;             /* enum conf_backend */
	int64_t workers_n;       /* workers: CPUs online for auto */
	char *plugin_dir;
	int log_level;           /* index into error..debug */
	int64_t max_connections;
	int64_t shutdown_timeout_ms;
	int64_t drain_delay_ms;
	char *user;
	bool reuseport;
	int64_t udp_rate;        /* replies per second per source */
	int64_t udp_burst;
	int64_t udp_global_rate; /* replies per second in all; 0: no cap */
	/* The defaults of every service's allow, deny and
	 * max_connections_per_source; services hold their effective copy. */
	struct cidr_list allow, deny;
	int64_t max_per_source;
	bool log_connections;    /* the default of every service's */
	int64_t max_buffered;    /* bytes of output queued in all workers */

	struct service_conf *svc;
	size_t nsvc;
	struct plugin_set plugins;
};

/* The loader's side of one value being set: its location and where
 * errors go. Opaque to the key tables. */
struct conf_set;

/* One key of the daemon's own tables: the description every plugin key
 * has (name, type, default, bounds, offset, help: what -K prints), plus a
 * setter for values the generic types cannot hold, as nginx's
 * ngx_command_t.set does. Every core key goes through the same walker:
 * found, duplicates refused (unless repeat), parsed, bounded, reported. */
struct conf_key {
	struct ringd_key k;
	/* Parses text into base (the struct k.offset points into); reports
	 * each problem with the set's location and returns 0 or -1. NULL:
	 * the generic parser of k.type. Called once per value for a repeat
	 * key, in file order. */
	int (*set)(struct conf_set *cs, const char *text, void *base);
	/* Frees what set stored in base; NULL: nothing to free, or the
	 * generic STRING/PATH free. */
	void (*release)(const struct conf_key *ck, void *base);
	const char *type;   /* -K's type column; NULL: the generic name */
	const char *bounds; /* -K's bounds column; NULL: from k */
	bool repeat;        /* may appear more than once */
	/* A service key that [ringd] sets for every service: absent from a
	 * section, the value is [ringd]'s (its text, parsed again, so the
	 * service owns what it holds), else k.def. */
	bool inherit;
};

/* The key tables, also printed by -K. */
extern const struct conf_key conf_core_keys[];
extern const struct conf_key conf_service_keys[];

/* Read path, apply sets ("SECTION.KEY=VALUE", each replacing the file's
 * value), load plugins from [ringd] plugin_dir (default_plugin_dir when the
 * key is absent), parse every key and run each plugin's check(). Returns
 * 0 with *out set, or -1 with every problem in errs.
 * A set replaces every earlier value of its key (the last set
 * wins) and creates a missing section; its errors are located as
 * "-s SECTION.KEY=VALUE". Relative PATH values from the file (and the
 * daemon's own PATH defaults) are made absolute against the file's
 * directory, those from a set against the working directory, a plugin's
 * relative PATH defaults against its data directory (plugin.h). Errors
 * are appended to errs (which the caller zeroes) sorted by line, then -s
 * order, then whole-file. */
int conf_load(const char *path, const char *const *sets, size_t nsets,
	      const char *default_plugin_dir, struct ringd_conf **out,
	      struct conf_errors *errs);
void conf_free(struct ringd_conf *c);

/* Map the log_level key to enum ringd_log_level. */
enum ringd_log_level conf_log_level(const struct ringd_conf *c);

/* -K: print a key table, one key per line with type, default, bounds and
 * help in aligned columns: a plugin's table, or one of the daemon's. */
void conf_print_keys(FILE *f, const char *title, const struct ringd_key *k);
void conf_print_daemon_keys(FILE *f, const char *title,
			    const struct conf_key *k);

#endif
