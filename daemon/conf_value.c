/* Typed parsing of single configuration values. Nothing here knows files
 * or lines: callers add the location. Numbers are
 * parsed by hand so that hex, leading blanks and trailing junk, which
 * strtoll() would let through, are refused. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_value.h"

/* Reads leading digits of s in base into *out; returns how many digits
 * were read, or -1 on overflow. */
static int digits_read(const char *s, int base, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;

	while (s[n] >= '0' && s[n] < '0' + base) {
		if (__builtin_mul_overflow(v, (uint64_t)base, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[n] - '0'), &v))
			return -1;
		n++;
	}
	*out = v;
	return n;
}

static bool bounded(int64_t min, int64_t max)
{
	return min != 0 || max != 0;
}

/* An INT is decimal, a leading zero included (010 is ten): a count or a
 * port written with a zero in front must not silently become octal. File
 * modes, the one octal thing operators write, go through
 * conf_parse_mode(). */
int conf_parse_int(const char *s, int64_t min, int64_t max, int64_t *out,
		   char *err, size_t errlen)
{
	const char *p = s;
	bool neg = false;
	uint64_t u;
	int64_t v;
	int n;

	if (*p == '-' || *p == '+')
		neg = *p++ == '-';
	n = digits_read(p, 10, &u);
	if (*s == '\0' || n == 0 || (n > 0 && p[n] != '\0')) {
		snprintf(err, errlen, "not a number: '%s'", s);
		return -1;
	}
	if (n < 0 || u > (uint64_t)INT64_MAX + neg)
		goto range;
	v = neg ? (int64_t)(0 - u) : (int64_t)u;
	if (!bounded(min, max) || (v >= min && v <= max)) {
		*out = v;
		return 0;
	}
range:
	if (!bounded(min, max))
		snprintf(err, errlen, "out of range: %s", s);
	else
		snprintf(err, errlen, "out of range: %s (%" PRId64 "..%" PRId64
			 ")", s, min, max);
	return -1;
}

/* Octal whether or not it starts with 0, as chmod reads it: 660 and 0660
 * are the same mode. No sign. */
int conf_parse_mode(const char *s, int64_t max, int64_t *out, char *err,
		    size_t errlen)
{
	uint64_t u;
	int n = digits_read(s, 8, &u);

	if (n == 0 || (n > 0 && s[n] != '\0')) {
		snprintf(err, errlen, "not an octal file mode: '%s'", s);
		return -1;
	}
	if (n < 0 || u > (uint64_t)max) {
		snprintf(err, errlen, "out of range: %s (0..%#" PRIo64 ")", s,
			 (uint64_t)max);
		return -1;
	}
	*out = (int64_t)u;
	return 0;
}

int conf_parse_bool(const char *s, bool *out, char *err, size_t errlen)
{
	static const char *const yes[] = { "yes", "true", "on", "1", NULL };
	static const char *const no[] = { "no", "false", "off", "0", NULL };

	for (int i = 0; yes[i] != NULL; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	snprintf(err, errlen, "expected yes or no: '%s'", s);
	return -1;
}

struct unit {
	const char *name;
	int64_t mult;
};

static const struct unit duration_units[] = {
	{ "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { NULL, 0 }
};

/* The lowercase spelling of each unit comes first: -K prints bounds
 * with the first unit that fits. */
static const struct unit size_units[] = {
	{ "", 1 },
	{ "k", 1024 },		  { "K", 1024 },
	{ "m", 1048576 },	  { "M", 1048576 },
	{ "g", 1073741824 },	  { "G", 1073741824 },
	{ "t", 1099511627776 }, { "T", 1099511627776 },
	{ NULL, 0 }
};

/* Writes v using the largest unit that divides it exactly. */
static void units_format(int64_t v, const struct unit *u, char *buf,
			 size_t len)
{
	const struct unit *best = NULL;

	for (; u->name != NULL; u++) {
		if (v != 0 && v % u->mult == 0 &&
		    (best == NULL || u->mult > best->mult))
			best = u;
	}
	if (best == NULL)
		snprintf(buf, len, "%" PRId64, v);
	else
		snprintf(buf, len, "%" PRId64 "%s", v / best->mult, best->name);
}

static void duration_format(int64_t ms, char *buf, size_t len)
{
	if (ms != 0 && ms % 1000 != 0)
		snprintf(buf, len, "%" PRId64 "ms", ms);
	else
		units_format(ms, duration_units + 1, buf, len);
}

static void size_format(int64_t v, char *buf, size_t len)
{
	units_format(v, size_units, buf, len);
}

/* The shared part of durations and sizes: digits, then a unit from the
 * table (dflt when there is none), then the range check. */
static int scaled_parse(const char *s, const struct unit *units,
			int64_t dflt, int64_t min, int64_t max, int64_t *out,
			char *err, size_t errlen, const char *what)
{
	const struct unit *u;
	char lo[32], hi[32];
	uint64_t n;
	int64_t v, mult = dflt;
	int nd = digits_read(s, 10, &n);
	void (*fmt)(int64_t, char *, size_t) =
		units == duration_units ? duration_format : size_format;

	if (nd == 0) {
		snprintf(err, errlen, "not a %s: '%s'", what, s);
		return -1;
	}
	if (nd > 0 && s[nd] != '\0') {
		for (u = units; u->name != NULL; u++)
			if (strcmp(s + nd, u->name) == 0)
				break;
		if (u->name == NULL) {
			snprintf(err, errlen, "unknown unit '%s' in '%s' (use %s)",
				 s + nd, s,
				 units == duration_units ? "ms, s, m, h" :
							 "k, m, g, t");
			return -1;
		}
		mult = u->mult;
	}
	if (nd > 0 && n <= INT64_MAX &&
	    !__builtin_mul_overflow((int64_t)n, mult, &v) &&
	    (!bounded(min, max) || (v >= min && v <= max))) {
		*out = v;
		return 0;
	}
	if (!bounded(min, max)) {
		snprintf(err, errlen, "out of range: %s", s);
	} else {
		fmt(min, lo, sizeof(lo));
		fmt(max, hi, sizeof(hi));
		snprintf(err, errlen, "out of range: %s (%s..%s)", s, lo, hi);
	}
	return -1;
}

int conf_parse_duration(const char *s, int64_t min, int64_t max,
			int64_t *out_ms, char *err, size_t errlen)
{
	return scaled_parse(s, duration_units, 1000, min, max, out_ms, err,
			    errlen, "duration");
}

int conf_parse_size(const char *s, int64_t min, int64_t max, int64_t *out,
		    char *err, size_t errlen)
{
	return scaled_parse(s, size_units, 1, min, max, out, err, errlen,
			    "size");
}

static void choices_join(const char *const *c, const char *sep, char *buf,
			 size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; c != NULL && c[i] != NULL && n < len; i++) {
		int r = snprintf(buf + n, len - n, "%s%s", i ? sep : "", c[i]);

		if (r < 0)
			break;
		n += (size_t)r;
	}
}

int conf_parse_enum(const char *s, const char *const *choices, int *out,
		    char *err, size_t errlen)
{
	char list[256];

	for (int i = 0; choices[i] != NULL; i++) {
		if (strcmp(s, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	choices_join(choices, ", ", list, sizeof(list));
	snprintf(err, errlen, "expected one of %s: '%s'", list, s);
	return -1;
}

/* Each line of a LIST key adds one item; the array grows by one, since a
 * list holds a handful of routes, not thousands. */
static int list_append(char *at, const char *text, char *err, size_t errlen)
{
	struct ringd_list l;
	const char **items;
	char *str = strdup(text);

	memcpy(&l, at, sizeof(l));
	items = str ? realloc((void *)l.items, (l.n + 1) * sizeof(*items)) :
		      NULL;
	if (items == NULL) {
		free(str);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	items[l.n++] = str;
	l.items = items;
	memcpy(at, &l, sizeof(l));
	return 0;
}

static void list_free(char *at)
{
	struct ringd_list l;

	memcpy(&l, at, sizeof(l));
	for (size_t i = 0; i < l.n; i++)
		free((void *)l.items[i]);
	free((void *)l.items);
	l = (struct ringd_list){ 0 };
	memcpy(at, &l, sizeof(l));
}

/* Values go through memcpy: a plugin's config struct may place a field at
 * any offset, and the daemon must not assume its alignment. */
int conf_value_parse(const struct ringd_key *k, const char *text, void *dst,
		     char *err, size_t errlen)
{
	char *at = (char *)dst + k->offset;
	int64_t v = 0;
	char *str;
	bool b;
	int e;

	switch (k->type) {
	case RINGD_KEY_STRING:
	case RINGD_KEY_PATH:
		str = strdup(text);
		if (str == NULL) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		memcpy(at, &str, sizeof(str));
		return 0;
	case RINGD_KEY_INT:
		if (conf_parse_int(text, k->min, k->max, &v, err, errlen) < 0)
			return -1;
		break;
	case RINGD_KEY_DURATION:
		if (conf_parse_duration(text, k->min, k->max, &v, err,
					errlen) < 0)
			return -1;
		break;
	case RINGD_KEY_SIZE:
		if (conf_parse_size(text, k->min, k->max, &v, err, errlen) < 0)
			return -1;
		break;
	case RINGD_KEY_BOOL:
		if (conf_parse_bool(text, &b, err, errlen) < 0)
			return -1;
		memcpy(at, &b, sizeof(b));
		return 0;
	case RINGD_KEY_ENUM:
		if (conf_parse_enum(text, k->choices, &e, err, errlen) < 0)
			return -1;
		memcpy(at, &e, sizeof(e));
		return 0;
	case RINGD_KEY_LIST:
		return list_append(at, text, err, errlen);
	default:
		snprintf(err, errlen, "unknown key type %d", (int)k->type);
		return -1;
	}
	memcpy(at, &v, sizeof(v));
	return 0;
}

void conf_value_free(const struct ringd_key *k, void *dst)
{
	char *at = (char *)dst + k->offset;
	char *str;

	if (k->type == RINGD_KEY_LIST) {
		list_free(at);
		return;
	}
	if (k->type != RINGD_KEY_STRING && k->type != RINGD_KEY_PATH)
		return;
	memcpy(&str, at, sizeof(str));
	free(str);
	str = NULL;
	memcpy(at, &str, sizeof(str));
}

size_t conf_value_size(enum ringd_key_type t)
{
	switch (t) {
	case RINGD_KEY_STRING:
	case RINGD_KEY_PATH:
		return sizeof(char *);
	case RINGD_KEY_INT:
	case RINGD_KEY_DURATION:
	case RINGD_KEY_SIZE:
		return sizeof(int64_t);
	case RINGD_KEY_BOOL:
		return sizeof(bool);
	case RINGD_KEY_ENUM:
		return sizeof(int);
	case RINGD_KEY_LIST:
		return sizeof(struct ringd_list);
	}
	return 0;
}

const char *conf_type_name(enum ringd_key_type t)
{
	static const char *const names[] = {
		[RINGD_KEY_STRING] = "string", [RINGD_KEY_INT] = "int",
		[RINGD_KEY_BOOL] = "bool",     [RINGD_KEY_DURATION] = "duration",
		[RINGD_KEY_SIZE] = "size",     [RINGD_KEY_ENUM] = "enum",
		[RINGD_KEY_PATH] = "path",     [RINGD_KEY_LIST] = "list",
	};

	if ((unsigned)t >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[t];
}

void conf_key_default(const struct ringd_key *k, char *buf, size_t len)
{
	if (k->type == RINGD_KEY_LIST)
		snprintf(buf, len, "repeatable");
	else if (k->def == NULL)
		snprintf(buf, len, "required");
	else if (k->def[0] == '\0')
		snprintf(buf, len, "default \"\"");
	else
		snprintf(buf, len, "default %s", k->def);
}

void conf_key_bounds(const struct ringd_key *k, char *buf, size_t len)
{
	char lo[32], hi[32];

	buf[0] = '\0';
	if (k->type == RINGD_KEY_ENUM) {
		choices_join(k->choices, "|", buf, len);
		return;
	}
	if (!bounded(k->min, k->max))
		return;
	switch (k->type) {
	case RINGD_KEY_INT:
		snprintf(buf, len, "%" PRId64 "..%" PRId64, k->min, k->max);
		return;
	case RINGD_KEY_DURATION:
		duration_format(k->min, lo, sizeof(lo));
		duration_format(k->max, hi, sizeof(hi));
		break;
	case RINGD_KEY_SIZE:
		size_format(k->min, lo, sizeof(lo));
		size_format(k->max, hi, sizeof(hi));
		break;
	default:
		return;
	}
	snprintf(buf, len, "%s..%s", lo, hi);
}

void conf_key_describe(const struct ringd_key *k, char *buf, size_t len)
{
	char def[128], bounds[256];

	conf_key_default(k, def, sizeof(def));
	conf_key_bounds(k, bounds, sizeof(bounds));
	if (k->type == RINGD_KEY_ENUM)
		snprintf(buf, len, "enum %s, %s", bounds, def);
	else if (bounds[0] != '\0')
		snprintf(buf, len, "%s, %s, %s", conf_type_name(k->type), def,
			 bounds);
	else
		snprintf(buf, len, "%s, %s", conf_type_name(k->type), def);
}
