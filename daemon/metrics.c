/* Names and sums of the daemon's counters (metrics.h): what a /metrics
 * scrape sees. Families come out in a fixed order, each family's series
 * together, so a writer prints HELP and TYPE once per family. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "metrics.h"
#include "plugin.h"
#include "worker.h"

static const char *const transport_names[] = { "tcp", "unix", "udp" };
#define TRANSPORT_UDP 2

static const char *const close_names[METRICS_CLOSE_N] = {
	"peer", "service", "idle", "deadline", "reset", "stop",
};
/* enum accept_refusal */
static const char *const refused_names[METRICS_REFUSED_N] = {
	"deny", "not_allowed", "per_source", "limit", "emfile",
};
/* enum dgram_drop */
static const char *const drop_names[METRICS_DROP_N] = {
	"low_port", "own_port", "bogus", "truncated", "rate", "global_rate",
	"repeat", "access",
};

int metrics_block_init(struct metrics_block *b, const struct daemon *d)
{
	*b = (struct metrics_block){ 0 };
	b->svc = calloc(d->conf->nsvc + 1, sizeof(*b->svc));
	if (b->svc == NULL)
		return -ENOMEM;
	b->nsvc = d->conf->nsvc;
	for (size_t i = 0; i < b->nsvc; i++) {
		b->svc[i].own = calloc(d->svc[i].ncounters + 1,
				       sizeof(uint64_t));
		if (b->svc[i].own == NULL) {
			metrics_block_free(b);
			return -ENOMEM;
		}
	}
	return 0;
}

void metrics_block_free(struct metrics_block *b)
{
	for (size_t i = 0; b->svc != NULL && i < b->nsvc; i++)
		free(b->svc[i].own);
	free(b->svc);
	*b = (struct metrics_block){ 0 };
}

/* -- naming the plugins' counters ---------------------------------------- */

static bool metric_name_ok(const char *n)
{
	size_t len = n != NULL ? strlen(n) : 0;

	if (len < 13 || strncmp(n, "ringd_", 6) != 0 ||
	    strcmp(n + len - 6, "_total") != 0)
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == len;
}

static bool label_name_ok(const char *n)
{
	return n == NULL ||
	       (n[0] != '\0' && n[0] != '_' &&
		strspn(n, "abcdefghijklmnopqrstuvwxyz"
			  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(n) &&
		(n[0] < '0' || n[0] > '9'));
}

static bool same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* One family, one help and one label name, whatever the series. */
static const char *counter_problem(const struct ringd_counter *c, size_t i)
{
	if (!metric_name_ok(c[i].name))
		return "name is not ringd_[a-zA-Z0-9_]*_total";
	if (c[i].help == NULL || strchr(c[i].help, '\n') != NULL)
		return "help is missing or not one line";
	if (!label_name_ok(c[i].label) || same_str(c[i].label, "service"))
		return "label name is not a Prometheus label name or is "
		       "'service'";
	if (c[i].label != NULL && c[i].value == NULL)
		return "label without a value";
	for (size_t j = 0; j < i; j++)
		if (strcmp(c[j].name, c[i].name) == 0 &&
		    (!same_str(c[j].help, c[i].help) ||
		     !same_str(c[j].label, c[i].label)))
			return "help or label differs within its family";
	return NULL;
}

static int metrics_name_one(struct ringd_instance *inst)
{
	size_t max = 16, n;
	struct ringd_counter *c = NULL;
	char nv[LOG_VALUE_MAX], ev[LOG_VALUE_MAX];
	const char *why;

	for (;;) {
		struct ringd_counter *nc = realloc(c, max * sizeof(*c));

		if (nc == NULL) {
			free(c);
			log_err("metrics: out of memory svc=%s",
				inst->sc->name);
			return -1;
		}
		c = nc;
		n = inst->p->counters(inst->sc->pconf, c, max);
		if (n <= max)
			break;
		max = n;
	}
	for (size_t i = 0; i < n; i++) {
		why = counter_problem(c, i);
		if (why != NULL) {
			log_err("metrics: bad plugin counter svc=%s plugin=%s "
				"counter=%zu name=%s error=%s",
				inst->sc->name, inst->p->name, i,
				log_value(nv, sizeof(nv),
					  c[i].name ? c[i].name : "(null)"),
				log_value(ev, sizeof(ev), why));
			free(c);
			return -1;
		}
	}
	inst->counters = c;
	inst->ncounters = n;
	return 0;
}

static double proc_start_time(void);

int metrics_name_counters(struct daemon *d)
{
	d->start_time = proc_start_time();
	for (size_t i = 0; i < d->conf->nsvc; i++)
		if (PLUGIN_HAS(d->svc[i].p, counters) &&
		    metrics_name_one(&d->svc[i]) < 0)
			return -1;
	return 0;
}

void metrics_forget_counters(struct daemon *d)
{
	for (size_t i = 0; d->svc != NULL && i < d->conf->nsvc; i++) {
		free(d->svc[i].counters);
		d->svc[i].counters = NULL;
		d->svc[i].ncounters = 0;
	}
}

/* -- the walk -------------------------------------------------------------- */

struct walk {
	const struct daemon *d;
	ringd_metric_fn emit;
	void *arg;
	size_t n;
	struct ringd_metric m; /* the family being emitted */
};

static void walk_family(struct walk *w, const char *name, const char *help,
			enum ringd_metric_type type)
{
	w->m = (struct ringd_metric){ .name = name, .help = help, .type = type };
}

/* One series of the current family: labels as name, value pairs. */
static void walk_series(struct walk *w, double v, unsigned nl, ...)
{
	va_list ap;

	va_start(ap, nl);
	w->m.nlabels = nl;
	for (unsigned i = 0; i < nl && i < RINGD_METRIC_MAX_LABELS; i++) {
		w->m.label_names[i] = va_arg(ap, const char *);
		w->m.label_values[i] = va_arg(ap, const char *);
	}
	va_end(ap);
	w->m.value = v;
	w->emit(w->arg, &w->m);
	w->n++;
}

static uint64_t get_at(const struct metrics_block *b, size_t svc, size_t off)
{
	if (svc >= b->nsvc)
		return 0;
	return metrics_get((const uint64_t *)((const char *)&b->svc[svc] + off));
}

/* A field of every worker's block for service svc, summed, with what
 * earlier generations counted: off is its offset in struct metrics_svc. */
static uint64_t sum_at(const struct daemon *d, size_t svc, size_t off)
{
	uint64_t sum = get_at(&d->carried, svc, off);

	for (size_t i = 0; i < d->nworkers; i++) {
		const struct metrics_block *b = &d->workers[i].metrics;

		if (svc < b->nsvc)
			sum += metrics_get((const uint64_t *)((const char *)&b->svc[svc] + off));
	}
	return sum;
}

#define STREAM_OFF(t, field)                                               \
	(offsetof(struct metrics_svc, stream) +                            \
	 (t) * sizeof(struct metrics_stream) +                             \
	 offsetof(struct metrics_stream, field))
#define DGRAM_OFF(field)                                                   \
	(offsetof(struct metrics_svc, dgram) + offsetof(struct metrics_dgram, field))

static bool svc_has(const struct daemon *d, size_t svc, unsigned t)
{
	const struct service_conf *sc = d->svc[svc].sc;
	static const enum listen_kind kinds[] = { LISTEN_TCP, LISTEN_UNIX,
						  LISTEN_UDP };

	for (size_t i = 0; i < sc->nlisten; i++)
		if (sc->listen[i].kind == kinds[t])
			return true;
	return false;
}

#define FOR_EACH_STREAM(d, s, t)                                           \
	for (size_t s = 0; s < (d)->conf->nsvc; s++)                       \
		for (unsigned t = 0; t < METRICS_NSTREAM; t++)             \
			if (svc_has(d, s, t))

#define SVC_T(d, s, t) "service", (d)->svc[s].sc->name, "transport",      \
		       transport_names[t]

static uint64_t closed_sum(const struct daemon *d, size_t s, unsigned t)
{
	uint64_t n = 0;

	for (unsigned r = 0; r < METRICS_CLOSE_N; r++)
		n += sum_at(d, s, STREAM_OFF(t, closed[0]) + r * sizeof(uint64_t));
	return n;
}

const char *metrics_close_name(unsigned reason)
{
	return reason < METRICS_CLOSE_N ? close_names[reason] : "unknown";
}

static uint64_t sum_n(const struct daemon *d, size_t s, size_t off, size_t n)
{
	uint64_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += sum_at(d, s, off + i * sizeof(uint64_t));
	return sum;
}

void metrics_total_of(const struct daemon *d, size_t s,
		      struct metrics_total *o)
{
	*o = (struct metrics_total){
		.bytes_in = sum_at(d, s, DGRAM_OFF(bytes_in)),
		.bytes_out = sum_at(d, s, DGRAM_OFF(bytes_out)),
		.dgram_in = sum_at(d, s, DGRAM_OFF(in)),
		.dgram_out = sum_at(d, s, DGRAM_OFF(out)),
		.dgram_dropped = sum_n(d, s, DGRAM_OFF(dropped[0]),
				       METRICS_DROP_N),
	};
	for (unsigned t = 0; t < METRICS_NSTREAM; t++) {
		o->accepted += sum_at(d, s, STREAM_OFF(t, accepted));
		o->closed += closed_sum(d, s, t);
		o->refused += sum_n(d, s, STREAM_OFF(t, refused[0]),
				    METRICS_REFUSED_N);
		o->bytes_in += sum_at(d, s, STREAM_OFF(t, bytes_in));
		o->bytes_out += sum_at(d, s, STREAM_OFF(t, bytes_out));
	}
}

static void walk_connections(struct walk *w)
{
	const struct daemon *d = w->d;

	walk_family(w, "ringd_connections_accepted_total",
		    "Stream connections handed to a service.",
		    RINGD_METRIC_COUNTER);
	FOR_EACH_STREAM(d, s, t)
		walk_series(w, (double)sum_at(d, s, STREAM_OFF(t, accepted)), 2,
			    SVC_T(d, s, t));
	walk_family(w, "ringd_connections_active",
		    "Stream connections open now.", RINGD_METRIC_GAUGE);
	FOR_EACH_STREAM(d, s, t) {
		/* Summed with relaxed loads while workers run: a close can
		 * be seen before its accept. */
		uint64_t in = sum_at(d, s, STREAM_OFF(t, accepted));
		uint64_t out = closed_sum(d, s, t);

		walk_series(w, in > out ? (double)(in - out) : 0, 2,
			    SVC_T(d, s, t));
	}
	walk_family(w, "ringd_connections_refused_total",
		    "Connections closed at accept, before any service saw "
		    "them, by reason.", RINGD_METRIC_COUNTER);
	FOR_EACH_STREAM(d, s, t)
		for (unsigned r = 0; r < METRICS_REFUSED_N; r++)
			walk_series(w, (double)sum_at(d, s, STREAM_OFF(t, refused[0]) + r * sizeof(uint64_t)),
				    3, SVC_T(d, s, t), "reason", refused_names[r]);
	walk_family(w, "ringd_connections_closed_total",
		    "Stream connections closed, by reason.",
		    RINGD_METRIC_COUNTER);
	FOR_EACH_STREAM(d, s, t)
		for (unsigned r = 0; r < METRICS_CLOSE_N; r++)
			walk_series(w, (double)sum_at(d, s, STREAM_OFF(t, closed[0]) + r * sizeof(uint64_t)),
				    3, SVC_T(d, s, t), "reason", close_names[r]);
}

/* Bytes on every transport, UDP's from the datagram counters. */
static void walk_bytes(struct walk *w, const char *name, const char *help,
		       size_t stream_off, size_t dgram_off)
{
	const struct daemon *d = w->d;

	walk_family(w, name, help, RINGD_METRIC_COUNTER);
	for (size_t s = 0; s < d->conf->nsvc; s++) {
		for (unsigned t = 0; t <= TRANSPORT_UDP; t++) {
			size_t off = t == TRANSPORT_UDP ? dgram_off :
				     stream_off + t * sizeof(struct metrics_stream);

			if (svc_has(d, s, t))
				walk_series(w, (double)sum_at(d, s, off), 2,
					    SVC_T(d, s, t));
		}
	}
}

static void walk_datagrams(struct walk *w)
{
	const struct daemon *d = w->d;
	static const struct {
		const char *name, *help;
		size_t off;
	} fam[] = {
		{ "ringd_datagrams_received_total",
		  "Datagrams handed to a service.", DGRAM_OFF(in) },
		{ "ringd_datagrams_sent_total", "Datagrams a service sent.",
		  DGRAM_OFF(out) },
	};

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		walk_family(w, fam[f].name, fam[f].help, RINGD_METRIC_COUNTER);
		for (size_t s = 0; s < d->conf->nsvc; s++)
			if (svc_has(d, s, TRANSPORT_UDP))
				walk_series(w, (double)sum_at(d, s, fam[f].off),
					    2, SVC_T(d, s, TRANSPORT_UDP));
	}
	walk_family(w, "ringd_datagrams_dropped_total",
		    "Datagrams not answered, by the UDP guard's reason.",
		    RINGD_METRIC_COUNTER);
	for (size_t s = 0; s < d->conf->nsvc; s++)
		for (unsigned r = 0; r < METRICS_DROP_N &&
				     svc_has(d, s, TRANSPORT_UDP); r++)
			walk_series(w, (double)sum_at(d, s, DGRAM_OFF(dropped[0]) + r * sizeof(uint64_t)),
				    3, SVC_T(d, s, TRANSPORT_UDP), "reason",
				    drop_names[r]);
}

static void walk_loops(struct walk *w)
{
	const struct daemon *d = w->d;
	struct loop_stats sum = { 0 }, one;
	uint64_t pauses = 0;
	static const struct {
		const char *name, *help;
		size_t off;
	} fam[] = {
		{ "ringd_loop_waits_total", "Times a worker's loop waited for "
		  "events.", offsetof(struct loop_stats, waits) },
		{ "ringd_loop_eagain_reads_total", "epoll: reads that found "
		  "nothing to read.", offsetof(struct loop_stats, eagain_reads) },
		{ "ringd_loop_eagain_writes_total", "epoll: sends that found "
		  "the socket full.", offsetof(struct loop_stats, eagain_writes) },
		{ "ringd_loop_sq_full_total", "io_uring: submissions made "
		  "early because the queue was full.",
		  offsetof(struct loop_stats, sq_full) },
		{ "ringd_loop_late_completions_total", "io_uring: receives "
		  "completed after their cancel.",
		  offsetof(struct loop_stats, late_after_cancel) },
	};

	for (size_t i = 0; i < d->nworkers; i++) {
		if (d->workers[i].loop == NULL)
			continue;
		loop_stats(d->workers[i].loop, &one);
		/* struct loop_stats is uint64_t counters and nothing else. */
		for (size_t k = 0; k < sizeof(one) / sizeof(uint64_t); k++)
			((uint64_t *)&sum)[k] += ((const uint64_t *)&one)[k];
		pauses += metrics_get(&d->workers[i].conns.stats.budget_pauses);
	}
	walk_family(w, "ringd_loop_rearms_total", "Multishot operations the "
		    "loop re-armed itself, by reason.", RINGD_METRIC_COUNTER);
	walk_series(w, (double)sum.rearm_nobufs, 1, "reason", "nobufs");
	walk_series(w, (double)sum.rearm_overflow, 1, "reason", "overflow");
	walk_series(w, (double)sum.rearm_accept, 1, "reason", "accept");
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		walk_family(w, fam[f].name, fam[f].help, RINGD_METRIC_COUNTER);
		walk_series(w, (double)*(const uint64_t *)((const char *)&sum + fam[f].off), 0);
	}
	walk_family(w, "ringd_budget_pauses_total", "Connections stopped "
		    "reading because max_buffered was reached.",
		    RINGD_METRIC_COUNTER);
	walk_series(w, (double)pauses, 0);
}

/* Series of the family named like c[i], from every service, each once:
 * the first series of a family met in the walk emits all of them. */
static bool family_seen(const struct daemon *d, size_t s, size_t i)
{
	const char *name = d->svc[s].counters[i].name;

	for (size_t s2 = 0; s2 <= s; s2++)
		for (size_t j = 0; j < (s2 == s ? i : d->svc[s2].ncounters); j++)
			if (strcmp(d->svc[s2].counters[j].name, name) == 0)
				return true;
	return false;
}

static void walk_plugin_family(struct walk *w, const struct ringd_counter *c0)
{
	const struct daemon *d = w->d;

	walk_family(w, c0->name, c0->help, RINGD_METRIC_COUNTER);
	for (size_t s = 0; s < d->conf->nsvc; s++) {
		for (size_t i = 0; i < d->svc[s].ncounters; i++) {
			const struct ringd_counter *c = &d->svc[s].counters[i];
			double v = 0;

			if (strcmp(c->name, c0->name) != 0)
				continue;
			if (s < d->carried.nsvc)
				v += (double)metrics_get(&d->carried.svc[s].own[i]);
			for (size_t k = 0; k < d->nworkers; k++)
				if (s < d->workers[k].metrics.nsvc)
					v += (double)metrics_get(&d->workers[k].metrics.svc[s].own[i]);
			if (c->label != NULL)
				walk_series(w, v, 2, "service", d->svc[s].sc->name,
					    c->label, c->value);
			else
				walk_series(w, v, 1, "service", d->svc[s].sc->name);
		}
	}
}

static void walk_plugins(struct walk *w)
{
	const struct daemon *d = w->d;

	for (size_t s = 0; s < d->conf->nsvc; s++)
		for (size_t i = 0; i < d->svc[s].ncounters; i++)
			if (!family_seen(d, s, i))
				walk_plugin_family(w, &d->svc[s].counters[i]);
}

/* -- totals across reloads ------------------------------------------------- */

/* struct metrics_svc is counters up to own, so they can be walked. */
#define SVC_NFIELDS (offsetof(struct metrics_svc, own) / sizeof(uint64_t))
_Static_assert(offsetof(struct metrics_svc, own) % sizeof(uint64_t) == 0,
	       "struct metrics_svc: counters first");

static uint64_t *svc_field(struct metrics_svc *m, size_t k)
{
	return (uint64_t *)(void *)m + k;
}

void metrics_total(const struct daemon *d, struct metrics_block *out)
{
	for (size_t s = 0; s < out->nsvc; s++) {
		for (size_t k = 0; k < SVC_NFIELDS; k++)
			*svc_field(&out->svc[s], k) =
				sum_at(d, s, k * sizeof(uint64_t));
		for (size_t i = 0; i < d->svc[s].ncounters; i++) {
			uint64_t v = s < d->carried.nsvc ?
					     metrics_get(&d->carried.svc[s].own[i]) : 0;

			for (size_t w = 0; w < d->nworkers; w++)
				if (s < d->workers[w].metrics.nsvc)
					v += metrics_get(&d->workers[w].metrics.svc[s].own[i]);
			out->svc[s].own[i] = v;
		}
	}
}

/* The service of to that continues service s of from, or -1. */
static long carry_match(const struct daemon *to, const struct daemon *from,
			size_t s)
{
	const struct ringd_instance *f = &from->svc[s];

	for (size_t t = 0; t < to->conf->nsvc; t++)
		if (strcmp(to->svc[t].sc->name, f->sc->name) == 0 &&
		    strcmp(to->svc[t].p->name, f->p->name) == 0)
			return (long)t;
	return -1;
}

static long carry_counter(const struct ringd_instance *to,
			  const struct ringd_counter *c)
{
	for (size_t j = 0; j < to->ncounters; j++)
		if (strcmp(to->counters[j].name, c->name) == 0 &&
		    same_str(to->counters[j].label, c->label) &&
		    same_str(to->counters[j].value, c->value))
			return (long)j;
	return -1;
}

void metrics_carry(struct daemon *to, const struct daemon *from,
		   const struct metrics_block *now,
		   const struct metrics_block *base)
{
	for (size_t s = 0; s < now->nsvc; s++) {
		long t = carry_match(to, from, s);
		struct metrics_svc *dst;

		if (t < 0 || (size_t)t >= to->carried.nsvc)
			continue;
		dst = &to->carried.svc[t];
		for (size_t k = 0; k < SVC_NFIELDS; k++)
			metrics_add(svc_field(dst, k),
				    *svc_field(&now->svc[s], k) -
					    (base ? *svc_field(&base->svc[s], k) : 0));
		for (size_t i = 0; i < from->svc[s].ncounters; i++) {
			long j = carry_counter(&to->svc[t], &from->svc[s].counters[i]);

			if (j >= 0)
				metrics_add(&dst->own[j],
					    now->svc[s].own[i] -
						    (base ? base->svc[s].own[i] : 0));
		}
	}
}

/* -- the process_* set Prometheus client libraries export ------------------ */

static double proc_start_time(void)
{
	unsigned long long start = 0, btime = 0;
	char buf[1024], *p;
	FILE *f = fopen("/proc/self/stat", "re");
	size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

	if (f)
		fclose(f);
	buf[n] = '\0';
	/* Field 22, counted after the command name's closing parenthesis
	 * (a name may hold spaces). */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u "
				"%*u %*u %*u %*u %*d %*d %*d %*d %*d %*d %llu",
				&start) != 1)
		return 0;
	f = fopen("/proc/stat", "re");
	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %llu", &btime) == 1)
			break;
	if (f)
		fclose(f);
	return (double)btime + (double)start / (double)sysconf(_SC_CLK_TCK);
}

static void proc_memory(double *rss, double *vsz)
{
	unsigned long long pages = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "re");
	double page = (double)sysconf(_SC_PAGESIZE);

	if (f && fscanf(f, "%llu %llu", &pages, &res) != 2)
		pages = res = 0;
	if (f)
		fclose(f);
	*rss = (double)res * page;
	*vsz = (double)pages * page;
}

static double proc_open_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct dirent *e;
	double n = 0;

	while (dir && (e = readdir(dir)) != NULL)
		n += e->d_name[0] != '.';
	if (dir) {
		closedir(dir);
		n -= 1; /* the directory's own fd */
	}
	return n;
}

static void walk_one(struct walk *w, const char *name, const char *help,
		     enum ringd_metric_type type, double v)
{
	walk_family(w, name, help, type);
	walk_series(w, v, 0);
}

static void walk_process(struct walk *w)
{
	struct rusage ru;
	struct rlimit rl;
	double rss, vsz, cpu = 0;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
		      ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
	proc_memory(&rss, &vsz);
	walk_one(w, "process_cpu_seconds_total",
		 "Total user and system CPU time spent in seconds.",
		 RINGD_METRIC_COUNTER, cpu);
	walk_one(w, "process_resident_memory_bytes",
		 "Resident memory size in bytes.", RINGD_METRIC_GAUGE, rss);
	walk_one(w, "process_virtual_memory_bytes",
		 "Virtual memory size in bytes.", RINGD_METRIC_GAUGE, vsz);
	walk_one(w, "process_open_fds", "Number of open file descriptors.",
		 RINGD_METRIC_GAUGE, proc_open_fds());
	walk_one(w, "process_max_fds",
		 "Maximum number of open file descriptors.", RINGD_METRIC_GAUGE,
		 getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (double)rl.rlim_cur : 0);
	walk_one(w, "process_start_time_seconds",
		 "Start time of the process since unix epoch in seconds.",
		 RINGD_METRIC_GAUGE, w->d->start_time);
}

size_t metrics_walk(const struct daemon *d, ringd_metric_fn emit, void *arg)
{
	struct walk w = { .d = d, .emit = emit, .arg = arg };

	walk_family(&w, "ringd_build_info", "The running ringd: version and "
		    "event engine.", RINGD_METRIC_GAUGE);
	walk_series(&w, 1, 2, "version", RINGD_VERSION, "backend",
		    d->backend == LOOP_BACKEND_IO_URING ? "io_uring" : "epoll");
	walk_one(&w, "ringd_draining", "1 while the daemon drains (stopping), "
		 "else 0.", RINGD_METRIC_GAUGE,
		 daemon_state((struct daemon *)d) == RINGD_DRAINING);
	walk_one(&w, "ringd_workers", "Worker threads.", RINGD_METRIC_GAUGE,
		 (double)d->nworkers);
	walk_connections(&w);
	walk_bytes(&w, "ringd_received_bytes_total", "Bytes received from "
		   "clients.", STREAM_OFF(0, bytes_in), DGRAM_OFF(bytes_in));
	walk_bytes(&w, "ringd_sent_bytes_total", "Bytes sent to clients.",
		   STREAM_OFF(0, bytes_out), DGRAM_OFF(bytes_out));
	walk_datagrams(&w);
	walk_loops(&w);
	walk_plugins(&w);
	walk_process(&w);
	return w.n;
}
