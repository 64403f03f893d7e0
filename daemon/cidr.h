/* Address prefixes (CIDR) as allow/deny lists hold them: parsing one
 * prefix and matching a socket address against a list. Which list
 * applies and what a match means is admission's business (accept.c). */
#ifndef RINGD_CIDR_H
#define RINGD_CIDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cidr {
	uint8_t family;   /* AF_INET or AF_INET6 */
	uint8_t len;      /* prefix bits */
	uint8_t addr[16]; /* network order, host bits zeroed */
};

struct cidr_list {
	struct cidr *v; /* malloc()ed, n entries; NULL when n is 0 */
	size_t n;
};

/* Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a /32 or
 * /128). A v4-mapped prefix (::ffff:192.0.2.0/120) is stored as the IPv4
 * prefix it covers (192.0.2.0/24). Host bits set past the length
 * (10.0.0.1/8) are refused, not zeroed: the text most likely means
 * something else. Numeric addresses only, no host names.
 * Returns 0, or -EINVAL with *why set to a static message for the error
 * text (lowercase, without the item: the caller quotes it). */
int cidr_parse(const char *text, struct cidr *out, const char **why);

/* True when sa (AF_INET or AF_INET6; a v4-mapped IPv6 address is matched
 * as IPv4) is inside any prefix of l. Other families never match; l may
 * be NULL or empty (nothing matches). */
bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa);

/* Frees l->v and leaves l empty; l may be NULL. */
void cidr_list_free(struct cidr_list *l);

#endif
