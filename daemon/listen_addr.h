/* Listen addresses as written in the configuration (tcp://, udp://,
 * unix:): parsing and the canonical text. Binding them is listen.c's. */
#ifndef RINGD_LISTEN_ADDR_H
#define RINGD_LISTEN_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

enum listen_kind { LISTEN_TCP, LISTEN_UDP, LISTEN_UNIX };

/* One parsed listen address. */
struct listen_addr {
	enum listen_kind kind;
	bool any; /* "*": [::] with IPV6_V6ONLY off (0.0.0.0 without IPv6) */
	struct sockaddr_storage ss; /* TCP/UDP; port 0 = ephemeral */
	socklen_t sslen;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* UNIX */
};

/* "tcp://127.0.0.1:7", "udp://[::1]:7", "unix:/run/x", and a host of
 * "*" (tcp:// then *:7007) for every address. Hosts are numeric only. Returns
 * 0 with *out filled, or -1 with a lowercase reason in err (no location:
 * the caller adds it). */
int listen_addr_parse(const char *s, struct listen_addr *out, char *err,
		      size_t errlen);
/* Called for each address of a listen value: a parsed (not NULL, why
 * NULL) or refused (a NULL, why the reason). Non-zero stops the walk. */
typedef int (*listen_addr_fn)(const struct listen_addr *a, const char *why,
			      void *arg);
/* Splits a listen value into addresses (separated by commas, blanks or
 * the line breaks of a continued value) and parses each for fn. Returns
 * how many it handed over (0: the value names none), or -ENOMEM. */
int listen_addr_each(const char *text, listen_addr_fn fn, void *arg);
/* Back to the canonical text, with the real port once bound. */
void listen_addr_format(const struct listen_addr *a, char *buf, size_t len);
/* Whether a and b, both as parsed (not bound), ask for the same socket:
 * what a reload compares to keep a listener instead of rebinding it. */
bool listen_addr_same(const struct listen_addr *a, const struct listen_addr *b);

#endif
