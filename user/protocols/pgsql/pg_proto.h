/* PostgreSQL frontend/backend protocol v3 over captured exchanges: the
 * client's request bytes and the server's response bytes, each possibly
 * truncated and possibly starting mid-stream. */
#ifndef WEFT_PG_PROTO_H
#define WEFT_PG_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Prepared statements remembered per connection; the least recently used
 * one is evicted when full. */
#define PG_MAX_STATEMENTS 256

struct pg_conn_state;

struct pg_conn_state *pg_conn_state_new(void);
void pg_conn_state_free(struct pg_conn_state *st);
/* The text of prepared statement name ("" = unnamed), or NULL. */
const char *pg_conn_state_statement(const struct pg_conn_state *st, const char *name);
size_t pg_conn_state_statement_count(const struct pg_conn_state *st);
const char *pg_conn_state_database(const struct pg_conn_state *st); /* "" unknown */
bool pg_conn_state_encrypted(const struct pg_conn_state *st);

/* Cheap checks for protocol detection. The client check accepts a startup
 * packet (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) or a run
 * of well-formed frontend messages (Q, P, B, E, D, C, S, H, X) whose bodies
 * are validated; anything else, HTTP included, is rejected. The server check
 * accepts a well-formed backend message. */
bool pg_looks_like_client_message(const uint8_t *buf, size_t len);
bool pg_looks_like_server_message(const uint8_t *buf, size_t len);

/* Decodes one exchange. Returns 0 with out filled (a query, an execution of
 * a prepared statement, or a failed prepare), DB_PARSE_NO_SPAN when the
 * exchange only changed connection state (startup, SSL/GSS negotiation,
 * authentication, Parse without Execute, Terminate, COPY data), -EINVAL for
 * bytes that are not frontend messages, -EAGAIN when the request is cut off
 * before anything usable, -EPROTONOSUPPORT once the session is encrypted. */
int pg_parse_exchange(struct pg_conn_state *st, const uint8_t *req, size_t req_len,
		      const uint8_t *resp, size_t resp_len, struct db_op *out);

#endif
