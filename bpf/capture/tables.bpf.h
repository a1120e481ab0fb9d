/* The capture front's tables: connections, exchanges in flight, and the
 * per-CPU scratch an exchange and a header scan are built in. Included by
 * capture/capture.bpf.c only (the loader sets the read-only data). */
#ifndef WEFT_CAPTURE_TABLES_BPF_H
#define WEFT_CAPTURE_TABLES_BPF_H

#include "lib/common.bpf.h"
#include "lib/scan.bpf.h"
#include "protocols/protocol.bpf.h"
#include "capture/io.bpf.h"

/* Run-time capture limits, at most the compile-time maxima. */
const volatile __u32 req_capture = WEFT_REQ_CAP_DEFAULT;
/* Set when nothing in the agent wants the exchanges of sampled-out traces
 * (no metrics, no --keep-errors): they are dropped here, before the ring
 * buffer, unless their protocol keeps per-connection state in the agent. */
const volatile __u8 drop_sampled_out = 0;
const volatile __u32 resp_capture = WEFT_RESP_CAP_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_info);
} conns SEC(".maps");

/* In-flight exchanges (an exchange lives from its request to its response).
 * Preallocated, about 23 MiB: with BPF_F_NO_PREALLOC its 2.8 KB elements
 * came from the BPF allocator's per-CPU caches, which hold only a few
 * elements of that size, and an exchange allocated on one CPU and freed on
 * another (a Go client's writer and reader goroutines) refilled or drained
 * them by irq_work, a self-IPI, on nearly every exchange: 10-15 us each on
 * a VM. Full: counted (WEFT_CNT_TXN_MAP_FULL), that exchange is not traced. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct conn_key);
	__type(value, struct txn_event);
} txns SEC(".maps");

/* Per-CPU scratch: a new exchange is built here, then inserted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct txn_event);
} txn_scratch SEC(".maps");

/* Per-CPU scratch for scanning the first bytes of a response. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_buf);
} scan_scratch SEC(".maps");

/* Socket front: TCP sockets whose opening weft saw (inet_sock_set_state:
 * SYN_SENT for a client, SYN_RECV for a server), their role until their
 * connection is recorded. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);  /* struct sock * */
	__type(value, __u8); /* enum weft_role */
} sock_roles SEC(".maps");

/* Socket front: the connection a socket was recorded as, for its close
 * (a TCP socket's move to CLOSE has no process context). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* struct sock * */
	__type(value, struct conn_key);
} sock_conns SEC(".maps");

/* Stream protocols (abi/stream.h): where a connection's framing stands in
 * each direction, between calls. */
struct stream_dir {
	__u32 frame_left; /* bytes of the current frame (or preface) still to come */
	__u32 keep_left;  /* of those, bytes still to forward */
	__u32 seq;        /* events sent */
	__u8 hdr_have;    /* bytes of a frame header the last call ended in */
	__u8 started;     /* an event was sent */
	__u8 gap;         /* an event was lost: say so in the next */
	__u8 lost;        /* framing lost: nothing more is forwarded */
	__u8 prefix_len;  /* bytes of st->prefix that start this direction */
	__u8 hdr[19];     /* a frame header being gathered (9 bytes used; room for the verifier) */
};

struct stream_state {
	struct stream_dir dir[2]; /* by enum io_dir */
	__u64 sk;                 /* the socket: a reused fd has another */
	__u8 prefix[8];           /* a request's first bytes an earlier read took */
	__u8 midway;              /* joined mid-way: the agent cannot decode it */
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, struct stream_state);
} stream_states SEC(".maps");

/* The stream protocols' forwarding programs, by enum weft_proto: the
 * capture front tail-calls them (each is verified on its own). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} stream_progs SEC(".maps");

/* The arguments of the call being captured, off the stack (the chain from
 * a front's program through on_data must fit 512 bytes on 6.1's rules),
 * and for the program a stream protocol's bytes are tail-called to. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct io_args);
} io_scratch_map SEC(".maps");

/* What on_data asks the protocols about (protocols/protocol.bpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct detect_ctx);
} detect_scratch SEC(".maps");

#endif
