/* ringd-probe --load: keeps CONNS connections busy against one echo:// or
 * http:// target, for a duration or a number of requests, each request a
 * try of check.c's state machine (echo verified byte for byte, HTTP
 * status and framing), on one loop; then one summary: requests/s,
 * errors, latency percentiles from a bounded histogram and, with
 * --server-pid, the server's CPU time per request. The options parse
 * without sockets (unit-tested); load_run() does the rest. */
#ifndef RINGD_PROBE_LOAD_H
#define RINGD_PROBE_LOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "probe/hist.h"

#define LOAD_CONNS_MAX	  10000u
#define LOAD_REQUESTS_MAX 1000000000000ull

/* getopt_long codes of the load options; -c, -d and -n are their short
 * letters. cli.c lists LOAD_LONGOPTS in its table and hands any code
 * load_is_option() claims to load_option(). */
enum {
	LOAD_OPT_LOAD = 512,
	LOAD_OPT_NO_KEEPALIVE,
	LOAD_OPT_SERVER_PID,
	LOAD_OPT_WARMUP,
	LOAD_OPT_NAME,
};
#define LOAD_SHORTOPTS "c:d:n:"
/* One table row per line. */
/* clang-format off */
#define LOAD_LONGOPTS                                                   \
	{ "load", no_argument, NULL, LOAD_OPT_LOAD },                   \
	{ "connections", required_argument, NULL, 'c' },                \
	{ "duration", required_argument, NULL, 'd' },                   \
	{ "requests", required_argument, NULL, 'n' },                   \
	{ "no-keepalive", no_argument, NULL, LOAD_OPT_NO_KEEPALIVE },   \
	{ "server-pid", required_argument, NULL, LOAD_OPT_SERVER_PID }, \
	{ "warmup", required_argument, NULL, LOAD_OPT_WARMUP },         \
	{ "name", required_argument, NULL, LOAD_OPT_NAME }
/* clang-format on */

struct load_opts {
	bool on;	     /* --load */
	bool any;	     /* some load option was given */
	unsigned conns;	     /* -c: 1..LOAD_CONNS_MAX, default 1 */
	int64_t duration_ns; /* -d: the measured time; 0 with -n */
	uint64_t requests;   /* -n: the measured requests; 0 with -d */
	int64_t warmup_ns;   /* --warmup: load before measuring, 0 none */
	bool no_keepalive;   /* a connection per request */
	long server_pid;     /* --server-pid: 0 when not measured */
	const char *name;    /* --name: the RESULT line's label (argv's) */
};

/* True when getopt_long's code ch is a load option. */
bool load_is_option(int ch);

/* Applies load option ch with argument arg (NULL for flags) to *lo.
 * Returns 0, or -EINVAL with a static reason in *why. */
int load_option(struct load_opts *lo, int ch, const char *arg,
		const char **why);

/* After every option: with --load, exactly one of -d and -n, one URL;
 * without it, no load option at all; --count and --prometheus are for
 * checks only. Returns 0 or -EINVAL with a static reason in *why. */
int load_validate(const struct load_opts *lo, int nurls, unsigned count,
		  bool prometheus, const char **why);

/* Whose CPU time --server-pid measured, and how much. */
struct load_cpu {
	long pid;	    /* --server-pid, 0 without */
	bool measured;	    /* false too when pid ended during the run */
	unsigned processes; /* the process and its live descendants */
	double server_s;    /* their utime + stime over the window */
	double probe_s;	    /* ringd-probe's own CPU time over the window */
};

/* What a load run found, for the writers below. */
struct load_summary {
	const char *url;
	const char *name;    /* label; the URL when --name is not given */
	const char *backend; /* "io_uring" or "epoll" */
	const char *mode;    /* "echo", "http", "echo-churn", "http-churn" */
	unsigned conns;
	size_t size; /* echo payload, or the HTTP request's bytes */
	double warmup_s, window_s;
	uint64_t requests;	    /* measured, successful */
	uint64_t errors;	    /* failed requests, warm-up included */
	uint64_t connects;	    /* connections opened, warm-up included */
	double resp_bytes;	    /* mean reply bytes per measured request */
	const struct hist *latency; /* ns, measured requests */
	struct load_cpu cpu;
	char first_error[256];
};

/* The text summary, ending in one "RESULT key=value..." line with the
 * keys bench/'s scripts read (name, conns, size, rps, p50_us, p99_us,
 * p999_us, cpu_us_per_req, errors, reqs, window_s, srv_util, lg_util,
 * mode, resp_bytes, reconnects). */
void load_report_text(FILE *f, const struct load_summary *s);
/* The same as one JSON object. */
void load_report_json(FILE *f, const struct load_summary *s);

/* The CPU time of pid and of every live process whose parent chain
 * reaches it, in nanoseconds, and how many processes that is. pid's own
 * share is utime + stime + cutime + cstime from /proc/PID/stat (all its
 * threads, dead ones too, and its reaped children); a descendant's is the
 * sum of its live threads' /proc/N/task/T/schedstat run times (exact,
 * where 10 ms ticks truncated per process would drift with 50 xinetd
 * children) plus its reaped children's ticks. Returns 0, or -ESRCH when
 * pid is gone. */
int load_proc_cpu(long pid, uint64_t *ns, unsigned *processes);

/* What load_proc_cpu() reads of one /proc/N/stat line. */
struct load_stat {
	long ppid;
	uint64_t own_ticks;   /* utime + stime */
	uint64_t child_ticks; /* cutime + cstime */
};
/* Parses one /proc/N/stat line. Returns 0 or -EINVAL. Pure, for the
 * tests. */
int load_parse_stat(const char *line, struct load_stat *st);

struct probe_cli;
/* Runs the load cli asks for and prints its summary to stdout. Returns
 * the exit status: 0 when every request succeeded, 2 when any failed,
 * 3 when the load could not start (bad target, no address, no loop). */
int load_run(struct probe_cli *cli);

#endif
