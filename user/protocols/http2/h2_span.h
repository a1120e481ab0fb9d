/* From a finished HTTP/2 stream to a span: gRPC (rpc.*) when its
 * content-type says application/grpc, else the HTTP conventions. */
#ifndef WEFT_H2_SPAN_H
#define WEFT_H2_SPAN_H

#include "h2_stream.h"
#include "protocol.h"
#include "span.h"

/* Fills s (new, from span_new): ids, name, kind, times, status and
 * attributes. 0 or -ENOMEM. */
int h2_span_build(const struct h2_conn_info *ci, const struct h2_stream *st, const struct protocol_ctx *ctx,
		  struct span *s);

/* Is a gRPC status code an error for a server (the semantic conventions'
 * list) or, with client, for a client (any but OK)? */
bool grpc_status_is_error(int code, bool client);

#endif
