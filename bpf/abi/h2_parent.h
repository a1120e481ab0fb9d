/* The context an HTTP/2 client stream is made in, where the thread that
 * writes its HEADERS frame is not the one that asked for the call (Go:
 * grpc-go's writer goroutine). Filled by whoever knows it: the Go uprobe
 * on grpc-go's (*http2Client).NewStream (bpf/uprobes/go.bpf.c), in the
 * calling goroutine, when the stream has its id; read by sk_msg when it
 * injects traceparent into that stream's HEADERS frame
 * (bpf/inject/http2_inject.bpf.h). The agent gets the same record as an
 * h2_parent_event, so the client span has that parent even when nothing is
 * injected (or the HEADERS went out before the uprobe ran: docs/GO.md). */
#ifndef WEFT_ABI_H2_PARENT_H
#define WEFT_ABI_H2_PARENT_H

#include "abi/types.h"

struct h2_parent_key {
	__u64 sk;        /* the client's struct sock (kernel address) */
	__u32 stream_id; /* the HTTP/2 stream (odd: client-initiated) */
	__u32 pad;
};

struct h2_parent {
	__u8 trace_id[16];
	__u8 span_id[8]; /* the parent span: the request being served */
	__u8 trace_flags;
	__u8 pad[7];
	__u64 at_ns; /* CLOCK_MONOTONIC when recorded: a record older than its
		      * connection is a late one of an earlier connection that
		      * had the same socket address, never used */
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
_Static_assert(sizeof(struct h2_parent) == 40, "h2_parent layout");
_Static_assert(sizeof(struct h2_parent_event) == 64, "h2_parent_event layout");

#endif
