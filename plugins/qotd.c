/* qotd (RFC 865): one quote from a fortune-format file, on connect (TCP,
 * then close) or for any datagram (UDP). check() loads and validates the
 * file into the config; the daemon guards UDP and drains ignored input. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ringd/plugin.h>

/* RFC 865 asks for quotes under 512 bytes; the limit counts the CRLF line
 * ends we send, so every reply also fits the daemon's UDP size guard. */
#define QOTD_MAX_QUOTE 511
/* A quotes file is text a person wrote; anything larger is a mistake. */
#define QOTD_MAX_FILE (16 << 20)
/* A binary file given by mistake would yield an error per line. */
#define QOTD_MAX_ERRORS 20

enum qotd_pick { PICK_DAILY, PICK_RANDOM, PICK_SEQUENTIAL };

struct qotd_quote {
	size_t off; /* into qotd_config.text, which grows while loading */
	size_t len;
};

struct qotd_config {
	const char *path; /* key quotes */
	int pick;	  /* key pick: enum qotd_pick */
	char *text;	  /* every quote, CRLF line ends, back to back */
	struct qotd_quote *q;
	size_t n;
};

struct qotd_worker {
	const struct ringd_host *host;
	const struct qotd_config *cfg;
	uint64_t rng; /* pick = random */
	size_t next;  /* pick = sequential: this worker's own sequence */
};

/* State of one pass over the file. */
struct qotd_load {
	struct qotd_config *cfg;
	struct ringd_check *chk;
	ringd_check_error_fn err;
	size_t nerr;
	size_t cap;	/* entries allocated in cfg->q */
	size_t out;	/* bytes used in cfg->text */
	size_t start;	/* offset in cfg->text of the quote being read */
	size_t keep;	/* its length up to its last non-blank line */
	unsigned first; /* line number of its first line; 0: none yet */
	bool bad;	/* it holds a refused byte */
};

static const char *const qotd_picks[] = { "daily", "random", "sequential",
					  NULL };

static const struct ringd_key qotd_keys[] = {
	/* Relative, so the daemon finds the file it installed. */
	{ .name = "quotes", .type = RINGD_KEY_PATH, .def = "quotes",
	  .offset = offsetof(struct qotd_config, path),
	  .help = "quotes file: fortune format, quotes separated by lines "
		  "holding only %; the default is the one in ringd's data "
		  "directory (datadir/ringd/quotes)" },
	{ .name = "pick", .type = RINGD_KEY_ENUM, .def = "daily",
	  .choices = qotd_picks, .offset = offsetof(struct qotd_config, pick),
	  .help = "daily (same quote for everyone each UTC day), random or "
		  "sequential (each worker keeps its own sequence)" },
	{ .name = NULL },
};

static void qotd_error(struct qotd_load *ld, unsigned line, const char *fmt,
		       ...) __attribute__((format(printf, 3, 4)));

static void qotd_error(struct qotd_load *ld, unsigned line, const char *fmt,
		       ...)
{
	char msg[256];
	va_list ap;

	ld->nerr++;
	if (ld->nerr > QOTD_MAX_ERRORS)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ld->err(ld->chk, "quotes", "%s:%u: %s", ld->cfg->path, line, msg);
}

static bool qotd_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ')
			return false;
	return true;
}

static int qotd_quote_end(struct qotd_load *ld)
{
	struct qotd_config *cfg = ld->cfg;
	size_t len = ld->keep - ld->start;

	if (ld->first && len > QOTD_MAX_QUOTE)
		qotd_error(ld, ld->first,
			   "quote is %zu bytes as sent (limit %d)", len,
			   QOTD_MAX_QUOTE);
	if (ld->first && len > 0 && len <= QOTD_MAX_QUOTE && !ld->bad) {
		if (cfg->n == ld->cap) {
			size_t cap = ld->cap ? ld->cap * 2 : 64;
			void *q = realloc(cfg->q, cap * sizeof(*cfg->q));

			if (!q)
				return -1;
			cfg->q = q;
			ld->cap = cap;
		}
		cfg->q[cfg->n++] =
			(struct qotd_quote){ .off = ld->start, .len = len };
		ld->out = ld->keep;
	} else {
		ld->out = ld->start;
	}
	ld->start = ld->keep = ld->out;
	ld->first = 0;
	ld->bad = false;
	return 0;
}

/* Reports the first refused byte of a line: one message per line is
 * enough to find it, and a binary file stays readable. */
static void qotd_line_bytes(struct qotd_load *ld, const unsigned char *s,
			    size_t len, unsigned line)
{
	for (size_t i = 0; i < len; i++) {
		if ((s[i] >= 0x20 && s[i] <= 0x7e) || s[i] == '\r')
			continue;
		qotd_error(ld, line, "byte 0x%02x is not printable ASCII",
			   s[i]);
		ld->bad = true;
		return;
	}
}

/* One line of the file, without its LF (and without the CR of a CRLF
 * file). Blank lines around a quote are dropped; inner ones kept. */
static int qotd_line(struct qotd_load *ld, const char *s, size_t len,
		     unsigned line)
{
	char *out = ld->cfg->text;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (len == 1 && s[0] == '%')
		return qotd_quote_end(ld);
	qotd_line_bytes(ld, (const unsigned char *)s, len, line);
	if (!ld->first && qotd_blank(s, len))
		return 0;
	if (!ld->first)
		ld->first = line;
	memcpy(out + ld->out, s, len);
	memcpy(out + ld->out + len, "\r\n", 2);
	ld->out += len + 2;
	if (!qotd_blank(s, len))
		ld->keep = ld->out;
	return 0;
}

static int qotd_parse(struct qotd_load *ld, const char *buf, size_t size)
{
	const char *p = buf, *end = buf + size, *nl;
	unsigned line = 1;

	for (; p < end; p = nl + 1, line++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		if (qotd_line(ld, p, (size_t)(nl - p), line) < 0)
			return -1;
	}
	return qotd_quote_end(ld);
}

/* Reads the whole file; NULL with errno set: EINVAL for a file that is not
 * a regular file, EFBIG for one over QOTD_MAX_FILE. */
/* O_NONBLOCK: a FIFO named as the quotes file must fail the S_ISREG
 * check, not hang ringd -t in open(). */
static char *qotd_slurp(const char *path, size_t *size)
{
	struct stat st;
	char *buf = NULL;
	ssize_t r = 0;
	size_t got = 0;
	int saved, fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0)
		goto fail;
	errno = EINVAL;
	if (!S_ISREG(st.st_mode))
		goto fail;
	errno = EFBIG;
	if (st.st_size > QOTD_MAX_FILE)
		goto fail;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		goto fail;
	while (got < (size_t)st.st_size &&
	       (r = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
		got += (size_t)r;
	if (r < 0)
		goto fail;
	close(fd);
	*size = got;
	return buf;
fail:
	saved = errno;
	free(buf);
	close(fd);
	errno = saved;
	return NULL;
}

static void qotd_release(void *config)
{
	struct qotd_config *cfg = config;

	free(cfg->text);
	free(cfg->q);
	cfg->text = NULL;
	cfg->q = NULL;
	cfg->n = 0;
}

static int qotd_open_error(struct ringd_check *chk, ringd_check_error_fn err,
			   const char *path)
{
	if (errno == EINVAL)
		err(chk, "quotes", "%s: not a regular file", path);
	else if (errno == EFBIG)
		err(chk, "quotes", "%s: larger than %d MiB", path,
		    QOTD_MAX_FILE >> 20);
	else
		err(chk, "quotes", "%s: cannot open: %s", path,
		    strerror(errno));
	return -1;
}

static int qotd_check(void *config, struct ringd_check *chk,
		      ringd_check_error_fn err)
{
	struct qotd_config *cfg = config;
	struct qotd_load ld = { .cfg = cfg, .chk = chk, .err = err };
	size_t size;
	char *buf;

	if (!cfg->path || !cfg->path[0]) {
		err(chk, "quotes", "needs the path of a quotes file");
		return -1;
	}
	buf = qotd_slurp(cfg->path, &size);
	if (!buf)
		return qotd_open_error(chk, err, cfg->path);
	/* Each LF may become CRLF: twice the file is always enough. */
	cfg->text = malloc(2 * size + 2);
	if (!cfg->text || qotd_parse(&ld, buf, size) < 0) {
		err(chk, "quotes", "%s: out of memory", cfg->path);
		ld.nerr++;
	} else if (ld.nerr > QOTD_MAX_ERRORS) {
		err(chk, "quotes", "%s: %zu more errors not shown", cfg->path,
		    ld.nerr - QOTD_MAX_ERRORS);
	} else if (ld.nerr == 0 && cfg->n == 0) {
		err(chk, "quotes", "%s: no quotes (a file of quotes separated "
		    "by lines holding only %%)", cfg->path);
		ld.nerr++;
	}
	free(buf);
	if (ld.nerr) {
		qotd_release(cfg);
		return -1;
	}
	return 0;
}

/* splitmix64: tiny, and good enough to pick a quote. */
static uint64_t qotd_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

static void *qotd_start(const struct ringd_host *host,
			const struct ringd_instance *inst, const void *config)
{
	struct qotd_worker *w = calloc(1, sizeof(*w));

	if (!w) {
		host->log(inst, RINGD_LOG_ERR, "qotd: out of memory");
		return NULL;
	}
	w->host = host;
	w->cfg = config;
	/* Without getrandom the clock and our address still differ per
	 * worker and per run; nothing secret depends on the choice. */
	if (getrandom(&w->rng, sizeof(w->rng), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(w->rng))
		w->rng = (uint64_t)host->now() ^ (uint64_t)(uintptr_t)w;
	return w;
}

static void qotd_stop(void *wstate)
{
	free(wstate);
}

static const struct qotd_quote *qotd_pick(struct qotd_worker *w)
{
	const struct qotd_config *cfg = w->cfg;
	const int64_t day_ns = 86400LL * 1000000000LL;
	int64_t now, day, n = (int64_t)cfg->n;
	uint64_t r, skip;

	switch (cfg->pick) {
	case PICK_RANDOM:
		/* Rejection keeps every quote equally likely. */
		skip = -(uint64_t)cfg->n % cfg->n;
		do
			r = qotd_rand(&w->rng);
		while (r < skip);
		return &cfg->q[r % cfg->n];
	case PICK_SEQUENTIAL:
		r = w->next;
		w->next = (w->next + 1) % cfg->n;
		return &cfg->q[r];
	default:
		/* Days since the epoch, rounded down even before 1970, so
		 * every worker and transport agrees for the whole UTC day. */
		now = w->host->now();
		day = now / day_ns - (now % day_ns < 0);
		return &cfg->q[((day % n) + n) % n];
	}
}

/* Input is never read: the daemon drains it after our FIN, so bytes from
 * the client cannot delay the quote. */
static int qotd_open(struct ringd_conn *c)
{
	struct qotd_worker *w = c->wstate;
	const struct qotd_quote *q = qotd_pick(w);

	w->host->send_ref(c, w->cfg->text + q->off, q->len);
	w->host->close(c);
	return 0;
}

static void qotd_datagram(struct ringd_dgram *d, const void *buf, size_t len)
{
	struct qotd_worker *w = d->wstate;
	const struct qotd_quote *q = qotd_pick(w);

	(void)buf;
	(void)len;
	w->host->reply(d, w->cfg->text + q->off, q->len);
}

__attribute__((visibility("default"))) const struct ringd_plugin ringd_plugin = {
	.abi = RINGD_PLUGIN_ABI,
	.size = sizeof(struct ringd_plugin),
	.name = "qotd",
	.description = "RFC 865 quote of the day: one quote, then close",
	.transports = RINGD_STREAM | RINGD_DGRAM,
	.keys = qotd_keys,
	.config_size = sizeof(struct qotd_config),
	.check = qotd_check,
	.release = qotd_release,
	.start = qotd_start,
	.stop = qotd_stop,
	.on_open = qotd_open,
	.on_datagram = qotd_datagram,
};
