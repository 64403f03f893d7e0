/* echo (RFC 862): every byte back, in order. The daemon bounds memory
 * (it stops reading while output is queued), finishes sending after the
 * client's half-close, and guards UDP; what is left is one line each. */
#include <stdlib.h>

#include <ringd/plugin.h>

struct echo_worker {
	const struct ringd_host *host;
	/* send_input() where the daemon has it (it may skip the copy),
	 * else send(). */
	int (*send)(struct ringd_conn *c, const void *buf, size_t len);
};

static void *echo_start(const struct ringd_host *host,
			const struct ringd_instance *inst, const void *config)
{
	struct echo_worker *w = malloc(sizeof(*w));

	(void)inst;
	(void)config;
	if (w) {
		w->host = host;
		w->send = RINGD_HAS(host, send_input) ? host->send_input
						      : host->send;
	}
	return w;
}

static void echo_stop(void *wstate)
{
	free(wstate);
}

static void echo_data(struct ringd_conn *c, const void *buf, size_t len)
{
	const struct echo_worker *w = c->wstate;

	w->send(c, buf, len);
}

static void echo_datagram(struct ringd_dgram *d, const void *buf, size_t len)
{
	const struct echo_worker *w = d->wstate;

	w->host->reply(d, buf, len);
}

__attribute__((visibility("default"))) const struct ringd_plugin ringd_plugin = {
	.abi = RINGD_PLUGIN_ABI,
	.size = sizeof(struct ringd_plugin),
	.name = "echo",
	.description = "RFC 862 echo: sends back every byte received",
	.transports = RINGD_STREAM | RINGD_DGRAM,
	.start = echo_start,
	.stop = echo_stop,
	.on_data = echo_data,
	.on_datagram = echo_datagram,
	.stream_flags = RINGD_PEER_FIRST,
};
