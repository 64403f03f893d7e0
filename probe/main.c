/* ringd-probe: parse the command line, resolve every target (blocking
 * getaddrinfo, before the loop starts), run all checks concurrently on
 * one loop, then print the verdicts and exit with the most severe. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probe/cli.h"
#include "probe/load.h"
#include "probe/selfcheck.h"
#include "probe/report.h"

/* One target across its tries. */
struct run_target {
	struct probe_target t;
	struct addrinfo *ai;
	struct probe_check *check;
	struct run *run;
	struct probe_opts opts; /* the command line's, per target */
	struct loop_timer next; /* --interval between tries */
	int64_t try_start;
	struct report_stats stats;
	struct report_entry entry;
};

struct run {
	struct probe_cli *cli;
	struct loop *loop;
	struct run_target *targets;
	size_t n; /* the URLs, then the listeners of --config */
	size_t pending;
	struct selfcheck conf;
};

static void on_next(struct loop_timer *t);

static void record(struct run_target *rt, const struct probe_result *r)
{
	struct probe_cli *cli = rt->run->cli;
	struct report_entry e = { .url = rt->t.url, .result = *r,
				  .http = rt->t.proto == PROBE_HTTP };

	e.result.state = report_threshold(r->state, r->duration_ns,
					  cli->warn_ns, cli->crit_ns);
	/* Loss counts tries without a good reply; a slow one is no loss. */
	if (report_stats_add(&rt->stats, r->state == PROBE_OK,
			     r->duration_ns) < 0)
		e.result.state = report_worst(e.result.state, PROBE_UNKNOWN);
	/* The target's verdict is its worst try's, the latest of equals,
	 * whose line tells why. */
	if (rt->stats.tries == 1 ||
	    report_worst(rt->entry.result.state, e.result.state) ==
		    e.result.state)
		rt->entry = e;
	if (cli->count > 1 && cli->format == CLI_NAGIOS) {
		report_nagios(stdout, &e, cli->warn_ns, cli->crit_ns);
		fflush(stdout);
	}
}

static void on_done(struct probe_check *c, void *arg)
{
	struct run_target *rt = arg;
	struct run *run = rt->run;

	record(rt, probe_check_result(c));
	if (rt->stats.tries < run->cli->count) {
		loop_timer_set(run->loop, &rt->next,
			       rt->try_start + run->cli->interval_ns);
		return;
	}
	if (--run->pending == 0)
		loop_stop(run->loop);
}

static void on_next(struct loop_timer *t)
{
	struct run_target *rt = t->data;

	rt->try_start = loop_now(rt->run->loop);
	probe_check_start(rt->check, on_done, rt);
}

/* A target that cannot be checked at all: UNKNOWN with the reason. */
static void unknown(struct run_target *rt, const char *fmt, const char *why)
{
	rt->entry.result.state = PROBE_UNKNOWN;
	snprintf(rt->entry.result.message, sizeof(rt->entry.result.message),
		 fmt, why);
}

/* A URL of the command line into rt->t; -EINVAL when it is unusable. */
static int from_url(struct probe_cli *cli, struct run_target *rt,
		    const char *url)
{
	const char *why = NULL;

	if (probe_target_parse(&rt->t, url, &why) < 0) {
		unknown(rt, "bad URL: %s", why);
		return -EINVAL;
	}
	rt->entry.url = rt->t.url;
	if (cli->unix_path && rt->t.udp) {
		unknown(rt, "%s", "--unix reaches stream services only");
		return -EINVAL;
	}
	if (cli->unix_path)
		strcpy(rt->t.unix_path, cli->unix_path);
	return 0;
}

/* A listener of --config: its target is made; --unix is not for it. */
static int from_config(struct run_target *rt,
		       const struct selfcheck_target *ct)
{
	rt->t = ct->t;
	rt->entry.url = rt->t.url;
	if (ct->why) {
		unknown(rt, "%s", ct->why);
		return -EINVAL;
	}
	if (ct->any_status)
		rt->opts.expect_status = "100-599";
	return 0;
}

static void prepare(struct run *run, struct run_target *rt, size_t i)
{
	struct probe_cli *cli = run->cli;
	size_t nurls = (size_t)cli->nurls;

	rt->run = run;
	rt->opts = cli->opts;
	rt->entry.url = i < nurls ? cli->urls[i] : run->conf.v[i - nurls].t.url;
	rt->next = (struct loop_timer){ .cb = on_next, .data = rt };
	if (i < nurls ? from_url(cli, rt, cli->urls[i]) < 0
		      : from_config(rt, &run->conf.v[i - nurls]) < 0)
		return;
	rt->entry.http = rt->t.proto == PROBE_HTTP;
	if (rt->t.udp && rt->t.proto == PROBE_ECHO &&
	    cli->opts.size > 65507)
		return unknown(rt, "%s", "--size over 65507 bytes for UDP");
	if (probe_resolve(&rt->t, &rt->ai, &rt->entry.result) < 0)
		return;
	rt->check = probe_check_new(run->loop, &rt->t, rt->ai, &rt->opts);
	if (!rt->check)
		return unknown(rt, "%s", "out of memory");
	run->pending++;
}

static enum probe_state report(struct run *run)
{
	struct probe_cli *cli = run->cli;
	struct report_entry *e = calloc(run->n, sizeof(*e));
	enum probe_state worst = PROBE_OK;

	if (!e) {
		puts("UNKNOWN - out of memory");
		return PROBE_UNKNOWN;
	}
	for (size_t i = 0; i < run->n; i++) {
		e[i] = run->targets[i].entry;
		if (cli->count > 1 && run->targets[i].check)
			e[i].stats = &run->targets[i].stats;
		worst = report_worst(worst, e[i].result.state);
	}
	if (cli->format == CLI_JSON)
		report_json(stdout, e, run->n, worst);
	else if (cli->format == CLI_PROMETHEUS)
		report_prometheus(stdout, e, run->n);
	for (size_t i = 0; cli->format == CLI_NAGIOS && i < run->n; i++) {
		if (!e[i].stats)
			report_nagios(stdout, &e[i], cli->warn_ns,
				      cli->crit_ns);
		else
			report_stats_lines(stdout, e[i].url, e[i].stats);
	}
	free(e);
	return worst;
}

static int run_all(struct run *run)
{
	int err = probe_loop_new(&run->loop, run->cli->backend, 64, stdout);

	if (err)
		return -err;
	for (size_t i = 0; i < run->n; i++)
		prepare(run, &run->targets[i], i);
	for (size_t i = 0; i < run->n; i++)
		if (run->targets[i].check)
			on_next(&run->targets[i].next);
	if (run->pending)
		err = loop_run(run->loop);
	if (err)
		printf("UNKNOWN - ringd-probe: loop: %s\n", strerror(-err));
	return -err;
}

static void run_free(struct run *run)
{
	for (size_t i = 0; i < run->n; i++) {
		probe_check_free(run->targets[i].check);
		report_stats_free(&run->targets[i].stats);
		if (run->targets[i].ai)
			freeaddrinfo(run->targets[i].ai);
	}
	if (run->loop)
		loop_free(run->loop);
	free(run->targets);
	selfcheck_free(&run->conf);
}

/* --config FILE: its listeners become targets after the URLs. A file
 * that cannot be used, or one with nothing to check, is one UNKNOWN
 * line: the monitor could not check, which is not an outage. */
static int load_config(struct run *run)
{
	char err[1024];

	if (!run->cli->config)
		return 0;
	if (selfcheck_load(run->cli->config, &run->conf, err,
			      sizeof(err)) < 0) {
		printf("UNKNOWN - ringd-probe: %s\n", err);
		return -EINVAL;
	}
	if (run->conf.n == 0 && run->cli->nurls == 0) {
		printf("UNKNOWN - ringd-probe: %s: nothing to probe (%zu "
		       "listeners without a check)\n", run->cli->config,
		       run->conf.skipped);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct probe_cli cli;
	struct run run = { .cli = &cli };
	int rc = cli_parse(&cli, argc, argv, stdout, stdout);
	enum probe_state worst = PROBE_UNKNOWN;

	if (rc) {
		cli_free(&cli);
		return rc > 0 ? 0 : PROBE_UNKNOWN;
	}
	signal(SIGPIPE, SIG_IGN);
	if (cli.load.on) {
		rc = load_run(&cli);
		cli_free(&cli);
		return rc;
	}
	if (load_config(&run) < 0) {
		run_free(&run);
		cli_free(&cli);
		return PROBE_UNKNOWN;
	}
	run.n = (size_t)cli.nurls + run.conf.n;
	run.targets = calloc(run.n, sizeof(*run.targets));
	if (!run.targets) {
		puts("UNKNOWN - out of memory");
	} else if (run_all(&run) == 0) {
		worst = report(&run);
	}
	fflush(stdout);
	run_free(&run);
	cli_free(&cli);
	return worst;
}
