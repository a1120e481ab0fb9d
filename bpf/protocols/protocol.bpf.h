/* The contract between the capture front and a protocol's kernel file,
 * bpf/protocols/<id>.bpf.h. Each defines three hooks, which
 * protocols/dispatch.bpf.h calls in the order of abi/protocols.def:
 *
 *   int <id>_detect(const struct detect_ctx *d)
 *       Bytes on a connection with no exchange in flight: DETECT_NONE, or
 *       what they are (enum detect_result). Cheap: it runs on every first
 *       message of every traced connection.
 *   int <id>_response_first(struct txn_event *t, struct scan_buf *sb, __u32 n)
 *       The response's first n bytes, in sb->b: capture them into t
 *       (txn_copy_response for a plain copy) and learn what the protocol
 *       can of where the response ends. 1: the response has begun; 0: not
 *       yet (an interim response); -1: it has begun and the connection
 *       leaves the protocols weft parses (HTTP/1's 101).
 *   bool <id>_response_ends(struct txn_event *t, struct io_args *io, long ret)
 *       Does this read (the response so far) end the exchange? (A known
 *       total size, t->resp_expected, ends it without asking.)
 *
 * The hooks are inlined into the dispatch's global functions (proto_detect,
 * proto_response_ends), which the verifier checks once each: a protocol
 * adds its own instructions, it does not multiply on_data's. Large code
 * (loops, unrolled tests) goes into global functions of the protocol's
 * file (docs/ARCHITECTURE.md, "Verifier budget"). detect_ctx holds no
 * pointer: a global function's argument is plain memory to the verifier. */
#ifndef WEFT_PROTOCOLS_PROTOCOL_BPF_H
#define WEFT_PROTOCOLS_PROTOCOL_BPF_H

#include "lib/common.bpf.h"
#include "lib/scan.bpf.h"
#include "capture/io.bpf.h"

enum detect_result {
	DETECT_NONE = 0,
	DETECT_REQUEST,  /* a request starts: a server's if read, a client's if written */
	DETECT_GREETING, /* the server speaks first (read by a client): an exchange of its own */
	DETECT_PARTIAL,  /* fewer than 8 bytes that may start a request: joined with the next read */
	DETECT_OTHER,    /* this protocol, but no request start: keep watching the connection */
	DETECT_STREAM,   /* a stream protocol's connection starts here (HTTP/2: the client preface) */
	DETECT_STREAM_FRAMES, /* a stream protocol's frames, its start unseen or the peer's to come */
};

struct detect_ctx {
	__u8 head[16];    /* the first bytes of the data, zero-padded */
	__u32 hn;         /* valid bytes in head (at most 8, or 15 when joined) */
	__u32 avail;      /* bytes of the call contiguous at its buffer */
	long ret;         /* bytes the call moved */
	__u8 dir;         /* DIR_READ or DIR_WRITE */
	bool first;       /* the connection's first bytes that weft sees */
	__u8 role;        /* the connection's enum weft_role */
	__u8 conn_proto;  /* the protocol that claimed the connection, if any */
};

/* The response's first n bytes (sb->b) into t, after the request's. */
static __always_inline void txn_copy_response(struct txn_event *t, struct scan_buf *sb, __u32 n)
{
	__u32 off = t->req_len;
	clamp_for_verifier(off, WEFT_REQ_CAP_MAX);
	clamp_for_verifier(n, WEFT_RESP_CAP_MAX);
	if (bpf_probe_read_kernel(&t->data[off], n, sb->b) == 0)
		t->resp_len = n;
}

/* Little-endian 4-byte constants for the first bytes of a message. */
#define W4(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

static __always_inline __u32 be32(const __u8 *b)
{
	return (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
}

/* A client's write on a connection weft may take for a client's. */
static __always_inline bool client_write(const struct detect_ctx *d)
{
	return d->dir == DIR_WRITE && d->role != WEFT_ROLE_SERVER;
}

#endif
