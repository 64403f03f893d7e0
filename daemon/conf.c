/* Configuration loading: the INI file through inih and a line-counting
 * reader that also checks every line's syntax, then -s overrides, then
 * typed keys, plugins and their check(). Value parsing is conf_value.c's,
 * module loading plugin.c's. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "conf.h"

#define NAME_MAX_LEN 64

static const char *const backend_names[] = { "auto", "io_uring", "epoll",
					      NULL };
static const char *const level_names[] = { "error", "warning", "notice",
					    "info", "debug", NULL };

const struct ringd_key conf_core_keys[] = {
	{ .name = "backend", .type = RINGD_KEY_ENUM, .def = "auto",
	  .choices = backend_names, .offset = offsetof(struct ringd_conf, backend),
	  .help = "I/O engine; auto tries io_uring, then epoll" },
	{ .name = "workers", .type = RINGD_KEY_STRING, .def = "auto",
	  .offset = offsetof(struct ringd_conf, workers),
	  .help = "worker threads: auto (one per online CPU) or 1..256" },
	{ .name = "plugin_dir", .type = RINGD_KEY_PATH, .def = RINGD_PLUGIN_DIR,
	  .offset = offsetof(struct ringd_conf, plugin_dir),
	  .help = "where NAME.so plugins are loaded from" },
	{ .name = "log_level", .type = RINGD_KEY_ENUM, .def = "info",
	  .choices = level_names,
	  .offset = offsetof(struct ringd_conf, log_level),
	  .help = "least important messages logged" },
	{ .name = "max_connections", .type = RINGD_KEY_INT, .def = "65536",
	  .min = 1, .max = 1048576,
	  .offset = offsetof(struct ringd_conf, max_connections),
	  .help = "open connections across all services" },
	{ .name = "shutdown_timeout", .type = RINGD_KEY_DURATION, .def = "10s",
	  .min = 0, .max = 3600000,
	  .offset = offsetof(struct ringd_conf, shutdown_timeout_ms),
	  .help = "how long a graceful stop waits for connections" },
	{ .name = "user", .type = RINGD_KEY_STRING, .def = "",
	  .offset = offsetof(struct ringd_conf, user),
	  .help = "drop to this user after binding when started as root" },
	{ .name = "reuseport", .type = RINGD_KEY_BOOL, .def = "yes",
	  .offset = offsetof(struct ringd_conf, reuseport),
	  .help = "per-worker SO_REUSEPORT listeners instead of one shared "
		  "listener" },
	{ .name = "udp_rate", .type = RINGD_KEY_INT, .def = "10",
	  .min = 1, .max = 1000000,
	  .offset = offsetof(struct ringd_conf, udp_rate),
	  .help = "UDP replies per second to one source (IPv4 /32, IPv6 /64)" },
	{ .name = "udp_burst", .type = RINGD_KEY_INT, .def = "20",
	  .min = 1, .max = 1000000,
	  .offset = offsetof(struct ringd_conf, udp_burst),
	  .help = "UDP replies one source may get at once before udp_rate "
		  "applies" },
	{ .name = "udp_global_rate", .type = RINGD_KEY_INT, .def = "1000",
	  .min = 0, .max = 10000000,
	  .offset = offsetof(struct ringd_conf, udp_global_rate),
	  .help = "UDP replies per second across all sources; 0: no cap" },
	{ .name = NULL },
};

/* listen is parsed by listen_load() into service_conf.listen, never
 * through conf_value_parse(); its entry is here for -K and name lookup. */
const struct ringd_key conf_service_keys[] = {
	{ .name = "plugin", .type = RINGD_KEY_STRING, .def = "",
	  .offset = offsetof(struct service_conf, plugin_name),
	  .help = "plugin to run; empty: the section name" },
	{ .name = "listen", .type = RINGD_KEY_STRING, .def = NULL,
	  .offset = offsetof(struct service_conf, listen),
	  .help = "tcp://HOST:PORT, udp://HOST:PORT, unix:PATH; comma-"
		  "separated, repeatable" },
	{ .name = "idle_timeout", .type = RINGD_KEY_DURATION, .def = "60s",
	  .min = 0, .max = 86400000,
	  .offset = offsetof(struct service_conf, idle_timeout_ms),
	  .help = "close connections idle this long; 0: never" },
	{ .name = "socket_mode", .type = RINGD_KEY_INT, .def = "0660",
	  .min = 0, .max = 0777,
	  .offset = offsetof(struct service_conf, socket_mode),
	  .help = "file mode of unix: sockets" },
	{ .name = NULL },
};

/* Where a value came from: a line of the file, or the set-th -s. */
struct loc {
	unsigned line;
	int set;
};

struct entry {
	char *key;
	char *value; /* NULL: the line was refused and already reported */
	struct loc loc;
	bool used;
};

struct section {
	char *name;
	struct loc loc;
	struct entry *e;
	size_t n, cap;
	bool broken; /* holds a refused line: keys may be unset, skip check() */
};

/* Errors are kept with their location so they print in file order
 * whichever phase found them. */
struct lerr {
	unsigned group; /* 0: file line, 1: -s, 2: whole file */
	unsigned pos;
	size_t seq;
	char *msg;
};

struct seen_addr {
	char text[160];
	size_t sec;
	struct loc loc;
	enum listen_kind kind;
};

enum sec_state { SEC_NONE, SEC_OK, SEC_IGNORED };

struct loader {
	const char *file;
	const char *const *sets;
	char *inidir;
	FILE *f;
	char *raw;
	size_t rawcap;

	/* The reader's view of the current line, mirroring what inih will
	 * do with it, so the handler knows where a value belongs. */
	unsigned line;
	enum sec_state state;
	bool have_prev; /* inih has a previous key to continue */
	bool prev_ok;   /* and we stored it */
	bool cont;      /* this line continues it */
	size_t cur, last;

	struct section *sec;
	size_t nsec, capsec;
	struct lerr *err;
	size_t nerr, caperr;
	struct seen_addr *addr;
	size_t naddr, capaddr;
	struct ringd_conf *conf;
	bool oom; /* reported once, by conf_load() */
	bool read_failed; /* the file could not be read to its end */
};

/* The daemon's side of struct ringd_check: where errors go. */
struct check_ctx {
	struct ringd_check pub; /* first: check() gets &pub */
	struct loader *ld;
	struct section *sec;
	unsigned n;
};

static int grow(void *arrp, size_t *cap, size_t n, size_t size)
{
	void **arr = arrp;
	size_t ncap = *cap ? *cap * 2 : 8;
	void *p;

	if (n < *cap)
		return 0;
	p = reallocarray(*arr, ncap, size);
	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

void conf_errors_add(struct conf_errors *e, const char *fmt, ...)
{
	va_list ap;
	char *msg;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&msg, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	if (grow(&e->msg, &e->cap, e->n, sizeof(*e->msg)) < 0) {
		free(msg);
		return;
	}
	e->msg[e->n++] = msg;
}

void conf_errors_print(const struct conf_errors *e, FILE *f)
{
	for (size_t i = 0; i < e->n; i++)
		fprintf(f, "%s\n", e->msg[i]);
}

void conf_errors_free(struct conf_errors *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->msg[i]);
	free(e->msg);
	e->msg = NULL;
	e->n = e->cap = 0;
}

static struct loc loc_line(unsigned line)
{
	return (struct loc){ .line = line, .set = -1 };
}

/* One error is one line: a value joined from continuation lines shows
 * "\n", other control characters from the file show as '?'. */
static void text_sanitize(char *s, size_t size)
{
	size_t len = strlen(s);

	for (char *p = s; *p != '\0'; p++) {
		if (*p == '\n' && len + 1 < size) {
			memmove(p + 2, p + 1, strlen(p + 1) + 1);
			p[0] = '\\';
			p[1] = 'n';
			p++;
			len++;
		} else if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*p = *p == '\t' ? ' ' : '?';
		}
	}
}

/* "FILE:LINE: [section] key: message"; each part left out when absent. */
static void err_at(struct loader *ld, const struct loc *loc, const char *sec,
		   const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void err_at(struct loader *ld, const struct loc *loc, const char *sec,
		   const char *key, const char *fmt, ...)
{
	char where[512], what[160] = "", msg[1024];
	struct lerr *le;
	va_list ap;

	if (loc != NULL && loc->set >= 0)
		snprintf(where, sizeof(where), "-s %s", ld->sets[loc->set]);
	else if (loc != NULL && loc->line > 0)
		snprintf(where, sizeof(where), "%s:%u", ld->file, loc->line);
	else
		snprintf(where, sizeof(where), "%s", ld->file);
	/* A -s argument (or a file name) is the operator's text too: a
	 * control character in it must not reach the terminal raw. */
	text_sanitize(where, sizeof(where));
	if (sec != NULL)
		snprintf(what, sizeof(what), " [%s]%s%s", sec, key ? " " : "",
			 key ? key : "");
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	text_sanitize(msg, sizeof(msg));
	if (grow(&ld->err, &ld->caperr, ld->nerr, sizeof(*ld->err)) < 0) {
		ld->oom = true;
		return;
	}
	le = &ld->err[ld->nerr];
	if (asprintf(&le->msg, "%s:%s%s %s", where, what, sec ? ":" : "",
		     msg) < 0) {
		ld->oom = true;
		return;
	}
	le->group = loc == NULL ? 2 : loc->set >= 0 ? 1 : loc->line ? 0 : 2;
	le->pos = loc == NULL ? 0 : loc->set >= 0 ? (unsigned)loc->set :
		  loc->line;
	le->seq = ld->nerr++;
}

static int lerr_cmp(const void *a, const void *b)
{
	const struct lerr *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Hands the errors over in file order; ownership of the strings moves. */
static void errors_flush(struct loader *ld, struct conf_errors *errs)
{
	if (ld->nerr > 0)
		qsort(ld->err, ld->nerr, sizeof(*ld->err), lerr_cmp);
	for (size_t i = 0; i < ld->nerr; i++) {
		conf_errors_add(errs, "%s", ld->err[i].msg);
		free(ld->err[i].msg);
	}
	free(ld->err);
	ld->err = NULL;
	ld->nerr = ld->caperr = 0;
}

static struct section *section_find(struct loader *ld, const char *name)
{
	for (size_t i = 0; i < ld->nsec; i++)
		if (strcmp(ld->sec[i].name, name) == 0)
			return &ld->sec[i];
	return NULL;
}

static struct section *section_add(struct loader *ld, const char *name,
				   size_t len, struct loc loc)
{
	struct section *s;

	if (grow(&ld->sec, &ld->capsec, ld->nsec, sizeof(*ld->sec)) < 0)
		return NULL;
	s = &ld->sec[ld->nsec];
	memset(s, 0, sizeof(*s));
	s->name = strndup(name, len);
	if (s->name == NULL)
		return NULL;
	s->loc = loc;
	ld->nsec++;
	return s;
}

static struct entry *entry_find(struct section *sec, const char *key)
{
	for (size_t i = 0; sec != NULL && i < sec->n; i++)
		if (strcmp(sec->e[i].key, key) == 0)
			return &sec->e[i];
	return NULL;
}

/* The key is on a line that was refused (and reported) as a whole. */
static bool entry_refused(struct section *sec, const char *key)
{
	const struct entry *e = entry_find(sec, key);

	return e != NULL && e->value == NULL;
}

static int entry_add(struct section *sec, const char *key, size_t keylen,
		     const char *value, struct loc loc)
{
	struct entry *e;

	if (grow(&sec->e, &sec->cap, sec->n, sizeof(*sec->e)) < 0)
		return -ENOMEM;
	e = &sec->e[sec->n];
	memset(e, 0, sizeof(*e));
	e->key = strndup(key, keylen);
	e->value = value != NULL ? strdup(value) : NULL;
	e->loc = loc;
	if (e->key == NULL || (value != NULL && e->value == NULL)) {
		free(e->key);
		free(e->value);
		return -ENOMEM;
	}
	sec->n++;
	return 0;
}

static bool word_valid(const char *s, size_t len)
{
	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return false;
	return true;
}

static char *lskip(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static void rstrip(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
}

/* inih's inline comment rule: ';' after whitespace. Applied to every line
 * here, continuation lines included, which inih itself leaves alone. */
static void comment_strip(char *s)
{
	bool was_space = false;

	for (char *p = s; *p != '\0'; p++) {
		if (was_space && *p == ';') {
			*p = '\0';
			break;
		}
		was_space = isspace((unsigned char)*p);
	}
	rstrip(s);
}

static int header_check(struct loader *ld, char *s)
{
	struct loc loc = loc_line(ld->line);
	char *end = strchr(s, ']');
	struct section *first;
	size_t len;

	ld->prev_ok = false;
	ld->state = SEC_IGNORED;
	if (end == NULL || end[1] != '\0') {
		err_at(ld, &loc, NULL, NULL, end == NULL ?
		       "expected ']' at the end of the section header" :
		       "unexpected text after ']'");
		return -1;
	}
	len = end - s - 1;
	if (!word_valid(s + 1, len)) {
		err_at(ld, &loc, NULL, NULL, "invalid section name '%.*s' (use "
		       "letters, digits, '_' and '-')", (int)len, s + 1);
		return -1;
	}
	*end = '\0';
	first = section_find(ld, s + 1);
	*end = ']';
	ld->have_prev = false;
	if (first != NULL) {
		err_at(ld, &loc, first->name, NULL,
		       "duplicate section (first at line %u)", first->loc.line);
		return 0;
	}
	if (section_add(ld, s + 1, len, loc) == NULL) {
		ld->oom = true;
		return 0;
	}
	ld->cur = ld->nsec - 1;
	ld->state = SEC_OK;
	return 0;
}

static int keyline_check(struct loader *ld, char *s)
{
	struct loc loc = loc_line(ld->line);
	char *eq = s + strcspn(s, "=:");
	char *end = eq;

	ld->prev_ok = false;
	if (*eq != '=') {
		err_at(ld, &loc, NULL, NULL, "expected 'key = value', "
		       "'[section]' or a comment");
		return -1;
	}
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	if (end == s) {
		err_at(ld, &loc, NULL, NULL, "missing key name before '='");
		return -1;
	}
	if (!word_valid(s, end - s)) {
		err_at(ld, &loc, NULL, NULL, "invalid key name '%.*s'",
		       (int)(end - s), s);
		return -1;
	}
	if (ld->state == SEC_NONE) {
		err_at(ld, &loc, NULL, NULL, "key '%.*s' outside any section "
		       "(add a [section] header above it)", (int)(end - s), s);
		return -1;
	}
	if (ld->state == SEC_IGNORED)
		return -1;
	ld->have_prev = true;
	ld->prev_ok = true;
	return 0;
}

/* A line inih cannot take (too long, or with a NUL byte) is refused
 * whole; a key on it still counts as present, so it is not reported
 * missing as well. */
static void line_refuse(struct loader *ld, char *s, const char *why)
{
	struct loc loc = loc_line(ld->line);
	size_t len;

	err_at(ld, &loc, NULL, NULL, "%s", why);
	ld->prev_ok = false;
	s = lskip(s);
	if (*s == '[') {
		ld->state = SEC_IGNORED;
		return;
	}
	if (ld->state != SEC_OK)
		return;
	ld->sec[ld->cur].broken = true;
	len = strcspn(s, " \t=");
	if (s[strspn(s + len, " \t") + len] == '=' && word_valid(s, len) &&
	    entry_add(&ld->sec[ld->cur], s, len, NULL, loc) < 0)
		ld->oom = true;
}

/* Returns 0 when inih may see the line, -1 when it gets a blank line. */
static int line_check(struct loader *ld, char *line)
{
	char *s = lskip(line);

	ld->cont = false;
	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	comment_strip(s);
	if (s > line && ld->have_prev) {
		ld->cont = true;
		return ld->prev_ok && ld->state == SEC_OK ? 0 : -1;
	}
	if (*s == '[')
		return header_check(ld, s);
	return keyline_check(ld, s);
}

/* inih's reader: one whole line per call, so inih's line count and ours
 * agree, after our own syntax check. */
static char *conf_reader(char *buf, int num, void *stream)
{
	struct loader *ld = stream;
	/* getdelim(), not getline(): the same call, but glibc may inline
	 * getline() into __getdelim(), and test_conf wraps this symbol. */
	ssize_t n = getdelim(&ld->raw, &ld->rawcap, '\n', ld->f);
	char *s = ld->raw, why[64];
	struct loc loc;

	/* Only end of file ends the file: getdelim() can fail for lack of
	 * memory without setting the stream's error flag, and treating that
	 * as the end would drop the rest of the file without a word. */
	if (n < 0) {
		if (!feof(ld->f)) {
			ld->read_failed = true;
			loc = loc_line(ld->line + 1);
			err_at(ld, &loc, NULL, NULL, "read error: %s",
			       strerror(errno));
		}
		return NULL;
	}
	ld->line++;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (ld->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	buf[0] = '\0';
	if (strlen(s) != (size_t)(n - (s - ld->raw))) {
		line_refuse(ld, s, "line contains a NUL byte");
	} else if (strlen(s) > (size_t)num - 1) {
		snprintf(why, sizeof(why), "line too long (max %d characters)",
			 num - 1);
		line_refuse(ld, s, why);
	} else if (line_check(ld, s) == 0) {
		memcpy(buf, s, strlen(s) + 1);
	}
	return buf;
}

static int entry_append(struct entry *e, const char *more)
{
	char *v;

	if (e->value == NULL)
		return 0;
	if (asprintf(&v, "%s\n%s", e->value, more) < 0)
		return -ENOMEM;
	free(e->value);
	e->value = v;
	return 0;
}

static int conf_handler(void *user, const char *section, const char *name,
			const char *value)
{
	struct loader *ld = user;
	struct section *sec;
	int rc;

	if (ld->state != SEC_OK)
		return 1;
	sec = &ld->sec[ld->cur];
	if (ld->cont) {
		rc = entry_append(&sec->e[ld->last], value);
	} else {
		rc = entry_add(sec, name, strlen(name), value,
			       loc_line(ld->line));
		if (rc == 0)
			ld->last = sec->n - 1;
	}
	if (rc < 0) {
		ld->oom = true;
		ld->prev_ok = false;
	}
	return rc == 0;
}

/* O_NONBLOCK so that a FIFO fails the regular-file check instead of
 * hanging ringd -t in open(); a device such as /dev/zero would otherwise
 * be read without end. */
static FILE *file_open(struct loader *ld)
{
	struct loc loc = loc_line(0);
	int fd = open(ld->file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	FILE *f;

	if (fd < 0) {
		err_at(ld, &loc, NULL, NULL, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		err_at(ld, &loc, NULL, NULL, "cannot stat: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		err_at(ld, &loc, NULL, NULL, "not a regular file");
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		err_at(ld, &loc, NULL, NULL, "cannot open: %s", strerror(errno));
		close(fd);
	}
	return f;
}

static int file_read(struct loader *ld)
{
	struct loc loc = loc_line(0);
	int rc;

	ld->f = file_open(ld);
	if (ld->f == NULL)
		return -1;
	rc = ini_parse_stream(conf_reader, ld, conf_handler, ld);
	fclose(ld->f);
	ld->f = NULL;
	free(ld->raw);
	ld->raw = NULL;
	if (ld->read_failed)
		return -1;
	if (rc > 0 && !ld->oom) {
		/* The reader passes inih only lines it accepts, so this
		 * means the two disagree: report rather than ignore it. */
		loc = loc_line(rc);
		err_at(ld, &loc, NULL, NULL, "syntax error");
	}
	return 0;
}

static const struct ringd_key *key_find(const struct ringd_key *keys,
					const char *name)
{
	for (; keys != NULL && keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

static void entries_remove(struct section *sec, const char *key,
			   size_t keylen)
{
	size_t j = 0;

	for (size_t i = 0; i < sec->n; i++) {
		struct entry *e = &sec->e[i];

		if (strlen(e->key) == keylen && !strncmp(e->key, key, keylen)) {
			free(e->key);
			free(e->value);
		} else {
			sec->e[j++] = *e;
		}
	}
	sec->n = j;
}

/* -s SECTION.KEY=VALUE replaces every value of the key in that section
 * (all listen lines at once) and creates the section if needed, so a
 * whole service can be added from the command line. */
static void set_apply(struct loader *ld, int idx)
{
	const char *arg = ld->sets[idx], *dot = strchr(arg, '.');
	const char *eq = strchr(arg, '='), *val;
	struct loc loc = { .line = 0, .set = idx };
	char name[NAME_MAX_LEN + 1], *v;
	struct section *sec;
	size_t vlen;

	if (dot == NULL || eq == NULL || dot > eq ||
	    !word_valid(arg, dot - arg) || !word_valid(dot + 1, eq - dot - 1)) {
		err_at(ld, &loc, NULL, NULL, "expected SECTION.KEY=VALUE");
		return;
	}
	memcpy(name, arg, dot - arg);
	name[dot - arg] = '\0';
	sec = section_find(ld, name);
	if (sec == NULL)
		sec = section_add(ld, name, dot - arg, loc);
	if (sec == NULL) {
		ld->oom = true;
		return;
	}
	entries_remove(sec, dot + 1, eq - dot - 1);
	val = lskip((char *)eq + 1);
	vlen = strlen(val);
	while (vlen > 0 && isspace((unsigned char)val[vlen - 1]))
		vlen--;
	v = strndup(val, vlen);
	if (v == NULL || entry_add(sec, dot + 1, eq - dot - 1, v, loc) < 0)
		ld->oom = true;
	free(v);
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
static void key_store(struct loader *ld, struct section *sec,
		      const char *secname, const struct ringd_key *k,
		      const struct entry *e, void *base)
{
	const char *text = e != NULL ? e->value : k->def;
	const struct loc *loc = e != NULL ? &e->loc : sec ? &sec->loc : NULL;
	char why[512], *abs = NULL, *dir;

	if (k->type == RINGD_KEY_PATH && text[0] != '\0' && text[0] != '/') {
		dir = e != NULL && e->loc.set >= 0 ? getcwd(NULL, 0) :
			ld->inidir != NULL ? strdup(ld->inidir) : NULL;
		if (dir == NULL || asprintf(&abs, "%s%s%s", dir,
					    strcmp(dir, "/") ? "/" : "",
					    text) < 0) {
			free(dir);
			ld->oom = true;
			return;
		}
		free(dir);
		text = abs;
	}
	if (conf_value_parse(k, text, base, why, sizeof(why)) < 0)
		err_at(ld, loc, secname, k->name, "%s", why);
	free(abs);
}

/* Parses every key of the table found in sec (or its default) into base.
 * skip names a key the caller parses itself. */
static void keys_apply(struct loader *ld, struct section *sec,
		       const char *secname, const struct ringd_key *keys,
		       void *base, const char *skip)
{
	for (const struct ringd_key *k = keys; k && k->name != NULL; k++) {
		struct entry *first = NULL;

		if (skip != NULL && strcmp(k->name, skip) == 0)
			continue;
		for (size_t i = 0; sec != NULL && i < sec->n; i++) {
			struct entry *e = &sec->e[i];

			if (strcmp(e->key, k->name) != 0)
				continue;
			e->used = true;
			if (first == NULL)
				first = e;
			else if (e->value != NULL)
				err_at(ld, &e->loc, secname, k->name,
				       "duplicate key (first at line %u)",
				       first->loc.line);
		}
		if (first != NULL && first->value == NULL)
			continue;
		if (first == NULL && k->def == NULL)
			err_at(ld, sec ? &sec->loc : NULL, secname, k->name,
			       "required key missing");
		else
			key_store(ld, sec, secname, k, first, base);
	}
}

static void unknown_keys(struct loader *ld, struct section *sec,
			 const char *plugin)
{
	for (size_t i = 0; sec != NULL && i < sec->n; i++) {
		struct entry *e = &sec->e[i];

		if (!e->used && e->value != NULL)
			err_at(ld, &e->loc, sec->name, e->key,
			       "unknown key (see ringd -K %s)", plugin);
	}
}

static void workers_resolve(struct loader *ld, struct section *sec)
{
	struct ringd_conf *c = ld->conf;
	struct entry *e = entry_find(sec, "workers");
	const char *w = c->workers;
	char why[256];
	long n;

	if (w == NULL)
		return;
	if (strcmp(w, "auto") == 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		c->workers_n = n < 1 ? 1 : n > 256 ? 256 : n;
		return;
	}
	if (isdigit((unsigned char)w[0]) &&
	    conf_parse_int(w, 1, 256, &c->workers_n, why, sizeof(why)) == 0)
		return;
	if (!isdigit((unsigned char)w[0]))
		snprintf(why, sizeof(why), "expected auto or a number 1..256: "
			 "'%s'", w);
	err_at(ld, e ? &e->loc : NULL, "ringd", "workers", "%s", why);
}

static void core_load(struct loader *ld, const char *default_plugin_dir)
{
	struct ringd_conf *c = ld->conf;
	struct section *sec = section_find(ld, "ringd");

	keys_apply(ld, sec, "ringd", conf_core_keys, c, NULL);
	if (default_plugin_dir != NULL &&
	    entry_find(sec, "plugin_dir") == NULL) {
		free(c->plugin_dir);
		c->plugin_dir = strdup(default_plugin_dir);
		if (c->plugin_dir == NULL)
			ld->oom = true;
	}
	workers_resolve(ld, sec);
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
static void addr_seen(struct loader *ld, size_t secidx,
		      const struct listen_addr *a, const struct entry *e)
{
	struct seen_addr *s;
	char where[300];

	if (grow(&ld->addr, &ld->capaddr, ld->naddr, sizeof(*ld->addr)) < 0) {
		ld->oom = true;
		return;
	}
	s = &ld->addr[ld->naddr];
	listen_addr_format(a, s->text, sizeof(s->text));
	s->sec = secidx;
	s->loc = e->loc;
	s->kind = a->kind;
	for (size_t i = 0; addr_port(a) != 0 && i < ld->naddr; i++) {
		const struct seen_addr *o = &ld->addr[i];

		if (strcmp(o->text, s->text) != 0)
			continue;
		if (o->loc.set >= 0)
			snprintf(where, sizeof(where), "in -s %s",
				 ld->sets[o->loc.set]);
		else
			snprintf(where, sizeof(where), "at line %u",
				 o->loc.line);
		err_at(ld, &e->loc, ld->sec[secidx].name, "listen",
		       "%s: address already used by [%s] %s", s->text,
		       ld->sec[o->sec].name, where);
		break;
	}
	ld->naddr++;
}

/* One listen value: addresses separated by commas, blanks or lines. */
static void listen_list(struct loader *ld, size_t secidx,
			struct service_conf *svc, const struct entry *e)
{
	char *copy = strdup(e->value), *tok, *save = NULL, why[512];
	const char *name = ld->sec[secidx].name;
	struct listen_addr a, *grown;
	bool none = true;

	if (copy == NULL) {
		ld->oom = true;
		return;
	}
	for (tok = strtok_r(copy, ", \t\n", &save); tok != NULL;
	     tok = strtok_r(NULL, ", \t\n", &save)) {
		none = false;
		if (listen_addr_parse(tok, &a, why, sizeof(why)) < 0) {
			err_at(ld, &e->loc, name, "listen", "%s", why);
			continue;
		}
		grown = reallocarray(svc->listen, svc->nlisten + 1, sizeof(a));
		if (grown == NULL) {
			ld->oom = true;
			break;
		}
		svc->listen = grown;
		svc->listen[svc->nlisten++] = a;
		addr_seen(ld, secidx, &a, e);
	}
	if (none)
		err_at(ld, &e->loc, name, "listen", "no address given");
	free(copy);
}

static void listen_load(struct loader *ld, size_t secidx,
			struct service_conf *svc)
{
	struct section *sec = &ld->sec[secidx];
	bool any = false;

	for (size_t i = 0; i < sec->n; i++) {
		struct entry *e = &sec->e[i];

		if (strcmp(e->key, "listen") != 0)
			continue;
		e->used = true;
		any = true;
		if (e->value != NULL)
			listen_list(ld, secidx, svc, e);
	}
	if (!any)
		err_at(ld, &sec->loc, sec->name, "listen",
		       "required key missing");
}

static void transports_check(struct loader *ld, struct section *sec,
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
			err_at(ld, &s->loc, sec->name, "listen",
			       "%s: plugin %s does not serve %s", s->text,
			       svc->plugin_name, kind_names[s->kind]);
	}
}

static int plugin_attach(struct loader *ld, struct section *sec,
			 struct service_conf *svc)
{
	struct entry *e = entry_find(sec, "plugin");
	const struct loc *loc = e != NULL ? &e->loc : &sec->loc;
	const struct ringd_plugin *p;
	char why[1024];

	if (ld->conf->plugin_dir == NULL)
		return -1;
	if (plugin_load(&ld->conf->plugins, ld->conf->plugin_dir,
			svc->plugin_name, &svc->plugin, why, sizeof(why)) < 0) {
		err_at(ld, loc, sec->name, "plugin", "%s", why);
		return -1;
	}
	p = svc->plugin->p;
	for (const struct ringd_key *k = p->keys; k && k->name; k++) {
		if (key_find(conf_service_keys, k->name) != NULL) {
			err_at(ld, loc, sec->name, "plugin", "%s: key '%s' is "
			       "reserved for the daemon", svc->plugin->path,
			       k->name);
			return -1;
		}
	}
	svc->pconf = calloc(1, p->config_size ? p->config_size : 1);
	if (svc->pconf == NULL) {
		ld->oom = true;
		return -1;
	}
	return 0;
}

static void check_error(struct ringd_check *chk, const char *key,
			const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The location of a check() error is the key's line when the key is in
 * the file, else the section header. */
static void check_error(struct ringd_check *pchk, const char *key,
			const char *fmt, ...)
{
	struct check_ctx *chk = (struct check_ctx *)pchk;
	struct entry *e = key != NULL ? entry_find(chk->sec, key) : NULL;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err_at(chk->ld, e != NULL ? &e->loc : &chk->sec->loc, chk->sec->name,
	       key, "%s", msg);
	chk->n++;
}

static void plugin_run_check(struct loader *ld, struct section *sec,
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
	for (i = 0; i < svc->nlisten; i++)
		chk.pub.transports |= svc->listen[i].kind == LISTEN_UDP ?
					      RINGD_DGRAM : RINGD_STREAM;
	if (p->check(svc->pconf, &chk.pub, check_error) == 0)
		svc->checked = true;
	else if (chk.n == 0)
		err_at(ld, &sec->loc, sec->name, NULL, "plugin %s refused the "
		       "configuration without saying why", svc->plugin_name);
}

static void service_load(struct loader *ld, size_t secidx,
			 struct service_conf *svc)
{
	struct section *sec = &ld->sec[secidx];
	size_t nerr, first = ld->naddr;

	svc->file = ld->conf->path;
	svc->line = sec->loc.line;
	svc->name = strdup(sec->name);
	keys_apply(ld, sec, sec->name, conf_service_keys, svc, "listen");
	if (svc->plugin_name != NULL && svc->plugin_name[0] == '\0') {
		free(svc->plugin_name);
		svc->plugin_name = strdup(sec->name);
	}
	if (svc->name == NULL || (svc->plugin_name == NULL &&
				  !entry_refused(sec, "plugin"))) {
		ld->oom = true;
		return;
	}
	listen_load(ld, secidx, svc);
	/* A refused plugin line is already reported; without a plugin its
	 * keys cannot be checked, but the section's core keys were. */
	if (svc->plugin_name == NULL || plugin_attach(ld, sec, svc) < 0)
		return;
	/* check() needs every one of the plugin's own keys parsed; an error
	 * elsewhere in the section (a bad listen, say) does not touch its
	 * config, so it still runs and the operator sees all errors at once. */
	nerr = ld->nerr;
	keys_apply(ld, sec, sec->name, svc->plugin->p->keys, svc->pconf, NULL);
	if (ld->nerr == nerr && !sec->broken)
		plugin_run_check(ld, sec, svc);
	transports_check(ld, sec, svc, first);
	unknown_keys(ld, sec, svc->plugin_name);
}

static void services_load(struct loader *ld)
{
	struct ringd_conf *c = ld->conf;

	c->svc = calloc(ld->nsec ? ld->nsec : 1, sizeof(*c->svc));
	if (c->svc == NULL) {
		ld->oom = true;
		return;
	}
	for (size_t i = 0; i < ld->nsec; i++)
		if (strcmp(ld->sec[i].name, "ringd") != 0)
			service_load(ld, i, &c->svc[c->nsvc++]);
	if (c->nsvc == 0)
		err_at(ld, NULL, NULL, NULL, "no services configured");
}

static void loader_free(struct loader *ld)
{
	for (size_t i = 0; i < ld->nsec; i++) {
		struct section *s = &ld->sec[i];

		for (size_t j = 0; j < s->n; j++) {
			free(s->e[j].key);
			free(s->e[j].value);
		}
		free(s->e);
		free(s->name);
	}
	free(ld->sec);
	free(ld->addr);
	free(ld->inidir);
}

int conf_load(const char *path, const char *const *sets, size_t nsets,
	      const char *default_plugin_dir, struct ringd_conf **out,
	      struct conf_errors *errs)
{
	struct loader ld = { .file = path, .sets = sets };
	struct ringd_conf *c = calloc(1, sizeof(*c));
	int rc;

	*out = NULL;
	if (c == NULL || (c->path = strdup(path)) == NULL) {
		conf_errors_add(errs, "%s: out of memory", path);
		free(c);
		return -1;
	}
	ld.conf = c;
	if (file_read(&ld) == 0) {
		ld.inidir = dir_of(path);
		for (size_t i = 0; i < nsets; i++)
			set_apply(&ld, (int)i);
		core_load(&ld, default_plugin_dir);
		services_load(&ld);
	}
	loader_free(&ld);
	rc = ld.nerr > 0 || ld.oom ? -1 : 0;
	errors_flush(&ld, errs);
	if (ld.oom)
		conf_errors_add(errs, "%s: out of memory", path);
	if (rc < 0) {
		conf_free(c);
		return -1;
	}
	*out = c;
	return 0;
}

static void service_free(struct service_conf *s)
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
	free(s->plugin_name);
	free(s->listen);
}

/* Plugins are closed last: release() and the key tables live in them. */
void conf_free(struct ringd_conf *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->nsvc; i++)
		service_free(&c->svc[i]);
	free(c->svc);
	for (const struct ringd_key *k = conf_core_keys; k->name; k++)
		conf_value_free(k, c);
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

struct key_cols {
	char def[160];
	char bounds[256];
};

void conf_print_keys(FILE *f, const char *title, const struct ringd_key *k)
{
	int wname = 0, wtype = 0, wdef = 0, wbounds = 0, over;
	struct key_cols col;
	char line[1024];

	for (const struct ringd_key *i = k; i != NULL && i->name; i++) {
		conf_key_default(i, col.def, sizeof(col.def));
		conf_key_bounds(i, col.bounds, sizeof(col.bounds));
		wname = MAX(wname, (int)strlen(i->name));
		wtype = MAX(wtype, (int)strlen(conf_type_name(i->type)));
		/* A long default (a directory) overflows its own line
		 * rather than pushing every help text to the right. */
		if (strlen(col.def) <= 24)
			wdef = MAX(wdef, (int)strlen(col.def));
		wbounds = MAX(wbounds, (int)strlen(col.bounds));
	}
	fprintf(f, "%s\n", title);
	for (const struct ringd_key *i = k; i != NULL && i->name; i++) {
		conf_key_default(i, col.def, sizeof(col.def));
		conf_key_bounds(i, col.bounds, sizeof(col.bounds));
		over = MAX(0, (int)strlen(col.def) - wdef);
		snprintf(line, sizeof(line), "  %-*s  %-*s  %-*s  %-*s  %s",
			 wname, i->name, wtype, conf_type_name(i->type), wdef,
			 col.def, MAX(0, wbounds - over), col.bounds,
			 i->help ? i->help : "");
		rstrip(line);
		fprintf(f, "%s\n", line);
	}
}
