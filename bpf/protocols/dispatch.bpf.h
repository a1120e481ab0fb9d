/* Calls the protocols' hooks (protocols/protocol.bpf.h) in the order of
 * the one protocol list, abi/protocols.def. Every protocol's kernel file is
 * included through gen/protocols_all.bpf.h, which the build writes from
 * bpf/protocols/ *.bpf.h. */
#ifndef WEFT_PROTOCOLS_DISPATCH_BPF_H
#define WEFT_PROTOCOLS_DISPATCH_BPF_H

#include "protocols/protocol.bpf.h"
#include "gen/protocols_all.bpf.h"

/* What the bytes of d are, and of which protocol (*proto). A connection
 * that a sticky protocol (a database's) claimed stays its own: every
 * client write there starts a request of it. A global function: verified
 * once, with every protocol's detect hook. */
__attribute__((noinline)) int proto_detect(const struct detect_ctx *d, __u8 *proto)
{
	int r;
	if (!d || !proto)
		return DETECT_NONE;
	if (client_write(d) && (weft_proto_flags(d->conn_proto) & WEFT_PROTO_F_STICKY)) {
		*proto = d->conn_proto;
		return DETECT_REQUEST;
	}
#define WEFT_PROTOCOL(NAME, id, value, flags) \
	r = id##_detect(d);                   \
	if (r != DETECT_NONE) {               \
		*proto = value;               \
		return r;                     \
	}
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
	return DETECT_NONE;
}

static __always_inline int proto_response_first(struct txn_event *t, struct scan_buf *sb, __u32 n)
{
	switch (t->proto) {
#define WEFT_PROTOCOL(NAME, id, value, flags) \
	case value:                            \
		return id##_response_first(t, sb, n);
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
	}
	return 1;
}

/* A global function, verified once with every protocol's hook. */
__attribute__((noinline)) int proto_response_ends(struct txn_event *t, struct io_args *io, long ret)
{
	if (!t || !io)
		return 0;
	switch (t->proto) {
#define WEFT_PROTOCOL(NAME, id, value, flags) \
	case value:                            \
		return id##_response_ends(t, io, ret);
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
	}
	return 0;
}

/* A stream protocol's connection starts (capture/stream.bpf.h). */
static __always_inline void proto_stream_begin(__u8 proto, struct stream_state *st, struct conn_info *c, __u8 dir,
					       int what, __u32 prefix_len)
{
	if (proto == WEFT_PROTO_HTTP2)
		http2_begin(st, c, dir, what, prefix_len);
}

#endif
