/* memcached's text protocol in the agent: memcached_proto.c decodes an
 * exchange, protocols/db/ makes the span. Stateless. Kernel side:
 * bpf/protocols/memcached.bpf.h. */
#include "db_exchange.h"
#include "memcached_proto.h"
#include "protocol.h"

static int memcached_span(const struct txn_event *ev, size_t len, void *state, const struct protocol_ctx *ctx,
			  struct span *s)
{
	return db_exchange_span(ev, len, state, memcached_parse_exchange, ctx, s);
}

const struct protocol protocol_memcached = {
	.name = "memcached",
	.id = WEFT_PROTO_MEMCACHED,
	.idle_ns = 300000000ull, /* a reply whose end was not seen */
	.span = memcached_span,
};
