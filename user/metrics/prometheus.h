/* Prometheus endpoint (--prometheus ADDR:PORT): GET /metrics in the text
 * exposition format 0.0.4, or OpenMetrics 1.0 (with exemplars) when the
 * scraper's Accept asks for it; libmicrohttpd serves it from its own
 * thread, reading the instruments without locks (instrument.h). Names by
 * the OpenTelemetry-to-Prometheus rules: '.' -> '_', unit s -> _seconds,
 * counters _total. */
#ifndef WEFT_PROMETHEUS_H
#define WEFT_PROMETHEUS_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

struct prometheus;

/* The exposition of m into a malloc'd buffer (*out, *len). */
int prometheus_render(const struct metrics *m, bool openmetrics, char **out, size_t *len);
/* listen: "ADDR:PORT", "[ADDR6]:PORT" or ":PORT" (every address).
 * Returns 0 or a negative errno, logged with the address. */
int prometheus_start(const char *listen, const struct metrics *m, struct prometheus **out);
int prometheus_port(const struct prometheus *p);
void prometheus_stop(struct prometheus *p);
/* Parses listen without binding (option validation). */
int prometheus_check_listen(const char *listen);

#endif
