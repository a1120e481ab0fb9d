/* Metrics computed from every exchange, whatever the sampler decided
 * (docs/METRICS.md): OpenTelemetry's RED histograms (red.c) and Tempo's
 * service graph (service_graph.c). Recorded by the event thread; read by
 * the Prometheus endpoint and the OTLP metrics exporter from their own
 * threads without blocking it (instrument.h). */
#ifndef WEFT_METRICS_H
#define WEFT_METRICS_H

#include <stdint.h>

#include "instrument.h"
#include "span.h"

enum metric_id {
	METRIC_HTTP_SERVER,
	METRIC_HTTP_CLIENT,
	METRIC_DB_CLIENT,
	METRIC_RPC_SERVER,
	METRIC_RPC_CLIENT,
	METRIC_SG_REQUESTS,
	METRIC_SG_FAILED,
	METRIC_SG_SERVER,
	METRIC_SG_CLIENT,
	METRIC_COUNT,
};

struct service_graph;

struct metrics {
	struct instrument in[METRIC_COUNT];
	uint64_t start_ns; /* unix ns: start of every cumulative series */
	struct service_graph *graph;
};

struct metrics *metrics_create(uint64_t now_ns);
void metrics_free(struct metrics *m);
/* One finished span (s->resource set). Its ids become exemplars when it is
 * sampled (exported). now_mono: CLOCK_MONOTONIC ns, for the service
 * graph's joins. */
void metrics_record(struct metrics *m, const struct span *s, uint64_t now_mono);
/* Service graph: edges whose other side never came (uninstrumented peers). */
void metrics_tick(struct metrics *m, uint64_t now_mono);

/* red.c */
void red_record(struct metrics *m, const struct span *s);
const char *span_service_name(const struct span *s);

/* service_graph.c */
#define SG_WAIT_NS 2000000000ull /* how long one side of an edge waits for the other */
struct service_graph *service_graph_create(void);
void service_graph_free(struct service_graph *g);
void service_graph_record(struct metrics *m, const struct span *s, uint64_t now_mono);
void service_graph_expire(struct metrics *m, uint64_t now_mono);

#endif
