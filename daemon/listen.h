/* Listening sockets, opened by main before any worker starts so that a
 * port in use or a refused bind is a start-up error naming the service and
 * address. TCP listeners are one shared socket (every worker arms a
 * multishot accept on it) or, with reuseport, one SO_REUSEPORT socket per
 * worker; a socket passed by socket activation is always one shared
 * socket. UDP sockets are served by worker 0 alone, so per-source limits
 * need no locks. */
#ifndef RINGD_LISTEN_H
#define RINGD_LISTEN_H

#include <stdbool.h>
#include <stddef.h>

#include "listen_addr.h"

struct daemon;

struct listener {
	size_t svc;             /* index into d->svc */
	struct listen_addr addr; /* with the bound port filled in */
	struct listen_addr asked; /* as configured: what a reload compares */
	int *fds;               /* nfds sockets; several only for reuseport */
	size_t nfds;
	/* fds[0..nlent) belong to another generation of the daemon (lent
	 * by the running one while a reload builds this one, or handed to
	 * the next after it): this one never filters, shuts down, closes
	 * or unlinks them. */
	size_t nlent;
	struct listener *from;  /* the lender, until listen_hand_over() */
	bool unlink_path;       /* we created addr.path */
	/* Passed by socket activation (activate.h): its owner keeps a copy
	 * and the next ringd takes it over, so a stop takes only what is
	 * queued when it begins and leaves the socket as it is (no SYN
	 * filter, no shutdown, no unlink), closing only our fd. One fd,
	 * even with reuseport. */
	bool inherited;
};

/* Open every listener of every service: a socket of d->activation that
 * matches (activate_claim()) is taken over, any other is bound; the
 * inherited sockets nobody claimed are then logged and closed. On failure
 * logs one line naming the service, the step and the address ("echo: bind
 * failed ... addr=tcp://127.0.0.1:7 error=..."), closes what was opened and
 * returns -errno. A socket option the listener needs (SO_REUSEPORT,
 * IPV6_V6ONLY, the packet info of a wildcard UDP socket) fails it like
 * a bind, the step being "setsockopt NAME"; a tuning that fails
 * (SO_REUSEADDR, TCP_NODELAY, TCP_DEFER_ACCEPT) is a warning, once per
 * listener, and the listener opens. */
int listen_open_all(struct daemon *d);
/* The same for a reload: a listener whose configured address equals one
 * of old's takes over old's socket(s) (no close, no rebind, no gap), and
 * only the others are bound. old keeps owning what it lent until
 * listen_hand_over(). On failure the line also goes to err (for STATUS),
 * and only the sockets opened here are closed. */
int listen_open_next(struct daemon *d, struct daemon *old, char *err,
		     size_t errlen);
/* The reload is committed: what old lent to d is d's now, and old
 * (which is about to stop) leaves those sockets and files alone. */
void listen_hand_over(struct daemon *d);
/* First step of a stop: unix socket files go, so new clients find no
 * socket; the workers then shut the listeners down themselves after
 * taking what the kernel had already accepted. */
void listen_stop_all(struct daemon *d);
void listen_close_all(struct daemon *d);

/* Make a TCP listener drop new SYNs while handshakes already under way
 * still complete, so a stopping worker can keep taking those for a grace
 * period and then shut the listener down without resetting clients that
 * connected in the meantime. A dropped client retransmits its SYN (after
 * 1 s on Linux), finds no listener and is refused. Returns 0 or -errno;
 * on failure the stop goes on without the filter and logs why. */
int listen_refuse_new(int fd);

/* The fd worker w uses for listener l. */
int listen_fd_for(const struct listener *l, size_t worker);
/* Whether that fd is another generation's (see nlent): a stop then only
 * stops accepting on it. */
bool listen_fd_lent(const struct listener *l, size_t worker);

/* "echo:tcp://127.0.0.1:7007,echo:udp://..." for STATUS and logs. */
void listen_describe(const struct daemon *d, char *buf, size_t len);

#endif
