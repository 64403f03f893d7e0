/* The INI file: read through inih with a reader that counts lines (the
 * Debian libinih handler gets no line numbers) and checks each line's
 * syntax first, then -s overrides. The result is raw text per section and
 * key; what the keys mean is conf.c's business. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_ini.h"

#define NAME_MAX_LEN 64

enum sec_state { SEC_NONE, SEC_OK, SEC_IGNORED };

/* The reader's view of the current line, mirroring what inih will do
 * with it, so the handler knows where a value belongs. */
struct reader {
	struct conf_ini *ini;
	struct conf_errlog *log;
	FILE *f;
	char *raw;
	size_t rawcap;
	unsigned line;
	enum sec_state state;
	bool have_prev; /* inih has a previous key to continue */
	bool prev_ok;   /* and we stored it */
	bool cont;      /* this line continues it */
	size_t cur, last;
	bool read_failed; /* the file could not be read to its end */
};

struct conf_section *conf_ini_section(const struct conf_ini *ini,
				      const char *name)
{
	for (size_t i = 0; i < ini->n; i++)
		if (strcmp(ini->sec[i].name, name) == 0)
			return &ini->sec[i];
	return NULL;
}

static struct conf_section *section_add(struct conf_ini *ini, const char *name,
					size_t len, struct conf_loc loc)
{
	struct conf_section *s;

	if (conf_grow(&ini->sec, &ini->cap, ini->n, sizeof(*ini->sec)) < 0)
		return NULL;
	s = &ini->sec[ini->n];
	memset(s, 0, sizeof(*s));
	s->name = strndup(name, len);
	if (s->name == NULL)
		return NULL;
	s->loc = loc;
	ini->n++;
	return s;
}

struct conf_entry *conf_ini_entry(const struct conf_section *sec,
				  const char *key)
{
	for (size_t i = 0; sec != NULL && i < sec->n; i++)
		if (strcmp(sec->e[i].key, key) == 0)
			return &sec->e[i];
	return NULL;
}

struct conf_entry *conf_ini_claim(struct conf_section *sec,
				  struct conf_errlog *log, const char *secname,
				  const char *key, bool repeat)
{
	struct conf_entry *first = NULL;

	for (size_t i = 0; sec != NULL && i < sec->n; i++) {
		struct conf_entry *e = &sec->e[i];

		if (strcmp(e->key, key) != 0)
			continue;
		e->used = true;
		if (first == NULL)
			first = e;
		else if (e->value != NULL && !repeat)
			conf_err_at(log, &e->loc, secname, key,
				    "duplicate key (first at line %u)",
				    first->loc.line);
	}
	return first;
}

/* The key is on a line that was refused (and reported) as a whole. */
bool conf_ini_refused(const struct conf_section *sec, const char *key)
{
	const struct conf_entry *e = conf_ini_entry(sec, key);

	return e != NULL && e->value == NULL;
}

static int entry_add(struct conf_section *sec, const char *key, size_t keylen,
		     const char *value, struct conf_loc loc)
{
	struct conf_entry *e;

	if (conf_grow(&sec->e, &sec->cap, sec->n, sizeof(*sec->e)) < 0)
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

static int header_check(struct reader *rd, char *s)
{
	struct conf_loc loc = conf_loc_line(rd->line);
	char *end = strchr(s, ']');
	struct conf_section *first;
	size_t len;

	rd->prev_ok = false;
	rd->state = SEC_IGNORED;
	if (end == NULL || end[1] != '\0') {
		conf_err_at(rd->log, &loc, NULL, NULL,
			    end == NULL ? "expected ']' at the end of the "
					  "section header"
					: "unexpected text after ']'");
		return -1;
	}
	len = end - s - 1;
	if (!word_valid(s + 1, len)) {
		conf_err_at(rd->log, &loc, NULL, NULL,
			    "invalid section name '%.*s' (use "
			    "letters, digits, '_' and '-')",
			    (int)len, s + 1);
		return -1;
	}
	*end = '\0';
	first = conf_ini_section(rd->ini, s + 1);
	*end = ']';
	rd->have_prev = false;
	if (first != NULL) {
		conf_err_at(rd->log, &loc, first->name, NULL,
			    "duplicate section (first at line %u)",
			    first->loc.line);
		return 0;
	}
	if (section_add(rd->ini, s + 1, len, loc) == NULL) {
		rd->log->oom = true;
		return 0;
	}
	rd->cur = rd->ini->n - 1;
	rd->state = SEC_OK;
	return 0;
}

static int keyline_check(struct reader *rd, char *s)
{
	struct conf_loc loc = conf_loc_line(rd->line);
	char *eq = s + strcspn(s, "=:");
	char *end = eq;

	rd->prev_ok = false;
	if (*eq != '=') {
		conf_err_at(rd->log, &loc, NULL, NULL,
			    "expected 'key = value', "
			    "'[section]' or a comment");
		return -1;
	}
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	if (end == s) {
		conf_err_at(rd->log, &loc, NULL, NULL,
			    "missing key name before '='");
		return -1;
	}
	if (!word_valid(s, end - s)) {
		conf_err_at(rd->log, &loc, NULL, NULL,
			    "invalid key name '%.*s'", (int)(end - s), s);
		return -1;
	}
	if (rd->state == SEC_NONE) {
		conf_err_at(rd->log, &loc, NULL, NULL,
			    "key '%.*s' outside any section "
			    "(add a [section] header above it)",
			    (int)(end - s), s);
		return -1;
	}
	if (rd->state == SEC_IGNORED)
		return -1;
	rd->have_prev = true;
	rd->prev_ok = true;
	return 0;
}

/* A line inih cannot take (too long, or with a NUL byte) is refused
 * whole; a key on it still counts as present, so it is not reported
 * missing as well. */
static void line_refuse(struct reader *rd, char *s, const char *why)
{
	struct conf_loc loc = conf_loc_line(rd->line);
	size_t len;

	conf_err_at(rd->log, &loc, NULL, NULL, "%s", why);
	rd->prev_ok = false;
	s = lskip(s);
	if (*s == '[') {
		rd->state = SEC_IGNORED;
		return;
	}
	if (rd->state != SEC_OK)
		return;
	rd->ini->sec[rd->cur].broken = true;
	len = strcspn(s, " \t=");
	if (s[strspn(s + len, " \t") + len] == '=' && word_valid(s, len) &&
	    entry_add(&rd->ini->sec[rd->cur], s, len, NULL, loc) < 0)
		rd->log->oom = true;
}

/* Returns 0 when inih may see the line, -1 when it gets a blank line. */
static int line_check(struct reader *rd, char *line)
{
	char *s = lskip(line);

	rd->cont = false;
	if (*s == '\0' || *s == ';' || *s == '#')
		return 0;
	comment_strip(s);
	if (s > line && rd->have_prev) {
		rd->cont = true;
		return rd->prev_ok && rd->state == SEC_OK ? 0 : -1;
	}
	if (*s == '[')
		return header_check(rd, s);
	return keyline_check(rd, s);
}

/* inih's reader: one whole line per call, so inih's line count and ours
 * agree, after our own syntax check. */
static char *conf_ini_reader(char *buf, int num, void *stream)
{
	struct reader *rd = stream;
	/* getdelim(), not getline(): the same call, but glibc may inline
	 * getline() into __getdelim(), and test_conf wraps this symbol. */
	ssize_t n = getdelim(&rd->raw, &rd->rawcap, '\n', rd->f);
	char *s = rd->raw, why[64];
	struct conf_loc loc;

	/* Only end of file ends the file: getdelim() can fail for lack of
	 * memory without setting the stream's error flag, and treating that
	 * as the end would drop the rest of the file without a word. */
	if (n < 0) {
		if (!feof(rd->f)) {
			rd->read_failed = true;
			loc = conf_loc_line(rd->line + 1);
			conf_err_at(rd->log, &loc, NULL, NULL, "read error: %s",
				    strerror(errno));
		}
		return NULL;
	}
	rd->line++;
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	if (rd->line == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
		s += 3;
	buf[0] = '\0';
	if (strlen(s) != (size_t)(n - (s - rd->raw))) {
		line_refuse(rd, s, "line contains a NUL byte");
	} else if (strlen(s) > (size_t)num - 1) {
		snprintf(why, sizeof(why), "line too long (max %d characters)",
			 num - 1);
		line_refuse(rd, s, why);
	} else if (line_check(rd, s) == 0) {
		memcpy(buf, s, strlen(s) + 1);
	}
	return buf;
}

static int entry_append(struct conf_entry *e, const char *more)
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

static int conf_ini_store(void *user, const char *section, const char *name,
			  const char *value)
{
	struct reader *rd = user;
	struct conf_section *sec;
	int rc;

	if (rd->state != SEC_OK)
		return 1;
	sec = &rd->ini->sec[rd->cur];
	if (rd->cont) {
		rc = entry_append(&sec->e[rd->last], value);
	} else {
		rc = entry_add(sec, name, strlen(name), value,
			       conf_loc_line(rd->line));
		if (rc == 0)
			rd->last = sec->n - 1;
	}
	if (rc < 0) {
		rd->log->oom = true;
		rd->prev_ok = false;
	}
	return rc == 0;
}

/* O_NONBLOCK so that a FIFO fails the regular-file check instead of
 * hanging ringd -t in open(); a device such as /dev/zero would otherwise
 * be read without end. */
static FILE *conf_ini_open(struct reader *rd)
{
	struct conf_loc loc = conf_loc_line(0);
	int fd = open(rd->log->file, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	FILE *f;

	if (fd < 0) {
		conf_err_at(rd->log, &loc, NULL, NULL, "cannot open: %s",
			    strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		conf_err_at(rd->log, &loc, NULL, NULL, "cannot stat: %s",
			    strerror(errno));
		close(fd);
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		conf_err_at(rd->log, &loc, NULL, NULL, "not a regular file");
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (f == NULL) {
		conf_err_at(rd->log, &loc, NULL, NULL, "cannot open: %s",
			    strerror(errno));
		close(fd);
	}
	return f;
}

int conf_ini_read(struct conf_ini *ini, struct conf_errlog *log)
{
	struct reader rdv = { .ini = ini, .log = log }, *rd = &rdv;
	struct conf_loc loc = conf_loc_line(0);
	int rc;

	rd->f = conf_ini_open(rd);
	if (rd->f == NULL)
		return -1;
	rc = ini_parse_stream(conf_ini_reader, rd, conf_ini_store, rd);
	fclose(rd->f);
	rd->f = NULL;
	free(rd->raw);
	rd->raw = NULL;
	if (rd->read_failed)
		return -1;
	if (rc > 0 && !rd->log->oom) {
		/* The reader passes inih only lines it accepts, so this
		 * means the two disagree: report rather than ignore it. */
		loc = conf_loc_line(rc);
		conf_err_at(rd->log, &loc, NULL, NULL, "syntax error");
	}
	return 0;
}

static void entries_remove(struct conf_section *sec, const char *key,
			   size_t keylen)
{
	size_t j = 0;

	for (size_t i = 0; i < sec->n; i++) {
		struct conf_entry *e = &sec->e[i];

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
void conf_ini_set(struct conf_ini *ini, struct conf_errlog *log, int idx)
{
	const char *arg = log->sets[idx], *dot = strchr(arg, '.');
	const char *eq = strchr(arg, '='), *val;
	struct conf_loc loc = { .line = 0, .set = idx };
	char name[NAME_MAX_LEN + 1], *v;
	struct conf_section *sec;
	size_t vlen;

	if (dot == NULL || eq == NULL || dot > eq ||
	    !word_valid(arg, dot - arg) || !word_valid(dot + 1, eq - dot - 1)) {
		conf_err_at(log, &loc, NULL, NULL,
			    "expected SECTION.KEY=VALUE");
		return;
	}
	memcpy(name, arg, dot - arg);
	name[dot - arg] = '\0';
	sec = conf_ini_section(ini, name);
	if (sec == NULL)
		sec = section_add(ini, name, dot - arg, loc);
	if (sec == NULL) {
		log->oom = true;
		return;
	}
	entries_remove(sec, dot + 1, eq - dot - 1);
	val = lskip((char *)eq + 1);
	vlen = strlen(val);
	while (vlen > 0 && isspace((unsigned char)val[vlen - 1]))
		vlen--;
	v = strndup(val, vlen);
	if (v == NULL || entry_add(sec, dot + 1, eq - dot - 1, v, loc) < 0)
		log->oom = true;
	free(v);
}

void conf_ini_free(struct conf_ini *ini)
{
	for (size_t i = 0; i < ini->n; i++) {
		struct conf_section *s = &ini->sec[i];

		for (size_t j = 0; j < s->n; j++) {
			free(s->e[j].key);
			free(s->e[j].value);
		}
		free(s->e);
		free(s->name);
	}
	free(ini->sec);
	ini->sec = NULL;
	ini->n = ini->cap = 0;
}
