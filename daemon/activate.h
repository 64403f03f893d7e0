/* Socket activation: the sd_listen_fds protocol (LISTEN_PID, LISTEN_FDS,
 * LISTEN_FDNAMES; fds from 3 on) written out here rather than linking
 * libsystemd, and the rules that match an inherited socket to a `listen =`
 * entry. Opening what nothing inherited, and the stop, are listen.c's. */
#ifndef RINGD_ACTIVATE_H
#define RINGD_ACTIVATE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "listen_addr.h"

#define ACTIVATE_FDS_START 3
/* More would be a broken environment, not a socket unit. */
#define ACTIVATE_MAX_FDS 4096
/* systemd refuses longer FileDescriptorName= values. */
#define ACTIVATE_MAX_NAME 255

/* One inherited descriptor and what the kernel says it is. */
struct activate_sock {
	int fd;      /* -1 once a listener took it over */
	char *name;  /* its LISTEN_FDNAMES entry; "" when none was given */
	bool claimed;
	int err;     /* 0, or the -errno that kept it from being examined
			(-ENOTSOCK: a FIFO or a file) */
	int family, type, protocol;
	bool listening; /* SO_ACCEPTCONN */
	bool v6only;
	struct sockaddr_storage ss; /* getsockname() */
	socklen_t sslen;
};

struct activate_set {
	struct activate_sock *socks;
	size_t n;
};

enum activate_env {
	ACTIVATE_NONE,     /* no LISTEN_FDS, or LISTEN_FDS=0 */
	ACTIVATE_OURS,     /* out holds the fds and their names */
	ACTIVATE_NOT_OURS, /* LISTEN_PID names another process */
};

/* The three variables as given (NULL: unset) for process self, whose
 * fds start at first; touches no descriptor: socks[].fd and .name are
 * set, nothing is examined.
 * Returns an enum activate_env, or -1 with a reason in err when a value
 * is malformed or LISTEN_FDNAMES does not have one name per fd. */
int activate_parse(const char *pid, const char *fds, const char *names,
		   pid_t self, int first, struct activate_set *out, char *err,
		   size_t errlen);

/* Read and unset LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES (so nothing
 * this process runs inherits them), mark the fds FD_CLOEXEC and examine
 * them; fds start at first (ACTIVATE_FDS_START but in tests). Call
 * before any thread starts: it changes the environment. Returns 0 (an
 * empty set without activation, or when the fds are another process's:
 * logged) or -1 after logging why the environment is unusable (a bad
 * value, an fd that is not open). */
int activate_take_at(struct activate_set *out, int first);
int activate_take(struct activate_set *out);

/* Fill in what the kernel says about s->fd. */
void activate_examine(struct activate_sock *s);

/* Whether inherited s can serve address a of service svc: the same kind
 * (TCP: a listening inet stream socket; UDP: an inet datagram socket;
 * unix: a listening AF_UNIX stream socket at the same path), the exact
 * address and port, and a wildcard only for a wildcard ("*" is [::] that
 * also takes IPv4, or 0.0.0.0; "[::]" is [::] with IPV6_V6ONLY). A
 * name that is a service's section name reserves the socket for that
 * service; "" and the names systemd gives by default ("unknown", a unit
 * name ending in ".socket") and "ringd" reserve it for nobody. */
bool activate_matches(const struct activate_sock *s, const char *svc,
		      const struct listen_addr *a);
/* Whether name leaves a socket to be matched by address alone. */
bool activate_name_is_anonymous(const char *name);

/* The first unclaimed socket in set that matches, now claimed; NULL if
 * none. set may be NULL (no activation). */
struct activate_sock *activate_claim(struct activate_set *set, const char *svc,
				     const struct listen_addr *a);

/* Set a claimed socket's fd up as our own listeners are (non-blocking,
 * TCP_NODELAY, packet info on a wildcard UDP socket) for address a, the
 * socket's own; 0 or -errno. */
int activate_prepare(int fd, const struct listen_addr *a);

/* One error line for every socket nobody claimed, naming its fd, name
 * and address, and closes our copy. Returns how many there were. */
size_t activate_report_unclaimed(struct activate_set *set);

/* Closes the fds still held, frees the names; set may be NULL. */
void activate_free(struct activate_set *set);

/* The socket's address as a listen address ("tcp://127.0.0.1:7",
 * "udp://[::]:7", "unix:/run/x"), or why it has none. */
void activate_describe(const struct activate_sock *s, char *buf, size_t len);

#endif
