/* HTTP/1.x in the agent: parse (http_parser.c), route (route.c), span
 * (http_span.c). Kernel side: bpf/protocols/http1.bpf.h. */
#include "http_span.h"
#include "protocol.h"

static int http1_span(const struct txn_event *ev, size_t len, void *state, const struct protocol_ctx *ctx,
		      struct span *s)
{
	return http_span_from_txn(ev, len, ctx->mono_to_real, s);
}

const struct protocol protocol_http1 = {
	.name = "http1",
	.id = WEFT_PROTO_HTTP1,
	.idle_ns = 3000000000ull, /* a quiet response without a known length */
	.span = http1_span,
};
