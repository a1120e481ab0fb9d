/* MySQL/MariaDB client/server protocol in the agent: mysql_proto.c decodes an exchange with its
 * connection's state, protocols/db/ makes the span. Kernel side:
 * bpf/protocols/mysql.bpf.h. */
#include "db_exchange.h"
#include "mysql_proto.h"
#include "protocol.h"

static void *mysql_conn_new(const void *first)
{
	return mysql_conn_state_new();
}

static void mysql_conn_free(void *state)
{
	mysql_conn_state_free(state);
}

static int mysql_parse(void *state, const uint8_t *req, size_t req_len, const uint8_t *resp, size_t resp_len,
		       struct db_op *op)
{
	return mysql_parse_exchange(state, req, req_len, resp, resp_len, op);
}

static int mysql_span(const struct txn_event *ev, size_t len, void *state, const struct protocol_ctx *ctx,
		      struct span *s)
{
	return db_exchange_span(ev, len, state, mysql_parse, ctx, s);
}

const struct protocol protocol_mysql = {
	.name = "mysql",
	.id = WEFT_PROTO_MYSQL,
	.idle_ns = 300000000ull, /* a quiet response: result sets have no cheap end */
	.conn_new = mysql_conn_new,
	.conn_free = mysql_conn_free,
	.span = mysql_span,
};
