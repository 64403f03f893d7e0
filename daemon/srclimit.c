/* An open-addressed table of (service, source network) -> count behind
 * one mutex. Taken once per accepted and per closed connection, never per
 * byte, and only for services that set a limit, so one lock is cheaper
 * than the shards that would let an unlucky shard fill up and refuse a
 * source that is under its limit. The table doubles when half full, so
 * its memory follows the most sources connected at once, not the most
 * that could be. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "srclimit.h"

struct srclimit_key {
	uint64_t net;  /* IPv4 address, or the first 64 bits of IPv6 */
	uint64_t tag;  /* service index << 1 | is IPv6 */
};

struct srclimit_slot {
	struct srclimit_key k;
	uint32_t count; /* 0: empty */
};

struct srclimit {
	pthread_mutex_t mu;
	struct srclimit_slot *slot;
	size_t mask;
	size_t used, max_used;
	uint64_t seed;
};

#define SRCLIMIT_MIN_SLOTS 256

struct srclimit *srclimit_new(size_t max_open)
{
	struct srclimit *t = calloc(1, sizeof(*t));
	size_t n = SRCLIMIT_MIN_SLOTS;

	if (!t)
		return NULL;
	t->slot = calloc(n, sizeof(*t->slot));
	if (!t->slot) {
		free(t);
		return NULL;
	}
	t->mask = n - 1;
	t->max_used = max_open;
	/* Keyed, so nobody outside can pick sources that pile onto one run
	 * of the table and slow every lookup down. */
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) !=
	    sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t;
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

void srclimit_free(struct srclimit *t)
{
	if (!t)
		return;
	pthread_mutex_destroy(&t->mu);
	free(t->slot);
	free(t);
}

static bool srclimit_key_of(size_t svc, const struct sockaddr *sa,
			    struct srclimit_key *k)
{
	const struct sockaddr_in6 *s6 = (const void *)sa;
	uint32_t v4;

	k->tag = (uint64_t)svc << 1;
	if (sa->sa_family == AF_INET) {
		memcpy(&v4, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		k->net = v4;
		return true;
	}
	if (sa->sa_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memcpy(&v4, &s6->sin6_addr.s6_addr[12], 4);
		k->net = v4;
		return true;
	}
	memcpy(&k->net, s6->sin6_addr.s6_addr, 8);
	k->tag |= 1;
	return true;
}

static size_t srclimit_hash(const struct srclimit *t,
			    const struct srclimit_key *k)
{
	uint64_t x = k->net ^ t->seed ^ (k->tag * 0x9e3779b97f4a7c15ULL);

	/* splitmix64's finaliser */
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return (size_t)x & t->mask;
}

/* The slot of k, or the empty slot where it would go. */
static size_t srclimit_find(const struct srclimit *t,
			    const struct srclimit_key *k)
{
	size_t i = srclimit_hash(t, k);

	while (t->slot[i].count &&
	       (t->slot[i].k.net != k->net || t->slot[i].k.tag != k->tag))
		i = (i + 1) & t->mask;
	return i;
}

/* Rehash into twice the slots. On failure the table stays as it was
 * and only new sources are refused. */
static int srclimit_grow(struct srclimit *t)
{
	size_t n = (t->mask + 1) * 2, i, j;
	struct srclimit_slot *old = t->slot, *slot = calloc(n, sizeof(*slot));
	size_t oldn = t->mask + 1;

	if (!slot)
		return -1;
	t->slot = slot;
	t->mask = n - 1;
	for (i = 0; i < oldn; i++) {
		if (!old[i].count)
			continue;
		j = srclimit_find(t, &old[i].k);
		t->slot[j] = old[i];
	}
	free(old);
	return 0;
}

bool srclimit_take(struct srclimit *t, size_t svc, const struct sockaddr *sa,
		   uint32_t limit)
{
	struct srclimit_key k;
	struct srclimit_slot *s;
	bool ok = false;

	if (!srclimit_key_of(svc, sa, &k))
		return true;
	pthread_mutex_lock(&t->mu);
	s = &t->slot[srclimit_find(t, &k)];
	if (s->count && s->count < limit) {
		s->count++;
		ok = true;
	} else if (!s->count && limit && t->used < t->max_used) {
		if (2 * (t->used + 1) > t->mask + 1) {
			if (srclimit_grow(t) < 0)
				goto out;
			s = &t->slot[srclimit_find(t, &k)];
		}
		*s = (struct srclimit_slot){ .k = k, .count = 1 };
		t->used++;
		ok = true;
	}
out:
	pthread_mutex_unlock(&t->mu);
	return ok;
}

/* Deleting from linear probing without tombstones: move later members of
 * the run back into the hole when their home is not between the hole and
 * themselves, so every lookup still finds them. */
static void srclimit_delete(struct srclimit *t, size_t hole)
{
	size_t i = hole, home;

	t->slot[hole].count = 0;
	for (;;) {
		i = (i + 1) & t->mask;
		if (!t->slot[i].count)
			return;
		home = srclimit_hash(t, &t->slot[i].k);
		if (((i - home) & t->mask) >= ((i - hole) & t->mask)) {
			t->slot[hole] = t->slot[i];
			t->slot[i].count = 0;
			hole = i;
		}
	}
}

void srclimit_put(struct srclimit *t, size_t svc, const struct sockaddr *sa)
{
	struct srclimit_key k;
	size_t i;

	if (!srclimit_key_of(svc, sa, &k))
		return;
	pthread_mutex_lock(&t->mu);
	i = srclimit_find(t, &k);
	if (t->slot[i].count && --t->slot[i].count == 0) {
		srclimit_delete(t, i);
		t->used--;
	}
	pthread_mutex_unlock(&t->mu);
}

uint32_t srclimit_count(struct srclimit *t, size_t svc,
			const struct sockaddr *sa)
{
	struct srclimit_key k;
	uint32_t n;

	if (!srclimit_key_of(svc, sa, &k))
		return 0;
	pthread_mutex_lock(&t->mu);
	n = t->slot[srclimit_find(t, &k)].count;
	pthread_mutex_unlock(&t->mu);
	return n;
}
