/* memcached's text protocol over captured exchanges: the client's command
 * line (and data block) and the start of the server's reply. */
#ifndef WEFT_MEMCACHED_PROTO_H
#define WEFT_MEMCACHED_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

/* Decodes one exchange into out (system memcached): operation = the
 * command ("get", "set", ...), query = its command line as sent (without a
 * storage command's data block), query_redacted = the command with every
 * argument replaced by '?'. A reply of ERROR, CLIENT_ERROR or SERVER_ERROR
 * is an error, its first word the status code and the rest its message;
 * NOT_FOUND, NOT_STORED, EXISTS and a miss are not errors. Returns 0 or
 * -EINVAL (not a memcached command line). state is unused (stateless). */
int memcached_parse_exchange(void *state, const uint8_t *req, size_t req_len, const uint8_t *resp,
			     size_t resp_len, struct db_op *out);

#endif
