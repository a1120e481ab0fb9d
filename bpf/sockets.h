/* Structs shared by bpf/sockets.bpf.c and the agent (user/sockets.c):
 * connection identity, captured transactions and drop counters.
 * Fixed-width types only; sizes are asserted on both sides. */
#ifndef WEFT_SOCKETS_H
#define WEFT_SOCKETS_H

#ifdef __bpf__
/* vmlinux.h provides the kernel's __u8 .. __u64 */
#else
#include <linux/types.h>
#endif

/* Compile-time maxima of captured bytes; the run-time limits
 * (--capture-bytes) are at most these. */
#define WEFT_REQ_CAP_MAX 2048
#define WEFT_RESP_CAP_MAX 512
#define WEFT_REQ_CAP_DEFAULT 1024
#define WEFT_RESP_CAP_DEFAULT 512

enum weft_role {
	WEFT_ROLE_UNKNOWN = 0, /* socket existed before weft: inferred from bytes */
	WEFT_ROLE_SERVER = 1,  /* accepted socket */
	WEFT_ROLE_CLIENT = 2,  /* connected socket */
};

enum weft_proto {
	WEFT_PROTO_UNKNOWN = 0,
	WEFT_PROTO_HTTP1 = 1,
	WEFT_PROTO_PGSQL = 2, /* PostgreSQL frontend/backend v3, client side */
	WEFT_PROTO_MYSQL = 3, /* MySQL/MariaDB client/server, client side */
	WEFT_PROTO_REDIS = 4, /* RESP2/RESP3, client side */
};

/* Why the kernel considered a transaction finished. */
enum weft_end_reason {
	WEFT_END_COMPLETE = 1,     /* Content-Length / chunked end / no-body reached */
	WEFT_END_NEXT_READ = 2,    /* server began reading again after responding */
	WEFT_END_NEXT_REQUEST = 3, /* a new request started on the connection */
	WEFT_END_CLOSE = 4,        /* the connection was closed */
};

enum weft_ctx_source {
	WEFT_CTX_NEW = 0,      /* a new trace */
	WEFT_CTX_HEADER = 1,   /* traceparent in the request (incoming, or the app's own) */
	WEFT_CTX_THREAD = 2,   /* the request this thread is serving */
	WEFT_CTX_INJECTED = 3, /* weft injected traceparent into this request */
	WEFT_CTX_GOROUTINE = 4, /* the request this goroutine (or an ancestor) serves */
};

enum weft_event_type {
	WEFT_EV_TXN = 1,       /* struct txn_event */
	WEFT_EV_PROC_EXIT = 2, /* struct proc_exit_event */
	WEFT_EV_PROC_EXEC = 3, /* struct proc_exit_event: a traced process exec'd */
	WEFT_EV_CONN_CLOSE = 4, /* struct conn_close_event: a database connection closed */
};

/* Drop and health counters, a per-CPU array indexed by this enum. */
enum weft_counter {
	WEFT_CNT_RINGBUF_FULL = 0, /* events lost: ring buffer full */
	WEFT_CNT_CONN_MAP_FULL,    /* connection not tracked: map full */
	WEFT_CNT_TXN_MAP_FULL,     /* transaction not tracked: map full */
	WEFT_CNT_TXN_EMITTED,      /* transactions sent to userspace */
	WEFT_CNT_NON_HTTP_CONN,    /* connections classified as not HTTP */
	WEFT_CNT_CTX_AMBIGUOUS,    /* client request not parented: thread served several */
	WEFT_CNT_INJECTED,         /* traceparent headers injected */
	WEFT_CNT_INJECT_SKIPPED,   /* requests left alone: already traced, split or too long */
	WEFT_CNT_GO_SERVING_FULL,  /* Go server request not registered: goroutine table full */
	WEFT_CNT_MAX,
};

struct conn_key {
	__u32 tgid;
	__u32 fd;
};

#define WEFT_UNIX_PATH_MAX 64

/* Addresses as seen by the traced process: l* local, r* remote.
 * IPv4 addresses are stored in the first 4 bytes; ports in host order.
 * AF_UNIX: the server's socket path instead (cut at 63 bytes, "" when
 * abstract or unknown), no ports. */
struct conn_addr {
	__u16 family; /* AF_INET, AF_INET6 or AF_UNIX */
	__u16 lport;
	__u16 rport;
	__u16 pad;
	union {
		struct {
			__u8 laddr[16];
			__u8 raddr[16];
		};
		char unix_path[WEFT_UNIX_PATH_MAX];
	};
};

struct conn_info {
	struct conn_addr addr;
	__u8 role;     /* enum weft_role */
	__u8 proto;    /* enum weft_proto once known */
	__u8 ignored;  /* not a protocol weft parses: skip all further I/O */
	__u8 pending_len; /* a read of a request's first bytes only (Go reads 1) */
	__u32 pad2;
	__u64 bytes_seen; /* payload bytes observed, both directions */
	__u8 pending[8];  /* those bytes, joined with the next read */
	__u64 pending_ns; /* when they arrived: the request's start */
};

enum txn_phase {
	TXN_PHASE_REQUEST = 0,
	TXN_PHASE_RESPONSE = 1,
};

/* An HTTP exchange: the in-flight value in the txns map and, up to
 * data[], the record sent to the ring buffer. data holds the captured
 * request bytes followed by the captured response bytes. */
struct txn_event {
	__u32 type; /* WEFT_EV_TXN */
	__u32 pid;  /* tgid */
	__u32 tid;  /* thread that started the transaction */
	__u32 fd;
	__u64 start_ns; /* CLOCK_MONOTONIC */
	__u64 end_ns;
	__u64 req_bytes;  /* total request bytes seen */
	__u64 resp_bytes; /* total response bytes seen */
	__u64 resp_expected; /* total response size once known, else 0 */
	__u64 resp_start_ns;
	struct conn_addr addr;
	__u8 role;   /* WEFT_ROLE_SERVER or WEFT_ROLE_CLIENT */
	__u8 proto;  /* enum weft_proto */
	__u8 phase;  /* enum txn_phase */
	__u8 end_reason;
	__u8 chunked;
	__u8 trace_flags;
	__u8 ctx_source; /* enum weft_ctx_source: where trace id and parent came from */
	__u8 conn_opened; /* weft saw the connection open (it did not predate weft) */
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 parent_span_id[8]; /* zero: root */
	__u16 req_len;  /* captured request bytes in data[0..req_len) */
	__u16 resp_len; /* captured response bytes in data[req_len..) */
	__u32 claimed;  /* set atomically by the one CPU that sends it */
	__u8 req_header_seen; /* the request header's end was captured */
	__u8 pad3[7];
	__u64 goid;     /* Go server exchanges: the serving goroutine, else 0 */
	__u8 data[WEFT_REQ_CAP_MAX + WEFT_RESP_CAP_MAX];
};

struct proc_exit_event {
	__u32 type; /* WEFT_EV_PROC_EXIT */
	__u32 pid;
};

struct conn_close_event {
	__u32 type; /* WEFT_EV_CONN_CLOSE */
	__u32 pid;
	__u32 fd;
	__u32 pad;
};

/* Words of the traced_bits process filter: one bit per possible tgid. */
#define TRACED_BITS_WORDS ((1u << 22) / 64) /* PID_MAX_LIMIT on 64-bit */

#define WEFT_TXN_HDR_SIZE 200
_Static_assert(sizeof(struct conn_addr) == 72, "conn_addr layout");
_Static_assert(sizeof(struct conn_info) == 104, "conn_info layout");
_Static_assert(__builtin_offsetof(struct txn_event, data) == WEFT_TXN_HDR_SIZE, "txn_event layout");

#endif
