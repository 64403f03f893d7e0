/* CIDR prefixes: parsed with inet_pton() (numeric only, so no lookup can
 * block or change what a rule means) and compared bit by bit. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0,
					     0, 0, 0, 0, 0xff, 0xff };

/* Reads the length after '/': decimal digits and nothing after them. */
static int prefix_len_parse(const char *s, unsigned max, unsigned *out,
			    const char **why)
{
	unsigned v = 0;
	size_t n = 0;

	/* Saturates, so any run of digits past max is simply too long. */
	for (; s[n] >= '0' && s[n] <= '9'; n++)
		v = v > 1000 ? v : v * 10 + (unsigned)(s[n] - '0');
	if (n == 0) {
		*why = s[0] == '\0' ? "missing prefix length after '/'" :
				      "prefix length is not a number";
		return -EINVAL;
	}
	if (s[n] != '\0') {
		*why = "unexpected text after the prefix length";
		return -EINVAL;
	}
	if (v > max) {
		*why = max == 32 ? "prefix length past 32 for IPv4" :
				   "prefix length past 128 for IPv6";
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Bits of addr past len are all zero. */
static bool host_bits_clear(const uint8_t *addr, unsigned len, size_t size)
{
	for (size_t i = len / 8; i < size; i++) {
		uint8_t keep =
			i == len / 8 ? (uint8_t)(0xff00 >> (len % 8)) : 0;

		if (addr[i] & ~keep)
			return false;
	}
	return true;
}

/* The address before the '/', as AF_INET or AF_INET6. */
static int addr_parse(const char *s, size_t len, struct cidr *out,
		      const char **why)
{
	char buf[INET6_ADDRSTRLEN];

	if (len == 0) {
		*why = "missing address before '/'";
		return -EINVAL;
	}
	if (len < sizeof(buf)) {
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (inet_pton(AF_INET, buf, out->addr) == 1) {
			out->family = AF_INET;
			return 0;
		}
		if (inet_pton(AF_INET6, buf, out->addr) == 1) {
			out->family = AF_INET6;
			return 0;
		}
	}
	*why = "not an IPv4 or IPv6 address (host names are not accepted)";
	return -EINVAL;
}

int cidr_parse(const char *text, struct cidr *out, const char **why)
{
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	struct cidr c = { 0 };
	unsigned max, len;

	if (text[0] == '\0') {
		*why = "empty prefix";
		return -EINVAL;
	}
	if (addr_parse(text, alen, &c, why) < 0)
		return -EINVAL;
	max = c.family == AF_INET ? 32 : 128;
	len = max;
	if (slash != NULL && prefix_len_parse(slash + 1, max, &len, why) < 0)
		return -EINVAL;
	if (!host_bits_clear(c.addr, len, max / 8)) {
		*why = "host bits set past the prefix length (write the "
		       "network address)";
		return -EINVAL;
	}
	/* A v4-mapped peer is matched as IPv4, so a v4-mapped prefix is
	 * stored as the IPv4 prefix it covers. */
	if (c.family == AF_INET6 && len >= 96 &&
	    memcmp(c.addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
		memmove(c.addr, c.addr + 12, 4);
		memset(c.addr + 4, 0, 12);
		c.family = AF_INET;
		len -= 96;
	}
	c.len = (uint8_t)len;
	*out = c;
	return 0;
}

static bool prefix_match(const struct cidr *c, const uint8_t *addr)
{
	size_t full = c->len / 8;
	unsigned rest = c->len % 8;
	uint8_t mask = (uint8_t)(0xff00 >> rest);

	if (memcmp(c->addr, addr, full) != 0)
		return false;
	return rest == 0 || ((addr[full] ^ c->addr[full]) & mask) == 0;
}

bool cidr_list_match(const struct cidr_list *l, const struct sockaddr *sa)
{
	const struct sockaddr_in6 *sin6 = (const void *)sa;
	const struct sockaddr_in *sin = (const void *)sa;
	const uint8_t *addr;
	uint8_t family;

	if (l == NULL || sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		addr = (const uint8_t *)&sin->sin_addr;
	} else if (sa->sa_family == AF_INET6) {
		addr = sin6->sin6_addr.s6_addr;
		family = AF_INET6;
		if (memcmp(addr, v4mapped_prefix, 12) == 0) {
			family = AF_INET;
			addr += 12;
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].family == family && prefix_match(&l->v[i], addr))
			return true;
	return false;
}

void cidr_list_free(struct cidr_list *l)
{
	if (l == NULL)
		return;
	free(l->v);
	l->v = NULL;
	l->n = 0;
}
