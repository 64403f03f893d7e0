/* The ringd plugin ABI: the only header a plugin includes and the only
 * contract between the daemon and a service. A plugin knows no socket, no
 * event loop and no daemon symbol; everything it may do goes through the
 * struct ringd_host the daemon hands to start(). */
#ifndef RINGD_PLUGIN_H
#define RINGD_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped only for incompatible changes. Compatible growth appends fields to
 * struct ringd_plugin or struct ringd_host; both carry their size so either
 * side can tell which fields the other knows. */
#define RINGD_PLUGIN_ABI 1

/* Transports a plugin serves (struct ringd_plugin.transports). STREAM covers
 * tcp:// and unix: listeners, DGRAM covers udp://. */
#define RINGD_STREAM 0x1u
#define RINGD_DGRAM 0x2u

/* Log levels, syslog numbering so they map to journald priorities. */
enum ringd_log_level {
	RINGD_LOG_ERR = 3,
	RINGD_LOG_WARNING = 4,
	RINGD_LOG_NOTICE = 5,
	RINGD_LOG_INFO = 6,
	RINGD_LOG_DEBUG = 7,
};

/* How a configuration value is parsed and where it is stored. The daemon
 * parses every value with the same code it uses for its own keys, so a
 * plugin never sees text it did not ask for. */
enum ringd_key_type {
	RINGD_KEY_STRING,   /* const char *; owned by the daemon, lives as
			       long as the configuration */
	RINGD_KEY_INT,      /* int64_t within [min, max]; decimal, a leading
			       zero included (010 is ten) */
	RINGD_KEY_BOOL,     /* bool; yes/no, true/false, on/off, 1/0 */
	RINGD_KEY_DURATION, /* int64_t milliseconds; suffixes ms, s, m, h
			       (a bare number is seconds) */
	RINGD_KEY_SIZE,     /* int64_t bytes; suffixes k, m, g, t (1024-based) */
	RINGD_KEY_ENUM,     /* int: index into choices */
	RINGD_KEY_PATH,     /* const char *; a file path, relative paths
			       resolved against the INI file's directory */
};

/* One configuration key. Tables end with an entry whose name is NULL.
 * def is the default written as it would be in the file; NULL makes the
 * key required. For INT, DURATION and SIZE, min and max bound the parsed
 * value (in ms and bytes for the latter two); min == max == 0 means
 * unbounded. For ENUM, choices is a NULL-terminated list. */
struct ringd_key {
	const char *name;
	enum ringd_key_type type;
	const char *def;
	int64_t min;
	int64_t max;
	const char *const *choices;
	size_t offset; /* offsetof() into the plugin's config struct */
	const char *help;
};

/* Daemon states a plugin may report (an HTTP /readyz, for instance). */
enum ringd_state {
	RINGD_RUNNING = 0,
	RINGD_DRAINING = 1,
};

/* The part of a TCP or unix-stream connection a plugin sees. The daemon
 * owns it; it is valid from on_open() until on_close() returns. */
struct ringd_conn {
	void *wstate; /* the plugin's per-worker state, from start() */
	void *data;   /* the plugin's per-connection state; set it in
			 on_open(), free it in on_close() */
	const struct sockaddr *peer; /* the client's address */
	socklen_t peerlen;
};

/* One received datagram, valid only during on_datagram(). */
struct ringd_dgram {
	void *wstate;
	const struct sockaddr *peer;
	socklen_t peerlen;
	size_t len; /* bytes received; bounds what reply() may send back */
};

/* An instance handle: one configured section. Opaque to plugins; used to
 * tag log lines with svc=<section>. */
struct ringd_instance;

/* What check() may know of its instance besides the keys. */
struct ringd_check {
	const char *instance; /* the section name */
	unsigned transports;  /* RINGD_STREAM | RINGD_DGRAM: the kinds of
				 listen address the instance has */
	void *priv;           /* the daemon's */
};

/* Reports a configuration error from check(). key names the key the error
 * belongs to (the daemon prefixes FILE:LINE of that key, or of the section
 * header when key is NULL or absent from the file). */
typedef void (*ringd_check_error_fn)(struct ringd_check *chk, const char *key,
				     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Services the daemon offers a plugin. All functions must be called from
 * the thread that called the hook (each worker is one thread). Members
 * are only ever appended: test RINGD_HAS(host, fn) before calling one
 * newer than the oldest daemon the plugin supports. */
struct ringd_host {
	uint32_t size; /* sizeof(struct ringd_host) as the daemon knows it */

	/* Queue len bytes for sending, copied. Output stays in order. Returns
	 * 0; -EPIPE when the connection is already closing or gone (also
	 * from on_close()); -ENOMEM when no memory could be had for the
	 * queue (nothing was queued; the plugin may close or abort). The
	 * daemon bounds memory by pausing on_data() while the connection's
	 * queue, or the daemon's max_buffered, is over its limit, not by
	 * refusing sends. */
	int (*send)(struct ringd_conn *c, const void *buf, size_t len);

	/* As send(), without copying: buf must stay valid and unchanged
	 * until the plugin's stop() (static data or per-instance data).
	 * Returns as send() does. */
	int (*send_ref)(struct ringd_conn *c, const void *buf, size_t len);

	/* Close once queued output is sent: FIN after the last byte. */
	void (*close)(struct ringd_conn *c);

	/* Close now, discarding queued output (the peer sees a reset). */
	void (*abort)(struct ringd_conn *c);

	/* Bytes queued and not yet sent. */
	size_t (*queued)(const struct ringd_conn *c);

	/* Close the connection ms milliseconds from now, busy or not (a
	 * whole-request or whole-session limit); calling again moves the
	 * deadline, 0 removes it. The service's idle_timeout applies as
	 * well, whichever comes first. */
	void (*set_timeout)(struct ringd_conn *c, int64_t ms);

	/* Answer a datagram from the socket and address it arrived on, once:
	 * the source was charged for one reply, so a second one for the
	 * same datagram is refused (-EALREADY). The daemon's UDP guard may
	 * also refuse: a reply must not exceed 512 bytes unless it is no
	 * larger than the request (-EMSGSIZE), and replies are rate-limited
	 * (-EAGAIN). */
	int (*reply)(struct ringd_dgram *d, const void *buf, size_t len);

	/* Log one line tagged with the instance's name. */
	void (*log)(const struct ringd_instance *inst, enum ringd_log_level lvl,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

	/* Wall-clock time in nanoseconds since the Unix epoch. Plugins ask
	 * the host so tests can set any instant. */
	int64_t (*now)(void);

	/* Whether the daemon is running or draining (stopping). */
	enum ringd_state (*state)(const struct ringd_instance *inst);

	/* Whether the kernel says the system clock is synchronised (NTP):
	 * 1 yes, 0 no, -errno when it cannot tell. */
	int (*clock_synced)(void);
};

/* Whether s (a struct ringd_host or ringd_plugin the other side filled
 * in) is large enough to have member m: its size field says which members
 * the other side knew when it was built. */
#define RINGD_HAS(s, m)                                                   \
	((s)->size >= offsetof(__typeof__(*(s)), m) + sizeof((s)->m) &&   \
	 (s)->m != NULL)

/* The one object a plugin exports, named ringd_plugin. Hooks may be NULL. */
struct ringd_plugin {
	uint32_t abi;  /* RINGD_PLUGIN_ABI */
	uint32_t size; /* sizeof(struct ringd_plugin) */
	const char *name;
	const char *description; /* one line, for -K */
	unsigned transports;     /* RINGD_STREAM | RINGD_DGRAM */
	const struct ringd_key *keys;
	size_t config_size; /* the daemon allocates and zeroes this much */

	/* Validate the parsed config and derive what the keys imply (load a
	 * file, for instance). Runs once per instance at -t, start and
	 * reload, before any start(). Report every problem through err and
	 * return 0 when there was none, -1 otherwise. The config is writable
	 * here and read-only afterwards. */
	int (*check)(void *config, struct ringd_check *chk,
		     ringd_check_error_fn err);

	/* Free what check() allocated in config. */
	void (*release)(void *config);

	/* Per worker thread: build the state every callback of this worker
	 * gets as wstate. NULL means failure (the plugin logs why). */
	void *(*start)(const struct ringd_host *host,
		       const struct ringd_instance *inst, const void *config);
	void (*stop)(void *wstate);

	/* A stream connection opened. Return 0, or -1 to close it. Every
	 * host call on c is allowed here (a greeting may be sent). After a
	 * -1 on_close() is not called: free c->data here. */
	int (*on_open)(struct ringd_conn *c);

	/* Bytes arrived. buf is valid only during the call. Every host
	 * call on c is allowed; c stays valid until the hook returns, even
	 * after close() or abort(). */
	void (*on_data)(struct ringd_conn *c, const void *buf, size_t len);

	/* The peer half-closed (sent FIN). NULL: close after flushing.
	 * Every host call on c is allowed; no more on_data() follows. */
	void (*on_eof)(struct ringd_conn *c);

	/* The output queue drained below the low-water mark; a streaming
	 * service queues more here. Called only after a send made the
	 * queue non-empty. Every host call on c is allowed. */
	void (*on_writable)(struct ringd_conn *c);

	/* The connection is gone; free c->data. Host calls on c from here
	 * are ignored (send() returns -EPIPE, close() and abort() do nothing)
	 * and none is allowed after it returns. Host calls on any other
	 * connection are not allowed here either: the daemon may be walking
	 * its connections when this runs. */
	void (*on_close)(struct ringd_conn *c);

	/* A datagram arrived (after the daemon's UDP guard admitted it). */
	void (*on_datagram)(struct ringd_dgram *d, const void *buf, size_t len);
};

#ifdef __cplusplus
}
#endif

#endif
