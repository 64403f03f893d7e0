/* A fake struct ringd_host for plugin unit tests: records what a plugin
 * sends, closes and replies, keeps a connection's output queue that the
 * test drains, with a clock the test sets. No sockets. */
#ifndef RINGD_FAKE_HOST_H
#define RINGD_FAKE_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ringd/plugin.h>

struct fake_host {
	struct ringd_host host;
	char out[1 << 20]; /* everything sent or replied, in order */
	size_t outlen;
	/* Bytes sent and not yet drained: what queued() answers. Replies
	 * are not counted, datagrams have no queue. */
	size_t queue;
	int sends, replies, closes, aborts;
	int inputs; /* of the sends, those made through send_input() */
	int64_t now_ns;
	int64_t timeout_ms;
	enum ringd_state state;
	int clock_synced; /* what clock_synced() answers; 1 after reset */
	size_t max_reply; /* the daemon's guard rule, as reply() applies it */

	/* The members appended to the ABI; a test simulates an older
	 * daemon by lowering host.size. */
	int64_t mono_ns;    /* what monotonic() answers */
	bool held;          /* hold_input()'s last word */
	int holds, releases; /* hold_input(true) and (false) calls */
	int timeouts;       /* set_timeout() calls */
	enum ringd_close_reason close_reason; /* what close_reason() says */
	uint64_t counts[256]; /* count() by idx */
	int nolingers;      /* of the closes, those by close_no_linger() */
	int nows;           /* now() calls; loop_time() answers mono_ns */
	char log[1 << 16];  /* every log line, each ending in a newline */
	size_t loglen;
	int logs;
	bool quiet;         /* keep log lines off stderr */
};

/* The series fake metrics() emits: two families, the first with labels
 * that need escaping (backslash, quote, newline). */
#define FAKE_METRICS_SERIES 4

/* The fake is a singleton per test process: host callbacks carry no
 * context pointer of their own. */
struct fake_host *fake_host_get(void);
void fake_host_reset(void);

/* Takes n bytes off the queue, as the daemon's send completions would;
 * n beyond what is queued fails the test. on_writable is left to the
 * test to call, as the daemon's low-water mark would. */
void fake_host_drain(size_t n);

/* check()'s error callback for plugin tests: records each error as
 * "key: message" ("-" for no key) in fake_errs; the test zeroes
 * fake_nerrs before a check. */
#define FAKE_MAX_ERRS 64
extern char fake_errs[FAKE_MAX_ERRS][1024];
extern int fake_nerrs;
void fake_check_err(struct ringd_check *chk, const char *key, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));

/* The plugin under test, linked into the same test executable. */
extern const struct ringd_plugin ringd_plugin;

/* Its key called name; fails the test when there is none. */
const struct ringd_key *fake_plugin_key(const char *name);

#endif
