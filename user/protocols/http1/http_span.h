/* From a captured HTTP/1 exchange (struct txn_event) to a span with the
 * OpenTelemetry HTTP semantic conventions. */
#ifndef WEFT_HTTP_SPAN_H
#define WEFT_HTTP_SPAN_H

#include <stddef.h>
#include <stdint.h>

#include "abi/weft.h"
#include "http_parser.h"
#include "span.h"

/* Fills s, a new span from span_new (ids, name, kind, times, status,
 * attributes, appended without looking for existing ones; not the
 * resource). mono_to_real converts the event's monotonic times. Returns 0
 * or -EINVAL when the captured request is not HTTP (the caller counts it). */
int http_span_from_txn(const struct txn_event *ev, size_t ev_len, int64_t mono_to_real, struct span *s);

/* url.query (q: the target's query, without '?') with the values of
 * parameters that carry credentials redacted; HTTP/2 spans use it too. */
void http_set_query(struct attr_list *a, struct http_str q);

#endif
