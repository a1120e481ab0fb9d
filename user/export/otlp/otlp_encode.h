/* Span -> OTLP protobuf (ExportTraceServiceRequest), with protobuf-c code
 * generated at build time from opentelemetry-proto. Internal to the OTLP
 * exporter; pure functions, no I/O. */
#ifndef WEFT_OTLP_ENCODE_H
#define WEFT_OTLP_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "span.h"

/* Resource attribute set by the agent when service.name came from the
 * traced process's own OTEL_SERVICE_NAME. Never exported. */
#define OTLP_ATTR_SERVICE_FROM_PROCESS "weft.service.name.from_process"

/* True for attribute keys that are weft-internal and never exported: any
 * resource key starting with "weft.", and OTLP_ATTR_SERVICE_FROM_PROCESS or
 * "weft.internal.*" span keys. */
bool otlp_attr_internal(const char *key, bool resource);

/* dst (empty) := process's attributes, plus each attribute of extra that
 * process lacks; extra's service.name replaces the process's one unless
 * process has OTLP_ATTR_SERVICE_FROM_PROCESS = true. extra may be NULL.
 * Returns 0 or -ENOMEM. */
int otlp_resource_merge(struct attr_list *dst, const struct attr_list *process,
			const struct attr_list *extra);

/* Packs spans into one ExportTraceServiceRequest: one ResourceSpans per
 * distinct span->resource (pointer identity; NULL allowed), in order of first
 * appearance, each with one ScopeSpans (scope "weft", WEFT_VERSION).
 * On success *out is a malloc'ed buffer of *outlen bytes. Returns 0,
 * -EINVAL (n == 0) or -ENOMEM. */
int otlp_encode_spans(const struct span *const *spans, size_t n, uint8_t **out, size_t *outlen);

#endif
