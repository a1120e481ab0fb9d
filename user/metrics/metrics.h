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
	METRIC_DROPPED, /* weft.dropped{cause}: weft's own, not a service's */
	METRIC_COUNT,
};

/* Every loss the kernel and the agent count, as weft.dropped's cause
 * (Prometheus: weft_dropped_total{cause="ringbuf_full"}). Not losses:
 * sampled-out spans (wanted), connections of no known protocol. */
enum drop_cause {
	/* kernel (abi/counters.h) */
	DROP_RINGBUF_FULL,	   /* events: ring buffer full */
	DROP_CONN_TABLE_FULL,	   /* connections not followed */
	DROP_TXN_TABLE_FULL,	   /* exchanges not followed */
	DROP_STREAM_GAP,	   /* HTTP/2 bytes not forwarded: the connection is given up */
	DROP_IO_UNREACHABLE,	   /* socket calls whose buffer weft cannot read (io_uring, sendmmsg) */
	DROP_GO_CONTEXT_TABLE_FULL, /* Go requests served without goroutine context */
	/* agent */
	DROP_NOT_PARSABLE,	   /* exchanges or stream events no parser understood */
	DROP_ANALYSIS_QUEUE_FULL,  /* processes not analysed (traced by the syscall layer alone) */
	DROP_HTTP2_CONN_LOST,	   /* HTTP/2 connections given up (frames lost, HPACK failed) */
	DROP_HTTP2_CONN_MIDWAY,	   /* HTTP/2 connections joined mid-way: not decoded */
	DROP_HTTP2_STREAM_UNFINISHED, /* HTTP/2 streams unfinished at close or over the bound */
	/* OTLP exporter (otlp.h's struct otlp_counters) */
	DROP_OTLP_QUEUE_FULL,
	DROP_OTLP_REJECTED,
	DROP_OTLP_PARTIAL,
	DROP_OTLP_SHUTDOWN,
	DROP_OTLP_OTHER,
	DROP_CONSOLE_OMITTED,	   /* spans left out of a console waterfall (over 256 in one trace) */
	DROP_CAUSE_COUNT,
};

struct service_graph;

struct metrics {
	struct instrument in[METRIC_COUNT];
	uint64_t start_ns; /* unix ns: start of every cumulative series */
	struct service_graph *graph;
	uint64_t drops[DROP_CAUSE_COUNT]; /* totals recorded so far (event thread) */
};

/* The cause's label value ("ringbuf_full"). */
const char *drop_cause_name(enum drop_cause c);
/* The totals counted so far, per cause (cumulative, as the kernel's and
 * the agent's counters are): what grew since the last call is added to
 * weft.dropped. Event thread. */
void metrics_drops(struct metrics *m, const uint64_t totals[DROP_CAUSE_COUNT]);

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
