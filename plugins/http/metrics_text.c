/* Prometheus text format writer: see metrics_text.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "metrics_text.h"

/* HELP text escapes backslash and newline; label values also '"'. */
static void put_escaped(struct hbuf *b, const char *s, bool quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *esc = *s == '\\'		? "\\\\"
				  : *s == '\n'		? "\\n"
				  : *s == '"' && quote	? "\\\""
							: NULL;
		if (!esc)
			continue;
		hbuf_put(b, run, (size_t)(s - run));
		hbuf_puts(b, esc);
		run = s + 1;
	}
	hbuf_put(b, run, (size_t)(s - run));
}

/* Integers print as integers (a counter of 10^12 must not come out as
 * 1e+12 rounded); the rest with round-trip precision; the special values
 * as the format spells them. */
static void put_value(struct hbuf *b, double v)
{
	if (isnan(v))
		hbuf_puts(b, "NaN");
	else if (isinf(v))
		hbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
	else if (v == floor(v) && fabs(v) < 9007199254740992.0)
		hbuf_printf(b, "%.0f", v);
	else
		hbuf_printf(b, "%.17g", v);
}

static void put_family(struct metrics_text *t, const struct ringd_metric *m)
{
	size_t n = strlen(m->name);

	if (n < sizeof(t->family) && strcmp(t->family, m->name) == 0)
		return;
	if (n < sizeof(t->family))
		memcpy(t->family, m->name, n + 1);
	else
		t->family[0] = '\0';
	hbuf_printf(t->out, "# HELP %s ", m->name);
	put_escaped(t->out, m->help ? m->help : "", false);
	hbuf_printf(t->out, "\n# TYPE %s %s\n", m->name,
		    m->type == RINGD_METRIC_GAUGE ? "gauge" : "counter");
}

void metrics_text_emit(void *arg, const struct ringd_metric *m)
{
	struct metrics_text *t = arg;
	unsigned nl = m->nlabels < RINGD_METRIC_MAX_LABELS
			      ? m->nlabels
			      : RINGD_METRIC_MAX_LABELS;

	put_family(t, m);
	hbuf_puts(t->out, m->name);
	for (unsigned i = 0; i < nl; i++) {
		hbuf_printf(t->out, "%s%s=\"", i ? "," : "{",
			    m->label_names[i]);
		put_escaped(t->out, m->label_values[i] ? m->label_values[i] : "",
			    true);
		hbuf_puts(t->out, "\"");
	}
	hbuf_puts(t->out, nl ? "} " : " ");
	put_value(t->out, m->value);
	hbuf_puts(t->out, "\n");
	t->series++;
}

size_t metrics_text_write(struct hbuf *out,
			  size_t (*walk)(const struct ringd_instance *,
					 ringd_metric_fn, void *),
			  const struct ringd_instance *inst)
{
	struct metrics_text t = { .out = out };

	walk(inst, metrics_text_emit, &t);
	return t.series;
}
