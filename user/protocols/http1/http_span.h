/* From a captured HTTP/1 exchange (struct txn_event) to a span with the
 * OpenTelemetry HTTP semantic conventions. */
#ifndef WEFT_HTTP_SPAN_H
#define WEFT_HTTP_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/weft.h"
#include "span.h"

/* Fills s, a new span from span_new (ids, name, kind, times, status,
 * attributes, appended without looking for existing ones; not the
 * resource). mono_to_real converts the event's monotonic times. Returns 0
 * or -EINVAL when the captured request is not HTTP (the caller counts it). */
int http_span_from_txn(const struct txn_event *ev, size_t ev_len, int64_t mono_to_real, struct span *s);

/* HTTP semantics shared with HTTP/2 (user/protocols/http2/h2_span.c). */
/* One of the methods of RFC 9110 and PATCH: else "_OTHER" by the conventions. */
bool http_method_is_known(const char *p, size_t len);
/* url.query from a request's query string (len bytes, no '?'): the values
 * of parameters known to carry credentials redacted. Nothing when empty. */
/* query without its '?', credentials' values replaced by REDACTED: into
 * out (cap bytes, NUL-terminated); returns the length. */
size_t http_redact_query(const char *query, size_t len, char *out, size_t cap);
void http_set_url_query(struct attr_list *a, const char *query, size_t len);

#endif
