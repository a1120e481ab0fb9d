/* Redis RESP2/RESP3, client side: commands recognised, replies delimited;
 * the agent parses (user/protocols/redis/). */
#ifndef WEFT_PROTOCOLS_REDIS_BPF_H
#define WEFT_PROTOCOLS_REDIS_BPF_H

#include "protocols/protocol.bpf.h"

/* A RESP command: an array "*<count>\r\n$". */
static __always_inline bool redis_is_command(const __u8 *b, __u32 n)
{
	if (n < 5 || b[0] != '*' || b[1] < '1' || b[1] > '9')
		return false;
	if (b[2] == '\r')
		return b[3] == '\n' && b[4] == '$';
	return b[2] >= '0' && b[2] <= '9' && b[3] == '\r' && b[4] == '\n';
}

static __always_inline int redis_detect(const struct detect_ctx *d)
{
	return client_write(d) && redis_is_command(d->head, d->hn) ? DETECT_REQUEST : DETECT_NONE;
}

static __always_inline int redis_response_first(struct txn_event *t, struct scan_buf *sb, __u32 n)
{
	txn_copy_response(t, sb, n);
	return 1;
}

/* Replies end a line; a reply cut between reads rarely does. */
static __always_inline bool redis_response_ends(struct txn_event *t, struct io_args *io, long ret)
{
	__u8 tail[6] = {};
	return io_tail6(io, ret, tail) && tail[4] == '\r' && tail[5] == '\n';
}

#endif
