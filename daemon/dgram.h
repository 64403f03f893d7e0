/* One UDP socket of one service: receive, guard (reflection sources,
 * our own ports, bogus sources, per-source and global rates), dispatch to
 * the plugin, reply from the address the datagram arrived on. Runs on
 * worker 0 only. */
#ifndef RINGD_DGRAM_H
#define RINGD_DGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ringd/plugin.h>

struct loop;
struct ringd_instance;
struct dgram;

/* Ports below this are well-known services that reflection attacks aim
 * at (echo, chargen, DNS, NTP...); never answer them. */
#define DGRAM_MIN_SOURCE_PORT 1024
/* A reply larger than the request may not exceed this. */
#define DGRAM_MAX_AMPLIFIED 512

/* Why a datagram was not answered; counted and logged per interval. */
enum dgram_drop {
	DGRAM_DROP_LOW_PORT,   /* source port below 1024 */
	DGRAM_DROP_OWN_PORT,   /* one of our own service ports */
	DGRAM_DROP_BOGUS,      /* broadcast, multicast, 0.0.0.0/8, ... */
	DGRAM_DROP_TRUNCATED,  /* larger than we can read whole */
	DGRAM_DROP_RATE,       /* this source over udp_rate/udp_burst */
	DGRAM_DROP_GLOBAL,     /* all sources over udp_global_rate */
	DGRAM_DROP_REPEAT,     /* a second reply to the same datagram */
	DGRAM_DROP_ACCESS,     /* in the service's deny, or not in its allow */
	DGRAM_DROP_NREASONS,
};

/* The address rules alone, pure so they are unit-tested on their own:
 * -1 to admit, else the enum dgram_drop reason. Loopback is admitted. */
int dgram_check_source(const struct sockaddr *sa, const uint16_t *own_ports,
		       size_t nown);

struct ringd_conf;

/* Worker 0's guard, shared by every UDP socket of every service, so
 * limits apply per source and not per service. */
struct dgram_guard;
struct dgram_guard *dgram_guard_new(const struct ringd_conf *c);
void dgram_guard_free(struct dgram_guard *gd);

/* Called when the receive that dgram_close() found in flight has ended,
 * so the owner may finish a stop. Never called from inside dgram_close():
 * check dgram_idle() after it. */
typedef void (*dgram_idle_fn)(void *arg);

/* Serve fd (a bound UDP socket) for inst on loop l, through guard gd
 * (which must outlive it); wstate is the plugin's worker state. Returns
 * NULL when out of memory. */
struct metrics_dgram;
/* Count g's datagrams, bytes and drops into m (NULL: stop counting). */
void dgram_set_metrics(struct dgram *g, struct metrics_dgram *m);

struct dgram *dgram_open(struct loop *l, struct dgram_guard *gd,
			 const struct ringd_instance *inst, void *wstate,
			 int fd, dgram_idle_fn idle, void *idle_arg);
/* Stop receiving; idle() follows once nothing is in flight. */
void dgram_close(struct dgram *g);
bool dgram_idle(const struct dgram *g);
/* Only once idle. */
void dgram_free(struct dgram *g);

/* Receive errors other than EAGAIN and EINTR since the socket opened:
 * each one waits before the next receive, doubling up to a second. */
uint64_t dgram_recv_errors(const struct dgram *g);
#define DGRAM_RETRY_MIN_NS (10LL * 1000000)
#define DGRAM_RETRY_MAX_NS (1000LL * 1000000)

/* The host's reply(): at most one per datagram (-EALREADY after). */
int dgram_reply(struct ringd_dgram *d, const void *buf, size_t len);

#endif
