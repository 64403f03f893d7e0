/* loadgen: a single-threaded epoll client that keeps N echo connections busy
 * with request/response ping-pong, verifies every byte and reports req/s,
 * latency percentiles and the server's CPU time per request. With --churn each
 * request gets a connection of its own, to measure accepting and closing.
 * With --floor it serves itself from one blocking thread to show what the
 * kernel alone costs. With --http PATH each request is a keep-alive GET and
 * each reply an HTTP response checked for status 200, Content-Length framing
 * and the same body every time.
 * It knows nothing of ringd; bench/run.sh chooses servers and pins CPUs. */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Each request is a slice of one shared random pattern, starting at an offset
 * that depends on (connection, sequence number), and its first bytes carry
 * the connection id and sequence number. Bytes from another connection or
 * from an earlier request therefore never compare equal. */
#define PATTERN_SLACK 65536u
#define HDR_LEN 16u
#define MAX_SIZE ((size_t)64 << 20)
#define MAX_CONNS 100000u
#define SCRATCH_MAX ((size_t)256 << 10)
#define MAX_EVENTS 256
/* HTTP mode: the largest response head and body loadgen accepts. */
#define HTTP_HEAD_MAX 8192u
#define HTTP_BODY_MAX ((size_t)1 << 20)
#define HTTP_SCRATCH ((size_t)64 << 10)

/* Log-linear histogram of nanoseconds: 64 linear steps per power of two,
 * so a reported percentile is within 1/128 of the true value. */
#define HIST_SUB_BITS 6u
#define HIST_SUB (1u << HIST_SUB_BITS)
#define HIST_BUCKETS (HIST_SUB * 60u)

struct opts {
	const char *host;
	unsigned port;
	unsigned conns;
	size_t size;
	double duration;
	double warmup;
	double stall;
	long pid;
	const char *name;
	bool floor;
	int floor_cpu;
	bool churn;
	const char *http_path;
	bool size_set;
};

struct conn {
	int fd;
	uint32_t id;
	bool busy;
	bool out_armed;
	uint64_t seq;
	size_t sent;
	size_t got;
	uint32_t off;
	uint64_t t_start;
	uint64_t t_progress;
	unsigned char hdr[HDR_LEN];
	/* HTTP mode: a response head split across reads is gathered in acc
	 * (allocated on first need); got counts body bytes. */
	char *acc;
	size_t acc_len;
	size_t body_len;
	bool in_body;
	bool eof_wait;
	bool server_closes;
};

struct hist {
	uint64_t count;
	uint64_t sum;
	uint64_t max;
	uint64_t b[HIST_BUCKETS];
};

struct floor_srv {
	int lfd;
	unsigned nconns;
	size_t size;
	int cpu;
	pthread_t thread;
};

static struct opts opt = {
	.host = "127.0.0.1",
	.port = 0,
	.conns = 1,
	.size = 64,
	.duration = 10.0,
	.warmup = 2.0,
	.stall = 5.0,
	.pid = 0,
	.name = NULL,
	.floor = false,
	.floor_cpu = -1,
	.churn = false,
	.http_path = NULL,
	.size_set = false,
};

static struct sockaddr_in server_sa;
static unsigned char *pattern;
static unsigned char *scratch;
static size_t scratch_len;
static struct conn *conns;
static unsigned alive;
static struct hist hist;
static bool measuring;
static uint64_t win_reqs;
static uint64_t win_bytes;
static uint64_t total_verified;
static unsigned errors;
/* HTTP mode: the request every connection sends, and the body of the first
 * complete response, which every later response must repeat byte for byte. */
static char *http_req;
static size_t http_req_len;
static unsigned char *ref_body;
static size_t ref_len;
static bool ref_set;
static uint64_t win_resp_bytes;
static uint64_t total_responses;
static unsigned reconnects;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("loadgen: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

static void on_alarm(int sig)
{
	static const char msg[] = "loadgen: hard time limit reached; exiting\n";
	ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)r;
	(void)sig;
	_exit(3);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) < 0)
		die("clock_gettime: %s", strerror(errno));
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return x ^ (x >> 31);
}

static unsigned hist_index(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * HIST_SUB)
		return (unsigned)v;
	msb = 63u - (unsigned)__builtin_clzll(v);
	shift = msb - HIST_SUB_BITS;
	return (shift + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* The midpoint of a bucket, in nanoseconds. */
static double hist_value(unsigned idx)
{
	unsigned shift;
	uint64_t low;

	if (idx < 2 * HIST_SUB)
		return (double)idx;
	shift = idx / HIST_SUB - 1;
	low = ((uint64_t)(idx % HIST_SUB) + HIST_SUB) << shift;
	return (double)low + (double)(((uint64_t)1 << shift) - 1) / 2.0;
}

static void hist_add(struct hist *h, uint64_t v)
{
	h->b[hist_index(v)]++;
	h->count++;
	h->sum += v;
	if (v > h->max)
		h->max = v;
}

static double hist_percentile_us(const struct hist *h, double p)
{
	uint64_t target, seen = 0;

	if (h->count == 0)
		return NAN;
	target = (uint64_t)(p * (double)h->count);
	if ((double)target < p * (double)h->count)
		target++;
	if (target < 1)
		target = 1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += h->b[i];
		if (seen >= target) {
			double v = hist_value(i);

			/* A bucket's midpoint can lie above the largest sample. */
			return (v < (double)h->max ? v : (double)h->max) / 1000.0;
		}
	}
	return (double)h->max / 1000.0;
}

/* Parses a byte count with an optional k/m suffix (powers of 1024). */
static bool parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return false;
	if (*end == 'k' || *end == 'K') {
		v <<= 10;
		end++;
	} else if (*end == 'm' || *end == 'M') {
		v <<= 20;
		end++;
	}
	if (*end == 'i' || *end == 'B')
		end += (end[0] == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end != '\0')
		return false;
	*out = (size_t)v;
	return true;
}

static double parse_seconds(const char *s, const char *what)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !(v >= 0.0) || v > 86400.0)
		die("%s: not a number of seconds: %s", what, s);
	return v;
}

static long parse_long(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < lo || v > hi)
		die("%s: expected an integer in [%ld, %ld], got %s", what, lo, hi, s);
	return v;
}

static void usage(FILE *f)
{
	fputs("usage: loadgen [options]\n"
	      "  --host ADDR       server address (default 127.0.0.1)\n"
	      "  --port P          server port (required unless --floor)\n"
	      "  --conns N         concurrent connections (default 1)\n"
	      "  --size S          request size in bytes, k/m suffixes (default 64)\n"
	      "  --duration D      measured seconds (default 10)\n"
	      "  --warmup W        seconds before measuring, excluded (default 2)\n"
	      "  --stall T         abort when a request makes no progress for T s (default 5)\n"
	      "  --pid PID         server process: report its CPU time per request\n"
	      "  --name LABEL      label for the RESULT line\n"
	      "  --floor           serve from an in-process blocking thread (kernel floor)\n"
	      "  --floor-cpu C     pin that server thread to CPU C\n"
	      "  --churn           open a new connection per request and close it after\n"
	      "                    the reply (connections/s); --conns of them in parallel\n"
	      "  --http PATH       HTTP: GET PATH HTTP/1.1 on keep-alive connections; each\n"
	      "                    response needs status 200, Content-Length and the body\n"
	      "                    of the first one. With --churn: Connection: close, and\n"
	      "                    the server must close after the response\n",
	      f);
}

/* One option from getopt_long(); --help and bad values exit from here. */
static void parse_opt(int c)
{
	switch (c) {
	case 'H':
		opt.host = optarg;
		break;
	case 'p':
		opt.port = (unsigned)parse_long(optarg, "--port", 1, 65535);
		break;
	case 'c':
		opt.conns = (unsigned)parse_long(optarg, "--conns", 1, MAX_CONNS);
		break;
	case 's':
		if (!parse_size(optarg, &opt.size) || opt.size < 1 || opt.size > MAX_SIZE)
			die("--size: expected 1 to %zu bytes, got %s", MAX_SIZE, optarg);
		opt.size_set = true;
		break;
	case 'd':
		opt.duration = parse_seconds(optarg, "--duration");
		break;
	case 'w':
		opt.warmup = parse_seconds(optarg, "--warmup");
		break;
	case 'S':
		opt.stall = parse_seconds(optarg, "--stall");
		break;
	case 'P':
		opt.pid = parse_long(optarg, "--pid", 1, 0x7fffffff);
		break;
	case 'n':
		opt.name = optarg;
		break;
	case 'f':
		opt.floor = true;
		break;
	case 'C':
		opt.floor_cpu = (int)parse_long(optarg, "--floor-cpu", 0, CPU_SETSIZE - 1);
		break;
	case 'K':
		opt.churn = true;
		break;
	case 'T':
		if (optarg[0] != '/' || strpbrk(optarg, " \t\r\n") || strlen(optarg) > 4096)
			die("--http: expected an origin-form path (/...) without blanks, got %s",
			    optarg);
		opt.http_path = optarg;
		break;
	case 'h':
		usage(stdout);
		exit(0);
	default:
		usage(stderr);
		exit(2);
	}
}

/* What parse_opt() cannot reject as each option arrives: values its parsers
 * let through, and options that exclude each other in either order. */
static void check_opts(void)
{
	if (opt.duration <= 0.0)
		die("--duration must be positive");
	if (opt.stall <= 0.0)
		die("--stall must be positive");
	if (!opt.floor && opt.port == 0)
		die("--port is required (or --floor)");
	if (opt.floor && opt.pid)
		die("--pid and --floor exclude each other: the floor measures its own thread");
	if (opt.floor && opt.port)
		die("--floor picks its own ephemeral port; drop --port");
	/* The floor server accepts its N connections once and then only echoes. */
	if (opt.floor && opt.churn)
		die("--churn and --floor exclude each other");
	if (opt.http_path && opt.floor)
		die("--http and --floor exclude each other: the floor is an echo server");
	if (opt.http_path && opt.size_set)
		die("--http sends a fixed GET request; drop --size");
}

static void parse_args(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "conns", required_argument, NULL, 'c' },
		{ "size", required_argument, NULL, 's' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "stall", required_argument, NULL, 'S' },
		{ "pid", required_argument, NULL, 'P' },
		{ "name", required_argument, NULL, 'n' },
		{ "floor", no_argument, NULL, 'f' },
		{ "floor-cpu", required_argument, NULL, 'C' },
		{ "churn", no_argument, NULL, 'K' },
		{ "http", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1)
		parse_opt(c);
	if (optind != argc)
		die("unexpected argument: %s", argv[optind]);
	check_opts();
}

/* CPU of the server process and all its descendants, in nanoseconds.
 * Descendants matter for forking servers such as xinetd's internal services.
 * The root counts utime + stime from /proc/PID/stat, which covers all its
 * threads, exited ones included. A descendant counts the exact runtimes in
 * its threads' schedstat instead: with dozens of mostly idle children, a
 * 10 ms rounding per process would swamp the result. Every member adds
 * cutime + cstime, which hold its reaped children. */
struct proc_ent {
	long pid;
	long ppid;
	uint64_t own_ticks;
	uint64_t child_ticks;
};

static bool proc_read_stat(const char *path, struct proc_ent *e)
{
	char buf[1024];
	unsigned long long v[15];
	FILE *f = fopen(path, "re");
	size_t n;
	char *p;

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may contain spaces and parentheses. */
	p = strrchr(buf, ')');
	if (!p)
		return false;
	p++;
	for (unsigned i = 0; i < 15; i++) {
		char *end;

		while (*p == ' ')
			p++;
		if (i == 0) {
			/* The state letter. */
			v[0] = 0;
			while (*p && *p != ' ')
				p++;
			continue;
		}
		errno = 0;
		v[i] = strtoull(p, &end, 10);
		if (end == p || errno)
			return false;
		p = end;
	}
	e->ppid = (long)v[1];
	e->own_ticks = v[11] + v[12];
	e->child_ticks = v[13] + v[14];
	return true;
}

/* Sum of sum_exec_runtime over the live threads of a process; false if
 * schedstat is unavailable. */
static bool proc_threads_ns(long pid, uint64_t *ns)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	bool any = false;

	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	d = opendir(path);
	if (!d)
		return false;
	*ns = 0;
	while ((de = readdir(d))) {
		char file[320];
		unsigned long long run;
		FILE *f;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(file, sizeof(file), "/proc/%ld/task/%s/schedstat", pid, de->d_name);
		f = fopen(file, "re");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &run) == 1) {
			*ns += run;
			any = true;
		}
		fclose(f);
	}
	closedir(d);
	return any;
}

static int proc_ent_cmp(const void *a, const void *b)
{
	const struct proc_ent *x = a, *y = b;

	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* Every process, sorted by pid so that parents can be found by bsearch(). */
static struct proc_ent *proc_scan(size_t *count)
{
	struct proc_ent *ents = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (!d)
		die("opendir /proc: %s", strerror(errno));
	while ((de = readdir(d))) {
		char path[300];
		struct proc_ent e;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		if (!proc_read_stat(path, &e))
			continue;
		e.pid = atol(de->d_name);
		if (n == cap) {
			cap = cap ? cap * 2 : 512;
			ents = realloc(ents, cap * sizeof(*ents));
			if (!ents)
				die("out of memory");
		}
		ents[n++] = e;
	}
	closedir(d);
	qsort(ents, n, sizeof(*ents), proc_ent_cmp);
	*count = n;
	return ents;
}

static uint64_t proc_tree_ns(long root, unsigned *members)
{
	static uint64_t ns_per_tick;
	struct proc_ent *ents;
	size_t n;
	uint64_t total = 0;

	if (!ns_per_tick)
		ns_per_tick = 1000000000u / (uint64_t)sysconf(_SC_CLK_TCK);
	ents = proc_scan(&n);
	*members = 0;
	for (size_t i = 0; i < n; i++) {
		long p = ents[i].pid;

		for (unsigned depth = 0; depth < 64 && p > 1; depth++) {
			struct proc_ent key = { .pid = p };
			struct proc_ent *e;
			uint64_t ns;

			if (p == root) {
				if (ents[i].pid == root || !proc_threads_ns(ents[i].pid, &ns))
					ns = ents[i].own_ticks * ns_per_tick;
				total += ns + ents[i].child_ticks * ns_per_tick;
				(*members)++;
				break;
			}
			e = bsearch(&key, ents, n, sizeof(*ents), proc_ent_cmp);
			if (!e)
				break;
			p = e->ppid;
		}
	}
	free(ents);
	return total;
}

static uint64_t server_cpu_ns(unsigned *members)
{
	uint64_t ns = proc_tree_ns(opt.pid, members);

	if (*members == 0)
		die("server pid %ld is gone", opt.pid);
	return ns;
}

static void set_nodelay(int fd)
{
	int one = 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		die("setsockopt TCP_NODELAY: %s", strerror(errno));
}

/* The floor server: one thread, blocking sockets, no readiness API. It
 * serves the connections round-robin, echoing one whole request on each in
 * turn. The client keeps a request outstanding on every connection, so with
 * many connections the data is already queued when the thread gets there and
 * the loop is nothing but recv + send. */
static void send_all(int fd, const unsigned char *buf, size_t len, bool *ok)
{
	while (len > 0) {
		ssize_t r = send(fd, buf, len, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			*ok = false;
			return;
		}
		buf += r;
		len -= (size_t)r;
	}
}

static void floor_pin(int cpu)
{
	cpu_set_t set;
	int err;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (err)
		die("floor: pin server thread to CPU %d: %s", cpu, strerror(err));
}

/* All N connections are accepted before the first echo: round-robin needs
 * the whole set, and no client arrives later. */
static void floor_accept(struct floor_srv *fs, int *fds)
{
	unsigned open = 0;

	while (open < fs->nconns) {
		int fd = accept4(fs->lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			die("floor: accept: %s", strerror(errno));
		}
		set_nodelay(fd);
		fds[open++] = fd;
	}
	close(fs->lfd);
}

/* Echoes one whole request; false once the connection has failed or the
 * client has closed it. */
static bool floor_echo(int fd, unsigned char *buf, size_t bufsz, size_t size)
{
	size_t done = 0;
	bool ok = true;

	while (ok && done < size) {
		size_t want = size - done;
		ssize_t r = recv(fd, buf, want < bufsz ? want : bufsz, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		send_all(fd, buf, (size_t)r, &ok);
		done += (size_t)r;
	}
	return ok;
}

static void *floor_main(void *arg)
{
	struct floor_srv *fs = arg;
	size_t bufsz = fs->size < ((size_t)1 << 20) ? fs->size : ((size_t)1 << 20);
	unsigned char *buf = malloc(bufsz);
	int *fds = calloc(fs->nconns, sizeof(*fds));
	unsigned open = fs->nconns;

	if (!buf || !fds)
		die("out of memory");
	if (fs->cpu >= 0)
		floor_pin(fs->cpu);
	floor_accept(fs, fds);

	while (open > 0) {
		for (unsigned i = 0; i < fs->nconns; i++) {
			if (fds[i] >= 0 && !floor_echo(fds[i], buf, bufsz, fs->size)) {
				close(fds[i]);
				fds[i] = -1;
				open--;
			}
		}
	}
	free(fds);
	free(buf);
	return NULL;
}

static void floor_start(struct floor_srv *fs)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	int err;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fs->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fs->lfd < 0)
		die("floor: socket: %s", strerror(errno));
	if (bind(fs->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fs->lfd, 4096) < 0 ||
	    getsockname(fs->lfd, (struct sockaddr *)&sa, &len) < 0)
		die("floor: listen on 127.0.0.1: %s", strerror(errno));
	opt.port = ntohs(sa.sin_port);
	fs->nconns = opt.conns;
	fs->size = opt.size;
	fs->cpu = opt.floor_cpu;
	err = pthread_create(&fs->thread, NULL, floor_main, fs);
	if (err)
		die("floor: pthread_create: %s", strerror(err));
}

static int ref_owner = -1;

static void conn_fail(struct conn *c, const char *what, int err)
{
	if (ref_owner == (int)c->id)
		ref_owner = -1;
	fprintf(stderr, "loadgen: conn %u: %s%s%s; closing it (request #%" PRIu64
		", sent %zu/%zu, received %zu)\n",
		c->id, what, err ? ": " : "", err ? strerror(err) : "", c->seq,
		c->sent, opt.size, c->got);
	close(c->fd);
	c->fd = -1;
	c->busy = false;
	errors++;
	if (--alive == 0)
		die("all connections failed; no result");
}

static void put_le(unsigned char *p, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void req_begin(struct conn *c, uint64_t now)
{
	uint64_t h;

	c->seq++;
	h = mix64(((uint64_t)c->id << 40) ^ c->seq);
	c->off = (uint32_t)(h % PATTERN_SLACK);
	put_le(c->hdr, c->id, 4);
	put_le(c->hdr + 4, c->seq, 8);
	put_le(c->hdr + 12, h >> 32, 4);
	c->sent = 0;
	c->got = 0;
	c->acc_len = 0;
	c->body_len = 0;
	c->in_body = false;
	c->eof_wait = false;
	c->server_closes = false;
	c->busy = true;
	c->t_start = now;
	c->t_progress = now;
}

static void conn_want_out(struct conn *c, int epfd, bool on)
{
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };

	if (c->out_armed == on)
		return;
	if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	c->out_armed = on;
}

/* A persistent connection, non-blocking once connected. Over loopback the
 * blocking connect returns at once or fails. */
static int connect_one(unsigned i)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&server_sa, sizeof(server_sa)) < 0)
		die("connect %s:%u (connection %u of %u): %s", opt.host, opt.port, i + 1,
		    opt.conns, strerror(errno));
	set_nodelay(fd);
	if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
		die("fcntl: %s", strerror(errno));
	return fd;
}

static void conn_watch(struct conn *c, int epfd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };

	c->out_armed = false;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
}

/* HTTP mode: the request is the same few bytes every time. */
static bool http_send(struct conn *c, int epfd)
{
	while (c->sent < http_req_len) {
		ssize_t r = send(c->fd, http_req + c->sent, http_req_len - c->sent, MSG_NOSIGNAL);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_want_out(c, epfd, true);
				return true;
			}
			conn_fail(c, "send", errno);
			return false;
		}
		c->sent += (size_t)r;
		c->t_progress = now_ns();
	}
	conn_want_out(c, epfd, false);
	return true;
}

/* Sends what is left of the current request; returns false if the
 * connection failed. */
static bool conn_send(struct conn *c, int epfd)
{
	size_t hl = opt.size < HDR_LEN ? opt.size : HDR_LEN;

	if (opt.http_path)
		return http_send(c, epfd);
	while (c->sent < opt.size) {
		struct iovec iov[2];
		struct msghdr msg = { .msg_iov = iov };
		size_t from = c->sent > hl ? c->sent : hl;
		ssize_t r;

		if (c->sent < hl)
			iov[msg.msg_iovlen++] = (struct iovec){ c->hdr + c->sent, hl - c->sent };
		if (from < opt.size)
			iov[msg.msg_iovlen++] =
				(struct iovec){ pattern + c->off + from, opt.size - from };
		r = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				conn_want_out(c, epfd, true);
				return true;
			}
			conn_fail(c, "send", errno);
			return false;
		}
		c->sent += (size_t)r;
		c->t_progress = now_ns();
	}
	conn_want_out(c, epfd, false);
	return true;
}

/* Over loopback a churning client soon has tens of thousands of its own
 * TIME_WAIT sockets, and connect() then searches the 28k ephemeral ports
 * for one whose 4-tuple is free: that search made loadgen's cost per
 * connection vary 2-3x with the state of the TIME_WAIT table, and its p99
 * with it. All of 127/8 is loopback, so spreading the source address over
 * 127.0.0.2-127.0.0.254 gives every connect a free 4-tuple at once; the
 * destination stays --host. IP_BIND_ADDRESS_NO_PORT leaves the port to
 * connect(), which then needs only the 4-tuple, not the port, to be free. */
static void churn_bind_source(int fd, uint64_t seq)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	int one = 1;

	if ((ntohl(server_sa.sin_addr.s_addr) >> 24) != 127)
		return;
	src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(seq % 253u));
	if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)&src, sizeof(src)) < 0)
		die("churn: bind to source 127.0.0.%u: %s", 2u + (unsigned)(seq % 253u),
		    strerror(errno));
}

/* --churn: every request opens a connection of its own, and its latency
 * includes the handshake. The socket is non-blocking from the start so that
 * a slow handshake (a full accept backlog drops SYNs) holds up only its own
 * slot. Over loopback connect() reports EINPROGRESS, but the handshake has
 * usually completed by the time it returns, so the send is tried at once;
 * conn_send() waits for EPOLLOUT only when it has not. */
static void churn_open(struct conn *c, int epfd, uint64_t now)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket: %s", strerror(errno));
	set_nodelay(fd);
	c->fd = fd;
	c->out_armed = false;
	req_begin(c, now);
	churn_bind_source(fd, c->seq * opt.conns + c->id);
	if (connect(fd, (const struct sockaddr *)&server_sa, sizeof(server_sa)) < 0 &&
	    errno != EINPROGRESS) {
		/* EADDRNOTAVAIL here means the ephemeral ports ran out. */
		conn_fail(c, "connect", errno);
		return;
	}
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		die("epoll_ctl: %s", strerror(errno));
	conn_send(c, epfd);
}

/* Ends a churn request once its reply is verified. The client closes first,
 * so TIME_WAIT lands on the client side (where loopback may reuse it, see
 * tcp_tw_reuse) and the server only answers the FIN, as a server facing
 * real clients usually does. close() also drops the fd from epoll. */
static void churn_next(struct conn *c, int epfd, uint64_t now, uint64_t t_end)
{
	close(c->fd);
	c->fd = -1;
	if (now < t_end)
		churn_open(c, epfd, now);
}

static void mismatch(const struct conn *c, const unsigned char *data, size_t len)
{
	size_t hl = opt.size < HDR_LEN ? opt.size : HDR_LEN;

	for (size_t i = 0; i < len; i++) {
		size_t pos = c->got + i;
		unsigned char want = pos < hl ? c->hdr[pos] : pattern[c->off + pos];

		if (data[i] == want)
			continue;
		fflush(stdout);
		fprintf(stderr,
			"loadgen: MISMATCH on conn %u, request #%" PRIu64 ", byte %zu of %zu: "
			"expected 0x%02x, got 0x%02x\n",
			c->id, c->seq, pos, opt.size, want, data[i]);
		if (c->got == 0 && len >= HDR_LEN && hl == HDR_LEN) {
			uint64_t id = get_le(data, 4), seq = get_le(data + 4, 8);
			uint64_t check = mix64((id << 40) ^ seq) >> 32;
			/* Name the culprit only when the whole header is genuine. */
			bool genuine = get_le(data + 12, 4) == check;

			if (genuine && id != c->id && id < opt.conns)
				fprintf(stderr, "loadgen: the reply starts like request #%" PRIu64
					" of conn %" PRIu64 ": data crossed connections\n",
					seq, id);
			else if (genuine && id == c->id && seq != c->seq)
				fprintf(stderr, "loadgen: the reply starts like request #%" PRIu64
					" of this connection: stale or reordered data\n",
					seq);
		}
		exit(2);
	}
}

static void verify(const struct conn *c, const unsigned char *data, size_t len)
{
	size_t hl = opt.size < HDR_LEN ? opt.size : HDR_LEN;
	size_t pos = c->got, i = 0;

	if (pos < hl) {
		size_t n = hl - pos < len ? hl - pos : len;

		if (memcmp(data, c->hdr + pos, n) != 0)
			mismatch(c, data, len);
		i = n;
	}
	if (i < len && memcmp(data + i, pattern + c->off + pos + i, len - i) != 0)
		mismatch(c, data, len);
}

/* The server echoed more of this request than loadgen has sent. verify()
 * names what the bytes resemble when it can; either way the run is void. */
static void reply_overrun(const struct conn *c, size_t len) __attribute__((noreturn));

static void reply_overrun(const struct conn *c, size_t len)
{
	fflush(stdout);
	fprintf(stderr, "loadgen: PROTOCOL ERROR on conn %u, request #%" PRIu64
		": received %zu bytes but only %zu were sent\n",
		c->id, c->seq, c->got + len, c->sent);
	verify(c, scratch, len);
	exit(2);
}

/* Counts a complete reply if it falls in the window, then starts the next
 * request (a new connection with --churn) unless the run is over. */
static void reply_done(struct conn *c, int epfd, uint64_t now, uint64_t t_end)
{
	c->busy = false;
	if (measuring) {
		hist_add(&hist, now - c->t_start);
		win_reqs++;
		win_bytes += opt.size;
	}
	if (opt.churn) {
		churn_next(c, epfd, now, t_end);
	} else if (now < t_end) {
		req_begin(c, now);
		conn_send(c, epfd);
	}
}

/* Nothing is outstanding, so any byte now is one too many. */
static void idle_check(const struct conn *c)
{
	ssize_t r = recv(c->fd, scratch, 1, MSG_DONTWAIT);

	if (r > 0) {
		fflush(stdout);
		fprintf(stderr, "loadgen: PROTOCOL ERROR on conn %u: server sent bytes "
			"after the complete reply to request #%" PRIu64 "\n",
			c->id, c->seq);
		exit(2);
	}
}

static void http_error(const struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void http_error(const struct conn *c, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "loadgen: PROTOCOL ERROR on conn %u, request #%" PRIu64 ": ", c->id,
		c->seq);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

/* The first line of a head, printable, for error messages. */
static const char *http_first_line(const char *head, size_t len)
{
	static char line[128];
	size_t n = 0;

	for (size_t i = 0; i < len && head[i] != '\r' && head[i] != '\n' && n + 5 < sizeof(line); i++) {
		unsigned char ch = (unsigned char)head[i];

		n += (size_t)snprintf(line + n, sizeof(line) - n, isprint(ch) ? "%c" : "\\x%02x", ch);
	}
	line[n] = '\0';
	return line;
}

static bool http_name_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && strncasecmp(name, want, len) == 0;
}

/* Checks a complete response head (status line to the empty line) and takes
 * its framing: Content-Length is required, Transfer-Encoding refused, and
 * `Connection: close` noted. No other field is looked at. */
static void http_parse_head(struct conn *c, const char *head, size_t hl)
{
	const char *p = memchr(head, '\n', hl), *end = head + hl - 2;
	bool have_len = false;
	size_t len = 0;

	if (hl < 16 || memcmp(head, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)head[7]) ||
	    memcmp(head + 8, " 200", 4) != 0 || (head[12] != ' ' && head[12] != '\r'))
		http_error(c, "expected status 200, got \"%s\"", http_first_line(head, hl));
	for (p++; p < end;) {
		const char *eol = memchr(p, '\n', (size_t)(end - p) + 1);
		const char *colon = memchr(p, ':', (size_t)(eol - p));
		const char *v, *ve = eol;

		if (!colon || eol[-1] != '\r')
			http_error(c, "malformed header line in a response to GET %s", opt.http_path);
		v = colon + 1;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		ve--;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (http_name_is(p, (size_t)(colon - p), "content-length")) {
			size_t n = 0;

			if (v == ve)
				http_error(c, "empty Content-Length");
			for (const char *q = v; q < ve; q++) {
				if (!isdigit((unsigned char)*q) || n > HTTP_BODY_MAX)
					http_error(c, "bad or too large Content-Length (limit %zu)",
						   HTTP_BODY_MAX);
				n = n * 10 + (size_t)(*q - '0');
			}
			if (n > HTTP_BODY_MAX || (have_len && n != len))
				http_error(c, "bad, conflicting or too large Content-Length");
			len = n;
			have_len = true;
		} else if (http_name_is(p, (size_t)(colon - p), "transfer-encoding")) {
			http_error(c, "Transfer-Encoding in the response: loadgen reads "
				      "Content-Length framing only");
		} else if (http_name_is(p, (size_t)(colon - p), "connection")) {
			for (const char *q = v; q + 5 <= ve; q++)
				if (strncasecmp(q, "close", 5) == 0)
					c->server_closes = true;
		}
		p = eol + 1;
	}
	if (!have_len)
		http_error(c, "response without Content-Length");
	if (ref_set && len != ref_len)
		http_error(c, "Content-Length %zu differs from the first response's %zu", len,
			   ref_len);
	if (!ref_set && ref_owner < 0) {
		/* This response's body becomes the reference. */
		free(ref_body);
		ref_body = malloc(len ? len : 1);
		if (!ref_body)
			die("out of memory");
		ref_len = len;
		ref_owner = (int)c->id;
	}
	c->body_len = len;
	c->got = 0;
	c->in_body = true;
	if (measuring)
		win_resp_bytes += hl + len;
}

/* Finds the end of the head in what arrived; false (all of it taken) while
 * the head is incomplete. Copies only a head split across reads. */
static bool http_head_take(struct conn *c, const unsigned char *data, size_t len, size_t *used)
{
	const unsigned char *e;
	size_t old = c->acc_len, take, from;

	if (old == 0) {
		e = memmem(data, len, "\r\n\r\n", 4);
		if (e) {
			*used = (size_t)(e + 4 - data);
			http_parse_head(c, (const char *)data, *used);
			return true;
		}
	}
	if (!c->acc && !(c->acc = malloc(HTTP_HEAD_MAX)))
		die("out of memory");
	take = len < HTTP_HEAD_MAX - old ? len : HTTP_HEAD_MAX - old;
	memcpy(c->acc + old, data, take);
	c->acc_len += take;
	from = old >= 3 ? old - 3 : 0;
	e = memmem(c->acc + from, c->acc_len - from, "\r\n\r\n", 4);
	if (!e) {
		if (c->acc_len == HTTP_HEAD_MAX)
			http_error(c, "response head longer than %u bytes", HTTP_HEAD_MAX);
		*used = take;
		return false;
	}
	*used = (size_t)(e + 4 - (const unsigned char *)c->acc) - old;
	http_parse_head(c, c->acc, (size_t)(e + 4 - (const unsigned char *)c->acc));
	c->acc_len = 0;
	return true;
}

/* Every body must repeat the first complete one byte for byte. */
static void http_body_check(struct conn *c, const unsigned char *data, size_t len)
{
	if (ref_set) {
		if (memcmp(ref_body + c->got, data, len) != 0)
			http_error(c, "body differs from the first response's (at byte %zu of %zu)",
				   c->got, ref_len);
	} else if (ref_owner == (int)c->id) {
		memcpy(ref_body + c->got, data, len);
	}
}

/* Takes bytes of the current response; true once the response is complete
 * and the next request (or connection) has been started. */
static bool http_feed(struct conn *c, int epfd, const unsigned char *data, size_t len,
		      uint64_t now, uint64_t t_end)
{
	size_t take;

	if (c->eof_wait)
		http_error(c, "%zu bytes after the complete response; the server should have "
			      "closed (Connection: close)", len);
	if (!c->in_body) {
		size_t used;

		if (!http_head_take(c, data, len, &used))
			return false;
		data += used;
		len -= used;
	}
	take = c->body_len - c->got < len ? c->body_len - c->got : len;
	http_body_check(c, data, take);
	c->got += take;
	len -= take;
	if (c->got < c->body_len)
		return false;
	if (len > 0)
		http_error(c, "%zu bytes after the complete response (no request was pipelined)",
			   len);
	c->in_body = false;
	total_responses++;
	if (ref_owner == (int)c->id) {
		ref_set = true;
		ref_owner = -1;
	}
	if (opt.churn) {
		/* The request said Connection: close: done when the server closes. */
		c->eof_wait = true;
		return false;
	}
	if (c->server_closes) {
		/* keepalive_requests ran out: both servers close after N requests. */
		close(c->fd);
		c->fd = connect_one(c->id);
		conn_watch(c, epfd);
		reconnects++;
	}
	reply_done(c, epfd, now, t_end);
	return true;
}

static void http_recv(struct conn *c, int epfd, uint64_t t_end)
{
	while (c->fd >= 0 && c->busy) {
		ssize_t r = recv(c->fd, scratch, scratch_len, 0);
		uint64_t now;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_fail(c, "recv", errno);
			return;
		}
		now = now_ns();
		if (r == 0) {
			if (c->eof_wait) {
				reply_done(c, epfd, now, t_end);
				return;
			}
			conn_fail(c, c->in_body || c->acc_len ? "server closed the connection "
				  "in the middle of a response" : "server closed the connection", 0);
			return;
		}
		total_verified += (uint64_t)r;
		c->t_progress = now;
		if (http_feed(c, epfd, scratch, (size_t)r, now, t_end))
			return;
	}
	if (c->fd >= 0 && !c->busy)
		idle_check(c);
}

/* Reads and checks what the server sent; on a complete reply records the
 * latency and starts the next request unless the run is over. */
static void conn_recv(struct conn *c, int epfd, uint64_t t_end)
{
	if (opt.http_path) {
		http_recv(c, epfd, t_end);
		return;
	}
	while (c->busy && c->got < opt.size) {
		size_t want = opt.size - c->got;
		ssize_t r = recv(c->fd, scratch, want < scratch_len ? want : scratch_len, 0);
		uint64_t now;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_fail(c, "recv", errno);
			return;
		}
		if (r == 0) {
			conn_fail(c, "server closed the connection", 0);
			return;
		}
		if (c->got + (size_t)r > c->sent)
			reply_overrun(c, (size_t)r);
		verify(c, scratch, (size_t)r);
		c->got += (size_t)r;
		total_verified += (uint64_t)r;
		now = now_ns();
		c->t_progress = now;
		if (c->got < opt.size)
			continue;
		/* The reply to the next request cannot be here yet: let epoll
		 * say when it is rather than spend a recv on EAGAIN. */
		reply_done(c, epfd, now, t_end);
		return;
	}
	if (!c->busy)
		idle_check(c);
}

static void stall_check(uint64_t now)
{
	uint64_t limit = (uint64_t)(opt.stall * 1e9);

	for (unsigned i = 0; i < opt.conns; i++) {
		const struct conn *c = &conns[i];

		if (c->fd < 0 || !c->busy || now - c->t_progress < limit)
			continue;
		if (opt.http_path)
			die("STALL on conn %u, request #%" PRIu64 ": no progress for %.1f s "
			    "(sent %zu/%zu; %s)",
			    c->id, c->seq, opt.stall, c->sent, http_req_len,
			    c->eof_wait ? "response complete, the server did not close"
			    : c->in_body ? "in the middle of the body"
			    : c->acc_len ? "in the middle of the head" : "no response yet");
		die("STALL on conn %u, request #%" PRIu64 ": no progress for %.1f s "
		    "(sent %zu/%zu, received %zu/%zu); the server stopped echoing",
		    c->id, c->seq, opt.stall, c->sent, opt.size, c->got, opt.size);
	}
}

static void connect_all(int epfd)
{
	for (unsigned i = 0; i < opt.conns; i++) {
		conns[i] = (struct conn){ .fd = connect_one(i), .id = i };
		conn_watch(&conns[i], epfd);
	}
}

/* Returns the epoll fd, with every persistent connection already set up:
 * their handshakes happen before the clock starts. Churn slots connect in
 * start_requests(), as part of their first request. */
static int open_clients(void)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC);

	if (epfd < 0)
		die("epoll_create1: %s", strerror(errno));
	server_sa = (struct sockaddr_in){ .sin_family = AF_INET,
					  .sin_port = htons((uint16_t)opt.port) };
	if (inet_pton(AF_INET, opt.host, &server_sa.sin_addr) != 1)
		die("--host: not an IPv4 address: %s", opt.host);
	alive = opt.conns;
	if (!opt.churn)
		connect_all(epfd);
	return epfd;
}

static void start_requests(int epfd, uint64_t now)
{
	for (unsigned i = 0; i < opt.conns; i++) {
		if (opt.churn) {
			conns[i] = (struct conn){ .fd = -1, .id = i };
			churn_open(&conns[i], epfd, now);
		} else {
			req_begin(&conns[i], now);
			conn_send(&conns[i], epfd);
		}
	}
}

static void fill_pattern(size_t len)
{
	uint64_t x = 0x2545f4914f6cdd1du;

	pattern = malloc(len);
	if (!pattern)
		die("out of memory for a %zu-byte pattern", len);
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pattern[i] = (unsigned char)(x >> 24);
	}
}

static void print_result(const char *name, double window_s, double srv_cpu_s,
			 unsigned members, double lg_cpu_s)
{
	double rps = (double)win_reqs / window_s;
	double p50 = hist_percentile_us(&hist, 0.50);
	double p99 = hist_percentile_us(&hist, 0.99);
	double p999 = hist_percentile_us(&hist, 0.999);
	double mean = hist.count ? (double)hist.sum / (double)hist.count / 1000.0 : NAN;
	char cpu[32] = "NA", util[32] = "NA";

	const char *mode = opt.http_path ? (opt.churn ? " mode=http-churn" : " mode=http")
					 : (opt.churn ? " mode=churn" : "");
	char http_fields[96] = "";

	printf("loadgen: %s: %s %s:%u, %u %s, %zu-byte %s, "
	       "%.1f s warm-up + %.1f s measured\n",
	       name, opt.floor ? "floor (in-process blocking server)" : "server", opt.host,
	       opt.port, opt.conns,
	       opt.churn ? "parallel clients, a new connection per request" : "connections",
	       opt.size, opt.http_path ? "GET requests" : "requests", opt.warmup, window_s);
	printf("  requests     %" PRIu64 " = %.1f req/s (%.1f MB/s each way)\n", win_reqs, rps,
	       (double)win_bytes / window_s / 1e6);
	printf("  latency us   p50 %.1f  p99 %.1f  p99.9 %.1f  mean %.1f  max %.1f\n", p50, p99,
	       p999, mean, (double)hist.max / 1000.0);
	if (opt.http_path) {
		printf("  verified     %" PRIu64 " responses to GET %s: status 200, Content-Length, "
		       "the same %zu-byte body (warm-up included)\n",
		       total_responses, opt.http_path, ref_len);
		printf("  response     %.1f bytes (head + body, mean)%s; %u reconnects after "
		       "Connection: close\n",
		       win_reqs ? (double)win_resp_bytes / (double)win_reqs : 0.0,
		       opt.churn ? ", then the server's close" : "", reconnects);
		snprintf(http_fields, sizeof(http_fields), " resp_bytes=%.1f reconnects=%u",
			 win_reqs ? (double)win_resp_bytes / (double)win_reqs : 0.0, reconnects);
	} else {
		printf("  verified     %" PRIu64 " bytes echoed byte-for-byte (warm-up included)\n",
		       total_verified);
	}
	if (srv_cpu_s >= 0.0 && win_reqs > 0) {
		snprintf(cpu, sizeof(cpu), "%.3f", srv_cpu_s * 1e6 / (double)win_reqs);
		snprintf(util, sizeof(util), "%.3f", srv_cpu_s / window_s);
		if (opt.floor)
			printf("  server cpu   %s us/request (server thread busy %.1f%% of the window)\n",
			       cpu, 100.0 * srv_cpu_s / window_s);
		else
			printf("  server cpu   %s us/request (pid %ld, %u process%s, busy %.1f%% "
			       "of one CPU)\n",
			       cpu, opt.pid, members, members == 1 ? "" : "es",
			       100.0 * srv_cpu_s / window_s);
	} else {
		printf("  server cpu   not measured (no --pid)\n");
	}
	printf("  loadgen cpu  busy %.1f%% of one CPU\n", 100.0 * lg_cpu_s / window_s);
	printf("  errors       %u\n", errors);
	printf("RESULT name=%s conns=%u size=%zu rps=%.1f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
	       "cpu_us_per_req=%s errors=%u reqs=%" PRIu64 " window_s=%.3f srv_util=%s "
	       "lg_util=%.3f%s%s\n",
	       name, opt.conns, opt.size, rps, p50, p99, p999, cpu, errors, win_reqs, window_s,
	       util, lg_cpu_s / window_s, mode, http_fields);
	fflush(stdout);
}

/* The edges of the measured window: wall clock, the server's CPU time (its
 * process tree, or the floor thread's own clock) and loadgen's. */
struct window {
	clockid_t srv_clock;
	unsigned members;
	uint64_t start, end;
	uint64_t srv0, srv1, lg0, lg1;
};

/* The label is one token of the RESULT line, so it must not contain blanks. */
static void make_label(char *label, size_t len)
{
	if (opt.name)
		snprintf(label, len, "%s", opt.name);
	else if (opt.floor)
		snprintf(label, len, "floor");
	else
		snprintf(label, len, "%s:%u", opt.host, opt.port);
	for (char *p = label; *p; p++)
		if (isspace((unsigned char)*p))
			*p = '_';
}

/* HTTP mode: GET PATH on keep-alive (HTTP/1.1's default), or with
 * Connection: close under --churn so that the server closes after the
 * response, as it does for ab's HTTP/1.0 requests and for kubelet's probes. */
static void http_build_request(void)
{
	int n = asprintf(&http_req, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", opt.http_path,
			 opt.host, opt.churn ? "Connection: close\r\n" : "");

	if (n < 0)
		die("out of memory");
	http_req_len = (size_t)n;
	opt.size = http_req_len;
}

static void alloc_buffers(void)
{
	if (opt.http_path)
		http_build_request();
	fill_pattern(opt.size + PATTERN_SLACK);
	scratch_len = opt.size < SCRATCH_MAX ? opt.size : SCRATCH_MAX;
	if (opt.http_path)
		scratch_len = HTTP_SCRATCH;
	scratch = malloc(scratch_len);
	conns = calloc(opt.conns, sizeof(*conns));
	if (!scratch || !conns)
		die("out of memory");
}

/* Starts the floor thread, or checks that --pid names a live process, before
 * the first connection, so that a wrong --pid fails before any load is sent. */
static void srv_cpu_prepare(struct floor_srv *fs, struct window *w)
{
	if (opt.floor) {
		int err;

		floor_start(fs);
		err = pthread_getcpuclockid(fs->thread, &w->srv_clock);
		if (err)
			die("pthread_getcpuclockid: %s", strerror(err));
	} else if (opt.pid) {
		(void)server_cpu_ns(&w->members);
	}
}

static uint64_t srv_cpu_now(struct window *w)
{
	if (opt.floor)
		return clock_ns(w->srv_clock);
	if (opt.pid)
		return server_cpu_ns(&w->members);
	return 0;
}

static void window_open(struct window *w)
{
	w->srv0 = srv_cpu_now(w);
	w->lg0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	w->start = now_ns();
	measuring = true;
}

static void window_close(struct window *w)
{
	w->end = now_ns();
	w->srv1 = srv_cpu_now(w);
	w->lg1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* No request starts after t_end, and the window closes at the first wake-up
 * past it: replies still in flight then are left out, not waited for. */
static void event_loop(int epfd, uint64_t t0, struct window *w)
{
	struct epoll_event evs[MAX_EVENTS];
	uint64_t t_win = t0 + (uint64_t)(opt.warmup * 1e9);
	uint64_t t_end = t_win + (uint64_t)(opt.duration * 1e9);
	uint64_t next_stall = t0 + 100000000u;

	for (;;) {
		uint64_t now = now_ns(), wake;
		int n, timeout_ms;

		if (!measuring && now >= t_win)
			window_open(w);
		if (now >= t_end)
			break;
		if (now >= next_stall) {
			stall_check(now);
			next_stall = now + 100000000u;
		}
		wake = measuring ? t_end : t_win;
		if (next_stall < wake)
			wake = next_stall;
		timeout_ms = wake > now ? (int)((wake - now + 999999u) / 1000000u) : 0;
		n = epoll_wait(epfd, evs, MAX_EVENTS, timeout_ms);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait: %s", strerror(errno));
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (c->fd >= 0 && (evs[i].events & EPOLLOUT) && c->busy)
				if (!conn_send(c, epfd))
					continue;
			if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_recv(c, epfd, t_end);
		}
	}
	window_close(w);
}

/* The floor thread returns only once every client end is closed: it then
 * reads EOF on each connection in turn. */
static void close_all(int epfd, struct floor_srv *fs)
{
	for (unsigned i = 0; i < opt.conns; i++) {
		if (conns[i].fd >= 0)
			close(conns[i].fd);
		free(conns[i].acc);
	}
	close(epfd);
	if (opt.floor) {
		int err = pthread_join(fs->thread, NULL);

		if (err)
			die("pthread_join: %s", strerror(err));
	}
}

int main(int argc, char **argv)
{
	struct floor_srv fs = { .lfd = -1 };
	struct window w = { 0 };
	char label[128];
	uint64_t t0;
	int epfd;

	parse_args(argc, argv);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)(opt.duration + opt.warmup) + 11u);
	signal(SIGPIPE, SIG_IGN);
	make_label(label, sizeof(label));
	alloc_buffers();
	srv_cpu_prepare(&fs, &w);

	epfd = open_clients();
	t0 = now_ns();
	start_requests(epfd, t0);
	event_loop(epfd, t0, &w);
	close_all(epfd, &fs);

	print_result(label, (double)(w.end - w.start) / 1e9,
		     opt.floor || opt.pid ? (double)(w.srv1 - w.srv0) / 1e9 : -1.0, w.members,
		     (double)(w.lg1 - w.lg0) / 1e9);
	free(conns);
	free(scratch);
	free(pattern);
	return errors ? 1 : 0;
}
