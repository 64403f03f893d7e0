/* Load mode's run: CONNS checks on one loop, each starting its next try
 * from the callback of the last, a warm-up timer that opens the measured
 * window and, with -d, a timer that closes it and stops the loop (tries
 * still in flight then are left out, not waited for); with -n the window
 * closes when the last of the N measured tries ends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>

#include "probe/cli.h"
#include "probe/load.h"

/* Descriptors a load needs beside its connections' sockets: stdio, the
 * loop's own, the /proc reads of --server-pid, with room to spare. */
#define FD_MARGIN 32

struct load_conn {
	struct load *ld;
	struct probe_check *check;
	struct loop_timer retry; /* after a failed try, from the loop */
	bool measured;		 /* this try started in the window */
};

struct load {
	struct probe_cli *cli;
	const struct load_opts *lo;
	struct loop *loop;
	struct probe_target t;
	struct addrinfo *ai;
	struct probe_opts opts;
	struct load_conn *conns;
	unsigned idle; /* connections done with their last try (-n) */
	struct loop_timer warm, end;
	bool measuring, ended;
	int64_t win_start, win_end;
	uint64_t started; /* tries started in the window */
	uint64_t requests, errors, reply_bytes;
	uint64_t srv_ns0, srv_ns1;
	unsigned processes;
	double probe_cpu0, probe_cpu1;
	bool cpu_ok;
	struct hist hist;
	char first_error[256];
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The window's edges read the server's CPU time (a /proc scan of a few
 * milliseconds, outside the window's requests' critical path only at
 * these two instants). */
static void window_open(struct load *ld)
{
	ld->cpu_ok = ld->lo->server_pid &&
		     load_proc_cpu(ld->lo->server_pid, &ld->srv_ns0,
				   &ld->processes) == 0;
	ld->probe_cpu0 = cpu_s();
	ld->win_start = mono_ns();
	ld->measuring = true;
	if (ld->lo->duration_ns)
		loop_timer_set(ld->loop, &ld->end,
			       loop_now(ld->loop) + ld->lo->duration_ns);
}

static void window_close(struct load *ld)
{
	if (ld->ended)
		return;
	ld->ended = true;
	ld->win_end = mono_ns();
	ld->probe_cpu1 = cpu_s();
	if (ld->cpu_ok)
		ld->cpu_ok = load_proc_cpu(ld->lo->server_pid, &ld->srv_ns1,
					   &ld->processes) == 0;
	loop_stop(ld->loop);
}

static void on_warm(struct loop_timer *t)
{
	window_open(t->data);
}

static void on_end(struct loop_timer *t)
{
	window_close(t->data);
}

static void on_done(struct probe_check *c, void *arg);

static bool may_start(const struct load *ld)
{
	return !ld->ended && !(ld->lo->requests && ld->measuring &&
			       ld->started >= ld->lo->requests);
}

static void start_try(struct load_conn *lc)
{
	struct load *ld = lc->ld;

	if (!may_start(ld)) {
		if (++ld->idle == ld->lo->conns)
			window_close(ld);
		return;
	}
	lc->measured = ld->measuring;
	ld->started += ld->measuring;
	probe_check_start(lc->check, on_done, lc);
}

static void on_retry(struct loop_timer *t)
{
	start_try(t->data);
}

static void record(struct load *ld, struct load_conn *lc,
		   const struct probe_result *r)
{
	/* -d counts what completes in the window, -n what started in it. */
	bool counted =
		ld->lo->requests ? lc->measured : ld->measuring && !ld->ended;

	if (r->state != PROBE_OK) {
		if (!ld->errors++)
			snprintf(ld->first_error, sizeof(ld->first_error), "%s",
				 r->message);
		return;
	}
	if (!counted)
		return;
	ld->requests++;
	ld->reply_bytes += r->reply_bytes;
	hist_add(&ld->hist, (uint64_t)r->duration_ns);
}

static void on_done(struct probe_check *c, void *arg)
{
	struct load_conn *lc = arg;
	struct load *ld = lc->ld;
	const struct probe_result *r = probe_check_result(c);

	record(ld, lc, r);
	/* A try can fail before probe_check_start() returns (a refused
	 * loopback connect does): the next starts from the loop, so a
	 * failing target cannot recurse. */
	if (r->state != PROBE_OK)
		loop_timer_set(ld->loop, &lc->retry, loop_now(ld->loop));
	else
		start_try(lc);
}

/* The target and the check options load mode needs; 0 or an exit
 * status after printing why. */
static int prepare(struct load *ld)
{
	struct probe_cli *cli = ld->cli;
	struct probe_result r;
	const char *why = NULL;

	if (probe_target_parse(&ld->t, cli->urls[0], &why) < 0) {
		printf("UNKNOWN - %s bad URL: %s\n", cli->urls[0], why);
		return PROBE_UNKNOWN;
	}
	if (ld->t.udp ||
	    (ld->t.proto != PROBE_ECHO && ld->t.proto != PROBE_HTTP)) {
		printf("UNKNOWN - ringd-probe: --load drives echo:// and "
		       "http:// targets: %s\n",
		       ld->t.url);
		return PROBE_UNKNOWN;
	}
	if (cli->unix_path)
		strcpy(ld->t.unix_path, cli->unix_path);
	if (probe_resolve(&ld->t, &ld->ai, &r) < 0) {
		printf("UNKNOWN - %s %s\n", ld->t.url, r.message);
		return PROBE_UNKNOWN;
	}
	ld->opts = cli->opts;
	ld->opts.keepalive = !ld->lo->no_keepalive;
	ld->opts.await_close =
		ld->lo->no_keepalive && ld->t.proto == PROBE_HTTP;
	ld->opts.spread_source = ld->lo->no_keepalive;
	return 0;
}

static unsigned pool_size(unsigned conns)
{
	unsigned n = 64;

	while (n < 2 * conns && n < 2048)
		n *= 2;
	return n;
}

static int start(struct load *ld)
{
	if (probe_loop_new(&ld->loop, ld->cli->backend,
			   pool_size(ld->lo->conns), stdout) < 0)
		return PROBE_UNKNOWN;
	ld->conns = calloc(ld->lo->conns, sizeof(*ld->conns));
	for (unsigned i = 0; ld->conns && i < ld->lo->conns; i++) {
		struct load_conn *lc = &ld->conns[i];

		lc->ld = ld;
		lc->retry = (struct loop_timer){ .cb = on_retry, .data = lc };
		lc->check =
			probe_check_new(ld->loop, &ld->t, ld->ai, &ld->opts);
		if (!lc->check) {
			puts("UNKNOWN - ringd-probe: out of memory");
			return PROBE_UNKNOWN;
		}
	}
	if (!ld->conns) {
		puts("UNKNOWN - ringd-probe: out of memory");
		return PROBE_UNKNOWN;
	}
	ld->warm = (struct loop_timer){ .cb = on_warm, .data = ld };
	ld->end = (struct loop_timer){ .cb = on_end, .data = ld };
	return 0;
}

static const char *mode_name(const struct load *ld)
{
	bool http = ld->t.proto == PROBE_HTTP;

	if (ld->lo->no_keepalive)
		return http ? "http-churn" : "echo-churn";
	return http ? "http" : "echo";
}

static void summarize(struct load *ld, struct load_summary *s)
{
	memset(s, 0, sizeof(*s));
	s->url = ld->t.url;
	s->name = ld->lo->name ? ld->lo->name : ld->t.url;
	s->backend = loop_backend_name(ld->loop);
	s->mode = mode_name(ld);
	s->conns = ld->lo->conns;
	s->size = probe_check_request_bytes(ld->conns[0].check);
	s->warmup_s = (double)ld->lo->warmup_ns / 1e9;
	s->window_s = (double)(ld->win_end - ld->win_start) / 1e9;
	s->requests = ld->requests;
	s->errors = ld->errors;
	for (unsigned i = 0; i < ld->lo->conns; i++)
		s->connects += probe_check_connects(ld->conns[i].check);
	s->resp_bytes = ld->requests
				? (double)ld->reply_bytes / (double)ld->requests
				: 0.0;
	s->latency = &ld->hist;
	s->cpu.pid = ld->lo->server_pid;
	s->cpu.measured = ld->cpu_ok;
	s->cpu.processes = ld->processes;
	/* A descendant reaped in the window moves from its exact run time
	 * to its parent's truncated ticks, so the total can shrink a little
	 * (test_probe_load allows 20 ms); unsigned, it would wrap. */
	s->cpu.server_s = ld->srv_ns1 > ld->srv_ns0
				  ? (double)(ld->srv_ns1 - ld->srv_ns0) / 1e9
				  : 0.0;
	s->cpu.probe_s = ld->probe_cpu1 - ld->probe_cpu0;
	snprintf(s->first_error, sizeof(s->first_error), "%s", ld->first_error);
}

static int run(struct load *ld)
{
	struct load_summary s;
	int err;

	if (ld->lo->warmup_ns)
		loop_timer_set(ld->loop, &ld->warm,
			       loop_now(ld->loop) + ld->lo->warmup_ns);
	else
		window_open(ld);
	for (unsigned i = 0; i < ld->lo->conns; i++)
		start_try(&ld->conns[i]);
	err = loop_run(ld->loop);
	if (err) {
		printf("UNKNOWN - ringd-probe: loop: %s\n", strerror(-err));
		return PROBE_UNKNOWN;
	}
	summarize(ld, &s);
	if (!s.requests && !s.errors) {
		s.errors = 1;
		snprintf(s.first_error, sizeof(s.first_error),
			 "no request completed in the window");
	}
	if (ld->cli->format == CLI_JSON)
		load_report_json(stdout, &s);
	else
		load_report_text(stdout, &s);
	return s.errors ? PROBE_CRITICAL : PROBE_OK;
}

/* -c up to LOAD_CONNS_MAX passes a common soft RLIMIT_NOFILE of 1024:
 * the soft limit goes up as far as the load needs (an unprivileged
 * process may raise it to the hard one), and a hard limit below that
 * stops the load before it starts, not with an EMFILE per connection. */
static int fd_room(unsigned conns)
{
	rlim_t need = (rlim_t)conns + FD_MARGIN;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max < need) {
		printf("UNKNOWN - ringd-probe: usage: -c %u needs %llu file "
		       "descriptors, over the hard RLIMIT_NOFILE of %llu\n",
		       conns, (unsigned long long)need,
		       (unsigned long long)rl.rlim_max);
		return PROBE_UNKNOWN;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
		printf("UNKNOWN - ringd-probe: raising RLIMIT_NOFILE to %llu: "
		       "%s\n", (unsigned long long)need, strerror(errno));
		return PROBE_UNKNOWN;
	}
	return 0;
}

int load_run(struct probe_cli *cli)
{
	struct load ld = { .cli = cli, .lo = &cli->load };
	int rc = fd_room(cli->load.conns);

	if (!rc)
		rc = prepare(&ld);
	if (!rc && cli->load.server_pid &&
	    kill((pid_t)cli->load.server_pid, 0) < 0 && errno == ESRCH) {
		printf("UNKNOWN - ringd-probe: --server-pid %ld: no such "
		       "process\n",
		       cli->load.server_pid);
		rc = PROBE_UNKNOWN;
	}
	if (!rc)
		rc = start(&ld);
	if (!rc)
		rc = run(&ld);
	fflush(stdout);
	/* The loop first: kept connections still have a receive armed. */
	if (ld.loop)
		loop_free(ld.loop);
	for (unsigned i = 0; ld.conns && i < cli->load.conns; i++)
		probe_check_free(ld.conns[i].check);
	free(ld.conns);
	if (ld.ai)
		freeaddrinfo(ld.ai);
	return rc;
}
