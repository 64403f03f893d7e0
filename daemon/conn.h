/* One stream connection: the plugin's callbacks, a bounded output queue
 * with one send in flight, reading paused while the queue is over its
 * limit, idle deadlines, and a close that waits for every in-flight
 * completion before the memory goes (the io_uring lifetime rule). */
#ifndef RINGD_CONN_H
#define RINGD_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ringd/plugin.h>

struct worker;
struct ringd_instance;

/* Output above this stops reading; below CONN_LOW_WATER it resumes and
 * on_writable fires. Bounds a connection's memory whatever the peer does. */
#define CONN_HIGH_WATER (256 * 1024)
#define CONN_LOW_WATER (64 * 1024)

/* How long a closing connection drains the peer's input after our FIN
 * before it gives up; closing with unread input would send a reset. */
#define CONN_LINGER_MS 2000

/* Take ownership of an accepted fd: start the plugin and reading. On
 * failure the fd is closed. */
void conn_open(struct worker *w, const struct ringd_instance *inst, int fd);

/* Graceful stop of every connection of w: what the peer sent before the
 * stop still reaches the plugin, then flush, FIN, close; idle ones close
 * at once. conn_abort_all closes them now. */
void conn_shutdown_all(struct worker *w);
void conn_abort_all(struct worker *w);

/* Free the worker's cache of output segments (at worker exit). */
void conn_free_cache(struct worker *w);

/* The ringd_host operations on a connection. */
int conn_send(struct ringd_conn *c, const void *buf, size_t len, int copy);
void conn_close(struct ringd_conn *c);
void conn_abort(struct ringd_conn *c);
size_t conn_queued(const struct ringd_conn *c);
void conn_set_timeout(struct ringd_conn *c, int64_t ms);

#endif
