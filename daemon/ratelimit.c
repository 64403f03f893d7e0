/* GCRA buckets in a direct-mapped table keyed by source network. */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define RATE_NS 1000000000LL

struct rate_slot {
	uint64_t key; /* family tag | IPv4 address, or an IPv6 /64 */
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
 * its /64: one host or one subscriber network, as the issue asks. The top
 * bit tells the families apart. */
static uint64_t ratelimit_key(const struct sockaddr *sa)
{
	const struct sockaddr_in6 *sin6 = (const void *)sa;
	const uint8_t *a6 = sin6->sin6_addr.s6_addr;
	uint64_t k = 0;
	uint32_t v4;

	if (sa->sa_family == AF_INET) {
		memcpy(&v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return (1ULL << 63) | v4;
	}
	if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		memcpy(&v4, a6 + 12, 4);
		return (1ULL << 63) | v4;
	}
	memcpy(&k, a6, 8);
	return k & ~(1ULL << 63);
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
	uint64_t key = ratelimit_key(src);
	struct rate_slot *s;

	if (rl->p.interval_ns == 0)
		return true;
	s = &rl->slot[ratelimit_mix(key ^ rl->seed) & rl->mask];
	if (s->key != key && s->b.tat <= now_ns) {
		s->key = key;
		s->b.tat = 0;
	}
	return rate_take(&rl->p, &s->b, now_ns);
}
