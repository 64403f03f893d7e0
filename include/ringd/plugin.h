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

/* Stream behaviour a plugin declares (struct ringd_plugin.stream_flags).
 * RINGD_PEER_FIRST: on every stream connection the peer speaks first (a
 * request, bytes to echo or to discard), so nothing changes for the
 * service if on_open() runs only once those first bytes have arrived. */
#define RINGD_PEER_FIRST 0x1u

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
			       resolved against the INI file's directory;
			       a relative def names a file installed with
			       ringd, in its data directory (datadir/ringd;
			       the source tree's conf/ for a plugin run from
			       the build tree) */
	RINGD_KEY_LIST,     /* struct ringd_list: a key that may be given
			       on many lines, each line one item, in file
			       order; never required, def ignored (absent:
			       no items). Appended after the first release:
			       an older daemon refuses the plugin. */
};

/* The value of a RINGD_KEY_LIST key. The strings are the daemon's and
 * live as long as the configuration. To report an error about one item,
 * check() names the key as "name[i]" (i from 0): the error then carries
 * that line's FILE:LINE. */
struct ringd_list {
	size_t n;
	const char *const *items;
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
	/* Appended with RINGD_KEY_LIST (a daemon that refuses LIST keys
	 * has no such member): the INI file's directory, absolute, for
	 * paths the plugin finds inside values it parses itself (a file
	 * named in a route line), so they resolve as PATH keys do. */
	const char *config_dir;
};

/* Reports a configuration error from check(). key names the key the error
 * belongs to (the daemon prefixes FILE:LINE of that key, or of the section
 * header when key is NULL or absent from the file). */
typedef void (*ringd_check_error_fn)(struct ringd_check *chk, const char *key,
				     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Why a connection closed, for on_close() (host->close_reason()) and the
 * core's ringd_connections_closed_total{reason}. */
enum ringd_close_reason {
	RINGD_CLOSE_PEER = 0, /* the peer closed (FIN) and we finished */
	RINGD_CLOSE_SERVICE,  /* the plugin called close() or abort(), or
				 refused in on_open() */
	RINGD_CLOSE_IDLE,     /* idle_timeout expired */
	RINGD_CLOSE_DEADLINE, /* the deadline set_timeout() set expired */
	RINGD_CLOSE_RESET,    /* the peer reset, or a socket error */
	RINGD_CLOSE_STOP,     /* the daemon stopped (or ran out of memory) */
};

/* A plugin's own counter, one series: the plugin names its instance's
 * counters through the counters() hook and adds to them with count().
 * Series that share a name form one family and must share its help and
 * label name. */
struct ringd_counter {
	/* The full metric name, [a-zA-Z_][a-zA-Z0-9_]*, "ringd_" first and
	 * "_total" last (ringd_http_responses_total). */
	const char *name;
	const char *help;  /* one line */
	const char *label; /* a label name ("code"), or NULL for none */
	const char *value; /* the label's value ("200"); any text, the
			      writer escapes it */
};

/* What a metrics scrape sees (host->metrics()): one series with its
 * value, summed over the workers at the time of the call. */
enum ringd_metric_type {
	RINGD_METRIC_COUNTER = 0,
	RINGD_METRIC_GAUGE,
};

#define RINGD_METRIC_MAX_LABELS 4

struct ringd_metric {
	const char *name; /* as Prometheus names it */
	const char *help;
	enum ringd_metric_type type;
	unsigned nlabels;
	const char *label_names[RINGD_METRIC_MAX_LABELS];
	const char *label_values[RINGD_METRIC_MAX_LABELS]; /* unescaped */
	double value;
};

/* Receives the series of a scrape, one call each. Every series of a
 * family (same name) comes in consecutive calls, so a writer prints the
 * family's HELP and TYPE when the name changes. m is valid only during
 * the call. */
typedef void (*ringd_metric_fn)(void *arg, const struct ringd_metric *m);

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

	/* Members below were appended after the first release: test them
	 * with RINGD_HAS(host, member). */

	/* CLOCK_MONOTONIC in nanoseconds: for durations (a request's time
	 * in µs for a log line), which now() would get wrong across a clock
	 * step. */
	int64_t (*monotonic)(void);

	/* Input flow control. hold_input(c, true) stops the daemon reading
	 * c: no on_data() or on_eof() is delivered until hold_input(c,
	 * false), and the peer meets the kernel's buffers and then TCP flow
	 * control. Bytes of the on_data() call in progress are the plugin's
	 * (keep what it did not use). Meant for a plugin whose output for
	 * the input it has is pending (pipelined requests behind a large
	 * response): release it from on_writable(). Delivery resumes from
	 * the loop, never from inside hold_input(). Independent of the
	 * daemon's own pauses (high water, max_buffered): input flows only
	 * when neither holds it. Allowed wherever host calls on c are. */
	void (*hold_input)(struct ringd_conn *c, bool hold);

	/* Why c is closing: valid in on_close() (elsewhere it returns
	 * RINGD_CLOSE_PEER). */
	enum ringd_close_reason (*close_reason)(const struct ringd_conn *c);

	/* Add n to c's instance's counter idx, an index into what the
	 * plugin's counters() hook named for that instance (an idx past it
	 * is ignored). The counter is the calling worker's own: no lock,
	 * no atomic read-modify-write. Allowed wherever host calls on c
	 * are, on_close() included. */
	void (*count)(struct ringd_conn *c, unsigned idx, uint64_t n);

	/* Walk every metric of the daemon: the core's counters for every
	 * service (connections, bytes, datagrams, refusals by reason...),
	 * every plugin's own counters, the engine's, build info and the
	 * process_* set, calling emit once per series. Values are summed
	 * over the workers with relaxed loads while they run: each is a
	 * value its counter had during the call, not one instant's
	 * snapshot. From any worker's hook; it takes no lock a hot path
	 * takes. inst is the calling plugin's instance (the daemon it
	 * belongs to). Returns the number of series emitted. */
	size_t (*metrics)(const struct ringd_instance *inst,
			  ringd_metric_fn emit, void *arg);

	/* As send(), for bytes the plugin got as input: the daemon may send
	 * them from the buffer they arrived in instead of copying them
	 * (echo's reply), which saves a copy where it can. From on_data(),
	 * buf is its buf or a part of it; the plugin must not change those
	 * bytes, and may still read them until on_data() returns. Other
	 * bytes, or a call from elsewhere, are simply copied. Output stays
	 * in order with send() and send_ref(); returns as send() does.
	 * Allowed wherever send() is. */
	int (*send_input)(struct ringd_conn *c, const void *buf, size_t len);

	/* As close(), for a connection whose peer has said it sends nothing
	 * more and whose input the plugin has used up (an HTTP request with
	 * Connection: close, answered): once the output is sent, the FIN
	 * goes with the last bytes and the socket closes at once. close()
	 * instead keeps reading until the peer's FIN, because closing with
	 * unread input resets the connection, and a reset can destroy a
	 * reply the peer has not read yet; that wait costs a wake-up per
	 * connection. Input that is already waiting, in the daemon or in
	 * the kernel, makes it a plain close(). Allowed wherever close()
	 * is. */
	void (*close_no_linger)(struct ringd_conn *c);

	/* The worker loop's clock: CLOCK_MONOTONIC in nanoseconds as the
	 * loop read it when it last woke, before delivering the events it
	 * is delivering now. It reads no clock, so it costs nothing on the
	 * hot path (when a request began, when to check the wall clock
	 * again), and lags by the time the loop has spent since it woke;
	 * monotonic() reads the clock itself. Allowed wherever host calls
	 * on c are. */
	int64_t (*loop_time)(const struct ringd_conn *c);
};

/* Whether s (a struct ringd_host or ringd_plugin the other side filled
 * in) is large enough to have member m: its size field says which members
 * the other side knew when it was built. */
#define RINGD_HAS(s, m) (RINGD_KNOWS(s, m) && (s)->m != NULL)
/* The same for a member that is not a pointer: only the size tells. */
#define RINGD_KNOWS(s, m)                                                 \
	((s)->size >= offsetof(__typeof__(*(s)), m) + sizeof((s)->m))

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

	/* Hooks below were appended after the first release; the daemon
	 * calls them only when size says the plugin has them. */

	/* Name the counters of one instance: fill out[0, max) with its
	 * series and return how many it has (when that is more than max,
	 * the daemon calls again with room for all). Called on the main
	 * thread once per instance after check() succeeded, before any
	 * start(); the strings must stay valid until release() (static, or
	 * in the config). The index of a series in out is its idx for
	 * host->count(). NULL: no counters of its own. */
	size_t (*counters)(const void *config, struct ringd_counter *out,
			   size_t max);

	/* The daemon is stopping: called once per open connection on its
	 * worker's thread when the daemon stops accepting (after
	 * drain_delay), and right after on_open() for a connection opened
	 * later. The plugin ends the connection itself: an idle one at once
	 * (close()), one with work in progress once that is done (an HTTP
	 * response goes out with "Connection: close"). Input keeps flowing,
	 * so a request already sent is still read and answered; the
	 * daemon's shutdown_timeout still bounds it all. Every host call on
	 * c is allowed. NULL: the daemon delivers what the peer had sent,
	 * then flushes and closes.
	 * Also called when a reload (SIGHUP) replaces the configuration
	 * the connection runs under; state() then still says
	 * RINGD_RUNNING. It comes once what the peer had sent has reached
	 * on_data(), and for a connection that has sent nothing yet after
	 * its first on_data(). The plugin ends the connection where its
	 * protocol allows, and may give an idle one a moment for a request
	 * already on its way. NULL: the connection runs on until it
	 * closes, within shutdown_timeout. */
	void (*on_drain)(struct ringd_conn *c);

	/* RINGD_PEER_FIRST or 0; read on the main thread when listeners
	 * open (start and reload). With RINGD_PEER_FIRST the daemon lets
	 * the kernel keep a new TCP connection until its first bytes arrive
	 * (TCP_DEFER_ACCEPT, at most about a second; the service's
	 * defer_accept key turns it off), so a client that connects and
	 * sends nothing reaches on_open() after that second, or when it
	 * sends or closes, and costs nothing until then. Leave it 0 for a
	 * service that speaks first (daytime, QOTD): its clients may wait
	 * for it. unix: and udp:// listeners are never deferred. */
	unsigned stream_flags;
};

#ifdef __cplusplus
}
#endif

#endif
