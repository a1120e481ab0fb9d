/* memcached's text protocol, client side: a client's command recognised,
 * where its reply ends; the agent parses (user/protocols/memcached/). */
#ifndef WEFT_PROTOCOLS_MEMCACHED_BPF_H
#define WEFT_PROTOCOLS_MEMCACHED_BPF_H

#include "protocols/protocol.bpf.h"

/* A command line: one of the text protocol's commands, then a space. Lower
 * case only (the protocol's), so an HTTP "GET " is not one. */
static __always_inline bool memcached_is_command(const __u8 *b, __u32 n)
{
	if (n < 5)
		return false;
	switch (W4(b[0], b[1], b[2], b[3])) {
	case W4('g', 'e', 't', ' '):
	case W4('s', 'e', 't', ' '):
	case W4('a', 'd', 'd', ' '):
	case W4('c', 'a', 's', ' '):
	case W4('g', 'a', 't', ' '):
		return true;
	case W4('g', 'e', 't', 's'):
	case W4('i', 'n', 'c', 'r'):
	case W4('d', 'e', 'c', 'r'):
	case W4('g', 'a', 't', 's'):
		return b[4] == ' ';
	case W4('t', 'o', 'u', 'c'): /* touch */
	case W4('a', 'p', 'p', 'e'): /* append */
	case W4('d', 'e', 'l', 'e'): /* delete */
	case W4('r', 'e', 'p', 'l'): /* replace */
	case W4('p', 'r', 'e', 'p'): /* prepend */
		return n >= 7 && b[4] >= 'a' && b[4] <= 'z';
	}
	return false;
}

static __always_inline int memcached_detect(const struct detect_ctx *d)
{
	return client_write(d) && memcached_is_command(d->head, d->hn) ? DETECT_REQUEST : DETECT_NONE;
}

static __always_inline int memcached_response_first(struct txn_event *t, struct scan_buf *sb, __u32 n)
{
	txn_copy_response(t, sb, n);
	return 1;
}

/* A retrieval (get, gets, gat, gats) ends with "END\r\n" (or an error
 * line), any other command's reply is one line. */
static __always_inline bool memcached_response_ends(struct txn_event *t, struct io_args *io, long ret)
{
	__u8 tail[6] = {};
	if (!io_tail6(io, ret, tail) || tail[4] != '\r' || tail[5] != '\n')
		return false;
	bool retrieval = t->data[0] == 'g';
	if (!retrieval)
		return true;
	if (tail[1] == 'E' && tail[2] == 'N' && tail[3] == 'D')
		return true;
	/* ERROR / CLIENT_ERROR / SERVER_ERROR: the reply's first bytes say so. */
	__u8 *r = &t->data[t->req_len & (WEFT_REQ_CAP_MAX - 1)];
	return t->resp_len >= 5 && (r[0] == 'E' || r[0] == 'C' || r[0] == 'S');
}

#endif
