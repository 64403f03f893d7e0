/* Verdicts, statistics and the three output formats. */
#include "probe/report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum probe_state report_threshold(enum probe_state s, int64_t duration_ns,
				  int64_t warn_ns, int64_t crit_ns)
{
	if (s != PROBE_OK)
		return s;
	if (crit_ns > 0 && duration_ns > crit_ns)
		return PROBE_CRITICAL;
	if (warn_ns > 0 && duration_ns > warn_ns)
		return PROBE_WARNING;
	return PROBE_OK;
}

static int severity(enum probe_state s)
{
	/* The order: CRITICAL, then WARNING, then UNKNOWN. */
	static const int rank[] = { [PROBE_OK] = 0, [PROBE_UNKNOWN] = 1,
				    [PROBE_WARNING] = 2, [PROBE_CRITICAL] = 3 };
	return rank[s];
}

enum probe_state report_worst(enum probe_state a, enum probe_state b)
{
	return severity(b) > severity(a) ? b : a;
}

const char *report_state_name(enum probe_state s)
{
	static const char *const names[] = { "OK", "WARNING", "CRITICAL",
					     "UNKNOWN" };
	return names[s];
}

int report_stats_add(struct report_stats *s, bool ok, int64_t duration_ns)
{
	if (ok && s->ok == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 16;
		int64_t *d = realloc(s->durations, cap * sizeof(*d));

		if (!d)
			return -ENOMEM;
		s->durations = d;
		s->cap = cap;
	}
	s->tries++;
	if (ok)
		s->durations[s->ok++] = duration_ns;
	return 0;
}

void report_stats_free(struct report_stats *s)
{
	free(s->durations);
	memset(s, 0, sizeof(*s));
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p% of them at or
 * below it. */
static int64_t rank(const int64_t *v, unsigned n, unsigned p)
{
	unsigned k = (unsigned)(((uint64_t)p * n + 99) / 100);

	return v[k ? k - 1 : 0];
}

void report_summarize(struct report_stats *s, struct report_summary *out)
{
	memset(out, 0, sizeof(*out));
	out->loss = s->tries ? (double)(s->tries - s->ok) / s->tries : 0;
	if (s->ok == 0)
		return;
	qsort(s->durations, s->ok, sizeof(*s->durations), cmp_i64);
	out->min = s->durations[0];
	out->max = s->durations[s->ok - 1];
	int64_t sum = 0;
	for (unsigned i = 0; i < s->ok; i++)
		sum += s->durations[i];
	out->avg = sum / s->ok;
	out->p50 = rank(s->durations, s->ok, 50);
	out->p99 = rank(s->durations, s->ok, 99);
}

static void perf_value(FILE *f, int64_t ns)
{
	if (ns > 0)
		fprintf(f, "%.6f", (double)ns / 1e9);
}

void report_nagios(FILE *f, const struct report_entry *e, int64_t warn_ns,
		   int64_t crit_ns)
{
	const struct probe_result *r = &e->result;

	fprintf(f, "%s - %s %s", report_state_name(r->state), e->url,
		r->message);
	/* Perfdata: label=value[UOM];warn;crit, the thresholds only when
	 * set, as the plugin guidelines allow trailing fields to go. */
	if (r->duration_ns > 0) {
		fprintf(f, " | time=%.6fs", (double)r->duration_ns / 1e9);
		if (warn_ns || crit_ns) {
			fputc(';', f);
			perf_value(f, warn_ns);
			fputc(';', f);
			perf_value(f, crit_ns);
		}
	}
	fputc('\n', f);
}

static double ms(int64_t ns)
{
	return (double)ns / 1e6;
}

void report_stats_lines(FILE *f, const char *url, struct report_stats *s)
{
	struct report_summary m;

	report_summarize(s, &m);
	fprintf(f, "--- %s statistics ---\n", url);
	fprintf(f, "%u tries, %u ok, %.0f%% loss", s->tries, s->ok,
		m.loss * 100);
	if (s->ok)
		fprintf(f,
			", min/avg/max/p50/p99 = %.3f/%.3f/%.3f/%.3f/%.3f ms",
			ms(m.min), ms(m.avg), ms(m.max), ms(m.p50), ms(m.p99));
	fputc('\n', f);
}

void report_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_stats(FILE *f, struct report_stats *st)
{
	struct report_summary m;

	report_summarize(st, &m);
	fprintf(f, ",\"tries\":%u,\"ok\":%u,\"loss\":%.4f", st->tries, st->ok,
		m.loss);
	if (st->ok)
		fprintf(f,
			",\"min_seconds\":%.9f,\"avg_seconds\":%.9f,"
			"\"max_seconds\":%.9f,\"p50_seconds\":%.9f,"
			"\"p99_seconds\":%.9f",
			m.min / 1e9, m.avg / 1e9, m.max / 1e9, m.p50 / 1e9,
			m.p99 / 1e9);
}

void report_json(FILE *f, const struct report_entry *e, size_t n,
		 enum probe_state overall)
{
	fprintf(f, "{\"status\":\"%s\",\"exit\":%d,\"targets\":[",
		report_state_name(overall), (int)overall);
	for (size_t i = 0; i < n; i++) {
		const struct probe_result *r = &e[i].result;

		fputs(i ? ",{\"url\":" : "{\"url\":", f);
		report_json_string(f, e[i].url);
		fprintf(f, ",\"status\":\"%s\",\"success\":%s",
			report_state_name(r->state),
			r->state == PROBE_OK ? "true" : "false");
		fprintf(f, ",\"duration_seconds\":%.9f", r->duration_ns / 1e9);
		if (r->http_status)
			fprintf(f, ",\"http_status\":%d", r->http_status);
		fputs(",\"message\":", f);
		report_json_string(f, r->message);
		if (e[i].stats)
			json_stats(f, e[i].stats);
		fputc('}', f);
	}
	fputs("]}\n", f);
}

static void prom_label(FILE *f, const char *s)
{
	fputs("{target=\"", f);
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(f, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
	fputs("\"}", f);
}

void report_prometheus(FILE *f, const struct report_entry *e, size_t n)
{
	fputs("# HELP probe_success Whether the check succeeded (1) or not "
	      "(0).\n# TYPE probe_success gauge\n", f);
	for (size_t i = 0; i < n; i++) {
		fputs("probe_success", f);
		prom_label(f, e[i].url);
		fprintf(f, " %d\n", e[i].result.state == PROBE_OK);
	}
	fputs("# HELP probe_duration_seconds How long the check took.\n"
	      "# TYPE probe_duration_seconds gauge\n", f);
	for (size_t i = 0; i < n; i++) {
		fputs("probe_duration_seconds", f);
		prom_label(f, e[i].url);
		fprintf(f, " %.9f\n", e[i].result.duration_ns / 1e9);
	}
	fputs("# HELP probe_http_status_code The HTTP status of the reply "
	      "(0: none).\n# TYPE probe_http_status_code gauge\n", f);
	for (size_t i = 0; i < n; i++) {
		if (!e[i].http)
			continue;
		fputs("probe_http_status_code", f);
		prom_label(f, e[i].url);
		fprintf(f, " %d\n", e[i].result.http_status);
	}
}
