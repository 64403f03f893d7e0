/* chargen (RFC 864): the classic rotating 72-character lines, streamed
 * over TCP under flow control until the client closes or a limit is
 * reached; over UDP, 0-512 bytes per datagram, only when allowed. */
#include <stdlib.h>
#include <sys/random.h>

#include <ringd/plugin.h>

#define CG_WIDTH  72		       /* characters per line */
#define CG_NCHARS 95		       /* printable ASCII, 0x20..0x7e */
#define CG_ROW	  (CG_WIDTH + 2)       /* with CRLF */
#define CG_BLOCK  (CG_NCHARS * CG_ROW) /* 7030: the pattern's period */
/* One send_ref() of at most 63 KiB: large sends cost less per byte, and
 * from the daemon's 64 KiB low-water mark two of them refill the queue. */
#define CG_CHUNK (9 * CG_BLOCK)
/* The pattern holds one period more than a chunk: a chunk starting at
 * any offset of the period is one contiguous slice. */
#define CG_PATTERN (CG_CHUNK + CG_BLOCK)
/* Queue up to this much: enough to keep the socket busy while on_writable
 * comes round, far below the daemon's high-water mark. */
#define CG_QUEUE   (128 * 1024)
#define CG_UDP_MAX 512

struct chargen_config {
	int64_t max_bytes;   /* 0: no limit */
	int64_t max_time_ms; /* 0: no limit */
	bool allow_udp;
};

struct chargen_worker {
	const struct ringd_host *host;
	const struct chargen_config *cfg;
	uint64_t rng;		  /* UDP reply lengths */
	unsigned udp_line;	  /* the line the next UDP reply starts with */
	char pattern[CG_PATTERN]; /* send_ref()'d: lives until stop() */
};

struct chargen_conn {
	uint64_t sent; /* bytes queued so far; sent % CG_BLOCK is where the
			  next chunk starts */
};

static const struct ringd_key chargen_keys[] = {
	{ .name = "max_bytes", .type = RINGD_KEY_SIZE, .def = "1m",
	  .offset = offsetof(struct chargen_config, max_bytes),
	  .help = "close a TCP stream after this many bytes; 0: no limit" },
	{ .name = "max_time", .type = RINGD_KEY_DURATION, .def = "1m",
	  .min = 0, .max = 30LL * 86400 * 1000,
	  .offset = offsetof(struct chargen_config, max_time_ms),
	  .help = "close a TCP stream this long after it opened; 0: no "
		  "limit" },
	{ .name = "allow_udp", .type = RINGD_KEY_BOOL, .def = "no",
	  .offset = offsetof(struct chargen_config, allow_udp),
	  .help = "serve udp:// listeners (an amplifier: CERT CA-1996-01)" },
	{ .name = NULL },
};

/* A spoofed 1-byte datagram buys up to 512 bytes sent to the victim, and
 * two chargen/echo servers aimed at each other loop forever: UDP needs
 * the operator's explicit yes. */
static int chargen_check(void *config, struct ringd_check *chk,
			 ringd_check_error_fn err)
{
	const struct chargen_config *cfg = config;

	if ((chk->transports & RINGD_DGRAM) && !cfg->allow_udp) {
		err(chk, "allow_udp", "udp:// listener refused: chargen over "
		    "UDP amplifies traffic (CERT CA-1996-01); set "
		    "allow_udp = yes to serve it anyway");
		return -1;
	}
	return 0;
}

/* Line r starts r characters along the ring of the 95 printable
 * characters, which begins at the space (0x20), as BSD inetd does. */
static void chargen_fill_pattern(char *p)
{
	for (size_t i = 0; i < CG_PATTERN; i++) {
		size_t row = i / CG_ROW % CG_NCHARS, col = i % CG_ROW;

		if (col == CG_WIDTH)
			p[i] = '\r';
		else if (col == CG_WIDTH + 1)
			p[i] = '\n';
		else
			p[i] = (char)(0x20 + (row + col) % CG_NCHARS);
	}
}

static void *chargen_start(const struct ringd_host *host,
			   const struct ringd_instance *inst,
			   const void *config)
{
	struct chargen_worker *w = malloc(sizeof(*w));

	if (!w) {
		host->log(inst, RINGD_LOG_ERR, "chargen: out of memory");
		return NULL;
	}
	w->host = host;
	w->cfg = config;
	w->udp_line = 0;
	if (getrandom(&w->rng, sizeof(w->rng), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(w->rng))
		w->rng = (uint64_t)host->now() ^ (uint64_t)(uintptr_t)w;
	chargen_fill_pattern(w->pattern);
	return w;
}

static void chargen_stop(void *wstate)
{
	free(wstate);
}

/* Tops the queue up to CG_QUEUE, then waits for on_writable: memory per
 * connection stays bounded however slowly (or never) the client reads. */
static void chargen_push(struct ringd_conn *c)
{
	const struct chargen_worker *w = c->wstate;
	struct chargen_conn *s = c->data;
	uint64_t max = (uint64_t)w->cfg->max_bytes;
	size_t len;

	while (w->host->queued(c) < CG_QUEUE) {
		len = CG_CHUNK;
		if (max && max - s->sent < len)
			len = (size_t)(max - s->sent);
		if (len && w->host->send_ref(c, w->pattern + s->sent % CG_BLOCK,
					     len) < 0) {
			w->host->close(c);
			return;
		}
		s->sent += len;
		if (max && s->sent >= max) {
			w->host->close(c);
			return;
		}
	}
}

static int chargen_open(struct ringd_conn *c)
{
	const struct chargen_worker *w = c->wstate;
	struct chargen_conn *s = calloc(1, sizeof(*s));

	if (!s)
		return -1;
	c->data = s;
	if (w->cfg->max_time_ms > 0)
		w->host->set_timeout(c, w->cfg->max_time_ms);
	chargen_push(c);
	return 0;
}

static void chargen_close(struct ringd_conn *c)
{
	free(c->data);
	c->data = NULL;
}

/* Input is ignored; the daemon keeps reading it because chargen never
 * queues enough to pause reads. */
static void chargen_data(struct ringd_conn *c, const void *buf, size_t len)
{
	(void)c;
	(void)buf;
	(void)len;
}

/* A half-close does not end the stream: RFC 864 sends until the client
 * closes the connection (or a limit ends it). */
static void chargen_eof(struct ringd_conn *c)
{
	(void)c;
}

static uint64_t chargen_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

/* RFC 864: a random number of characters between 0 and 512; each reply
 * starts one line further along, as a stream would. */
static void chargen_datagram(struct ringd_dgram *d, const void *buf, size_t len)
{
	struct chargen_worker *w = d->wstate;
	size_t n = (size_t)(chargen_rand(&w->rng) % (CG_UDP_MAX + 1));

	(void)buf;
	(void)len;
	w->host->reply(d, w->pattern + (size_t)w->udp_line * CG_ROW, n);
	w->udp_line = (w->udp_line + 1) % CG_NCHARS;
}

__attribute__((visibility("default"))) const struct ringd_plugin ringd_plugin = {
	.abi = RINGD_PLUGIN_ABI,
	.size = sizeof(struct ringd_plugin),
	.name = "chargen",
	.description = "RFC 864 character generator: streams the rotating "
		       "72-character pattern",
	.transports = RINGD_STREAM | RINGD_DGRAM,
	.keys = chargen_keys,
	.config_size = sizeof(struct chargen_config),
	.check = chargen_check,
	.start = chargen_start,
	.stop = chargen_stop,
	.on_open = chargen_open,
	.on_data = chargen_data,
	.on_eof = chargen_eof,
	.on_writable = chargen_push,
	.on_close = chargen_close,
	.on_datagram = chargen_datagram,
};
