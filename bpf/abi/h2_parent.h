/* In-process parents of HTTP/2 client streams (gRPC calls). A Go uprobe
 * (bpf/uprobes/go.bpf.c: grpc-go's http2Client.NewStream, in the calling
 * goroutine) finds the request the caller is serving and records it here
 * under the connection's socket and the new stream's id, before or while
 * the stream's HEADERS frame is written by grpc-go's writer goroutine:
 *   - sk_msg (bpf/inject/) looks it up when it injects traceparent into that
 *     HEADERS frame: the injected context is that request's child;
 *   - the agent gets the same record as an h2_parent_event, so the client
 *     span has that parent even when nothing is injected.
 * An entry whose stream's HEADERS went out first is simply not used
 * (stream ids are never reused on a connection, and the key names the
 * connection, not just its socket): a parent can be missed, never wrong. */
#ifndef WEFT_ABI_H2_PARENT_H
#define WEFT_ABI_H2_PARENT_H

#include "abi/types.h"

struct h2_parent_key {
	__u64 sk;        /* struct sock * of the client's connection */
	__u32 stream_id; /* the HTTP/2 stream (odd: client-initiated) */
	/* The connection's stream_states nonce (random per connection): a
	 * struct sock freed and reused by a later connection, whose stream
	 * ids start again at 1, never matches a record left from the first. */
	__u32 conn_nonce;
};

struct h2_parent {
	__u8 trace_id[16];
	__u8 span_id[8]; /* the parent span: the request the caller serves */
	__u8 trace_flags;
	__u8 pad[7];
};

/* The same record for the agent (WEFT_EV_H2_PARENT). */
struct h2_parent_event {
	__u32 type; /* WEFT_EV_H2_PARENT */
	__u32 pid;  /* tgid */
	__u32 fd;
	__u32 stream_id;
	__u64 sk;
	struct h2_parent parent;
};

_Static_assert(sizeof(struct h2_parent_key) == 16, "h2_parent_key layout");
_Static_assert(sizeof(struct h2_parent) == 32, "h2_parent layout");
_Static_assert(sizeof(struct h2_parent_event) == 56, "h2_parent_event layout");

#endif
