/* Per-worker admission. Every connection this worker serves comes through
 * here: from the loop's multishot accept, from the holding queue, or from
 * a stop taking what the kernel had queued. The daemon-wide count of open
 * connections is raised and lowered only in this file. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accept.h"
#include "cidr.h"
#include "conn.h"
#include "daemon.h"
#include "listen.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "srclimit.h"

/* Pause lines: at most one per listener per interval, with a count. */
#define ACCEPT_PAUSE_LOG_NS (10LL * 1000000000)

struct accept_peer {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct accept_held {
	int fd;
	const struct ringd_instance *inst;
	struct accept_peer peer;
};

struct accept_listener {
	struct loop_op op;
	struct accept_set *a;
	const struct ringd_instance *inst;
	const struct listener *l;
	int fd;
	bool armed, paused;
	bool lent; /* stopping, and the socket is another generation's */
	struct loop_timer retry;
	struct log_limit pause_log;
};

struct accept_set {
	struct daemon *d;
	size_t worker;
	struct loop *loop;
	struct conn_set *conns;
	accept_idle_fn idle;
	void *idle_arg;

	struct accept_listener *ls;
	size_t nls, capls;

	struct accept_held waiting[ACCEPT_MAX_WAITING];
	size_t nwaiting;
	bool serving;   /* inside accept_serve_waiting() */
	bool stopping;
	bool in_grace;  /* stopping, listeners not yet shut down */
	struct loop_timer grace_timer;

	/* Per service: refusals not yet in a log line, and when the last
	 * line went out. */
	uint64_t *unlogged;
	int64_t *last_refusal_log;
};

static const char *const accept_refusal_names[ACCEPT_REFUSED_N] = {
	[ACCEPT_REFUSED_DENY] = "deny",
	[ACCEPT_REFUSED_NOT_ALLOWED] = "not_allowed",
	[ACCEPT_REFUSED_PER_SOURCE] = "max_connections_per_source",
	[ACCEPT_REFUSED_LIMIT] = "max_connections",
	[ACCEPT_REFUSED_EMFILE] = "no_fds",
};

_Static_assert(ACCEPT_REFUSED_N == METRICS_REFUSED_N, "metrics.h sizes");

static void accept_count(const struct accept_set *a,
			 const struct ringd_instance *inst,
			 const struct listener *l, int why)
{
	struct metrics_stream *ctr = metrics_stream_of(
		a->conns->metrics, inst->idx,
		l->addr.kind == LISTEN_UNIX ? METRICS_UNIX : METRICS_TCP);

	if (ctr != NULL)
		metrics_add(&ctr->refused[why], 1);
}

static void accept_pause(struct accept_listener *al, const char *why);

static bool accept_full(const struct accept_set *a)
{
	return atomic_load_explicit(a->d->nconns, memory_order_relaxed) >=
	       (long)a->d->conf->max_connections;
}

static void accept_arm(struct accept_listener *al)
{
	struct accept_set *a = al->a;

	/* The state check covers the moment between main shutting the
	 * listeners down and this worker hearing of the stop. */
	if (al->armed || al->paused || a->stopping ||
	    atomic_load(&a->d->stopping))
		return;
	/* At the limit, clients wait in the kernel's backlog instead of
	 * being accepted only to be closed. */
	if (accept_full(a)) {
		accept_pause(al, "max_connections reached");
		return;
	}
	al->armed = true;
	loop_accept(a->loop, &al->op, al->fd);
}

static void accept_serve_waiting(struct accept_set *a, bool force);

/* A slot another worker freed is seen only here: this worker's held
 * connections are served first, or later clients would overtake them. */
static void accept_retry_fired(struct loop_timer *t)
{
	struct accept_listener *al = t->data;

	accept_serve_waiting(al->a, false);
	al->paused = false;
	accept_arm(al);
}

static void accept_pause(struct accept_listener *al, const char *why)
{
	struct accept_set *a = al->a;
	int64_t now = loop_now(a->loop);
	char text[160], addr[LOG_VALUE_MAX], reason[LOG_VALUE_MAX];
	uint64_t held;

	if (al->paused)
		return;
	al->paused = true;
	if (al->armed)
		loop_cancel(a->loop, &al->op);
	loop_timer_set(a->loop, &al->retry, now + ACCEPT_RETRY_NS);
	if (!log_limit_take(&al->pause_log, now, ACCEPT_PAUSE_LOG_NS, &held))
		return;
	listen_addr_format(&al->l->addr, text, sizeof(text));
	log_warnx("accept: paused svc=%s addr=%s reason=%s suppressed=%llu",
		  al->inst->sc->name,
		  log_value(addr, sizeof(addr), text),
		  log_value(reason, sizeof(reason), why),
		  (unsigned long long)held);
}

static void accept_resume(struct accept_set *a)
{
	size_t i;

	for (i = 0; i < a->nls; i++) {
		if (!a->ls[i].paused)
			continue;
		loop_timer_stop(a->loop, &a->ls[i].retry);
		a->ls[i].paused = false;
		accept_arm(&a->ls[i]);
	}
}

static bool accept_take_slot(struct accept_set *a)
{
	long max = (long)a->d->conf->max_connections;

	if (atomic_fetch_add_explicit(a->d->nconns, 1, memory_order_relaxed) <
	    max)
		return true;
	atomic_fetch_sub_explicit(a->d->nconns, 1, memory_order_relaxed);
	return false;
}

static void accept_source_put(struct accept_set *a,
			      const struct ringd_instance *inst,
			      const struct sockaddr *peer)
{
	if (inst->sc->max_per_source > 0)
		srclimit_put(a->d->srclimit, inst->idx, peer);
}

/* What a connection held, given back when it is gone or never opened. */
static void accept_release(struct accept_set *a,
			   const struct ringd_instance *inst,
			   const struct sockaddr *peer)
{
	atomic_fetch_sub_explicit(a->d->nconns, 1, memory_order_relaxed);
	accept_source_put(a, inst, peer);
}

/* The slot is taken: hand the fd to conns. */
static void accept_open(struct accept_set *a, const struct ringd_instance *inst,
			int fd, const struct accept_peer *p)
{
	if (conn_open(a->conns, inst, fd, (const struct sockaddr *)&p->ss,
		      p->len) < 0)
		accept_release(a, inst, (const struct sockaddr *)&p->ss);
}

/* On a stop, every connection the kernel completed is served, even past
 * max_connections: its client may have sent a request, and closing it
 * would reset it. The listen backlog and the holding queue bound how many
 * there can be. */
static void accept_open_in_flight(struct accept_set *a,
				  const struct ringd_instance *inst, int fd,
				  const struct accept_peer *p)
{
	atomic_fetch_add_explicit(a->d->nconns, 1, memory_order_relaxed);
	accept_open(a, inst, fd, p);
}

/* -errno when the peer is unknown: on TCP, a client that reset right
 * after its handshake (ENOTCONN). Nothing could be checked or served. */
static int accept_peer_of(int fd, struct accept_peer *p)
{
	p->len = sizeof(p->ss);
	if (getpeername(fd, (struct sockaddr *)&p->ss, &p->len) == 0)
		return 0;
	p->len = 0;
	p->ss.ss_family = AF_UNSPEC;
	return -errno;
}

static void accept_hold(struct accept_listener *al, int fd,
			const struct accept_peer *p)
{
	struct accept_set *a = al->a;

	if (a->nwaiting < ACCEPT_MAX_WAITING) {
		a->waiting[a->nwaiting++] = (struct accept_held){
			.fd = fd, .inst = al->inst, .peer = *p };
	} else {
		close(fd);
		accept_source_put(a, al->inst,
				  (const struct sockaddr *)&p->ss);
		accept_count(a, al->inst, al->l, ACCEPT_REFUSED_LIMIT);
	}
	accept_pause(al, "max_connections reached");
}

/* Held connections go first when a slot frees; all of them on a stop.
 * Each leaves the queue before it is opened: a plugin that refuses it in
 * on_open makes conn_open() call back into accept_conn_gone(), which
 * comes here again. That inner call returns at once and this loop takes
 * the slot it freed, so no fd is opened twice and nothing recurses. */
static void accept_serve_waiting(struct accept_set *a, bool force)
{
	struct accept_held h;

	if (a->serving)
		return;
	a->serving = true;
	while (a->nwaiting && (force || accept_take_slot(a))) {
		h = a->waiting[0];
		memmove(&a->waiting[0], &a->waiting[1],
			(a->nwaiting - 1) * sizeof(a->waiting[0]));
		a->nwaiting--;
		if (force)
			accept_open_in_flight(a, h.inst, h.fd, &h.peer);
		else
			accept_open(a, h.inst, h.fd, &h.peer);
	}
	a->serving = false;
}

int accept_access(const struct service_conf *sc, const struct sockaddr *sa)
{
	if (cidr_list_match(&sc->deny, sa))
		return ACCEPT_REFUSED_DENY;
	if (sc->allow.n && !cidr_list_match(&sc->allow, sa))
		return ACCEPT_REFUSED_NOT_ALLOWED;
	return -1;
}

static bool accept_is_ip(const struct accept_peer *p)
{
	return p->len && (p->ss.ss_family == AF_INET ||
			  p->ss.ss_family == AF_INET6);
}

/* -1 to admit, else why not. An admitted connection from a service with
 * a per-source limit has been counted: accept_release() gives it back.
 * unix: clients are governed by the socket file's mode instead. */
static int accept_check(struct accept_set *a, const struct ringd_instance *inst,
			const struct accept_peer *p)
{
	const struct service_conf *sc = inst->sc;
	const struct sockaddr *sa = (const struct sockaddr *)&p->ss;

	int why;

	if (!accept_is_ip(p))
		return -1;
	why = accept_access(sc, sa);
	if (why >= 0)
		return why;
	if (sc->max_per_source > 0 &&
	    !srclimit_take(a->d->srclimit, inst->idx, sa,
			   (uint32_t)sc->max_per_source))
		return ACCEPT_REFUSED_PER_SOURCE;
	return -1;
}

/* A scan from many addresses must not become a flood of log lines: one
 * line per service per interval, with what was refused since the last
 * one and the peer that brought the line about. */
static void accept_log_refusal(struct accept_set *a,
			       const struct ringd_instance *inst,
			       const struct accept_peer *p)
{
	uint64_t *unlogged = &a->unlogged[inst->idx * ACCEPT_REFUSED_N];
	int64_t *last = &a->last_refusal_log[inst->idx];
	int64_t now = loop_now(a->loop);
	char counts[160], peer[LOG_ADDR_MAX];

	if (*last && now - *last < ACCEPT_REFUSAL_LOG_NS)
		return;
	*last = now;
	log_notice("accept: refused connections%s svc=%s peer=%s worker=%zu",
		   log_counts(counts, sizeof(counts), accept_refusal_names,
			      unlogged, ACCEPT_REFUSED_N),
		   inst->sc->name,
		   log_addr((const struct sockaddr *)&p->ss, peer,
			    sizeof(peer)),
		   a->worker);
}

/* Closed with a reset: the client learns at once that it was refused, and
 * no TIME_WAIT is left on our side for a connection nobody served. */
static void accept_refuse(struct accept_listener *al, int fd,
			  const struct accept_peer *p, int why)
{
	struct accept_set *a = al->a;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	accept_count(a, al->inst, al->l, why);
	a->unlogged[al->inst->idx * ACCEPT_REFUSED_N + (size_t)why]++;
	accept_log_refusal(a, al->inst, p);
}

static void accept_new_fd(struct accept_listener *al, int fd)
{
	struct accept_set *a = al->a;
	struct accept_peer p;
	int why;

	if (accept_peer_of(fd, &p) < 0) {
		close(fd);
		return;
	}
	why = accept_check(a, al->inst, &p);
	if (why >= 0) {
		accept_refuse(al, fd, &p, why);
	} else if (a->stopping) {
		/* Accepted as the stop began: in flight, then drained. */
		accept_open_in_flight(a, al->inst, fd, &p);
	} else if (!accept_take_slot(a)) {
		accept_hold(al, fd, &p);
	} else {
		accept_open(a, al->inst, fd, &p);
		if (accept_full(a))
			accept_pause(al, "max_connections reached");
	}
}

static void accept_check_idle(struct accept_set *a)
{
	if (a->stopping && (accept_idle(a) || accept_quiet(a)))
		a->idle(a->idle_arg);
}

static void accept_drain_backlog(struct accept_listener *al);

/* A socket handed to the next generation, once this worker's accept on
 * it has ended. Both engines wait on a listener exclusively: a
 * connection whose wakeup came to this worker wakes no other, so it is
 * taken here (and served) or it would wait for the next client. The
 * registration goes first, so no later wakeup comes here. */
static void accept_let_go(struct accept_listener *al)
{
	loop_forget(al->a->loop, al->fd);
	accept_drain_backlog(al);
}

static void accept_done(struct loop_op *op, int res, unsigned flags,
			void *buf)
{
	struct accept_listener *al = op->data;
	struct accept_set *a = al->a;

	if (!(flags & LOOP_F_MORE))
		al->armed = false;
	if (res >= 0) {
		accept_new_fd(al, res);
	} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS ||
		   res == -ENOMEM) {
		accept_count(a, al->inst, al->l, ACCEPT_REFUSED_EMFILE);
		accept_pause(al, strerror(-res));
	} else if (!a->stopping && res != -ECANCELED &&
		   !(flags & LOOP_F_MORE)) {
		/* An error that ended the accept and that the loop does not
		 * call transient could repeat at once: retry on the timer. */
		accept_pause(al, strerror(-res));
	}
	if (a->stopping && al->lent && !al->armed)
		accept_let_go(al);
	if (a->stopping)
		accept_check_idle(a);
	else
		accept_arm(al);
}

void accept_conn_gone(struct accept_set *a, const struct ringd_instance *inst,
		      const struct sockaddr *peer)
{
	accept_release(a, inst, peer);
	if (a->stopping)
		return;
	accept_serve_waiting(a, false);
	accept_resume(a);
}

/* Takes everything queued on a stopping listener. */
static void accept_drain_backlog(struct accept_listener *al)
{
	struct accept_set *a = al->a;
	struct accept_peer p;
	int fd, why;

	for (;;) {
		fd = accept4(al->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0)
			break;
		if (accept_peer_of(fd, &p) < 0) {
			close(fd);
			continue;
		}
		why = accept_check(a, al->inst, &p);
		if (why >= 0)
			accept_refuse(al, fd, &p, why);
		else
			accept_open_in_flight(a, al->inst, fd, &p);
	}
	/* EINVAL: another worker already shut this shared listener down. */
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINVAL)
		log_warn("accept: stop: clients still queued will be reset "
			 "svc=%s", al->inst->sc->name);
}

/* Once per stop, for every listener and worker. EPERM is what a
 * process without CAP_NET_ADMIN gets on some kernels, the shipped unit's
 * case: nothing is broken, so a notice that says what avoids it. */
static void accept_log_no_filter(const struct accept_listener *al, int err)
{
	char ebuf[LOG_VALUE_MAX];

	log_value(ebuf, sizeof(ebuf), strerror(-err));
	if (err == -EPERM)
		log_notice("accept: stop: cannot filter SYNs on the listeners, "
			   "so a client that connects during the stop may be "
			   "reset; socket activation (ringd.socket) avoids it "
			   "svc=%s error=%s",
			   al->inst->sc->name, ebuf);
	else
		log_warnx("accept: stop: cannot filter SYNs; a client that "
			  "connects during the stop may be reset svc=%s "
			  "error=%s",
			  al->inst->sc->name, ebuf);
}

/* No more accepts from the loop, new SYNs dropped, what is queued taken
 * now. A TCP client whose SYN came in before the filter may finish its
 * handshake up to a round trip later: the grace takes those. An
 * inherited socket stays open in systemd (or whoever passed it) for the
 * next ringd, so it gets no filter, which would drop SYNs after we are
 * gone: what is queued now is ours to serve, what comes later the next
 * one's. A socket handed to the next generation (a reload) keeps
 * listening: its queue and every later client are that generation's. */
static void accept_quiesce_listener(struct accept_listener *al)
{
	struct accept_set *a = al->a;
	int err;

	al->lent = listen_fd_lent(al->l, a->worker);
	loop_timer_stop(a->loop, &al->retry);
	if (al->armed)
		loop_cancel(a->loop, &al->op);
	if (al->lent) {
		if (!al->armed)
			accept_let_go(al);
		return;
	}
	if (al->l->addr.kind == LISTEN_TCP && !al->l->inherited &&
	    (err = listen_refuse_new(al->fd)) < 0 &&
	    !atomic_exchange(&a->d->syn_filter_failed, 1))
		accept_log_no_filter(al, err);
	accept_drain_backlog(al);
}

/* End of the grace: take the last handshakes, then stop listening, so
 * later clients are refused at once instead of waiting in a backlog
 * nobody accepts from. The listener may be shared: shutting it down is
 * idempotent. */
static void accept_grace_fired(struct loop_timer *t)
{
	struct accept_set *a = t->data;
	size_t i;

	for (i = 0; i < a->nls; i++) {
		/* shutdown() would end the socket for its other holders,
		 * and what queued since the stop began is the next one's. */
		if (a->ls[i].lent || a->ls[i].l->inherited)
			continue;
		accept_drain_backlog(&a->ls[i]);
		shutdown(a->ls[i].fd, SHUT_RDWR);
	}
	a->in_grace = false;
	accept_check_idle(a);
}

void accept_quiesce(struct accept_set *a, int64_t grace_ns)
{
	size_t i;

	/* Busy from here: a held connection refused in on_open makes the
	 * owner ask accept_idle() before the listeners are even filtered. */
	a->stopping = true;
	a->in_grace = true;
	accept_serve_waiting(a, true);
	for (i = 0; i < a->nls; i++)
		accept_quiesce_listener(&a->ls[i]);
	if (!a->nls) {
		a->in_grace = false;
		return;
	}
	loop_timer_set(a->loop, &a->grace_timer, loop_now(a->loop) + grace_ns);
}

bool accept_quiet(const struct accept_set *a)
{
	for (size_t i = 0; i < a->nls; i++)
		if (a->ls[i].armed)
			return false;
	return a->stopping;
}

bool accept_idle(const struct accept_set *a)
{
	size_t i;

	if (a->in_grace)
		return false;
	for (i = 0; i < a->nls; i++)
		if (a->ls[i].armed)
			return false;
	return true;
}

int accept_add(struct accept_set *a, const struct listener *l)
{
	struct accept_listener *al;

	/* Listeners are added before the loop runs, and ops and timers
	 * point into the array, so it never moves afterwards. */
	if (a->nls == a->capls)
		return -ENOMEM;
	al = &a->ls[a->nls++];
	*al = (struct accept_listener){
		.op = { .cb = accept_done, .data = al },
		.a = a, .inst = &a->d->svc[l->svc], .l = l,
		.fd = listen_fd_for(l, a->worker),
		.retry = { .cb = accept_retry_fired, .data = al },
	};
	accept_arm(al);
	return 0;
}

struct accept_set *accept_new(struct daemon *d, size_t worker, struct loop *l,
			      struct conn_set *conns, accept_idle_fn idle,
			      void *idle_arg)
{
	struct accept_set *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->ls = calloc(d->nlisteners + 1, sizeof(*a->ls));
	a->unlogged = calloc(d->conf->nsvc + 1,
			     ACCEPT_REFUSED_N * sizeof(*a->unlogged));
	a->last_refusal_log = calloc(d->conf->nsvc + 1,
				     sizeof(*a->last_refusal_log));
	if (!a->ls || !a->unlogged || !a->last_refusal_log) {
		accept_free(a);
		return NULL;
	}
	a->capls = d->nlisteners;
	a->d = d;
	a->worker = worker;
	a->loop = l;
	a->conns = conns;
	a->idle = idle;
	a->idle_arg = idle_arg;
	a->grace_timer = (struct loop_timer){ .cb = accept_grace_fired,
					      .data = a };
	return a;
}

void accept_free(struct accept_set *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->nwaiting; i++) {
		close(a->waiting[i].fd);
		accept_source_put(a, a->waiting[i].inst,
				  (const struct sockaddr *)&a->waiting[i].peer.ss);
	}
	for (i = 0; i < a->nls; i++)
		loop_timer_stop(a->loop, &a->ls[i].retry);
	loop_timer_stop(a->loop, &a->grace_timer);
	free(a->ls);
	free(a->unlogged);
	free(a->last_refusal_log);
	free(a);
}
