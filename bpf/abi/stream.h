/* Stream protocols (WEFT_PROTO_F_STREAM: HTTP/2): protocols whose
 * exchanges interleave on one connection, so the kernel does not cut them
 * into exchanges. It forwards the connection's bytes to the agent in
 * order, per direction, as stream_chunk_events, filtered by the protocol's
 * kernel file (HTTP/2: every frame whole except DATA payloads, of which
 * only the first 5 bytes, the gRPC message prefix, are kept). */
#ifndef WEFT_ABI_STREAM_H
#define WEFT_ABI_STREAM_H

#include "abi/types.h"
#include "abi/conn.h"

/* Filtered bytes one event carries at most; a chunk that filters to more
 * is sent as several events. */
#define WEFT_STREAM_CAP 16384

enum stream_chunk_flags {
	STREAM_F_START = 0x01,  /* the connection's first bytes weft saw (HTTP/2: the preface) */
	STREAM_F_GAP = 0x02,    /* bytes of this direction were lost before this event */
	STREAM_F_MIDWAY = 0x04, /* the stream was joined mid-way: its state (HPACK) is unknown */
	STREAM_F_MORE = 0x08,   /* the rest of this chunk follows in the next event */
};

/* Bytes a traced process moved on a stream protocol's connection. */
struct stream_chunk_event {
	__u32 type; /* WEFT_EV_STREAM_CHUNK */
	__u32 pid;  /* tgid */
	__u32 tid;
	__u32 fd;
	__u64 ts_ns;  /* CLOCK_MONOTONIC: a read's end, a send's start */
	__u64 sk;     /* struct sock *: a reused fd has another */
	struct conn_addr addr;
	__u32 orig_len; /* bytes the call moved (before filtering) */
	__u32 len;      /* filtered bytes in data[] */
	__u32 seq;      /* per connection and direction: a jump means events were lost */
	__u8 dir;       /* 0 read, 1 write (enum io_dir) */
	__u8 role;      /* enum weft_role of the connection, as the kernel knows it */
	__u8 proto;     /* enum weft_proto */
	__u8 flags;     /* STREAM_F_* */
	__u16 tls_cipher; /* the connection's TLS cipher suite (conn_info.tls_cipher), 0: unknown */
	__u8 tls_version; /* and TLS version (conn_info.tls_version), 0: unknown */
	__u8 pad[5];
	__u8 data[WEFT_STREAM_CAP];
};

#define WEFT_STREAM_HDR_SIZE 128
_Static_assert(__builtin_offsetof(struct stream_chunk_event, data) == WEFT_STREAM_HDR_SIZE,
	       "stream_chunk_event layout");

/* sk_msg injected a traceparent into the request HEADERS frame of a
 * stream: the client span of that stream has these ids. Sent before the
 * chunk that carries the frame. */
struct stream_inject_event {
	__u32 type; /* WEFT_EV_STREAM_INJECT */
	__u32 pid;
	__u32 fd;
	__u32 stream_id;
	__u64 sk;
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8]; /* zero: root */
	__u8 trace_flags;
	__u8 pad[7];
};

_Static_assert(sizeof(struct stream_inject_event) == 64, "stream_inject_event layout");

#endif
