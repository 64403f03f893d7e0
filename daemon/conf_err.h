/* Configuration errors: collected with their location while a file is
 * loaded, sorted into file order whichever phase found them, and handed
 * over as the lines "FILE:LINE: [section] key: message". */
#ifndef RINGD_CONF_ERR_H
#define RINGD_CONF_ERR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The finished messages, one line each, in the order they print. */
struct conf_errors {
	char **msg;
	size_t n, cap;
};
/* Appends one message; a message that cannot be stored for lack of
 * memory is dropped (the loader reports "out of memory" on its own). */
void conf_errors_add(struct conf_errors *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void conf_errors_print(const struct conf_errors *e, FILE *f);
/* Frees every message and leaves e empty and reusable. */
void conf_errors_free(struct conf_errors *e);

/* Where a value came from: line (1-based) of the file, or the set-th -s
 * argument when set >= 0. line 0 and set -1: the file as a whole. */
struct conf_loc {
	unsigned line;
	int set;
};

static inline struct conf_loc conf_loc_line(unsigned line)
{
	return (struct conf_loc){ .line = line, .set = -1 };
}

struct conf_lerr;

/* The errors of one load. file and sets are borrowed for the log's
 * lifetime: messages name them. oom is set when anything, an error
 * included, could not be stored. While mute is non-zero errors are
 * dropped: for text parsed a second time whose errors are already
 * recorded once. */
struct conf_errlog {
	const char *file;
	const char *const *sets;
	struct conf_lerr *err;
	size_t n, cap;
	unsigned mute;
	bool oom;
};

/* Records "WHERE: [sec] key: message"; WHERE is "FILE:LINE", "FILE" or
 * "-s SET" after loc (NULL: the whole file); sec and key are left out
 * when NULL. Control characters of the whole line are escaped, so one
 * error is always one line. */
void conf_err_at(struct conf_errlog *log, const struct conf_loc *loc,
		 const char *sec, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Moves every error to errs, sorted by line, then -s order, then the
 * whole-file ones, and empties the log. */
void conf_err_flush(struct conf_errlog *log, struct conf_errors *errs);

/* Makes room for element n of a doubling array of size-byte elements;
 * 0 or -ENOMEM (the array is then unchanged). For every conf module. */
int conf_grow(void *arrp, size_t *cap, size_t n, size_t size);

#endif
