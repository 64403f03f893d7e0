/* The Prometheus text exposition format 0.0.4 over host->metrics(): HELP
 * and TYPE once per family, label values escaped, numbers in a form
 * promtool accepts. The core's counters and every plugin's own (the
 * http plugin's included) come through the same walk. */
#ifndef RINGD_HTTP_METRICS_TEXT_H
#define RINGD_HTTP_METRICS_TEXT_H

#include <ringd/plugin.h>

#include "response.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The writer's state during one walk. */
struct metrics_text {
	struct hbuf *out;
	char family[128]; /* the last family's name, to see it change */
	size_t series;
};

/* A ringd_metric_fn: appends m to t->out (t is a struct metrics_text). */
void metrics_text_emit(void *t, const struct ringd_metric *m);

/* Appends a whole scrape: walk is host->metrics, inst the calling
 * instance. Returns the number of series written. */
size_t metrics_text_write(struct hbuf *out,
			  size_t (*walk)(const struct ringd_instance *,
					 ringd_metric_fn, void *),
			  const struct ringd_instance *inst);

#endif
