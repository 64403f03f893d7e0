/* GCRA buckets in a direct-mapped table keyed by source network. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define RATE_NS 1000000000LL

/* A source network. The family has a field of its own because an IPv6
 * /64 needs all 64 bits of net: no bit is free for a tag. */
struct rate_key {
	uint64_t net;	    /* the IPv4 address, or the first 8 bytes of IPv6 */
	sa_family_t family; /* AF_INET (also v4-mapped) or AF_INET6 */
};

struct rate_slot {
	struct rate_key key; /* family AF_UNSPEC: never used */
	struct rate_bucket b;
};

struct ratelimit {
	struct rate_params p;
	uint64_t seed;
	unsigned mask;
	struct rate_slot slot[];
};

void rate_params_init(struct rate_params *p, int64_t rate, int64_t burst)
{
	if (rate <= 0) {
		p->interval_ns = 0;
		p->tolerance_ns = 0;
		return;
	}
	p->interval_ns = RATE_NS / rate;
	if (p->interval_ns == 0)
		p->interval_ns = 1;
	p->tolerance_ns = (burst > 1 ? burst - 1 : 0) * p->interval_ns;
}

/* Conforming when the bucket's theoretical arrival time is no more than
 * tolerance ahead of now; each conforming event pushes it one interval. */
bool rate_take(const struct rate_params *p, struct rate_bucket *b,
	       int64_t now_ns)
{
	int64_t tat;

	if (p->interval_ns == 0)
		return true;
	tat = b->tat > now_ns ? b->tat : now_ns;
	if (tat - now_ns > p->tolerance_ns)
		return false;
	b->tat = tat + p->interval_ns;
	return true;
}

/* IPv4 (also when mapped into IPv6) keys on the whole address, IPv6 on
 * its /64: one host or one subscriber network, as the issue asks. */
static struct rate_key ratelimit_key(const struct sockaddr *sa)
{
	const struct sockaddr_in6 *sin6 = (const void *)sa;
	const uint8_t *a6 = sin6->sin6_addr.s6_addr;
	struct rate_key k = { .net = 0, .family = AF_INET };
	uint32_t v4;

	if (sa->sa_family == AF_INET) {
		memcpy(&v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		k.net = v4;
		return k;
	}
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(&v4, a6 + 12, 4);
		k.net = v4;
		return k;
	}
	k.family = AF_INET6;
	memcpy(&k.net, a6, 8);
	return k;
}

static bool ratelimit_key_equal(const struct rate_key *a,
				const struct rate_key *b)
{
	return a->net == b->net && a->family == b->family;
}

static uint64_t ratelimit_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

struct ratelimit *ratelimit_new(unsigned nslots, int64_t rate, int64_t burst,
				uint64_t seed)
{
	unsigned n = 1;
	struct ratelimit *rl;

	while (n < nslots)
		n <<= 1;
	rl = calloc(1, sizeof(*rl) + n * sizeof(rl->slot[0]));
	if (!rl)
		return NULL;
	rate_params_init(&rl->p, rate, burst);
	rl->seed = seed;
	rl->mask = n - 1;
	return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
	free(rl);
}

/* A slot whose owner has fully recharged (tat in the past) is taken over
 * by a new source; one still limited is shared with the newcomer, so a
 * table full of spoofed sources can slow a colliding client but never
 * lets a flooder escape its own limit. */
bool ratelimit_take(struct ratelimit *rl, const struct sockaddr *src,
		    int64_t now_ns)
{
	struct rate_key key = ratelimit_key(src);
	struct rate_slot *s;
	uint64_t h;

	if (rl->p.interval_ns == 0)
		return true;
	/* Two rounds, so the family moves the slot as much as any bit of
	 * the address does. */
	h = ratelimit_mix(ratelimit_mix(key.net ^ rl->seed) ^ key.family);
	s = &rl->slot[h & rl->mask];
	if (!ratelimit_key_equal(&s->key, &key) && s->b.tat <= now_ns) {
		s->key = key;
		s->b.tat = 0;
	}
	return rate_take(&rl->p, &s->b, now_ns);
}
