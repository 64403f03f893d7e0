/* Per-source rate limiting for UDP replies: a fixed-size table of GCRA
 * buckets keyed by source network (IPv4 /32, IPv6 /64), so a flood from
 * one source is limited without limiting anyone else, in bounded memory
 * whatever the number of (spoofed) sources. Single-threaded: the UDP
 * sockets all live on worker 0. Time is passed in, for tests. */
#ifndef RINGD_RATELIMIT_H
#define RINGD_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* One bucket: rate per second, up to burst at once. GCRA keeps a single
 * "theoretical arrival time" instead of a token count and a timestamp. */
struct rate_bucket {
	int64_t tat;
};

struct rate_params {
	int64_t interval_ns; /* 1 s / rate */
	int64_t tolerance_ns; /* (burst - 1) * interval */
};

/* rate 0 means unlimited: every take succeeds. */
void rate_params_init(struct rate_params *p, int64_t rate, int64_t burst);
bool rate_take(const struct rate_params *p, struct rate_bucket *b,
	       int64_t now_ns);

struct ratelimit;

/* nslots is rounded up to a power of two. seed keys the hash so nobody
 * outside can aim collisions at a victim's slot. */
struct ratelimit *ratelimit_new(unsigned nslots, int64_t rate, int64_t burst,
				uint64_t seed);
void ratelimit_free(struct ratelimit *rl);

/* True when src may be answered now (and charges it). */
bool ratelimit_take(struct ratelimit *rl, const struct sockaddr *src,
		    int64_t now_ns);

#endif
