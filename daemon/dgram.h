/* One UDP socket of one service: receive, guard (reflection sources,
 * our own ports), dispatch to the plugin, reply from the address the
 * datagram arrived on. Runs on worker 0 only. */
#ifndef RINGD_DGRAM_H
#define RINGD_DGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ringd/plugin.h>

struct worker;
struct ringd_instance;
struct dgram;

/* Ports below this are well-known services that reflection attacks aim
 * at (echo, chargen, DNS, NTP...); never answer them. */
#define DGRAM_MIN_SOURCE_PORT 1024
/* A reply larger than the request may not exceed this. */
#define DGRAM_MAX_AMPLIFIED 512

/* The guard's decision for a source address: 0 to admit, else a static
 * reason for the debug log. Pure, so it is unit-tested on its own. */
const char *dgram_guard(const struct sockaddr *sa, const uint16_t *own_ports,
			size_t nown);

struct dgram *dgram_open(struct worker *w, const struct ringd_instance *inst,
			 int fd);
/* Stop receiving; the struct goes when its last completion arrives. */
void dgram_close(struct dgram *g);
bool dgram_idle(const struct dgram *g);
void dgram_free(struct dgram *g);

int dgram_reply(struct ringd_dgram *d, const void *buf, size_t len);

#endif
