/* The watchdog's progress check, the STATUS= refresh and the SIGUSR1
 * summary; the workers' side is one heartbeat timer each. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "supervise.h"
#include "worker.h"

int64_t supervise_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* sd_watchdog_enabled(3)'s rules: a decimal number of microseconds,
 * and when WATCHDOG_PID is set it must be us (a child that inherited the
 * variables must not ping for its parent). */
int64_t supervise_watchdog_ns(const char *usec, const char *pid, pid_t self)
{
	unsigned long long us, p;
	char *end;

	if (usec == NULL || *usec < '0' || *usec > '9')
		return 0;
	errno = 0;
	us = strtoull(usec, &end, 10);
	if (errno || *end != '\0' || us == 0 || us > INT64_MAX / 1000)
		return 0;
	if (pid != NULL) {
		if (*pid < '0' || *pid > '9')
			return 0;
		p = strtoull(pid, &end, 10);
		if (errno || *end != '\0' || p != (unsigned long long)self)
			return 0;
	}
	return (int64_t)us * 1000;
}

void supervise_init(struct daemon *d, int64_t now_ns)
{
	struct supervise *s = &d->sup;
	const char *sock = getenv("NOTIFY_SOCKET");
	int64_t wd = supervise_watchdog_ns(getenv("WATCHDOG_USEC"),
					   getenv("WATCHDOG_PID"), getpid());

	*s = (struct supervise){ .status = sock != NULL && *sock != '\0' };
	s->next_status = now_ns + SUPERVISE_STATUS_NS;
	if (wd == 0)
		return;
	s->ping_ns = wd / 2;
	s->beat_ns = s->ping_ns / 4 > 0 ? s->ping_ns / 4 : 1;
	s->next_ping = now_ns + s->ping_ns;
	log_info("supervise: watchdog on interval_ms=%lld ping_ms=%lld",
		 (long long)(wd / 1000000), (long long)(s->ping_ns / 1000000));
}

static void supervise_beat_fired(struct loop_timer *t)
{
	struct supervise_beat *b = t->data;

	/* The only writer: a load and a store, no read-modify-write. */
	atomic_store_explicit(
		&b->count,
		atomic_load_explicit(&b->count, memory_order_relaxed) + 1,
		memory_order_relaxed);
	loop_timer_set(b->loop, t, loop_now(b->loop) + b->period_ns);
}

void supervise_beat_start(struct supervise_beat *b, struct loop *l,
			  int64_t period_ns)
{
	if (period_ns <= 0)
		return;
	b->loop = l;
	b->period_ns = period_ns;
	b->timer = (struct loop_timer){ .cb = supervise_beat_fired, .data = b };
	loop_timer_set(l, &b->timer, loop_now(l) + period_ns);
}

void supervise_beat_stop(struct supervise_beat *b)
{
	if (b->loop != NULL)
		loop_timer_stop(b->loop, &b->timer);
	b->loop = NULL;
}

size_t supervise_check(struct supervise *s, const uint64_t *counts, size_t n)
{
	size_t stalled = 0;

	if (n > SUPERVISE_MAX_WORKERS)
		n = SUPERVISE_MAX_WORKERS;
	for (size_t i = 0; i < n; i++) {
		bool moved = counts[i] != s->seen[i];

		s->seen[i] = counts[i];
		if (!moved)
			stalled++;
		if (!moved && !s->stalled[i])
			log_err("supervise: worker is not making progress; "
				"watchdog pings stop worker=%zu beats=%" PRIu64,
				i, counts[i]);
		else if (moved && s->stalled[i])
			log_notice("supervise: worker is making progress "
				   "again worker=%zu",
				   i);
		s->stalled[i] = !moved;
	}
	return stalled;
}

int64_t supervise_next_ns(const struct supervise *s, int64_t now_ns)
{
	int64_t next = -1;

	if (s->ping_ns > 0)
		next = s->next_ping;
	if (s->status && (next < 0 || s->next_status < next))
		next = s->next_status;
	if (next < 0)
		return -1;
	return next > now_ns ? next - now_ns : 0;
}

static void supervise_ping(struct daemon *d, int64_t now_ns)
{
	struct supervise *s = &d->sup;
	uint64_t counts[SUPERVISE_MAX_WORKERS];
	size_t n = d->nworkers < SUPERVISE_MAX_WORKERS ? d->nworkers
						       : SUPERVISE_MAX_WORKERS;

	for (size_t i = 0; i < n; i++)
		counts[i] = atomic_load_explicit(&d->workers[i].beat.count,
						 memory_order_relaxed);
	/* A late wake-up (main was busy) must not make the next interval
	 * shorter than a beat period times four. */
	s->next_ping = now_ns + s->ping_ns;
	/* The first tick comes right after READY=1, when a worker that
	 * started last may not have run its loop yet: it only takes the
	 * counts, and the workers are judged from the next one on. */
	if (!s->primed) {
		memcpy(s->seen, counts, n * sizeof(counts[0]));
		s->primed = true;
		notify_send("WATCHDOG=1");
		return;
	}
	if (supervise_check(s, counts, n) == 0)
		notify_send("WATCHDOG=1");
}

void supervise_status(const struct daemon *d, char *buf, size_t len)
{
	snprintf(buf, len,
		 "%s backend=%s workers=%zu services=%zu connections=%ld%s",
		 daemon_state((struct daemon *)d) == RINGD_RUNNING ? "running"
								   : "draining",
		 d->backend == LOOP_BACKEND_IO_URING ? "io_uring" : "epoll",
		 d->nworkers, d->conf->nsvc,
		 atomic_load_explicit(d->nconns, memory_order_relaxed),
		 d->reload_failed ? " last_reload=failed" : "");
}

static void supervise_refresh(struct daemon *d, int64_t now_ns)
{
	struct supervise *s = &d->sup;
	char text[sizeof(s->last_status)], msg[sizeof(text) + 8];

	s->next_status = now_ns + SUPERVISE_STATUS_NS;
	supervise_status(d, text, sizeof(text));
	if (strcmp(text, s->last_status) == 0)
		return;
	snprintf(msg, sizeof(msg), "STATUS=%s", text);
	if (notify_send(msg) == 0)
		memcpy(s->last_status, text, sizeof(text));
}

void supervise_tick(struct daemon *d, int64_t now_ns)
{
	struct supervise *s = &d->sup;

	if (s->ping_ns > 0 && now_ns >= s->next_ping)
		supervise_ping(d, now_ns);
	if (s->status && now_ns >= s->next_status)
		supervise_refresh(d, now_ns);
}

/* what: "svc=NAME" or "in total". Notice, not info: an operator who
 * sends the signal wants the answer at any log_level but error and
 * warning. */
static void supervise_log_total(const char *what, const struct metrics_total *t)
{
	uint64_t active = t->accepted > t->closed ? t->accepted - t->closed : 0;

	log_notice("ringd: counters %s accepted=%" PRIu64 " active=%" PRIu64
		   " closed=%" PRIu64 " refused=%" PRIu64 " bytes_in=%" PRIu64
		   " bytes_out=%" PRIu64 " datagrams_in=%" PRIu64
		   " datagrams_out=%" PRIu64 " datagrams_dropped=%" PRIu64,
		   what, t->accepted, active, t->closed, t->refused,
		   t->bytes_in, t->bytes_out, t->dgram_in, t->dgram_out,
		   t->dgram_dropped);
}

void supervise_summary(const struct daemon *d)
{
	struct metrics_total all = { 0 }, one;
	char what[160];

	_Static_assert(sizeof(one) % sizeof(uint64_t) == 0,
		       "struct metrics_total is counters only");
	for (size_t s = 0; s < d->conf->nsvc; s++) {
		metrics_total_of(d, s, &one);
		snprintf(what, sizeof(what), "svc=%s", d->svc[s].sc->name);
		supervise_log_total(what, &one);
		for (size_t k = 0; k < sizeof(one) / sizeof(uint64_t); k++)
			((uint64_t *)&all)[k] += ((const uint64_t *)&one)[k];
	}
	supervise_log_total("in total", &all);
}
