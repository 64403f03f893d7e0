/* ringd's start-up told in order: arguments, configuration, engine,
 * listeners, privileges, workers, ready; then signals (reloads) until a
 * stop. */
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "accept.h"
#include "activate.h"
#include "conf.h"
#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "reload.h"
#include "supervise.h"
#include "worker.h"

#define MAIN_MAX_SETS 64

struct options {
	const char *config;
	const char *keys;
	const char *sets[MAIN_MAX_SETS];
	size_t nsets;
	bool check, version;
};

static void main_usage(FILE *f)
{
	fprintf(f,
		"usage: ringd [-c FILE] [-t] [-s SECTION.KEY=VALUE]... "
		"[-K PLUGIN] [-V] [-h]\n"
		"  -c, --config FILE   configuration (default %s/ringd.ini)\n"
		"  -t, --check         validate the configuration and exit\n"
		"  -s, --set S.K=V     override or add one key; repeatable\n"
		"  -K, --keys PLUGIN   list a plugin's keys (ringd: the "
		"daemon's own)\n"
		"  -V, --version       version and usable backends\n"
		"  -h, --help          this text\n",
		RINGD_SYSCONFDIR);
}

static int main_parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check", no_argument, NULL, 't' },
		{ "set", required_argument, NULL, 's' },
		{ "keys", required_argument, NULL, 'K' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	o->config = RINGD_SYSCONFDIR "/ringd.ini";
	while ((ch = getopt_long(argc, argv, "c:ts:K:Vh", longopts, NULL)) !=
	       -1) {
		switch (ch) {
		case 'c': o->config = optarg; break;
		case 't': o->check = true; break;
		case 'K': o->keys = optarg; break;
		case 'V': o->version = true; break;
		case 'h': main_usage(stdout); exit(0);
		case 's':
			if (o->nsets == MAIN_MAX_SETS) {
				fprintf(stderr, "ringd: too many -s (max %d)\n",
					MAIN_MAX_SETS);
				return -1;
			}
			o->sets[o->nsets++] = optarg;
			break;
		default: return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "ringd: unexpected argument '%s'\n",
			argv[optind]);
		return -1;
	}
	return 0;
}

/* The build tree's binary uses the build tree's plugins, so
 * build/daemon/ringd -c conf/ringd.ini works without installing. */
static const char *main_plugin_dir(void)
{
	char self[PATH_MAX], build[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return RINGD_PLUGIN_DIR;
	self[n] = '\0';
	if (realpath(RINGD_BUILD_EXE, build) && strcmp(self, build) == 0)
		return RINGD_BUILD_PLUGIN_DIR;
	return RINGD_PLUGIN_DIR;
}

static int main_version(void)
{
	const char *why = NULL;

	printf("ringd %s\n", RINGD_VERSION);
	if (loop_uring_probe(&why) == 0)
		printf("io_uring: yes\n");
	else
		printf("io_uring: no (%s)\n", why ? why : "unknown");
	printf("epoll: yes\n");
	return 0;
}

static int main_keys(const char *name)
{
	struct plugin_set set = { 0 };
	struct plugin *pl;
	char err[512];

	if (strcmp(name, "ringd") == 0) {
		conf_print_daemon_keys(stdout, "[ringd]", conf_core_keys);
		printf("\n");
		conf_print_daemon_keys(stdout, "every service section",
				       conf_service_keys);
		return 0;
	}
	if (plugin_load(&set, main_plugin_dir(), name, &pl, err,
			sizeof(err)) < 0) {
		fprintf(stderr, "ringd: %s\n", err);
		return 1;
	}
	printf("%s: %s (%s)\n\n", pl->p->name,
	       pl->p->description ? pl->p->description : "", pl->path);
	if (pl->p->keys && pl->p->keys[0].name)
		conf_print_keys(stdout, "its own keys", pl->p->keys);
	else
		printf("its own keys: none\n");
	printf("\n");
	conf_print_daemon_keys(stdout, "and those of every service section",
			       conf_service_keys);
	plugin_set_free(&set);
	return 0;
}

/* Started as root, ringd becomes user once its ports are bound: every
 * group but the user's own goes (initgroups), and setuid() from root
 * clears every capability, as no SECBIT_KEEP_CAPS is set. no_new_privs
 * then keeps an exec from winning any back; ringd never execs, so it
 * costs nothing, and the bounding set can stay as it is. */
static int main_drop_privileges(const char *user)
{
	struct passwd *pw;
	char e[LOG_VALUE_MAX];

	if (geteuid() != 0) {
		if (user && *user)
			log_notice("ringd: user ignored: not started as root "
				   "user=%s", user);
		return 0;
	}
	if (!user || !*user) {
		log_warnx("ringd: running as root; set user = in [ringd] to "
			  "drop to that user after binding uid=0");
		return 0;
	}
	pw = getpwnam(user);
	if (!pw) {
		log_err("ringd: no such user user=%s", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("ringd: cannot switch user user=%s error=%s", user,
			log_value(e, sizeof(e), strerror(errno)));
		return -1;
	}
	/* A kernel or LSM that let a setuid() half succeed would leave a
	 * way back; refuse to serve rather than run with it. */
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		log_err("ringd: root could be regained after the switch, not "
			"starting user=%s", user);
		return -1;
	}
	log_info("ringd: running as user user=%s uid=%u gid=%u", user,
		 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return 0;
}


/* How often main looks whether a retiring generation's workers ended. */
#define MAIN_REAP_NS (100 * 1000000LL)

/* Sleeps in sigtimedwait (wait_ns < 0: sigwaitinfo) for one of set;
 * the signal, or 0 when the time ran out. */
static int main_sigwait(const sigset_t *set, int64_t wait_ns)
{
	struct timespec left = { .tv_sec = wait_ns / 1000000000,
				 .tv_nsec = wait_ns % 1000000000 };
	siginfo_t si;
	int sig;

	do {
		sig = wait_ns < 0 ? sigwaitinfo(set, &si) :
				    sigtimedwait(set, &si, &left);
	} while (sig < 0 && errno == EINTR);
	return sig < 0 ? 0 : sig;
}

/* The soonest of: supervise's next duty, the next look at retiring
 * generations, end (-1: none). -1 when there is none of them. */
static int64_t main_next_wake(const struct reload *r, int64_t now,
			      int64_t end, bool serving)
{
	int64_t wait = supervise_next_ns(&r->cur->sup, now);

	if (serving && reload_pending(r) && (wait < 0 || wait > MAIN_REAP_NS))
		wait = MAIN_REAP_NS;
	if (end >= 0 && (wait < 0 || end - now < wait))
		wait = end - now;
	return wait;
}

/* Signals arrive here, synchronously, never in a handler: workers have
 * them blocked and main sleeps in sigtimedwait. Waits until a stop signal
 * or, with a timeout (ms >= 0), until it passes; returns the signal, or
 * 0 when the time ran out. On the way: the watchdog and STATUS=
 * (supervise_next_ns()), SIGUSR1's counters and, while serving, SIGHUP's
 * reload and freeing what reloads retired; a SIGHUP during a stop is
 * dropped. */
static int main_wait(struct reload *r, const sigset_t *set, int64_t ms,
		     bool serving)
{
	int64_t end = supervise_now() + ms * 1000000, now;
	int sig;

	for (;;) {
		now = supervise_now();
		if (ms >= 0 && now >= end)
			return 0;
		sig = main_sigwait(set, main_next_wake(r, now, ms >= 0 ? end : -1,
						       serving));
		supervise_tick(r->cur, supervise_now());
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
		if (sig == SIGUSR1)
			supervise_summary(r->cur);
		if (sig == SIGHUP && serving)
			reload_apply(r);
		else if (sig == SIGHUP)
			log_notice("ringd: SIGHUP ignored: the daemon is "
				   "stopping signal=SIGHUP");
		if (serving)
			reload_reap(r);
	}
}

/* How often main looks whether a stop's workers have all returned. */
#define MAIN_DRAIN_POLL_MS 50

static const char *main_signame(int sig)
{
	return sig == SIGTERM ? "SIGTERM" : "SIGINT";
}

/* While the workers drain, main still answers signals: a second stop
 * signal (cut already true when it came during drain_delay) resets what
 * is left at once, as shutdown_timeout would. */
static void main_drain(struct reload *r, const sigset_t *set, bool cut)
{
	int sig;

	if (cut)
		reload_stop_now(r);
	while (!reload_try_join_all(r)) {
		sig = main_wait(r, set, MAIN_DRAIN_POLL_MS, false);
		if (cut || (sig != SIGTERM && sig != SIGINT))
			continue;
		log_info("ringd: stop signal received again, closing what is "
			 "left now signal=%s", main_signame(sig));
		reload_stop_now(r);
		cut = true;
	}
}

/* The stop: readiness fails at once (state DRAINING, seen by /readyz),
 * accepting goes on for drain_delay so load balancers notice and stop
 * sending, then the workers stop accepting and drain. A second stop
 * signal stops at once: it ends the delay and resets what the drain has
 * left. Generations a reload retired drain too. */
static void main_stop(struct reload *r, const sigset_t *set, int sig)
{
	struct daemon *d = r->cur;
	int64_t delay = d->conf->drain_delay_ms;
	bool cut = false;

	reload_draining(r);
	notify_send("STOPPING=1");
	if (delay > 0) {
		log_info("ringd: stop signal received, draining before the "
			 "stop signal=%s drain_delay_ms=%lld", main_signame(sig),
			 (long long)delay);
		sig = main_wait(r, set, delay, false);
		cut = sig != 0;
		if (cut)
			log_info("ringd: stop signal received again, stopping "
				 "now signal=%s", main_signame(sig));
	} else {
		log_info("ringd: stop signal received, stopping signal=%s",
			 main_signame(sig));
	}
	reload_stop_retiring(r);
	atomic_store(&d->stopping, 1);
	listen_stop_all(d);
	worker_wake_all(d);
	main_drain(r, set, cut);
	worker_stop_all(d);
}

/* Sockets passed by socket activation first, so that listeners they
 * cover are not bound again; whatever they do not cover is bound. Only
 * the first generation inherits: a reload keeps what it took. */
static int main_listen(struct reload *r, struct ringd_conf *conf)
{
	struct activate_set inherited = { 0 };
	int ret;

	if (activate_take(&inherited) < 0) {
		conf_free(conf);
		return -1;
	}
	ret = reload_first(r, conf, &inherited);
	activate_free(&inherited);
	if (ret == 0)
		supervise_init(r->cur, supervise_now());
	return ret;
}

static int main_run(struct reload *r, struct ringd_conf *conf)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (main_listen(r, conf) < 0 ||
	    main_drop_privileges(r->cur->conf->user) < 0 ||
	    reload_start_first(r) < 0) {
		reload_fini(r);
		return 1;
	}
	reload_announce(r->cur, "started");
	main_stop(r, &set, main_wait(r, &set, -1, true));
	if (reload_fini(r)) {
		log_err("ringd: stopped after a worker failed exit=1");
		return 1;
	}
	log_info("ringd: stopped exit=0");
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { 0 };
	struct conf_errors errs = { 0 };
	struct ringd_conf *conf;

	if (main_parse_args(argc, argv, &o) < 0) {
		main_usage(stderr);
		return 2;
	}
	if (o.version)
		return main_version();
	if (o.keys)
		return main_keys(o.keys);

	log_init(RINGD_LOG_INFO);
	if (conf_load(o.config, o.sets, o.nsets, main_plugin_dir(), &conf,
		      &errs) < 0) {
		conf_errors_print(&errs, stderr);
		conf_errors_free(&errs);
		return 1;
	}
	if (o.check) {
		printf("%s: configuration ok\n", o.config);
		conf_free(conf);
		return 0;
	}
	log_set_level(conf_log_level(conf));
	return main_run(&(struct reload){ .config = o.config, .sets = o.sets,
					  .nsets = o.nsets,
					  .plugin_dir = main_plugin_dir() },
			conf);
}
