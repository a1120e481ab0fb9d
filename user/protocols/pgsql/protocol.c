/* PostgreSQL frontend/backend v3 in the agent: pg_proto.c decodes an exchange with its
 * connection's state, protocols/db/ makes the span. Kernel side:
 * bpf/protocols/pgsql.bpf.h. */
#include "db_exchange.h"
#include "pg_proto.h"
#include "protocol.h"

static void *pgsql_conn_new(const void *first)
{
	return pg_conn_state_new();
}

static void pgsql_conn_free(void *state)
{
	pg_conn_state_free(state);
}

static int pgsql_parse(void *state, const uint8_t *req, size_t req_len, const uint8_t *resp, size_t resp_len,
		       struct db_op *op)
{
	return pg_parse_exchange(state, req, req_len, resp, resp_len, op);
}

static int pgsql_span(const struct txn_event *ev, size_t len, void *state, const struct protocol_ctx *ctx,
		      struct span *s)
{
	return db_exchange_span(ev, len, state, pgsql_parse, ctx, s);
}

const struct protocol protocol_pgsql = {
	.name = "pgsql",
	.id = WEFT_PROTO_PGSQL,
	.idle_ns = 300000000ull, /* a quiet response: result sets have no cheap end */
	.conn_new = pgsql_conn_new,
	.conn_free = pgsql_conn_free,
	.span = pgsql_span,
};
