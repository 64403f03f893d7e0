/* ringd's start-up told in order: arguments, configuration, engine,
 * listeners, privileges, workers, ready; then signals until a stop. */
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
#include "metrics.h"
#include "notify.h"
#include "srclimit.h"
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

/* auto falls back to epoll with one line saying why; an explicit
 * io_uring that cannot run is an error, never a silent substitute. */
static int main_choose_backend(struct daemon *d)
{
	const char *why = "unknown";
	int backend = d->conf->backend;

	if (backend == CONF_BACKEND_EPOLL) {
		d->backend = LOOP_BACKEND_EPOLL;
		return 0;
	}
	if (loop_uring_probe(&why) == 0) {
		d->backend = LOOP_BACKEND_IO_URING;
		return 0;
	}
	if (backend == CONF_BACKEND_IO_URING) {
		log_err("loop: io_uring unavailable (%s); not starting "
			"backend=io_uring", why);
		return -1;
	}
	log_notice("loop: io_uring unavailable (%s); using epoll backend=epoll",
		   why);
	d->backend = LOOP_BACKEND_EPOLL;
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
			  "drop to that user after binding");
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

/* The per-source table exists only when a service sets a limit. Every
 * entry stands for an open connection: max_connections, plus what each
 * worker may hold, plus what a stop may take from a full backlog past it,
 * bounds how many there are. It grows only as far as it is used. */
static int main_srclimit(struct daemon *d)
{
	size_t i, room;

	for (i = 0; i < d->conf->nsvc; i++)
		if (d->conf->svc[i].max_per_source > 0)
			break;
	if (i == d->conf->nsvc)
		return 0;
	room = (size_t)d->conf->max_connections +
	       d->nworkers * (ACCEPT_MAX_WAITING + SOMAXCONN);
	d->srclimit = srclimit_new(room);
	return d->srclimit ? 0 : -1;
}

static int main_instances(struct daemon *d)
{
	size_t i;

	d->svc = calloc(d->conf->nsvc + 1, sizeof(*d->svc));
	if (!d->svc)
		return -1;
	for (i = 0; i < d->conf->nsvc; i++)
		d->svc[i] = (struct ringd_instance){
			.sc = &d->conf->svc[i],
			.p = d->conf->svc[i].plugin->p,
			.d = d,
			.idx = i,
		};
	d->nworkers = (size_t)d->conf->workers_n;
	if (metrics_name_counters(d) < 0)
		return -1;
	return main_srclimit(d);
}

static void main_announce(struct daemon *d)
{
	const char *engine = d->backend == LOOP_BACKEND_IO_URING ? "io_uring" :
								     "epoll";
	char listeners[4096], status[4400];

	listen_describe(d, listeners, sizeof(listeners));
	log_info("ringd: started backend=%s workers=%zu pid=%d version=%s",
		 engine, d->nworkers, (int)getpid(), RINGD_VERSION);
	log_info("ringd: listening listen=%s", listeners);
	snprintf(status, sizeof(status),
		 "READY=1\nSTATUS=running backend=%s workers=%zu listen=%s",
		 engine, d->nworkers, listeners);
	notify_send(status);
}

/* Signals arrive here, synchronously, never in a handler: workers have
 * them blocked and main sleeps in sigtimedwait. Waits until a stop signal
 * or, with a timeout (ms >= 0), until it passes; returns the signal, or
 * 0 when the time ran out. Wakes for the watchdog and STATUS= on the way
 * (supervise_next_ns()) and answers SIGUSR1 with the counters. */
static int main_wait_for_stop(struct daemon *d, const sigset_t *set,
			      int64_t ms)
{
	int64_t end = supervise_now() + ms * 1000000, now, wait;
	struct timespec left;
	siginfo_t si;
	int sig;

	for (;;) {
		now = supervise_now();
		wait = supervise_next_ns(&d->sup, now);
		if (ms >= 0 && now >= end)
			return 0;
		if (ms >= 0 && (wait < 0 || end - now < wait))
			wait = end - now;
		if (wait < 0) {
			sig = sigwaitinfo(set, &si);
		} else {
			left.tv_sec = wait / 1000000000;
			left.tv_nsec = wait % 1000000000;
			sig = sigtimedwait(set, &si, &left);
		}
		supervise_tick(d, supervise_now());
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
		if (sig == SIGUSR1)
			supervise_summary(d);
		if (sig == SIGHUP)
			log_notice("ringd: SIGHUP: reload is not implemented "
				   "yet; the running configuration stays");
	}
}

/* The stop: readiness fails at once (state DRAINING, seen by /readyz),
 * accepting goes on for drain_delay so load balancers notice and stop
 * sending, then the workers stop accepting and drain. A second stop
 * signal cuts the delay short. */
static void main_stop(struct daemon *d, const sigset_t *set, int sig)
{
	int64_t delay = d->conf->drain_delay_ms;

	atomic_store(&d->state, RINGD_DRAINING);
	notify_send("STOPPING=1");
	if (delay > 0) {
		log_info("ringd: %s received, draining for %lld ms before "
			 "stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT",
			 (long long)delay);
		sig = main_wait_for_stop(d, set, delay);
		if (sig)
			log_info("ringd: %s received again, stopping now",
				 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	} else {
		log_info("ringd: %s received, stopping",
			 sig == SIGTERM ? "SIGTERM" : "SIGINT");
	}
	atomic_store(&d->stopping, 1);
	listen_stop_all(d);
	worker_stop_all(d);
}

/* Sockets passed by socket activation first, so that listeners they
 * cover are not bound again; whatever they do not cover is bound. */
static int main_listen(struct daemon *d)
{
	struct activate_set inherited = { 0 };
	int r;

	if (activate_take(&inherited) < 0)
		return -1;
	d->activation = &inherited;
	r = listen_open_all(d);
	d->activation = NULL;
	activate_free(&inherited);
	return r;
}

static int main_run(struct daemon *d)
{
	sigset_t set;

	if (main_instances(d) < 0 || main_choose_backend(d) < 0)
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (main_listen(d) < 0)
		return 1;
	supervise_init(d, supervise_now());
	if (main_drop_privileges(d->conf->user) < 0 ||
	    worker_start_all(d) < 0) {
		listen_close_all(d);
		return 1;
	}
	main_announce(d);
	main_stop(d, &set, main_wait_for_stop(d, &set, -1));
	listen_close_all(d);
	if (atomic_load(&d->failed)) {
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
	struct daemon d = { 0 };
	int r;

	if (main_parse_args(argc, argv, &o) < 0) {
		main_usage(stderr);
		return 2;
	}
	if (o.version)
		return main_version();
	if (o.keys)
		return main_keys(o.keys);

	log_init(RINGD_LOG_INFO);
	if (conf_load(o.config, o.sets, o.nsets, main_plugin_dir(), &d.conf,
		      &errs) < 0) {
		conf_errors_print(&errs, stderr);
		conf_errors_free(&errs);
		return 1;
	}
	if (o.check) {
		printf("%s: configuration ok\n", o.config);
		conf_free(d.conf);
		return 0;
	}
	log_set_level(conf_log_level(d.conf));
	r = main_run(&d);
	srclimit_free(d.srclimit);
	metrics_forget_counters(&d);
	free(d.svc);
	conf_free(d.conf);
	return r;
}
