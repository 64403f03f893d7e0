/* ringd-probe's command line: options into a struct probe_cli, with the
 * usage errors a monitor must see as UNKNOWN (exit 3). */
#ifndef RINGD_PROBE_CLI_H
#define RINGD_PROBE_CLI_H

#include <regex.h>
#include <stdbool.h>
#include <stdio.h>

#include "daemon/loop.h"
#include "probe/check.h"
#include "probe/load.h"

enum cli_format { CLI_NAGIOS, CLI_JSON, CLI_PROMETHEUS };

struct probe_cli {
	struct probe_opts opts;
	int64_t warn_ns, crit_ns; /* 0: no threshold */
	unsigned count;           /* tries per target, at least 1 */
	int64_t interval_ns;      /* between the starts of two tries */
	enum cli_format format;
	enum loop_backend backend;
	const char *unix_path;
	const char *config; /* --config FILE: argv's, or NULL */
	/* The last option given that only checks use (--warn, --crit,
	 * --interval, --config), for --load to refuse by name; or NULL. */
	const char *check_only;
	regex_t body_re, header_re;
	bool have_body_re, have_header_re;
	char header_name[128];
	struct load_opts load; /* --load and its options */
	char *const *urls; /* argv's, not copied */
	int nurls;
};

/* "0.5", "250ms", "2s", "1m": seconds unless a suffix says otherwise.
 * Returns 0 and *ns (> 0), or -EINVAL. */
int cli_parse_duration(const char *s, int64_t *ns);
/* A size in bytes with an optional k or m suffix (1024-based), 1..max. */
int cli_parse_size(const char *s, size_t max, size_t *out);

/* Parses argv into *cli; --config FILE stands in for URLs or comes
 * beside them (the file itself is read by selfcheck.c). --load refuses
 * it, --warn, --crit, --interval, --count and --prometheus. Returns 0, 1 when --help or --version printed
 * what they print, or -EINVAL after printing one usage error line to
 * err. cli_free() releases the compiled regexes either way. */
int cli_parse(struct probe_cli *cli, int argc, char **argv, FILE *out,
	      FILE *err);
void cli_free(struct probe_cli *cli);

#endif
