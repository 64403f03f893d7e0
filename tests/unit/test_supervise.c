/* The watchdog's rules with fake workers: which WATCHDOG_USEC and
 * WATCHDOG_PID values turn it on, the progress check and its log lines
 * (once per stall), when main must wake, what a tick sends to a notify
 * socket of our own, and a real heartbeat on an epoll loop. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/supervise.h"
#include "daemon/worker.h"

#define MS 1000000LL

/* stderr is one end of a SEQPACKET pair: one record per log line. */
static int cap[2] = { -1, -1 };
static int saved_stderr = -1;
static int notify_fd = -1;
static char notify_name[64];
static char line[4096];

static int setup(void **state)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char *name = notify_name;
	int len;

	(void)state;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, cap) < 0)
		return -1;
	saved_stderr = dup(STDERR_FILENO);
	if (saved_stderr < 0 || dup2(cap[1], STDERR_FILENO) < 0)
		return -1;
	unsetenv("JOURNAL_STREAM");
	log_init(RINGD_LOG_INFO);
	/* An abstract name: nothing to clean up in the file system. */
	len = snprintf(name, sizeof(notify_name), "@ringd-test-supervise-%d",
		       (int)getpid());
	memcpy(sun.sun_path, name, (size_t)len);
	sun.sun_path[0] = '\0';
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd < 0 ||
	    bind(notify_fd, (struct sockaddr *)&sun,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		return -1;
	return setenv("NOTIFY_SOCKET", name, 1);
}

static int teardown(void **state)
{
	(void)state;
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(cap[0]);
	close(cap[1]);
	close(notify_fd);
	unsetenv("NOTIFY_SOCKET");
	return 0;
}

/* The next log line, or NULL when none was written (writes are
 * synchronous: nothing to wait for). */
static const char *next_log(void)
{
	ssize_t n = recv(cap[0], line, sizeof(line) - 1, MSG_DONTWAIT);

	if (n < 0)
		return NULL;
	line[n] = '\0';
	return line;
}

static const char *next_notify(void)
{
	ssize_t n = recv(notify_fd, line, sizeof(line) - 1, MSG_DONTWAIT);

	if (n < 0)
		return NULL;
	line[n] = '\0';
	return line;
}

static void test_supervise_watchdog_env(void **state)
{
	(void)state;
	assert_int_equal(supervise_watchdog_ns(NULL, NULL, 42), 0);
	assert_int_equal(supervise_watchdog_ns("", NULL, 42), 0);
	assert_int_equal(supervise_watchdog_ns("0", NULL, 42), 0);
	assert_int_equal(supervise_watchdog_ns("-5", NULL, 42), 0);
	assert_int_equal(supervise_watchdog_ns("+5", NULL, 42), 0);
	assert_int_equal(supervise_watchdog_ns("12x", NULL, 42), 0);
	assert_int_equal(
		supervise_watchdog_ns("99999999999999999999", NULL, 42), 0);
	assert_int_equal(supervise_watchdog_ns("400000", NULL, 42), 400 * MS);
	/* WATCHDOG_PID must be this process, or the pings are not ours. */
	assert_int_equal(supervise_watchdog_ns("400000", "42", 42), 400 * MS);
	assert_int_equal(supervise_watchdog_ns("400000", "41", 42), 0);
	assert_int_equal(supervise_watchdog_ns("400000", "", 42), 0);
	assert_int_equal(supervise_watchdog_ns("400000", "42a", 42), 0);
}

static void test_supervise_check_names_the_stuck_worker_once(void **state)
{
	struct supervise s = { 0 };
	uint64_t c[3] = { 1, 1, 1 };
	const char *l;

	(void)state;
	assert_int_equal(supervise_check(&s, c, 3), 0);
	assert_null(next_log());
	c[0] = 2, c[1] = 5, c[2] = 2;
	assert_int_equal(supervise_check(&s, c, 3), 0);
	assert_null(next_log());

	c[0] = 3, c[2] = 3; /* worker 1 stays at 5 */
	assert_int_equal(supervise_check(&s, c, 3), 1);
	l = next_log();
	assert_non_null(l);
	assert_string_equal(l, "error: supervise: worker is not making "
			       "progress; watchdog pings stop worker=1 "
			       "beats=5\n");
	assert_null(next_log());
	/* Still stuck: no ping, and no second line. */
	c[0] = 4, c[2] = 4;
	assert_int_equal(supervise_check(&s, c, 3), 1);
	assert_null(next_log());
	/* Two stuck: the new one is named, the old one not again. */
	assert_int_equal(supervise_check(&s, c, 3), 3);
	assert_non_null(strstr(next_log(), " worker=0 beats=4\n"));
	assert_non_null(strstr(next_log(), " worker=2 beats=4\n"));
	assert_null(next_log());

	c[0] = 5, c[1] = 6, c[2] = 5;
	assert_int_equal(supervise_check(&s, c, 3), 0);
	for (int i = 0; i < 3; i++) {
		char want[128];

		snprintf(want, sizeof(want),
			 "notice: supervise: worker is making progress again "
			 "worker=%d\n",
			 i);
		l = next_log();
		assert_non_null(l);
		assert_string_equal(l, want);
	}
	assert_null(next_log());
}

static void test_supervise_next_wake(void **state)
{
	struct supervise s = { 0 };

	(void)state;
	assert_int_equal(supervise_next_ns(&s, 1000), -1);
	s.status = true;
	s.next_status = 5000;
	assert_int_equal(supervise_next_ns(&s, 1000), 4000);
	s.ping_ns = 100;
	s.next_ping = 1200;
	assert_int_equal(supervise_next_ns(&s, 1000), 200);
	assert_int_equal(supervise_next_ns(&s, 1300), 0);
	s.status = false;
	s.next_ping = 9000;
	assert_int_equal(supervise_next_ns(&s, 1000), 8000);
}

/* A daemon with two fake workers and no service. */
struct fake {
	struct daemon d;
	struct ringd_conf conf;
	struct worker w[2];
	_Atomic long nconns; /* the process's count, every generation's */
};

static void fake_init(struct fake *f)
{
	memset(f, 0, sizeof(*f));
	f->d.conf = &f->conf;
	f->d.nconns = &f->nconns;
	f->d.workers = f->w;
	f->d.nworkers = 2;
	f->d.backend = LOOP_BACKEND_EPOLL;
}

static void beat(struct fake *f, size_t i)
{
	atomic_fetch_add(&f->w[i].beat.count, 1);
}

static void test_supervise_tick_pings_only_with_progress(void **state)
{
	struct fake f;
	struct supervise *s = &f.d.sup;

	(void)state;
	fake_init(&f);
	assert_int_equal(setenv("WATCHDOG_USEC", "400000", 1), 0);
	unsetenv("WATCHDOG_PID");
	supervise_init(&f.d, 0);
	unsetenv("WATCHDOG_USEC");
	assert_string_equal(next_log(), "info: supervise: watchdog on "
					"interval_ms=400 ping_ms=200\n");
	assert_int_equal(s->ping_ns, 200 * MS);
	assert_int_equal(s->beat_ns, 50 * MS);
	assert_true(s->status);

	/* Not due yet: nothing. */
	beat(&f, 0);
	supervise_tick(&f.d, 199 * MS);
	assert_null(next_notify());
	/* The first due tick pings and takes the counts, although worker 1
	 * has not beaten yet: it may not have run its loop so far. */
	supervise_tick(&f.d, 200 * MS);
	assert_string_equal(next_notify(), "WATCHDOG=1");
	assert_null(next_notify());
	assert_null(next_log());
	assert_int_equal(supervise_next_ns(s, 200 * MS), 200 * MS);
	beat(&f, 0), beat(&f, 1);
	supervise_tick(&f.d, 400 * MS);
	assert_string_equal(next_notify(), "WATCHDOG=1");

	/* Worker 1 stuck: no ping. */
	beat(&f, 0);
	supervise_tick(&f.d, 600 * MS);
	assert_null(next_notify());
	assert_non_null(strstr(next_log(), "worker=1 beats=1\n"));
	/* A wake-up in between (a signal) checks nothing. */
	supervise_tick(&f.d, 700 * MS);
	assert_null(next_notify());
	/* Both beat again: pings resume. */
	beat(&f, 0), beat(&f, 1);
	supervise_tick(&f.d, 800 * MS);
	assert_string_equal(next_notify(), "WATCHDOG=1");
	assert_non_null(strstr(next_log(), "progress again worker=1\n"));
	assert_null(next_log());

	/* A worker stuck from the start is caught at the second check. */
	fake_init(&f);
	assert_int_equal(setenv("WATCHDOG_USEC", "400000", 1), 0);
	supervise_init(&f.d, 0);
	unsetenv("WATCHDOG_USEC");
	assert_non_null(next_log());
	supervise_tick(&f.d, 200 * MS);
	assert_string_equal(next_notify(), "WATCHDOG=1");
	beat(&f, 0);
	supervise_tick(&f.d, 400 * MS);
	assert_null(next_notify());
	assert_non_null(strstr(next_log(), "worker=1 beats=0\n"));
}

static void test_supervise_status_sent_when_changed(void **state)
{
	struct fake f;

	(void)state;
	fake_init(&f);
	unsetenv("WATCHDOG_USEC");
	supervise_init(&f.d, 0);
	assert_null(next_log());
	assert_int_equal(f.d.sup.ping_ns, 0);
	assert_int_equal(f.d.sup.beat_ns, 0);
	assert_int_equal(supervise_next_ns(&f.d.sup, 0), SUPERVISE_STATUS_NS);

	f.conf.nsvc = 3;
	atomic_store(f.d.nconns, 7);
	supervise_tick(&f.d, SUPERVISE_STATUS_NS - 1);
	assert_null(next_notify());
	supervise_tick(&f.d, SUPERVISE_STATUS_NS);
	assert_string_equal(next_notify(), "STATUS=running backend=epoll "
					   "workers=2 services=3 "
					   "connections=7");
	/* Unchanged: nothing. No watchdog: never a ping. */
	supervise_tick(&f.d, 2 * SUPERVISE_STATUS_NS);
	assert_null(next_notify());
	atomic_store(f.d.nconns, 6);
	atomic_store(&f.d.state, RINGD_DRAINING);
	f.d.backend = LOOP_BACKEND_IO_URING;
	supervise_tick(&f.d, 3 * SUPERVISE_STATUS_NS);
	assert_string_equal(next_notify(), "STATUS=draining backend=io_uring "
					   "workers=2 services=3 "
					   "connections=6");
	assert_null(next_notify());

	/* Nobody listening: not sent, so not remembered as sent; the same
	 * text goes out at the next refresh once someone listens. */
	atomic_store(f.d.nconns, 5);
	assert_int_equal(setenv("NOTIFY_SOCKET", "@ringd-test-nobody-here", 1),
			 0);
	supervise_tick(&f.d, 4 * SUPERVISE_STATUS_NS);
	assert_int_equal(setenv("NOTIFY_SOCKET", notify_name, 1), 0);
	assert_null(next_notify());
	supervise_tick(&f.d, 5 * SUPERVISE_STATUS_NS);
	assert_string_equal(next_notify(), "STATUS=draining backend=io_uring "
					   "workers=2 services=3 "
					   "connections=5");

	/* No notify socket: nothing to refresh, main never wakes for it. */
	unsetenv("NOTIFY_SOCKET");
	supervise_init(&f.d, 0);
	assert_int_equal(supervise_next_ns(&f.d.sup, 0), -1);
	assert_int_equal(setenv("NOTIFY_SOCKET", notify_name, 1), 0);
}

static void stop_loop(struct loop_timer *t)
{
	loop_stop(t->data);
}

static void test_supervise_beat_on_a_loop(void **state)
{
	struct loop_params p = { .backend = LOOP_BACKEND_EPOLL };
	struct supervise_beat b = { 0 };
	struct loop_timer stop = { .cb = stop_loop };
	struct loop *l;

	(void)state;
	assert_int_equal(loop_new(&l, &p), 0);
	stop.data = l;
	/* Period 0: no watchdog, no timer. */
	supervise_beat_start(&b, l, 0);
	assert_false(loop_timer_armed(&b.timer));
	supervise_beat_start(&b, l, 1 * MS);
	assert_true(loop_timer_armed(&b.timer));
	loop_timer_set(l, &stop, loop_now(l) + 30 * MS);
	assert_int_equal(loop_run(l), 0);
	assert_true(atomic_load(&b.count) >= 5);
	assert_true(atomic_load(&b.count) <= 31);
	supervise_beat_stop(&b);
	assert_false(loop_timer_armed(&b.timer));
	supervise_beat_stop(&b);
	loop_free(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_supervise_watchdog_env),
		cmocka_unit_test(
			test_supervise_check_names_the_stuck_worker_once),
		cmocka_unit_test(test_supervise_next_wake),
		cmocka_unit_test(test_supervise_tick_pings_only_with_progress),
		cmocka_unit_test(test_supervise_status_sent_when_changed),
		cmocka_unit_test(test_supervise_beat_on_a_loop),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
