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

	if (geteuid() != 0) {
		if (user && *user)
			log_notice("ringd: user = %s ignored: not started as "
				   "root", user);
		return 0;
	}
	if (!user || !*user) {
		log_warnx("ringd: running as root; set user = in [ringd] to "
			  "drop to that user after binding");
		return 0;
	}
	pw = getpwnam(user);
	if (!pw) {
		log_err("ringd: user %s: no such user", user);
		return -1;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 ||
	    setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0 ||
	    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_err("ringd: cannot switch to user %s: %s", user,
			strerror(errno));
		return -1;
	}
	/* A kernel or LSM that let a setuid() half succeed would leave a
	 * way back; refuse to serve rather than run with it. */
	if (pw->pw_uid != 0 && setuid(0) == 0) {
		log_err("ringd: user %s: root could be regained after the "
			"switch, not starting", user);
		return -1;
	}
	log_info("ringd: running as user %s uid=%u gid=%u", user,
		 (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
	return 0;
}

/* Signals arrive here, synchronously, never in a handler: workers have
 * them blocked and main sleeps in sigwaitinfo. Waits for one of set, or
 * with a timeout (ms >= 0) until it passes; returns the signal, or 0
 * when the time ran out. */
static int main_wait_signal(const sigset_t *set, int64_t ms)
{
	struct timespec left = { .tv_sec = ms / 1000,
				 .tv_nsec = (ms % 1000) * 1000000 };
	siginfo_t si;
	int sig;

	do {
		sig = ms < 0 ? sigwaitinfo(set, &si) :
			       sigtimedwait(set, &si, &left);
	} while (sig < 0 && errno == EINTR);
	return sig < 0 ? 0 : sig;
}

/* Like main_wait_signal, but only a stop signal ends the wait: a SIGHUP
 * while the daemon already drains is logged and dropped. */
static int main_wait_for_stop(const sigset_t *set, int64_t ms)
{
	struct timespec end, now;
	int64_t left = ms;
	int sig;

	clock_gettime(CLOCK_MONOTONIC, &end);
	for (;;) {
		sig = main_wait_signal(set, left);
		if (sig == SIGTERM || sig == SIGINT || sig == 0)
			return sig;
		log_notice("ringd: SIGHUP ignored: the daemon is stopping");
		if (ms < 0)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = ms - ((int64_t)(now.tv_sec - end.tv_sec) * 1000 +
			     (now.tv_nsec - end.tv_nsec) / 1000000);
		if (left <= 0)
			return 0;
	}
}

/* How often main looks whether a retiring generation's workers ended. */
#define MAIN_REAP_MS 100

/* Reloads on SIGHUP, frees what reloads retired, until a stop signal. */
static int main_serve(struct reload *r, const sigset_t *set)
{
	int sig;

	for (;;) {
		sig = main_wait_signal(set,
				       reload_pending(r) ? MAIN_REAP_MS : -1);
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
		if (sig == SIGHUP)
			reload_apply(r);
		reload_reap(r);
	}
}

/* The stop: readiness fails at once (state DRAINING, seen by /readyz),
 * accepting goes on for drain_delay so load balancers notice and stop
 * sending, then the workers stop accepting and drain. A second stop
 * signal cuts the delay short. Generations a reload retired drain too. */
static void main_stop(struct reload *r, const sigset_t *set, int sig)
{
	struct daemon *d = r->cur;
	int64_t delay = d->conf->drain_delay_ms;

	reload_draining(r);
	notify_send("STOPPING=1");
	if (delay > 0) {
		log_info("ringd: %s received, draining for %lld ms before "
			 "stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT",
			 (long long)delay);
		sig = main_wait_for_stop(set, delay);
		if (sig)
			log_info("ringd: %s received again, stopping now",
				 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	} else {
		log_info("ringd: %s received, stopping",
			 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	}
	reload_stop_retiring(r);
	atomic_store(&d->stopping, 1);
	listen_stop_all(d);
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
	return ret;
}

static int main_run(struct reload *r, struct ringd_conf *conf)
{
	sigset_t set;
	bool failed;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (main_listen(r, conf) < 0 ||
	    main_drop_privileges(r->cur->conf->user) < 0 ||
	    reload_start_first(r) < 0) {
		reload_fini(r);
		return 1;
	}
	reload_announce(r->cur, "started");
	main_stop(r, &set, main_serve(r, &set));
	failed = reload_fini(r);
	if (failed) {
		log_err("ringd: stopped after a worker failed");
		return 1;
	}
	log_info("ringd: stopped");
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
