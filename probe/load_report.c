/* Load mode's summary as text (ending in bench/'s RESULT line) or JSON.
 * Formatting only. */
#include <stdio.h>

#include "probe/load.h"
#include "probe/report.h"

/* The quantiles every writer prints, in microseconds. */
static const struct {
	const char *name;
	double q;
} quantiles[] = {
	{ "p50", 0.50 },
	{ "p90", 0.90 },
	{ "p99", 0.99 },
	{ "p999", 0.999 },
};

static double us(uint64_t ns)
{
	return (double)ns / 1e3;
}

static double rps(const struct load_summary *s)
{
	return s->window_s > 0 ? (double)s->requests / s->window_s : 0.0;
}

static double mean_us(const struct hist *h)
{
	return h->count ? (double)h->sum / (double)h->count / 1e3 : 0.0;
}

/* Connections opened beyond the first CONNS (after a close or an
 * error): the RESULT line's reconnects, which bench/ has always read. */
static unsigned long long reconnects(const struct load_summary *s)
{
	return s->connects > s->conns ? s->connects - s->conns : 0;
}

static void text_cpu(FILE *f, const struct load_summary *s, char *cpu,
		     size_t cpu_len, char *util, size_t util_len)
{
	const struct load_cpu *c = &s->cpu;

	snprintf(cpu, cpu_len, "NA");
	snprintf(util, util_len, "NA");
	if (c->pid && !c->measured) {
		fprintf(f,
			"  server cpu   not measured: pid %ld ended during "
			"the run\n",
			c->pid);
		return;
	}
	if (!c->measured || !s->requests || s->window_s <= 0) {
		fputs("  server cpu   not measured (no --server-pid)\n", f);
		return;
	}
	snprintf(cpu, cpu_len, "%.3f", c->server_s * 1e6 / (double)s->requests);
	snprintf(util, util_len, "%.3f", c->server_s / s->window_s);
	fprintf(f,
		"  server cpu   %s us/request (%u process%s: the pid and its "
		"descendants, all threads; busy %.1f%% of one CPU)\n",
		cpu, c->processes, c->processes == 1 ? "" : "es",
		100.0 * c->server_s / s->window_s);
}

void load_report_text(FILE *f, const struct load_summary *s)
{
	const struct hist *h = s->latency;
	char cpu[32], util[32];
	double lg = s->window_s > 0 ? s->cpu.probe_s / s->window_s : 0.0;

	fprintf(f,
		"LOAD %s: %s, %u connections, %zu-byte requests, %.1f s "
		"warm-up + %.3f s measured (%s)\n",
		s->url, s->mode, s->conns, s->size, s->warmup_s, s->window_s,
		s->backend);
	fprintf(f,
		"  requests     %llu = %.1f req/s, %llu errors, %llu "
		"connections opened\n",
		(unsigned long long)s->requests, rps(s),
		(unsigned long long)s->errors, (unsigned long long)s->connects);
	fprintf(f, "  latency us   min %.1f", us(h->min));
	for (size_t i = 0; i < sizeof(quantiles) / sizeof(*quantiles); i++)
		fprintf(f, "  %s %.1f", quantiles[i].name,
			us(hist_quantile(h, quantiles[i].q)));
	fprintf(f, "  max %.1f  mean %.1f\n", us(h->max), mean_us(h));
	fprintf(f, "  reply        %.1f bytes (mean)\n", s->resp_bytes);
	text_cpu(f, s, cpu, sizeof(cpu), util, sizeof(util));
	fprintf(f, "  probe cpu    busy %.1f%% of one CPU\n", 100.0 * lg);
	if (s->errors)
		fprintf(f, "  first error  %s\n", s->first_error);
	fprintf(f,
		"RESULT name=%s conns=%u size=%zu rps=%.1f p50_us=%.1f "
		"p99_us=%.1f p999_us=%.1f cpu_us_per_req=%s errors=%llu "
		"reqs=%llu window_s=%.3f srv_util=%s lg_util=%.3f mode=%s "
		"resp_bytes=%.1f reconnects=%llu\n",
		s->name, s->conns, s->size, rps(s), us(hist_quantile(h, 0.50)),
		us(hist_quantile(h, 0.99)), us(hist_quantile(h, 0.999)), cpu,
		(unsigned long long)s->errors, (unsigned long long)s->requests,
		s->window_s, util, lg, s->mode, s->resp_bytes, reconnects(s));
}

void load_report_json(FILE *f, const struct load_summary *s)
{
	const struct hist *h = s->latency;

	fputs("{\"url\":", f);
	report_json_string(f, s->url);
	fputs(",\"name\":", f);
	report_json_string(f, s->name);
	fprintf(f,
		",\"mode\":\"%s\",\"backend\":\"%s\",\"connections\":%u,"
		"\"size\":%zu,\"warmup_seconds\":%.3f,\"window_seconds\":%.6f,"
		"\"requests\":%llu,\"errors\":%llu,\"connects\":%llu,"
		"\"requests_per_second\":%.1f,\"reply_bytes_mean\":%.1f",
		s->mode, s->backend, s->conns, s->size, s->warmup_s,
		s->window_s, (unsigned long long)s->requests,
		(unsigned long long)s->errors, (unsigned long long)s->connects,
		rps(s), s->resp_bytes);
	fprintf(f, ",\"latency_us\":{\"min\":%.1f", us(h->min));
	for (size_t i = 0; i < sizeof(quantiles) / sizeof(*quantiles); i++)
		fprintf(f, ",\"%s\":%.1f", quantiles[i].name,
			us(hist_quantile(h, quantiles[i].q)));
	fprintf(f, ",\"max\":%.1f,\"mean\":%.1f}", us(h->max), mean_us(h));
	if (s->cpu.measured && s->requests)
		fprintf(f,
			",\"server_cpu_us_per_request\":%.3f,"
			"\"server_processes\":%u",
			s->cpu.server_s * 1e6 / (double)s->requests,
			s->cpu.processes);
	fprintf(f, ",\"probe_cpu_seconds\":%.3f", s->cpu.probe_s);
	if (s->errors) {
		fputs(",\"first_error\":", f);
		report_json_string(f, s->first_error);
	}
	fputs("}\n", f);
}
