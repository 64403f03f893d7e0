/* The configuration: the daemon's key tables and the walk that types a
 * file's sections with them (core keys, then each service's plugin and
 * its key table and check()). The INI text comes from conf_ini.c, errors
 * go through conf_err.c, values are parsed by conf_value.c, modules are
 * loaded by plugin.c. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <unistd.h>

#include "config.h"
#include "conf.h"
#include "conf_ini.h"

struct seen_addr {
	char text[160];
	const char *sec; /* the section's name, owned by the ini */
	struct conf_loc loc;
	enum listen_kind kind;
};

struct loader {
	struct conf_errlog log;
	struct conf_ini ini;
	char *inidir;
	struct seen_addr *addr;
	size_t naddr, capaddr;
	struct ringd_conf *conf;
};

struct conf_set {
	struct loader *ld;
	const struct conf_key *key;
	const char *secname;
	const struct conf_loc *loc;
	unsigned nerr; /* errors reported for this value */
};

static void conf_set_error(struct conf_set *cs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Every error of a setter is located at its value and named after its
 * key: "FILE:LINE: [section] key: message". */
static void conf_set_error(struct conf_set *cs, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	conf_err_at(&cs->ld->log, cs->loc, cs->secname, cs->key->k.name, "%s",
		    msg);
	cs->nerr++;
}

/* workers: "auto" is one thread per online CPU, within the same bounds
 * as a number. */
static int conf_workers_set(struct conf_set *cs, const char *text,
			    void *base)
{
	const struct ringd_key *k = &cs->key->k;
	struct ringd_conf *c = base;
	char why[256];
	long n;

	if (strcmp(text, "auto") == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers_n = n < k->min ? k->min : n > k->max ? k->max : n;
		return 0;
	}
	if (!isdigit((unsigned char)text[0])) {
		conf_set_error(cs,
			       "expected auto or a number %" PRId64 "..%" PRId64
			       ": '%s'",
			       k->min, k->max, text);
		return -1;
	}
	if (conf_parse_int(text, k->min, k->max, &c->workers_n, why,
			   sizeof(why)) < 0) {
		conf_set_error(cs, "%s", why);
		return -1;
	}
	return 0;
}

/* socket_mode: a file mode is octal, the only value that is. */
static int conf_mode_set(struct conf_set *cs, const char *text, void *base)
{
	const struct ringd_key *k = &cs->key->k;
	char why[128];
	int64_t v;

	if (conf_parse_mode(text, k->max, &v, why, sizeof(why)) < 0) {
		conf_set_error(cs, "%s", why);
		return -1;
	}
	memcpy((char *)base + k->offset, &v, sizeof(v));
	return 0;
}

/* Appends one prefix to the list; 0 or -ENOMEM. */
static int conf_cidr_add(struct cidr_list *l, const struct cidr *c)
{
	struct cidr *v = reallocarray(l->v, l->n + 1, sizeof(*v));

	if (v == NULL)
		return -ENOMEM;
	v[l->n++] = *c;
	l->v = v;
	return 0;
}

static void conf_cidr_item(struct conf_set *cs, struct cidr_list *l,
			   const char *item, size_t len)
{
	char buf[128];
	const char *why;
	struct cidr c;

	if (len >= sizeof(buf)) {
		conf_set_error(cs, "'%.*s...': not an IPv4 or IPv6 prefix", 40,
			       item);
		return;
	}
	memcpy(buf, item, len);
	buf[len] = '\0';
	if (cidr_parse(buf, &c, &why) < 0)
		conf_set_error(cs, "'%s': %s", buf, why);
	else if (conf_cidr_add(l, &c) < 0)
		cs->ld->log.oom = true;
}

/* allow, deny: prefixes separated by commas, blanks or both (lines
 * too, when continued). Every bad item is its own error; an empty item
 * or a trailing comma is one too, since it most often hides a deleted
 * entry. */
static int conf_cidr_list_set(struct conf_set *cs, const char *text,
			      void *base)
{
	struct cidr_list *l = (void *)((char *)base + cs->key->k.offset);
	const char *p = text, *blank = " \t\n";
	bool after_comma = false;
	size_t len;

	for (;;) {
		p += strspn(p, blank);
		if (*p == '\0') {
			if (after_comma)
				conf_set_error(cs, "trailing comma");
			break;
		}
		if (*p == ',') {
			conf_set_error(cs, "empty item in the list");
			after_comma = true;
			p++;
			continue;
		}
		len = strcspn(p, ", \t\n");
		conf_cidr_item(cs, l, p, len);
		p += len;
		p += strspn(p, blank);
		after_comma = *p == ',';
		p += after_comma;
	}
	return cs->nerr > 0 ? -1 : 0;
}

static void conf_cidr_list_release(const struct conf_key *ck, void *base)
{
	cidr_list_free((void *)((char *)base + ck->k.offset));
}

static int conf_listen_set(struct conf_set *cs, const char *text,
			   void *base);
static void conf_listen_release(const struct conf_key *ck, void *base);

/* The help texts the [ringd] and service entries share. */
#define ALLOW_HELP "sources admitted, CIDR prefixes (10.0.0.0/8, " \
	"2001:db8::/32, a bare address) separated by commas or blanks, host " \
	"bits zero; empty: everyone. deny wins over allow; unix: listeners " \
	"are exempt"
#define DENY_HELP "sources refused, CIDR prefixes as for allow; wins over " \
	"allow; unix: listeners are exempt"
#define PER_SOURCE_HELP "concurrent TCP connections from one source " \
	"(IPv4 /32, IPv6 /64); 0: no limit"

#define LOG_CONN_HELP "log one line (at info) when a TCP or unix: " \
	"connection closes: peer, local address, bytes in and out, " \
	"duration, reason"

static const char *const backend_names[] = { "auto", "io_uring", "epoll",
					      NULL };
static const char *const level_names[] = { "error", "warning", "notice",
					    "info", "debug", NULL };

const struct conf_key conf_core_keys[] = {
	{ .k = { .name = "backend", .type = RINGD_KEY_ENUM, .def = "auto",
		 .choices = backend_names,
		 .offset = offsetof(struct ringd_conf, backend),
		 .help = "I/O engine; auto tries io_uring, then epoll" } },
	{ .k = { .name = "workers", .type = RINGD_KEY_INT, .def = "auto",
		 .min = 1, .max = 256,
		 .offset = offsetof(struct ringd_conf, workers_n),
		 .help = "worker threads: auto (one per online CPU) or a "
			 "number" },
	  .set = conf_workers_set, .type = "auto|N" },
	{ .k = { .name = "plugin_dir", .type = RINGD_KEY_PATH,
		 .def = RINGD_PLUGIN_DIR,
		 .offset = offsetof(struct ringd_conf, plugin_dir),
		 .help = "where NAME.so plugins are loaded from" } },
	{ .k = { .name = "log_level", .type = RINGD_KEY_ENUM, .def = "info",
		 .choices = level_names,
		 .offset = offsetof(struct ringd_conf, log_level),
		 .help = "least important messages logged" } },
	{ .k = { .name = "max_connections", .type = RINGD_KEY_INT,
		 .def = "65536", .min = 1, .max = 1048576,
		 .offset = offsetof(struct ringd_conf, max_connections),
		 .help = "open connections across all services" } },
	{ .k = { .name = "shutdown_timeout", .type = RINGD_KEY_DURATION,
		 .def = "10s", .min = 0, .max = 3600000,
		 .offset = offsetof(struct ringd_conf, shutdown_timeout_ms),
		 .help = "how long a graceful stop waits for connections" } },
	{ .k = { .name = "drain_delay", .type = RINGD_KEY_DURATION,
		 .def = "0", .min = 0, .max = 3600000,
		 .offset = offsetof(struct ringd_conf, drain_delay_ms),
		 .help = "on SIGTERM, keep accepting this long while readiness "
			 "probes (HTTP /readyz) fail, so load balancers take "
			 "the daemon out first; a second SIGTERM stops at "
			 "once" } },
	{ .k = { .name = "user", .type = RINGD_KEY_STRING, .def = "",
		 .offset = offsetof(struct ringd_conf, user),
		 .help = "drop to this user after binding when started as "
			 "root" } },
	{ .k = { .name = "reuseport", .type = RINGD_KEY_BOOL, .def = "yes",
		 .offset = offsetof(struct ringd_conf, reuseport),
		 .help = "per-worker SO_REUSEPORT listeners instead of one "
			 "shared listener" } },
	{ .k = { .name = "udp_rate", .type = RINGD_KEY_INT, .def = "10",
		 .min = 1, .max = 1000000,
		 .offset = offsetof(struct ringd_conf, udp_rate),
		 .help = "UDP replies per second to one source (IPv4 /32, "
			 "IPv6 /64)" } },
	{ .k = { .name = "udp_burst", .type = RINGD_KEY_INT, .def = "20",
		 .min = 1, .max = 1000000,
		 .offset = offsetof(struct ringd_conf, udp_burst),
		 .help = "UDP replies one source may get at once before "
			 "udp_rate applies" } },
	{ .k = { .name = "udp_global_rate", .type = RINGD_KEY_INT,
		 .def = "1000", .min = 0, .max = 10000000,
		 .offset = offsetof(struct ringd_conf, udp_global_rate),
		 .help = "UDP replies per second across all sources; 0: no "
			 "cap" } },
	{ .k = { .name = "allow", .type = RINGD_KEY_STRING, .def = "",
		 .offset = offsetof(struct ringd_conf, allow),
		 .help = ALLOW_HELP "; here: the default of every service "
			 "that sets none" },
	  .set = conf_cidr_list_set, .release = conf_cidr_list_release,
	  .type = "CIDR list" },
	{ .k = { .name = "deny", .type = RINGD_KEY_STRING, .def = "",
		 .offset = offsetof(struct ringd_conf, deny),
		 .help = DENY_HELP "; here: the default of every service "
			 "that sets none" },
	  .set = conf_cidr_list_set, .release = conf_cidr_list_release,
	  .type = "CIDR list" },
	{ .k = { .name = "max_connections_per_source", .type = RINGD_KEY_INT,
		 .def = "0", .min = 0, .max = 1048576,
		 .offset = offsetof(struct ringd_conf, max_per_source),
		 .help = PER_SOURCE_HELP "; here: the default of every "
			 "service" } },
	{ .k = { .name = "log_connections", .type = RINGD_KEY_BOOL,
		 .def = "no",
		 .offset = offsetof(struct ringd_conf, log_connections),
		 .help = LOG_CONN_HELP "; here: the default of every "
			 "service" } },
	{ .k = { .name = "max_buffered", .type = RINGD_KEY_SIZE, .def = "64m",
		 .min = 65536, .max = 1099511627776,
		 .offset = offsetof(struct ringd_conf, max_buffered),
		 .help = "output queued across all connections, split evenly "
			 "between workers; past it connections stop reading "
			 "until it falls. 64m: a 1 GiB machine survives it "
			 "with room for everything else" } },
	{ .k = { .name = NULL } },
};

const struct conf_key conf_service_keys[] = {
	{ .k = { .name = "plugin", .type = RINGD_KEY_STRING, .def = "",
		 .offset = offsetof(struct service_conf, plugin_name),
		 .help = "plugin to run; empty: the section name" } },
	{ .k = { .name = "listen", .type = RINGD_KEY_STRING, .def = NULL,
		 .offset = offsetof(struct service_conf, listen),
		 .help = "tcp://HOST:PORT, udp://HOST:PORT, unix:PATH; "
			 "comma-separated, repeatable" },
	  .set = conf_listen_set, .release = conf_listen_release,
	  .type = "address list", .repeat = true },
	{ .k = { .name = "idle_timeout", .type = RINGD_KEY_DURATION,
		 .def = "60s", .min = 0, .max = 86400000,
		 .offset = offsetof(struct service_conf, idle_timeout_ms),
		 .help = "close connections idle this long; 0: never" } },
	{ .k = { .name = "socket_mode", .type = RINGD_KEY_INT, .def = "0660",
		 .min = 0, .max = 0777,
		 .offset = offsetof(struct service_conf, socket_mode),
		 .help = "file mode of unix: sockets, octal as chmod reads it "
			 "(660 is 0660); the only octal key, other numbers "
			 "are decimal (010 is 10)" },
	  .set = conf_mode_set, .type = "mode", .bounds = "0..0777" },
	{ .k = { .name = "allow", .type = RINGD_KEY_STRING, .def = "",
		 .offset = offsetof(struct service_conf, allow),
		 .help = ALLOW_HELP },
	  .set = conf_cidr_list_set, .release = conf_cidr_list_release,
	  .type = "CIDR list", .inherit = true },
	{ .k = { .name = "deny", .type = RINGD_KEY_STRING, .def = "",
		 .offset = offsetof(struct service_conf, deny),
		 .help = DENY_HELP },
	  .set = conf_cidr_list_set, .release = conf_cidr_list_release,
	  .type = "CIDR list", .inherit = true },
	{ .k = { .name = "max_connections_per_source", .type = RINGD_KEY_INT,
		 .def = "0", .min = 0, .max = 1048576,
		 .offset = offsetof(struct service_conf, max_per_source),
		 .help = PER_SOURCE_HELP }, .inherit = true },
	{ .k = { .name = "log_connections", .type = RINGD_KEY_BOOL,
		 .def = "no",
		 .offset = offsetof(struct service_conf, log_connections),
		 .help = LOG_CONN_HELP }, .inherit = true },
	{ .k = { .name = "defer_accept", .type = RINGD_KEY_BOOL,
		 .def = "yes",
		 .offset = offsetof(struct service_conf, defer_accept),
		 .help = "for plugins whose clients speak first (http, echo, "
			 "discard): the kernel keeps a new TCP connection "
			 "until its first bytes arrive, at most about 1 s, "
			 "so one that sends nothing costs no wake-up and no "
			 "connection slot until then; no effect on other "
			 "plugins, udp:// or unix: listeners" } },
	{ .k = { .name = NULL } },
};

/* The daemon's side of struct ringd_check: where errors go. */
struct check_ctx {
	struct ringd_check pub; /* first: check() gets &pub */
	struct loader *ld;
	struct conf_section *sec;
	unsigned n;
};

static const struct conf_key *conf_key_find(const struct conf_key *keys,
					    const char *name)
{
	for (; keys->k.name != NULL; keys++)
		if (strcmp(keys->k.name, name) == 0)
			return keys;
	return NULL;
}

/* The INI file's directory, absolute, for relative PATH values. */
static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *cwd, *dir = NULL;

	if (slash == path)
		return strdup("/");
	if (slash != NULL && path[0] == '/')
		return strndup(path, slash - path);
	cwd = getcwd(NULL, 0);
	if (cwd == NULL || slash == NULL)
		return cwd;
	if (asprintf(&dir, "%s/%.*s", cwd, (int)(slash - path), path) < 0)
		dir = NULL;
	free(cwd);
	return dir;
}

/* A relative PATH from the file is relative to the file's directory; one
 * from -s is relative to where the command was typed. */
static void key_store(struct loader *ld, const struct conf_loc *loc,
		      const char *secname, const struct ringd_key *k,
		      const char *text, bool from_set, void *base)
{
	char why[512], *abs = NULL, *dir;

	if (k->type == RINGD_KEY_PATH && text[0] != '\0' && text[0] != '/') {
		dir = from_set ? getcwd(NULL, 0) :
		      ld->inidir != NULL ? strdup(ld->inidir) : NULL;
		if (dir == NULL || asprintf(&abs, "%s%s%s", dir,
					    strcmp(dir, "/") ? "/" : "",
					    text) < 0) {
			free(dir);
			ld->log.oom = true;
			return;
		}
		free(dir);
		text = abs;
	}
	if (conf_value_parse(k, text, base, why, sizeof(why)) < 0)
		conf_err_at(&ld->log, loc, secname, k->name, "%s", why);
	free(abs);
}

static void key_missing(struct loader *ld, const struct conf_section *sec,
			const char *secname, const char *name)
{
	conf_err_at(&ld->log, sec ? &sec->loc : NULL, secname, name,
		    "required key missing");
}

/* Every line of a LIST key, in file order (a refused line adds nothing). */
static void conf_list_apply(struct loader *ld, const struct conf_section *sec,
			    const struct ringd_key *k, void *base)
{
	for (size_t i = 0; i < sec->n; i++) {
		const struct conf_entry *e = &sec->e[i];

		if (e->value != NULL && strcmp(e->key, k->name) == 0)
			key_store(ld, &e->loc, sec->name, k, e->value,
				  e->loc.set >= 0, base);
	}
}

/* A relative PATH default names a file ringd ships with the plugin (the
 * default quotes): it lives in the plugin's data directory, not beside
 * whichever INI file the operator wrote. */
static void conf_plugin_default(struct loader *ld, struct conf_section *sec,
				const struct plugin *pl,
				const struct ringd_key *k, void *base)
{
	char *abs = NULL;

	if (k->type != RINGD_KEY_PATH || k->def[0] == '\0' ||
	    k->def[0] == '/') {
		key_store(ld, &sec->loc, sec->name, k, k->def, false, base);
		return;
	}
	if (asprintf(&abs, "%s/%s", pl->data_dir, k->def) < 0) {
		ld->log.oom = true;
		return;
	}
	key_store(ld, &sec->loc, sec->name, k, abs, false, base);
	free(abs);
}

/* Parses every key of a plugin's table found in sec (or its default)
 * into base. */
static void conf_plugin_keys_apply(struct loader *ld, struct conf_section *sec,
				   const struct plugin *pl, void *base)
{
	for (const struct ringd_key *k = pl->p->keys; k && k->name != NULL;
	     k++) {
		struct conf_entry *e = conf_ini_claim(sec, &ld->log, sec->name,
						      k->name,
						      k->type == RINGD_KEY_LIST);

		if (k->type == RINGD_KEY_LIST) {
			conf_list_apply(ld, sec, k, base);
			continue;
		}
		if (e != NULL && e->value == NULL)
			continue;
		if (e == NULL && k->def == NULL)
			key_missing(ld, sec, sec->name, k->name);
		else if (e == NULL)
			conf_plugin_default(ld, sec, pl, k, base);
		else
			key_store(ld, &e->loc, sec->name, k, e->value,
				  e->loc.set >= 0, base);
	}
}

/* One value of a daemon key: its setter, or the generic parser. */
static void conf_key_store(struct loader *ld, const struct conf_key *ck,
			   const struct conf_section *sec, const char *secname,
			   const struct conf_entry *e, void *base)
{
	const struct conf_loc *loc = e != NULL ? &e->loc :
				     sec != NULL ? &sec->loc : NULL;
	const char *text = e != NULL ? e->value : ck->k.def;
	struct conf_set cs = { .ld = ld, .key = ck, .secname = secname,
			       .loc = loc };

	if (ck->set != NULL)
		ck->set(&cs, text, base);
	else
		key_store(ld, loc, secname, &ck->k, text,
			  e != NULL && e->loc.set >= 0, base);
}

/* [ringd]'s entry for an inherited key, when it has a usable one. Its
 * errors were reported when [ringd] was loaded (and fail the load), so
 * the service's parse of the same text adds none of its own. */
static const struct conf_entry *conf_inherited_entry(struct loader *ld,
						     const struct conf_key *ck)
{
	const struct conf_section *core = conf_ini_section(&ld->ini, "ringd");
	const struct conf_entry *e = conf_ini_entry(core, ck->k.name);

	if (e == NULL || e->value == NULL)
		return NULL;
	return e;
}

static void conf_key_inherit(struct loader *ld, const struct conf_key *ck,
			     const struct conf_section *sec,
			     const char *secname, void *base)
{
	const struct conf_entry *e = conf_inherited_entry(ld, ck);

	ld->log.mute++;
	conf_key_store(ld, ck, sec, secname, e, base);
	ld->log.mute--;
}

/* Every key of a daemon table through one walk: found in sec, repeats
 * refused unless allowed, required ones reported at the section header,
 * each value (every one of a repeat key) set, defaults applied. */
static void conf_keys_apply(struct loader *ld, struct conf_section *sec,
			    const char *secname, const struct conf_key *keys,
			    void *base)
{
	for (const struct conf_key *ck = keys; ck->k.name != NULL; ck++) {
		struct conf_entry *first = conf_ini_claim(sec, &ld->log,
							  secname, ck->k.name,
							  ck->repeat);

		if (first == NULL && ck->k.def == NULL) {
			key_missing(ld, sec, secname, ck->k.name);
			continue;
		}
		if (first == NULL && ck->inherit) {
			conf_key_inherit(ld, ck, sec, secname, base);
			continue;
		}
		if (first == NULL || !ck->repeat) {
			if (first == NULL || first->value != NULL)
				conf_key_store(ld, ck, sec, secname, first,
					       base);
			continue;
		}
		for (size_t i = first - sec->e; i < sec->n; i++)
			if (strcmp(sec->e[i].key, ck->k.name) == 0 &&
			    sec->e[i].value != NULL)
				conf_key_store(ld, ck, sec, secname, &sec->e[i],
					       base);
	}
}

static void conf_keys_free(const struct conf_key *keys, void *base)
{
	for (const struct conf_key *ck = keys; ck->k.name != NULL; ck++) {
		if (ck->release != NULL)
			ck->release(ck, base);
		else if (ck->set == NULL)
			conf_value_free(&ck->k, base);
	}
}

static void unknown_keys(struct loader *ld, struct conf_section *sec,
			 const char *plugin)
{
	for (size_t i = 0; sec != NULL && i < sec->n; i++) {
		struct conf_entry *e = &sec->e[i];

		if (!e->used && e->value != NULL)
			conf_err_at(&ld->log, &e->loc, sec->name, e->key,
				    "unknown key (see ringd -K %s)", plugin);
	}
}

static void conf_core_load(struct loader *ld, const char *default_plugin_dir)
{
	struct ringd_conf *c = ld->conf;
	struct conf_section *sec = conf_ini_section(&ld->ini, "ringd");

	conf_keys_apply(ld, sec, "ringd", conf_core_keys, c);
	if (default_plugin_dir != NULL &&
	    conf_ini_entry(sec, "plugin_dir") == NULL) {
		free(c->plugin_dir);
		c->plugin_dir = strdup(default_plugin_dir);
		if (c->plugin_dir == NULL)
			ld->log.oom = true;
	}
	unknown_keys(ld, sec, "ringd");
}

static unsigned addr_port(const struct listen_addr *a)
{
	if (a->kind == LISTEN_UNIX)
		return 1;
	if (a->ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

/* Records the address for the transport check and refuses one already
 * used by any service. Port 0 asks for any free port, so it never clashes. */
static void conf_addr_seen(struct conf_set *cs, const struct listen_addr *a)
{
	struct loader *ld = cs->ld;
	struct seen_addr *s;
	char where[300];

	if (conf_grow(&ld->addr, &ld->capaddr, ld->naddr,
		      sizeof(*ld->addr)) < 0) {
		ld->log.oom = true;
		return;
	}
	s = &ld->addr[ld->naddr];
	listen_addr_format(a, s->text, sizeof(s->text));
	s->sec = cs->secname;
	s->loc = *cs->loc;
	s->kind = a->kind;
	for (size_t i = 0; addr_port(a) != 0 && i < ld->naddr; i++) {
		const struct seen_addr *o = &ld->addr[i];

		if (strcmp(o->text, s->text) != 0)
			continue;
		if (o->loc.set >= 0)
			snprintf(where, sizeof(where), "in -s %s",
				 ld->log.sets[o->loc.set]);
		else
			snprintf(where, sizeof(where), "at line %u",
				 o->loc.line);
		conf_set_error(cs, "%s: address already used by [%s] %s",
			       s->text, o->sec, where);
		break;
	}
	ld->naddr++;
}

struct listen_ctx {
	struct conf_set *cs;
	struct service_conf *svc;
};

static int conf_listen_one(const struct listen_addr *a, const char *why,
			   void *arg)
{
	struct listen_ctx *lc = arg;
	struct service_conf *svc = lc->svc;
	struct listen_addr *grown;

	if (a == NULL) {
		conf_set_error(lc->cs, "%s", why);
		return 0;
	}
	grown = reallocarray(svc->listen, svc->nlisten + 1, sizeof(*a));
	if (grown == NULL) {
		lc->cs->ld->log.oom = true;
		return -1;
	}
	svc->listen = grown;
	svc->listen[svc->nlisten++] = *a;
	conf_addr_seen(lc->cs, a);
	return 0;
}

/* One listen value: addresses separated by commas, blanks or lines. */
static int conf_listen_set(struct conf_set *cs, const char *text, void *base)
{
	struct listen_ctx lc = { .cs = cs, .svc = base };
	int n = listen_addr_each(text, conf_listen_one, &lc);

	if (n < 0) {
		cs->ld->log.oom = true;
		return -1;
	}
	if (n == 0)
		conf_set_error(cs, "no address given");
	return cs->nerr > 0 ? -1 : 0;
}

static void conf_listen_release(const struct conf_key *ck, void *base)
{
	struct service_conf *svc = base;

	free(svc->listen);
	svc->listen = NULL;
	svc->nlisten = 0;
}

static void conf_transports_check(struct loader *ld, struct conf_section *sec,
				  const struct service_conf *svc, size_t first)
{
	static const char *const kind_names[] = {
		[LISTEN_TCP] = "tcp", [LISTEN_UDP] = "udp",
		[LISTEN_UNIX] = "unix"
	};
	unsigned have = svc->plugin->p->transports;

	for (size_t i = first; i < ld->naddr; i++) {
		const struct seen_addr *s = &ld->addr[i];
		unsigned need = s->kind == LISTEN_UDP ? RINGD_DGRAM :
							RINGD_STREAM;

		if ((have & need) == 0)
			conf_err_at(&ld->log, &s->loc, sec->name, "listen",
				    "%s: plugin %s does not serve %s", s->text,
				    svc->plugin_name, kind_names[s->kind]);
	}
}

static int conf_plugin_attach(struct loader *ld, struct conf_section *sec,
			      struct service_conf *svc)
{
	struct conf_entry *e = conf_ini_entry(sec, "plugin");
	const struct conf_loc *loc = e != NULL ? &e->loc : &sec->loc;
	const struct ringd_plugin *p;
	char why[1024];

	if (ld->conf->plugin_dir == NULL)
		return -1;
	if (plugin_load(&ld->conf->plugins, ld->conf->plugin_dir,
			svc->plugin_name, &svc->plugin, why, sizeof(why)) < 0) {
		conf_err_at(&ld->log, loc, sec->name, "plugin", "%s", why);
		return -1;
	}
	p = svc->plugin->p;
	for (const struct ringd_key *k = p->keys; k && k->name; k++) {
		if (conf_key_find(conf_service_keys, k->name) != NULL) {
			conf_err_at(&ld->log, loc, sec->name, "plugin",
				    "%s: key '%s' is reserved for the daemon",
				    svc->plugin->path, k->name);
			return -1;
		}
	}
	svc->pconf = calloc(1, p->config_size ? p->config_size : 1);
	if (svc->pconf == NULL) {
		ld->log.oom = true;
		return -1;
	}
	return 0;
}

static void conf_check_error(struct ringd_check *chk, const char *key,
			     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The line a check() error names: key, or "key[i]" for the i-th line of
 * a LIST key. Refused lines do not count: the plugin never saw them. */
static const struct conf_entry *conf_check_entry(const struct conf_section *sec,
						 const char *key)
{
	const char *br = key != NULL ? strchr(key, '[') : NULL;
	char *end;
	unsigned long idx;

	if (key == NULL)
		return NULL;
	if (br == NULL)
		return conf_ini_entry(sec, key);
	idx = strtoul(br + 1, &end, 10);
	if (end == br + 1 || strcmp(end, "]") != 0)
		return NULL;
	for (size_t i = 0; i < sec->n; i++) {
		const struct conf_entry *e = &sec->e[i];

		if (e->value == NULL || strncmp(e->key, key, br - key) != 0 ||
		    e->key[br - key] != '\0')
			continue;
		if (idx-- == 0)
			return e;
	}
	return NULL;
}

/* The location of a check() error is the key's line when the key is in
 * the file, else the section header. */
static void conf_check_error(struct ringd_check *pchk, const char *key,
			     const char *fmt, ...)
{
	struct check_ctx *chk = (struct check_ctx *)pchk;
	const struct conf_entry *e = conf_check_entry(chk->sec, key);
	char msg[1024], name[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* "tag[2]" is reported as tag: the line says which one. */
	if (key != NULL)
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(key, "["),
			 key);
	conf_err_at(&chk->ld->log, e != NULL ? &e->loc : &chk->sec->loc,
		    chk->sec->name, key != NULL ? name : NULL, "%s", msg);
	chk->n++;
}

static void conf_plugin_check(struct loader *ld, struct conf_section *sec,
			      struct service_conf *svc)
{
	const struct ringd_plugin *p = svc->plugin->p;
	struct check_ctx chk = { .ld = ld, .sec = sec };
	size_t i;

	if (!PLUGIN_HAS(p, check)) {
		svc->checked = true;
		return;
	}
	chk.pub.instance = sec->name;
	chk.pub.config_dir = ld->inidir;
	for (i = 0; i < svc->nlisten; i++)
		chk.pub.transports |= svc->listen[i].kind == LISTEN_UDP ?
					      RINGD_DGRAM : RINGD_STREAM;
	if (p->check(svc->pconf, &chk.pub, conf_check_error) == 0)
		svc->checked = true;
	else if (chk.n == 0)
		conf_err_at(&ld->log, &sec->loc, sec->name, NULL,
			    "plugin %s refused the configuration without "
			    "saying why", svc->plugin_name);
}

static void conf_service_load(struct loader *ld, struct conf_section *sec,
			      struct service_conf *svc)
{
	size_t nerr, first = ld->naddr;

	svc->file = ld->conf->path;
	svc->line = sec->loc.line;
	svc->name = strdup(sec->name);
	conf_keys_apply(ld, sec, sec->name, conf_service_keys, svc);
	if (svc->plugin_name != NULL && svc->plugin_name[0] == '\0') {
		free(svc->plugin_name);
		svc->plugin_name = strdup(sec->name);
	}
	if (svc->name == NULL || (svc->plugin_name == NULL &&
				  !conf_ini_refused(sec, "plugin"))) {
		ld->log.oom = true;
		return;
	}
	/* A refused plugin line is already reported; without a plugin its
	 * keys cannot be checked, but the section's core keys were. */
	if (svc->plugin_name == NULL || conf_plugin_attach(ld, sec, svc) < 0)
		return;
	/* check() needs every one of the plugin's own keys parsed; an error
	 * elsewhere in the section (a bad listen, say) does not touch its
	 * config, so it still runs and the operator sees all errors at once. */
	nerr = ld->log.n;
	conf_plugin_keys_apply(ld, sec, svc->plugin, svc->pconf);
	if (ld->log.n == nerr && !sec->broken)
		conf_plugin_check(ld, sec, svc);
	conf_transports_check(ld, sec, svc, first);
	unknown_keys(ld, sec, svc->plugin_name);
}

static void conf_services_load(struct loader *ld)
{
	struct ringd_conf *c = ld->conf;

	c->svc = calloc(ld->ini.n ? ld->ini.n : 1, sizeof(*c->svc));
	if (c->svc == NULL) {
		ld->log.oom = true;
		return;
	}
	for (size_t i = 0; i < ld->ini.n; i++)
		if (strcmp(ld->ini.sec[i].name, "ringd") != 0)
			conf_service_load(ld, &ld->ini.sec[i],
					  &c->svc[c->nsvc++]);
	if (c->nsvc == 0)
		conf_err_at(&ld->log, NULL, NULL, NULL,
			    "no services configured");
}

int conf_load(const char *path, const char *const *sets, size_t nsets,
	      const char *default_plugin_dir, struct ringd_conf **out,
	      struct conf_errors *errs)
{
	struct loader ld = { .log = { .file = path, .sets = sets } };
	struct ringd_conf *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (c == NULL || (c->path = strdup(path)) == NULL) {
		conf_errors_add(errs, "%s: out of memory", path);
		free(c);
		return -1;
	}
	ld.conf = c;
	if (conf_ini_read(&ld.ini, &ld.log) == 0) {
		ld.inidir = dir_of(path);
		for (size_t i = 0; i < nsets; i++)
			conf_ini_set(&ld.ini, &ld.log, (int)i);
		conf_core_load(&ld, default_plugin_dir);
		conf_services_load(&ld);
	}
	/* The errors name sections the ini owns: flush before freeing it. */
	rc = ld.log.n > 0 || ld.log.oom ? -1 : 0;
	conf_err_flush(&ld.log, errs);
	if (ld.log.oom)
		conf_errors_add(errs, "%s: out of memory", path);
	conf_ini_free(&ld.ini);
	free(ld.addr);
	free(ld.inidir);
	if (rc < 0) {
		conf_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

static void conf_service_free(struct service_conf *s)
{
	const struct ringd_plugin *p = s->plugin ? s->plugin->p : NULL;

	if (s->pconf != NULL && p != NULL) {
		if (s->checked && PLUGIN_HAS(p, release))
			p->release(s->pconf);
		for (const struct ringd_key *k = p->keys; k && k->name; k++)
			conf_value_free(k, s->pconf);
	}
	free(s->pconf);
	free(s->name);
	conf_keys_free(conf_service_keys, s);
}

/* Plugins are closed last: release() and the key tables live in them. */
void conf_free(struct ringd_conf *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nsvc; i++)
		conf_service_free(&c->svc[i]);
	free(c->svc);
	conf_keys_free(conf_core_keys, c);
	plugin_set_free(&c->plugins);
	free(c->path);
	free(c);
}

enum ringd_log_level conf_log_level(const struct ringd_conf *c)
{
	static const enum ringd_log_level map[] = {
		RINGD_LOG_ERR, RINGD_LOG_WARNING, RINGD_LOG_NOTICE,
		RINGD_LOG_INFO, RINGD_LOG_DEBUG
	};

	if (c->log_level < 0 || c->log_level >= (int)(sizeof(map) /
						       sizeof(map[0])))
		return RINGD_LOG_INFO;
	return map[c->log_level];
}

/* One line of -K, whichever kind of table it comes from. */
struct key_row {
	const char *name, *type, *help;
	char def[160];
	char bounds[256];
};

static void rows_print(FILE *f, const char *title, const struct key_row *r,
		       size_t n)
{
	int wname = 0, wtype = 0, wdef = 0, wbounds = 0, over, len;
	char line[1024];

	for (size_t i = 0; i < n; i++) {
		wname = MAX(wname, (int)strlen(r[i].name));
		wtype = MAX(wtype, (int)strlen(r[i].type));
		/* A long default (a directory) overflows its own line
		 * rather than pushing every help text to the right. */
		if (strlen(r[i].def) <= 24)
			wdef = MAX(wdef, (int)strlen(r[i].def));
		wbounds = MAX(wbounds, (int)strlen(r[i].bounds));
	}
	fprintf(f, "%s\n", title);
	for (size_t i = 0; i < n; i++) {
		over = MAX(0, (int)strlen(r[i].def) - wdef);
		len = snprintf(line, sizeof(line),
			       "  %-*s  %-*s  %-*s  %-*s  %s", wname, r[i].name,
			       wtype, r[i].type, wdef, r[i].def,
			       MAX(0, wbounds - over), r[i].bounds,
			       r[i].help ? r[i].help : "");
		len = MIN(len, (int)sizeof(line) - 1);
		/* Columns left empty at the end pad nothing. */
		while (len > 0 && line[len - 1] == ' ')
			len--;
		fprintf(f, "%.*s\n", len, line);
	}
}

static void key_row_fill(struct key_row *r, const struct ringd_key *k)
{
	r->name = k->name;
	r->type = conf_type_name(k->type);
	r->help = k->help;
	conf_key_default(k, r->def, sizeof(r->def));
	conf_key_bounds(k, r->bounds, sizeof(r->bounds));
}

void conf_print_keys(FILE *f, const char *title, const struct ringd_key *k)
{
	struct key_row *rows;
	size_t n = 0;

	while (k != NULL && k[n].name != NULL)
		n++;
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (rows == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		key_row_fill(&rows[i], &k[i]);
	rows_print(f, title, rows, n);
	free(rows);
}

void conf_print_daemon_keys(FILE *f, const char *title,
			    const struct conf_key *k)
{
	struct key_row *rows;
	size_t n = 0;

	while (k[n].k.name != NULL)
		n++;
	rows = calloc(n ? n : 1, sizeof(*rows));
	if (rows == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		key_row_fill(&rows[i], &k[i].k);
		if (k[i].type != NULL)
			rows[i].type = k[i].type;
		if (k[i].bounds != NULL)
			snprintf(rows[i].bounds, sizeof(rows[i].bounds), "%s",
				 k[i].bounds);
		if (k[i].inherit)
			snprintf(rows[i].def, sizeof(rows[i].def),
				 "default [ringd]");
	}
	rows_print(f, title, rows, n);
	free(rows);
}
