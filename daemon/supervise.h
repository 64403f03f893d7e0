/* What systemd (or an operator) sees of a running daemon besides its
 * logs: the watchdog, which pings only while every worker's loop makes
 * progress, a STATUS= line kept current, and the SIGUSR1 summary of the
 * counters. The sd_notify wire format is notify.c's; main decides when
 * to call in here. */
#ifndef RINGD_SUPERVISE_H
#define RINGD_SUPERVISE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop.h"

struct daemon;

/* The most workers the watchdog follows: conf's bound on workers. */
#define SUPERVISE_MAX_WORKERS 256

/* How often STATUS= is refreshed (only sent when its text changed). */
#define SUPERVISE_STATUS_NS (2 * 1000000000LL)

/* A worker's heartbeat, embedded in struct worker: a timer on the
 * worker's own loop that bumps count each period. Only the worker's
 * thread writes count; main reads it. A loop that stops iterating (a
 * plugin hook that blocks, a busy loop) stops the count. */
struct supervise_beat {
	struct loop_timer timer;
	struct loop *loop;
	int64_t period_ns;
	_Atomic uint64_t count;
};

/* Main's side: what systemd asked for and what the last check saw. */
struct supervise {
	int64_t ping_ns;   /* WATCHDOG=1 interval; 0: no watchdog */
	int64_t beat_ns;   /* the workers' heartbeat period; 0: none */
	int64_t next_ping; /* CLOCK_MONOTONIC ns of the next check */
	bool primed;	   /* the first tick took the counts */
	uint64_t seen[SUPERVISE_MAX_WORKERS]; /* counts at the last check */
	bool stalled[SUPERVISE_MAX_WORKERS];  /* logged as stalled */
	bool status; /* NOTIFY_SOCKET is set: keep STATUS= current */
	int64_t next_status;
	char last_status[256];
};

/* CLOCK_MONOTONIC in ns: the clock every now_ns below is on. */
int64_t supervise_now(void);

/* The watchdog interval systemd asks for, from the values of
 * WATCHDOG_USEC and WATCHDOG_PID (NULL when unset): the interval in ns,
 * or 0 when there is no watchdog for this process (unset, not a positive
 * number, or WATCHDOG_PID names another process). */
int64_t supervise_watchdog_ns(const char *usec, const char *pid, pid_t self);

/* Reads the environment into d->sup. Main thread, before the workers
 * start (they take beat_ns from it). Pings every half of the watchdog
 * interval, as sd_watchdog_enabled(3) advises, and beats four times per
 * ping so one late timer never looks like a stall. Logs the watchdog's
 * interval when there is one. */
void supervise_init(struct daemon *d, int64_t now_ns);

/* Worker thread, on its own loop: start and stop its heartbeat. With a
 * period of 0 (no watchdog) start does nothing: no timer at all. */
void supervise_beat_start(struct supervise_beat *b, struct loop *l,
			  int64_t period_ns);
void supervise_beat_stop(struct supervise_beat *b);

/* Compares n heartbeat counts with those seen at the previous check and
 * keeps the new ones. Returns how many did not move (0: all progressed);
 * logs once per stall the worker that stopped (log_err) and once when it
 * moves again (log_notice). */
size_t supervise_check(struct supervise *s, const uint64_t *counts, size_t n);

/* Nanoseconds from now_ns until supervise_tick() has work (0: overdue),
 * or -1 when it never has (no watchdog, no notify socket). */
int64_t supervise_next_ns(const struct supervise *s, int64_t now_ns);

/* Main thread, whenever it wakes (a timeout, any signal), after READY=1:
 * when the ping is due, sends WATCHDOG=1 if every worker's heartbeat
 * moved since the last check and nothing otherwise, so systemd restarts
 * a daemon with a stuck worker (the first due tick only takes the counts
 * and pings); when the refresh is due, sends STATUS= if it changed.
 * Does nothing before it is due. d->workers must be running. */
void supervise_tick(struct daemon *d, int64_t now_ns);

/* The one-line STATUS= text: "running backend=io_uring workers=2
 * services=3 connections=7" ("draining" once a stop began). */
void supervise_status(const struct daemon *d, char *buf, size_t len);

/* SIGUSR1: one log line per service and one for the total with the
 * counters summed over every worker (connections accepted, active,
 * closed, refused; bytes in and out; datagrams in, out, dropped). */
void supervise_summary(const struct daemon *d);

#endif
