/* Database exchanges captured by the kernel (struct txn_event with a
 * PostgreSQL, MySQL or Redis proto) into CLIENT spans; what the three
 * protocols' struct protocol span() share. */
#ifndef WEFT_DB_EXCHANGE_H
#define WEFT_DB_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "protocol.h"

/* A protocol's decoder: the request and response bytes of one exchange,
 * with the connection's state, into op. 0, DB_PARSE_NO_SPAN, -errno. */
typedef int (*db_parse_fn)(void *state, const uint8_t *req, size_t req_len, const uint8_t *resp, size_t resp_len,
			   struct db_op *op);

/* As struct protocol's span(). */
int db_exchange_span(const struct txn_event *ev, size_t ev_len, void *state, db_parse_fn parse,
		     const struct protocol_ctx *ctx, struct span *s);

#endif
