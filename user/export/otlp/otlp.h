/* OTLP trace export: configuration (OTEL_* environment, then --otlp-* flags),
 * and a span sink that batches spans and sends them to an OpenTelemetry
 * collector over OTLP/HTTP (protobuf) or OTLP/gRPC, from its own thread.
 *
 * Typical use by the agent:
 *
 *	struct otlp_config cfg;
 *	char err[256];
 *	if (otlp_config_from_env(&cfg, err, sizeof(err)))      -> print err, exit 2
 *	for each --otlp-X=V: otlp_config_set_flag(&cfg, "--otlp-X", V, err, ...)
 *	if (want otlp || otlp_config_endpoint_set(&cfg)) {
 *		struct attr_list extra = {0};
 *		otlp_resource_from_env(&extra, err, sizeof(err));  (weft's own env)
 *		sink = otlp_sink_create(&cfg, &extra);
 *		attrs_free(&extra);
 *	}
 *	otlp_config_free(&cfg);
 *	...
 *	sink->close(sink);   flushes within OTEL_BSP_EXPORT_TIMEOUT, prints counters
 */
#ifndef WEFT_OTLP_H
#define WEFT_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sink.h"
#include "span.h"

#if __has_include("version.h")
#include "version.h"
#endif
#ifndef WEFT_VERSION
#define WEFT_VERSION "0.1.0"
#endif

enum otlp_protocol { OTLP_PROTOCOL_HTTP_PROTOBUF, OTLP_PROTOCOL_GRPC };
enum otlp_compression { OTLP_COMPRESSION_NONE, OTLP_COMPRESSION_GZIP };

struct otlp_header {
	char *name;  /* owned */
	char *value; /* owned, percent-decoded */
};

struct otlp_config {
	/* Generic endpoint (OTEL_EXPORTER_OTLP_ENDPOINT): for http/protobuf,
	 * "/v1/traces" is appended to its path. NULL: default. */
	char *endpoint;
	/* Signal-specific (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): used as is.
	 * Wins over endpoint. NULL: not set. */
	char *traces_endpoint;
	const char *endpoint_src; /* variable or flag that set the endpoint */
	enum otlp_protocol protocol;
	struct otlp_header *headers;
	size_t n_headers;
	unsigned timeout_ms; /* per export request */
	enum otlp_compression compression;
	char *certificate; /* PEM CA file for TLS, owned, or NULL */
	bool insecure;     /* scheme-less gRPC endpoint: plaintext (h2c) */
	unsigned schedule_delay_ms;
	unsigned max_queue_size;
	unsigned max_export_batch_size;
	unsigned export_timeout_ms; /* flush budget at close() */
	bool headers_from_flag;     /* internal: --otlp-headers appends */
};

/* Defaults (spec values), no environment. */
void otlp_config_init(struct otlp_config *cfg);
/* Defaults, then the OTEL_EXPORTER_OTLP_* and OTEL_BSP_* variables
 * (TRACES_ variants override generic ones; empty values count as unset).
 * Returns 0, or -EINVAL with a message naming the variable in err.
 * cfg must be released with otlp_config_free() whatever the result. */
int otlp_config_from_env(struct otlp_config *cfg, char *err, size_t errlen);
/* Applies one command-line option, overriding the environment. flag is one
 * of --otlp-endpoint, --otlp-protocol, --otlp-headers (repeatable: later
 * ones add headers), --otlp-timeout, --otlp-compression, --otlp-insecure
 * (value may be NULL: true), --otlp-certificate. "--otlp-endpoint" acts as
 * OTEL_EXPORTER_OTLP_ENDPOINT, except that a URL whose path already ends in
 * /v1/traces is used as is. Returns 0, -EINVAL (bad value, message in err)
 * or -ENOENT (unknown flag). */
int otlp_config_set_flag(struct otlp_config *cfg, const char *flag, const char *value,
			 char *err, size_t errlen);
/* True if an endpoint was given by environment or flag (not the default). */
bool otlp_config_endpoint_set(const struct otlp_config *cfg);
/* Final checks once flags are applied (scheme vs protocol, batch size vs
 * queue size...). Returns 0 or -EINVAL with a message in err. */
int otlp_config_check(const struct otlp_config *cfg, char *err, size_t errlen);
/* Resolved request URL: ".../v1/traces" for HTTP, ".../opentelemetry.proto.
 * collector.trace.v1.TraceService/Export" for gRPC. Returns the length, or
 * -EINVAL (invalid endpoint) / -ENOSPC. */
int otlp_config_url(const struct otlp_config *cfg, char *buf, size_t len);
void otlp_config_free(struct otlp_config *cfg);
const char *otlp_protocol_name(enum otlp_protocol p);

/* Weft's own OTEL_RESOURCE_ATTRIBUTES (percent-decoded key=value list) and
 * OTEL_SERVICE_NAME (wins for service.name) as string attributes added to out.
 * Returns 0 or -EINVAL with a message naming the variable. */
int otlp_resource_from_env(struct attr_list *out, char *err, size_t errlen);

/* Creates the OTLP sink and starts its export thread. extra_resource (may be
 * NULL) is weft's own resource (otlp_resource_from_env()); it is copied.
 * Resource of exported spans: the process's attributes, plus every extra
 * attribute the process lacks; extra's service.name also replaces the
 * process's unless the process resource has the bool attribute
 * "weft.service.name.from_process" = true. Internal "weft." keys of a
 * resource are never exported. Returns NULL (error logged) on failure; an
 * unreachable collector is not a failure. */
struct span_sink *otlp_sink_create(const struct otlp_config *cfg,
				   const struct attr_list *extra_resource);

/* otlp_sink_create() with weft's own OTEL_RESOURCE_ATTRIBUTES and
 * OTEL_SERVICE_NAME (otlp_resource_from_env()) as extra resource. Logs and
 * returns NULL on error (a malformed variable included). */
struct span_sink *otlp_sink_create_from_env(const struct otlp_config *cfg);

/* Process-wide counters of all OTLP sinks (kept for a metrics endpoint). */
struct otlp_counters {
	uint64_t spans_received;     /* spans given to the sink (emit) */
	uint64_t spans_exported;     /* accepted by the collector */
	uint64_t dropped_queue_full; /* queue at OTEL_BSP_MAX_QUEUE_SIZE */
	uint64_t dropped_rejected;   /* batch refused with a permanent error */
	uint64_t dropped_partial;    /* partial_success.rejected_spans */
	uint64_t dropped_shutdown;   /* not delivered within the flush budget */
	uint64_t dropped_other;      /* out of memory, encoding failure */
	uint64_t export_requests;    /* requests sent (retries included) */
	uint64_t export_errors;      /* requests that failed */
	uint64_t export_retries;     /* requests that were retries */
};

void otlp_counters_get(struct otlp_counters *out);
uint64_t otlp_counters_dropped(const struct otlp_counters *c);
/* One line: "otlp: received N, exported N, dropped N (queue_full N, ...), ..." */
void otlp_counters_print(FILE *f);

#endif
