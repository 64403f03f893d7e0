/* Configuration error collection. Errors keep their location until the
 * load ends so they print in file order, not in the order the phases
 * (syntax, -s, keys, plugins) found them. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conf_err.h"

struct conf_lerr {
	unsigned group; /* 0: file line, 1: -s, 2: whole file */
	unsigned pos;
	size_t seq;
	char *msg;
};

int conf_grow(void *arrp, size_t *cap, size_t n, size_t size)
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
	if (conf_grow(&e->msg, &e->cap, e->n, sizeof(*e->msg)) < 0) {
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

/* One error is one line: a value joined from continuation lines shows
 * "\n", other control characters show as '?'. */
static void err_sanitize(char *s, size_t size)
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

static void err_where(const struct conf_errlog *log,
		      const struct conf_loc *loc, char *buf, size_t len)
{
	if (loc != NULL && loc->set >= 0)
		snprintf(buf, len, "-s %s", log->sets[loc->set]);
	else if (loc != NULL && loc->line > 0)
		snprintf(buf, len, "%s:%u", log->file, loc->line);
	else
		snprintf(buf, len, "%s", log->file);
	/* A -s argument (or a file name) is the operator's text too: a
	 * control character in it must not reach the terminal raw. */
	err_sanitize(buf, len);
}

void conf_err_at(struct conf_errlog *log, const struct conf_loc *loc,
		 const char *sec, const char *key, const char *fmt, ...)
{
	char where[512], what[160] = "", msg[1024];
	struct conf_lerr *le;
	va_list ap;

	if (log->mute > 0)
		return;
	err_where(log, loc, where, sizeof(where));
	if (sec != NULL)
		snprintf(what, sizeof(what), " [%s]%s%s", sec, key ? " " : "",
			 key ? key : "");
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err_sanitize(msg, sizeof(msg));
	if (conf_grow(&log->err, &log->cap, log->n, sizeof(*log->err)) < 0) {
		log->oom = true;
		return;
	}
	le = &log->err[log->n];
	if (asprintf(&le->msg, "%s:%s%s %s", where, what, sec ? ":" : "",
		     msg) < 0) {
		log->oom = true;
		return;
	}
	le->group = loc == NULL ? 2 : loc->set >= 0 ? 1 : loc->line ? 0 : 2;
	le->pos = loc == NULL ? 0 : loc->set >= 0 ? (unsigned)loc->set :
		  loc->line;
	le->seq = log->n++;
}

static int err_cmp(const void *a, const void *b)
{
	const struct conf_lerr *x = a, *y = b;

	if (x->group != y->group)
		return x->group < y->group ? -1 : 1;
	if (x->pos != y->pos)
		return x->pos < y->pos ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void conf_err_flush(struct conf_errlog *log, struct conf_errors *errs)
{
	if (log->n > 0)
		qsort(log->err, log->n, sizeof(*log->err), err_cmp);
	for (size_t i = 0; i < log->n; i++) {
		conf_errors_add(errs, "%s", log->err[i].msg);
		free(log->err[i].msg);
	}
	free(log->err);
	log->err = NULL;
	log->n = log->cap = 0;
}
