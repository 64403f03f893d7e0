/* discard (RFC 863): read and drop until the client closes; nothing is
 * ever sent. A whole-session limit (max_time) beside the service's
 * idle_timeout keeps a busy client from holding a connection forever. */
#include <stdlib.h>

#include <ringd/plugin.h>

struct discard_config {
	int64_t max_time_ms;
};

struct discard_worker {
	const struct ringd_host *host;
	const struct discard_config *cfg;
};

static const struct ringd_key discard_keys[] = {
	{ .name = "max_time", .type = RINGD_KEY_DURATION, .def = "10m",
	  .min = 0, .max = 30LL * 86400 * 1000,
	  .offset = offsetof(struct discard_config, max_time_ms),
	  .help = "close a connection this long after it opened, busy or "
		  "not; 0: no limit" },
	{ .name = NULL },
};

static void *discard_start(const struct ringd_host *host,
			   const struct ringd_instance *inst,
			   const void *config)
{
	struct discard_worker *w = malloc(sizeof(*w));

	if (!w) {
		host->log(inst, RINGD_LOG_ERR, "discard: out of memory");
		return NULL;
	}
	w->host = host;
	w->cfg = config;
	return w;
}

static void discard_stop(void *wstate)
{
	free(wstate);
}

static int discard_open(struct ringd_conn *c)
{
	const struct discard_worker *w = c->wstate;

	if (w->cfg->max_time_ms > 0)
		w->host->set_timeout(c, w->cfg->max_time_ms);
	return 0;
}

/* The daemon keeps reading because nothing is ever queued; the bytes end
 * here. The peer's FIN takes the daemon's default: close. */
static void discard_data(struct ringd_conn *c, const void *buf, size_t len)
{
	(void)c;
	(void)buf;
	(void)len;
}

static void discard_datagram(struct ringd_dgram *d, const void *buf, size_t len)
{
	(void)d;
	(void)buf;
	(void)len;
}

__attribute__((visibility("default"))) const struct ringd_plugin ringd_plugin = {
	.abi = RINGD_PLUGIN_ABI,
	.size = sizeof(struct ringd_plugin),
	.name = "discard",
	.description = "RFC 863 discard: reads and drops everything, sends "
		       "nothing",
	.transports = RINGD_STREAM | RINGD_DGRAM,
	.keys = discard_keys,
	.config_size = sizeof(struct discard_config),
	.start = discard_start,
	.stop = discard_stop,
	.on_open = discard_open,
	.on_data = discard_data,
	.on_datagram = discard_datagram,
	.stream_flags = RINGD_PEER_FIRST,
};
