/* The services the daemon hands a plugin (struct ringd_host): thin
 * adapters from the plugin ABI to conn.c, dgram.c and log.c. */
#ifndef RINGD_HOST_H
#define RINGD_HOST_H

#include <ringd/plugin.h>

extern const struct ringd_host host_api;

#endif
