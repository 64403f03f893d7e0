/* Typed parsing of one configuration value, shared by the daemon's own
 * keys and every plugin's key table. Each parser returns 0 and stores the
 * value, or -1 and writes a short lowercase reason into err (no location:
 * the caller prefixes FILE:LINE: [section] key:). */
#ifndef RINGD_CONF_VALUE_H
#define RINGD_CONF_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ringd/plugin.h>

/* Decimal, optionally signed; a leading zero does not make it octal.
 * min == max == 0: unbounded. */
int conf_parse_int(const char *s, int64_t min, int64_t max, int64_t *out,
		   char *err, size_t errlen);
/* A file mode: octal digits with or without a leading 0, 0..max. */
int conf_parse_mode(const char *s, int64_t max, int64_t *out, char *err,
		    size_t errlen);
/* yes/no, true/false, on/off, 1/0, any case. */
int conf_parse_bool(const char *s, bool *out, char *err, size_t errlen);
/* "250ms", "10s", "5m", "1h"; a bare number is seconds. Result in ms. */
int conf_parse_duration(const char *s, int64_t min, int64_t max,
			int64_t *out_ms, char *err, size_t errlen);
/* "512", "64k", "1m", "2g", "1t" (1024-based, either case). */
int conf_parse_size(const char *s, int64_t min, int64_t max, int64_t *out,
		    char *err, size_t errlen);
/* Index of s in the NULL-terminated choices. */
int conf_parse_enum(const char *s, const char *const *choices, int *out,
		    char *err, size_t errlen);

/* Parse text as key k and store it at dst + k->offset. STRING and PATH
 * store a strdup()ed copy the caller frees (conf_value_free). */
int conf_value_parse(const struct ringd_key *k, const char *text, void *dst,
		     char *err, size_t errlen);
/* Frees what conf_value_parse() stored for a STRING or PATH key and sets
 * the field to NULL; nothing for other types. */
void conf_value_free(const struct ringd_key *k, void *dst);
/* The default text, type, bounds of a key as -K prints them. */
void conf_key_describe(const struct ringd_key *k, char *buf, size_t len);
/* The parts of conf_key_describe, for column output: "int", "default 60s"
 * or "required", and "0..1h" / "auto|epoll" ("" when unbounded). */
const char *conf_type_name(enum ringd_key_type t);
void conf_key_default(const struct ringd_key *k, char *buf, size_t len);
void conf_key_bounds(const struct ringd_key *k, char *buf, size_t len);
/* Bytes a value of type t occupies in a config struct; 0 for an unknown
 * type. */
size_t conf_value_size(enum ringd_key_type t);

#endif
