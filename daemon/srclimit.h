/* Concurrent connections per source network (IPv4 /32, IPv6 /64, a
 * v4-mapped address as IPv4) and service, shared by every worker, for
 * max_connections_per_source. An entry lives only while its source has a
 * connection open, so memory is bounded by the connections counted at
 * once, never by the number of sources seen. */
#ifndef RINGD_SRCLIMIT_H
#define RINGD_SRCLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct srclimit;

/* Room for at most max_open connections counted at once; the table
 * starts small and grows with the sources connected at once. NULL when
 * out of memory. */
struct srclimit *srclimit_new(size_t max_open);
void srclimit_free(struct srclimit *t);

/* Count one more connection from sa to service svc if fewer than limit
 * are open; true when it was counted (the caller then owes one
 * srclimit_put). Addresses that are not IPv4 or IPv6 are never counted
 * and always pass. A full table refuses: it holds max_open entries. Safe
 * from any thread. */
bool srclimit_take(struct srclimit *t, size_t svc, const struct sockaddr *sa,
		   uint32_t limit);
void srclimit_put(struct srclimit *t, size_t svc, const struct sockaddr *sa);

/* Open connections counted for (svc, sa); for tests and logs. */
uint32_t srclimit_count(struct srclimit *t, size_t svc,
			const struct sockaddr *sa);

#endif
