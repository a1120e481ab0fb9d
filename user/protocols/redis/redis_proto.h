/* Redis RESP2/RESP3 over captured exchanges: the client's commands (one, or
 * a pipeline of several written at once) and the start of the replies. */
#ifndef WEFT_REDIS_PROTO_H
#define WEFT_REDIS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct redis_conn_state;

/* fresh: the connection was opened while weft watched it, so it starts on
 * database 0. Otherwise the index is unknown until a SELECT succeeds (the
 * conventions ask for db.namespace only when captured reliably). */
struct redis_conn_state *redis_conn_state_new(bool fresh);
void redis_conn_state_free(struct redis_conn_state *st);
/* The current database index, false when unknown. */
bool redis_conn_state_db(const struct redis_conn_state *st, long *db);
bool redis_conn_state_resp3(const struct redis_conn_state *st); /* HELLO 3 accepted */

/* Detection. Client: a RESP array of bulk strings whose first element is a
 * command name (letters). Inline commands ("PING\r\n") are not accepted,
 * since HTTP request lines would pass for them. Server: a RESP2/RESP3 reply
 * header. */
bool redis_looks_like_client_message(const uint8_t *buf, size_t len);
bool redis_looks_like_server_message(const uint8_t *buf, size_t len);

/* Decodes one exchange into out. One span per exchange: a pipeline (several
 * commands in one write) becomes one operation with batch_size = number of
 * commands seen, operation "BATCH <CMD>" when all commands are the same and
 * "BATCH" otherwise. out->query holds the commands as text (arguments
 * quoted when needed; AUTH/HELLO credentials always masked) and
 * out->query_redacted the same with everything but the command name and
 * its first argument (the key) replaced by '?'. Returns 0, -EINVAL (not
 * RESP commands) or -EAGAIN (nothing usable captured). */
int redis_parse_exchange(struct redis_conn_state *st, const uint8_t *req, size_t req_len,
			 const uint8_t *resp, size_t resp_len, struct db_op *out);

#endif
