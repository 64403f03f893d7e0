/* The INI layer of the configuration: sections of (key, value, location)
 * as the file and the -s overrides give them, syntax checked, not yet
 * typed. */
#ifndef RINGD_CONF_INI_H
#define RINGD_CONF_INI_H

#include <stdbool.h>
#include <stddef.h>

#include "conf_err.h"

struct conf_entry {
	char *key;
	char *value; /* NULL: the line was refused and already reported */
	struct conf_loc loc;
	bool used;   /* claimed by a key table; the rest are unknown keys */
};

struct conf_section {
	char *name;
	struct conf_loc loc; /* of the [header], or of the -s creating it */
	struct conf_entry *e;
	size_t n, cap;
	bool broken; /* holds a refused line: keys may be unset */
};

struct conf_ini {
	struct conf_section *sec;
	size_t n, cap;
};

/* Reads log->file into ini: every line is syntax checked and each problem
 * recorded in log, so one pass reports them all. A value continued on
 * indented lines is joined with "\n". Returns 0, or -1 when the file
 * could not be opened or read to its end (not a regular file, a read
 * error): then nothing of it should be used. Out of memory sets log->oom. */
int conf_ini_read(struct conf_ini *ini, struct conf_errlog *log);

/* Applies log->sets[idx], "SECTION.KEY=VALUE": it replaces every value
 * of the key in that section (all listen lines at once) and creates the
 * section if needed, located as that -s. */
void conf_ini_set(struct conf_ini *ini, struct conf_errlog *log, int idx);

/* The named section or key; NULL when absent (sec may be NULL). */
struct conf_section *conf_ini_section(const struct conf_ini *ini,
				      const char *name);
struct conf_entry *conf_ini_entry(const struct conf_section *sec,
				  const char *key);
/* The first entry of key in sec (NULL when absent; sec may be NULL), with
 * every entry of it marked used, so the unknown-key pass leaves them
 * alone, and each later one reported at its line as a duplicate unless
 * the key may repeat: ringd's loader and ringd-probe --config refuse a
 * repeated key with the same words. */
struct conf_entry *conf_ini_claim(struct conf_section *sec,
				  struct conf_errlog *log, const char *secname,
				  const char *key, bool repeat);
/* The key is present on a line that was refused (and reported) whole. */
bool conf_ini_refused(const struct conf_section *sec, const char *key);

void conf_ini_free(struct conf_ini *ini);

#endif
