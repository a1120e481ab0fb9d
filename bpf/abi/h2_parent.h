/* The context an HTTP/2 client stream is made in, where the thread that
 * writes its HEADERS frame is not the one that asked for the call (Go:
 * grpc-go's writer goroutine). Filled by whoever knows it (the Go probes),
 * read by sk_msg when it injects traceparent (bpf/inject/http2_inject.bpf.h). */
#ifndef WEFT_ABI_H2_PARENT_H
#define WEFT_ABI_H2_PARENT_H

#include "abi/types.h"

struct h2_parent_key {
	__u64 sk;        /* the client's struct sock (kernel address) */
	__u32 stream_id; /* the HTTP/2 stream */
	__u32 pad;
};

struct h2_parent {
	__u8 trace_id[16];
	__u8 span_id[8]; /* the parent span: the request being served */
	__u8 trace_flags;
	__u8 pad[7];
};

_Static_assert(sizeof(struct h2_parent_key) == 16, "h2_parent_key layout");
_Static_assert(sizeof(struct h2_parent) == 32, "h2_parent layout");

#endif
