/* OTLP metrics export (OTEL_METRICS_EXPORTER=otlp): every
 * OTEL_METRIC_EXPORT_INTERVAL, an ExportMetricsServiceRequest to
 * /v1/metrics over OTLP/HTTP (protobuf), from a thread of its own that
 * reads the instruments without locks. Cumulative temporality, or delta
 * with OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta (or
 * lowmemory). The request is written in protobuf's wire format directly
 * (Debian's protoc-c cannot compile metrics.proto: proto3 optional). */
#ifndef WEFT_OTLP_METRICS_H
#define WEFT_OTLP_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>

#include "metrics.h"
#include "otlp.h"

struct otlp_metrics_config {
	bool enabled;
	char url[2048];
	unsigned interval_ms, timeout_ms;
	bool delta;
	bool grpc;                  /* MetricsService/Export over HTTP/2, else OTLP/HTTP */
	char certificate[1024];     /* CA file of the trace config, or "" */
	struct curl_slist *headers; /* owned: the trace config's headers, as request lines */
};

/* Enabled by OTEL_METRICS_EXPORTER=otlp, or by OTEL_EXPORTER_OTLP_METRICS_ENDPOINT
 * alone (OTEL_METRICS_EXPORTER=none wins). From OTEL_EXPORTER_OTLP_METRICS_ENDPOINT (or the
 * trace config's generic endpoint + /v1/metrics), OTEL_METRIC_EXPORT_INTERVAL,
 * OTEL_METRIC_EXPORT_TIMEOUT, OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE.
 * Returns 0 or -EINVAL with a message naming the variable in err. */
int otlp_metrics_config(const struct otlp_config *traces, struct otlp_metrics_config *out, char *err,
			size_t errlen);
void otlp_metrics_config_free(struct otlp_metrics_config *cfg);

/* Delta temporality: what the last export saw. */
struct otlp_metrics_state;
struct otlp_metrics_state *otlp_metrics_state_new(bool delta, uint64_t start_ns);
void otlp_metrics_state_free(struct otlp_metrics_state *st);
/* The request body for m at now_ns (unix ns), into a malloc'd buffer; with
 * delta, the state moves on to now. Returns 0 or -ENOMEM. */
int otlp_metrics_encode(const struct metrics *m, struct otlp_metrics_state *st, uint64_t now_ns, uint8_t **out,
			size_t *len);

struct otlp_metrics_exporter;
/* Starts the export thread; takes cfg's headers (cfg->headers becomes NULL). */
int otlp_metrics_start(struct otlp_metrics_config *cfg, const struct metrics *m,
		       struct otlp_metrics_exporter **out);
/* Exports once more (the final counts), then stops. */
void otlp_metrics_stop(struct otlp_metrics_exporter *e);

#endif
