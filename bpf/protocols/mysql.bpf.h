/* MySQL/MariaDB client/server protocol, client side: the server's greeting
 * and COM_QUERY recognised, a response of one OK/ERR packet delimited; the
 * agent parses (user/protocols/mysql/). */
#ifndef WEFT_PROTOCOLS_MYSQL_BPF_H
#define WEFT_PROTOCOLS_MYSQL_BPF_H

#include "protocols/protocol.bpf.h"

static __always_inline __u32 mysql_len3(const __u8 *b)
{
	return b[0] | (__u32)b[1] << 8 | (__u32)b[2] << 16;
}

/* The server greeting: packet of sequence 0, protocol 10. */
static __always_inline bool mysql_is_greeting(const __u8 *b, __u32 n)
{
	if (n < 5)
		return false;
	__u32 len = mysql_len3(b);
	return b[3] == 0 && b[4] == 10 && len >= 20 && len < 1024;
}

/* COM_QUERY filling this write: for sessions that predate weft. */
static __always_inline bool mysql_is_query(const __u8 *b, __u32 n, long ret)
{
	return n >= 5 && b[3] == 0 && b[4] == 3 && mysql_len3(b) + 4 == ret;
}

static __always_inline int mysql_detect(const struct detect_ctx *d)
{
	/* MySQL speaks first: its greeting is an exchange of its own (the
	 * agent learns MariaDB vs MySQL from it). */
	if (d->dir == DIR_READ)
		return d->first && d->role == WEFT_ROLE_CLIENT && mysql_is_greeting(d->head, d->hn)
			       ? DETECT_GREETING
			       : DETECT_NONE;
	if (client_write(d) && d->role == WEFT_ROLE_UNKNOWN && mysql_is_query(d->head, d->hn, d->ret))
		return DETECT_REQUEST;
	return DETECT_NONE;
}

static __always_inline int mysql_response_first(struct txn_event *t, struct scan_buf *sb, __u32 n)
{
	txn_copy_response(t, sb, n);
	return 1;
}

/* One OK or ERR packet filling the response. */
static __always_inline bool mysql_response_ends(struct txn_event *t, struct io_args *io, long ret)
{
	__u8 *r = &t->data[t->req_len & (WEFT_REQ_CAP_MAX - 1)];
	return t->resp_len >= 5 && (r[4] == 0x00 || r[4] == 0xff) && mysql_len3(r) + 4 == t->resp_bytes;
}

#endif
