/* A database exchange (PostgreSQL, MySQL, Redis) into a CLIENT span: the
 * protocol's parser decodes it into a struct db_op with its connection's
 * state, then the span follows the database semantic conventions. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "exchange.h"
#include "db_exchange.h"
#include "db_span.h"

int db_exchange_span(const struct txn_event *ev, size_t ev_len, void *state, db_parse_fn parse,
		     const struct protocol_ctx *ctx, struct span *s)
{
	static struct db_op op; /* large: not on the stack */
	size_t req_len = ev->req_len, resp_len = ev->resp_len;
	int64_t mono_to_real = ctx->mono_to_real;
	if (ev_len < WEFT_TXN_HDR_SIZE || req_len + resp_len > ev_len - WEFT_TXN_HDR_SIZE)
		return -EINVAL;
	const uint8_t *req = ev->data, *resp = ev->data + req_len;
	memset(&op, 0, sizeof(op));
	int rc = parse(state, req, req_len, resp, resp_len, &op);
	if (rc != 0)
		return rc;
	if (op.query[0] && ev->req_bytes > req_len)
		op.query_truncated = true; /* the capture ended inside the statement */

	span_set_exchange(s, ev, SPAN_KIND_CLIENT, mono_to_real);
	rc = db_span_fill(&op, ctx->db_statement, s);
	if (rc)
		return rc;
	if (op.batch_size && ev->req_bytes > req_len)
		/* A pipeline longer than the capture: its size is unknown, and the
		 * count of commands that fit would be a wrong number. */
		attrs_remove(&s->attrs, "db.operation.batch.size");

	if (ev->addr.family == AF_UNIX) {
		/* The server's socket path, e.g. /var/run/postgresql/.s.PGSQL.5432. */
		size_t n = strnlen(ev->addr.unix_path, WEFT_UNIX_PATH_MAX);
		attrs_add_str(&s->attrs, "network.transport", "unix");
		attrs_add_strn(&s->attrs, "server.address", n ? ev->addr.unix_path : "unix", n ? n : 4);
		attrs_add_strn(&s->attrs, "network.peer.address", n ? ev->addr.unix_path : "unix", n ? n : 4);
		return 0;
	}
	char remote[64];
	conn_addr_format(ev->addr.raddr, ev->addr.family, remote, sizeof(remote));
	attrs_add_str(&s->attrs, "server.address", remote);
	attrs_add_int(&s->attrs, "server.port", ev->addr.rport);
	attrs_add_str(&s->attrs, "network.peer.address", remote);
	attrs_add_int(&s->attrs, "network.peer.port", ev->addr.rport);
	return 0;
}
