/* Option parsing for ringd-probe. Every mistake is one line on stderr
 * and exit 3 (UNKNOWN): a monitor must not read a typo as an outage. */
#include "probe/cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "probe/verify.h"

#define NS 1000000000LL
#define SIZE_MAX_STREAM (64u << 20)
#define SIZE_MAX_UDP 65507u

int cli_parse_duration(const char *s, int64_t *ns)
{
	char *end;
	double v, scale = 1e9;

	errno = 0;
	v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v <= 0)
		return -EINVAL;
	if (strcmp(end, "ms") == 0)
		scale = 1e6;
	else if (strcmp(end, "m") == 0)
		scale = 60e9;
	else if (*end && strcmp(end, "s") != 0)
		return -EINVAL;
	if (v * scale > 86400e9 || v * scale < 1)
		return -EINVAL;
	*ns = (int64_t)(v * scale);
	return 0;
}

int cli_parse_size(const char *s, size_t max, size_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	if (*end || v == 0 || v > max)
		return -EINVAL;
	*out = (size_t)v;
	return 0;
}

enum {
	OPT_WARN = 256, OPT_CRIT, OPT_SIZE, OPT_MAX_OFFSET, OPT_METHOD,
	OPT_EXPECT_STATUS, OPT_EXPECT_BODY, OPT_EXPECT_HEADER, OPT_UNIX,
	OPT_JSON, OPT_PROMETHEUS, OPT_COUNT, OPT_INTERVAL, OPT_BACKEND,
	OPT_CONFIG,
};

static const struct option longopts[] = {
	{ "timeout", required_argument, NULL, 't' },
	{ "warn", required_argument, NULL, OPT_WARN },
	{ "crit", required_argument, NULL, OPT_CRIT },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "max-offset", required_argument, NULL, OPT_MAX_OFFSET },
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "expect-status", required_argument, NULL, OPT_EXPECT_STATUS },
	{ "expect-body", required_argument, NULL, OPT_EXPECT_BODY },
	{ "expect-header", required_argument, NULL, OPT_EXPECT_HEADER },
	{ "unix", required_argument, NULL, OPT_UNIX },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "prometheus", no_argument, NULL, OPT_PROMETHEUS },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "config", required_argument, NULL, OPT_CONFIG },
	LOAD_LONGOPTS,
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ 0 },
};

static void usage(FILE *f)
{
	fputs("usage: ringd-probe [OPTIONS] URL...\n"
	      "       ringd-probe [OPTIONS] --config RINGD_INI [URL...]\n"
	      "  URL: echo[+udp]://, daytime[+udp]://, time[+udp]://, "
	      "qotd[+udp]://,\n"
	      "       discard://, chargen:// HOST[:PORT]; "
	      "http://HOST[:PORT]/PATH\n"
	      "  -t, --timeout DUR      connect and whole check (2s)\n"
	      "      --warn DUR, --crit DUR  latency thresholds\n"
	      "      --size BYTES       echo, discard, chargen payload (256)\n"
	      "      --max-offset DUR   time: allowed clock offset (2s)\n"
	      "      --method GET|HEAD|OPTIONS\n"
	      "      --expect-status LIST   http: e.g. 200,300-399 "
	      "(200-399)\n"
	      "      --expect-body REGEX, --expect-header 'Name: REGEX'\n"
	      "      --unix PATH        reach stream services through PATH\n"
	      "      --json, --prometheus   output formats\n"
	      "      --count N, --interval DUR  N tries, statistics\n"
	      "      --backend auto|io_uring|epoll\n"
	      "      --config FILE      every listener FILE (ringd.ini) "
	      "configures\n"
	      "  --load -c CONNS (-d DUR | -n REQUESTS) URL   load an echo:// "
	      "or http:// target:\n"
	      "      --no-keepalive     a connection per request\n"
	      "      --warmup DUR, --server-pid PID, --name LABEL\n"
	      "      exit: 0 no request failed, 2 some did, 3 usage\n"
	      "exit: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN\n", f);
}

static int bad(FILE *err, const char *what, const char *arg)
{
	/* stdout in ringd-probe: a monitor shows the first line there. */
	fprintf(err, "UNKNOWN - ringd-probe: %s: %s\n", what, arg);
	return -EINVAL;
}

static int compile(regex_t *re, bool *have, const char *src, FILE *err)
{
	char msg[128];
	int rc;

	if (*have)
		regfree(re);
	*have = false;
	/* As grep -E does: ^ and $ match at every line's ends. */
	rc = regcomp(re, src, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);
	if (rc) {
		regerror(rc, re, msg, sizeof(msg));
		return bad(err, msg, src);
	}
	*have = true;
	return 0;
}

static int expect_header(struct probe_cli *cli, const char *arg, FILE *err)
{
	const char *colon = strchr(arg, ':');
	const char *re;
	size_t n;

	if (!colon || colon == arg ||
	    (size_t)(colon - arg) >= sizeof(cli->header_name))
		return bad(err, "--expect-header wants 'Name: REGEX'", arg);
	n = (size_t)(colon - arg);
	memcpy(cli->header_name, arg, n);
	cli->header_name[n] = '\0';
	for (re = colon + 1; *re == ' ' || *re == '\t'; re++)
		;
	return compile(&cli->header_re, &cli->have_header_re, re, err);
}

static int backend(struct probe_cli *cli, const char *arg, FILE *err)
{
	if (strcmp(arg, "auto") == 0)
		cli->backend = LOOP_BACKEND_AUTO;
	else if (strcmp(arg, "io_uring") == 0)
		cli->backend = LOOP_BACKEND_IO_URING;
	else if (strcmp(arg, "epoll") == 0)
		cli->backend = LOOP_BACKEND_EPOLL;
	else
		return bad(err, "--backend is auto, io_uring or epoll", arg);
	return 0;
}

static int method(struct probe_cli *cli, const char *arg, FILE *err)
{
	if (strcmp(arg, "GET") && strcmp(arg, "HEAD") && strcmp(arg, "OPTIONS"))
		return bad(err, "--method is GET, HEAD or OPTIONS", arg);
	cli->opts.method = arg;
	return 0;
}

static int count(struct probe_cli *cli, const char *arg, FILE *err)
{
	size_t n;

	if (arg[strspn(arg, "0123456789")] != '\0' ||
	    cli_parse_size(arg, 1000000, &n) < 0)
		return bad(err, "--count wants 1..1000000", arg);
	cli->count = (unsigned)n;
	return 0;
}

static int duration(int64_t *ns, const char *opt, const char *arg, FILE *err)
{
	char what[64];

	if (cli_parse_duration(arg, ns) == 0)
		return 0;
	snprintf(what, sizeof(what), "%s wants a duration (2s, 500ms)", opt);
	return bad(err, what, arg);
}

/* A duration only checks use: a load has no threshold and no interval. */
static int check_duration(struct probe_cli *cli, int64_t *ns, const char *opt,
			  const char *arg, FILE *err)
{
	cli->check_only = opt;
	return duration(ns, opt, arg, err);
}

static int load_arg(struct probe_cli *cli, int ch, const char *arg, FILE *err)
{
	const char *why;

	if (!load_is_option(ch))
		return bad(err, "unknown option", "see --help");
	if (load_option(&cli->load, ch, arg, &why) < 0)
		return bad(err, why, arg);
	return 0;
}

/* One option; 1 when it printed help or version. */
static int option(struct probe_cli *cli, int ch, const char *arg, FILE *out,
		  FILE *err)
{
	struct probe_opts *o = &cli->opts;

	switch (ch) {
	case 't': return duration(&o->timeout_ns, "--timeout", arg, err);
	case OPT_WARN:
		return check_duration(cli, &cli->warn_ns, "--warn", arg, err);
	case OPT_CRIT:
		return check_duration(cli, &cli->crit_ns, "--crit", arg, err);
	case OPT_MAX_OFFSET:
		return duration(&o->max_offset_ns, "--max-offset", arg, err);
	case OPT_INTERVAL:
		return check_duration(cli, &cli->interval_ns, "--interval", arg,
				      err);
	case OPT_SIZE:
		if (cli_parse_size(arg, SIZE_MAX_STREAM, &o->size) < 0)
			return bad(err, "--size wants 1..64m bytes", arg);
		return 0;
	case OPT_METHOD: return method(cli, arg, err);
	case OPT_EXPECT_STATUS:
		if (verify_status_match(arg, 200) < 0)
			return bad(err, "--expect-status wants codes and "
				   "ranges like 200,300-399", arg);
		o->expect_status = arg;
		return 0;
	case OPT_EXPECT_BODY:
		return compile(&cli->body_re, &cli->have_body_re, arg, err);
	case OPT_EXPECT_HEADER: return expect_header(cli, arg, err);
	case OPT_UNIX:
		if (strlen(arg) >= 108 || !*arg)
			return bad(err, "--unix path empty or too long", arg);
		cli->unix_path = arg;
		return 0;
	case OPT_JSON: cli->format = CLI_JSON; return 0;
	case OPT_PROMETHEUS: cli->format = CLI_PROMETHEUS; return 0;
	case OPT_COUNT: return count(cli, arg, err);
	case OPT_BACKEND: return backend(cli, arg, err);
	case OPT_CONFIG:
		cli->config = arg;
		cli->check_only = "--config";
		return 0;
	case 'h': usage(out); return 1;
	case 'V': fprintf(out, "ringd-probe %s\n", RINGD_VERSION); return 1;
	default: return load_arg(cli, ch, arg, err);
	}
}

static void defaults(struct probe_cli *cli)
{
	memset(cli, 0, sizeof(*cli));
	cli->opts.timeout_ns = 2 * NS;
	cli->opts.size = 256;
	cli->opts.max_offset_ns = 2 * NS;
	cli->opts.method = "GET";
	cli->opts.expect_status = "200-399";
	cli->count = 1;
	cli->load.conns = 1;
	cli->interval_ns = NS;
}

int cli_parse(struct probe_cli *cli, int argc, char **argv, FILE *out,
	      FILE *err)
{
	const char *why;
	char why_buf[64];
	int ch, rc;

	defaults(cli);
	optind = 0; /* glibc: start afresh, for callers that parse twice */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "t:hV" LOAD_SHORTOPTS, longopts,
				 NULL)) != -1) {
		if (ch == '?' || ch == ':')
			return bad(err, "bad option or missing argument",
				   argv[optind - 1]);
		rc = option(cli, ch, optarg, out, err);
		if (rc)
			return rc;
	}
	cli->opts.expect_body = cli->have_body_re ? &cli->body_re : NULL;
	cli->opts.expect_header = cli->have_header_re ? &cli->header_re : NULL;
	cli->opts.expect_header_name = cli->header_name;
	cli->urls = argv + optind;
	cli->nurls = argc - optind;
	if (cli->nurls == 0 && !cli->config)
		return bad(err, "no target",
			   "give a URL or --config FILE (--help)");
	if (load_validate(&cli->load, cli->nurls, cli->count,
			  cli->format == CLI_PROMETHEUS, &why) < 0)
		return bad(err, "usage", why);
	/* Silently ignored they would say a load did what it did not: main()
	 * runs the load before it would read --config's file, and a load
	 * judges no latency and waits no interval. */
	if (cli->load.on && cli->check_only) {
		snprintf(why_buf, sizeof(why_buf), "%s is for checks, not --load",
			 cli->check_only);
		return bad(err, "usage", why_buf);
	}
	return 0;
}

void cli_free(struct probe_cli *cli)
{
	if (cli->have_body_re)
		regfree(&cli->body_re);
	if (cli->have_header_re)
		regfree(&cli->header_re);
	cli->have_body_re = cli->have_header_re = false;
}
