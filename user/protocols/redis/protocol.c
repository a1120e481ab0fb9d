/* Redis RESP2/RESP3 in the agent: redis_proto.c decodes an exchange with its
 * connection's state, protocols/db/ makes the span. Kernel side:
 * bpf/protocols/redis.bpf.h. */
#include "db_exchange.h"
#include "redis_proto.h"
#include "protocol.h"

static void *redis_conn_new(const void *first)
{
	const struct txn_event *ev = first;
	return redis_conn_state_new(ev->conn_opened);
}

static void redis_conn_free(void *state)
{
	redis_conn_state_free(state);
}

static int redis_parse(void *state, const uint8_t *req, size_t req_len, const uint8_t *resp, size_t resp_len,
		       struct db_op *op)
{
	return redis_parse_exchange(state, req, req_len, resp, resp_len, op);
}

static int redis_span(const struct txn_event *ev, size_t len, void *state, const struct protocol_ctx *ctx,
		      struct span *s)
{
	return db_exchange_span(ev, len, state, redis_parse, ctx, s);
}

const struct protocol protocol_redis = {
	.name = "redis",
	.id = WEFT_PROTO_REDIS,
	.idle_ns = 300000000ull, /* a quiet response: result sets have no cheap end */
	.conn_new = redis_conn_new,
	.conn_free = redis_conn_free,
	.span = redis_span,
};
