/* PostgreSQL frontend/backend protocol v3, client side: the kernel only
 * recognises a client's connection and where a response ends; the agent
 * parses (user/protocols/pgsql/). */
#ifndef WEFT_PROTOCOLS_PGSQL_BPF_H
#define WEFT_PROTOCOLS_PGSQL_BPF_H

#include "protocols/protocol.bpf.h"

/* StartupMessage, SSLRequest or GSSENCRequest: the first bytes a client
 * sends (length, then protocol 3.0 or a request code). */
static __always_inline bool pg_is_startup(const __u8 *b, __u32 n)
{
	if (n < 8)
		return false;
	__u32 len = be32(b), code = be32(b + 4);
	return len >= 8 && len <= 10000 && (code == 196608 || code == 80877103 || code == 80877104);
}

/* A simple Query message filling this write: for sessions that predate weft. */
static __always_inline bool pg_is_query(const __u8 *b, __u32 n, long ret)
{
	return n >= 5 && b[0] == 'Q' && be32(b + 1) + 1 == ret;
}

static __always_inline int pgsql_detect(const struct detect_ctx *d)
{
	if (!client_write(d))
		return DETECT_NONE;
	if ((d->first && pg_is_startup(d->head, d->hn)) ||
	    (d->role == WEFT_ROLE_UNKNOWN && pg_is_query(d->head, d->hn, d->ret)))
		return DETECT_REQUEST;
	return DETECT_NONE;
}

static __always_inline int pgsql_response_first(struct txn_event *t, struct scan_buf *sb, __u32 n)
{
	txn_copy_response(t, sb, n);
	return 1;
}

/* ReadyForQuery: 'Z', length 5, transaction status. */
static __always_inline bool pgsql_response_ends(struct txn_event *t, struct io_args *io, long ret)
{
	__u8 tail[6] = {};
	if (!io_tail6(io, ret, tail))
		return false;
	return tail[0] == 'Z' && tail[1] == 0 && tail[2] == 0 && tail[3] == 0 && tail[4] == 5 &&
	       (tail[5] == 'I' || tail[5] == 'T' || tail[5] == 'E');
}

#endif
