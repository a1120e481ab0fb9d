/* One request/response exchange: the in-flight record in the kernel's
 * txns map and, up to data[], the event sent to the agent. */
#ifndef WEFT_ABI_EXCHANGE_H
#define WEFT_ABI_EXCHANGE_H

#include "abi/types.h"
#include "abi/conn.h"
#include "abi/protocols.h"

/* Compile-time maxima of captured bytes; the run-time limits
 * (--capture-bytes) are at most these. */
#define WEFT_REQ_CAP_MAX 2048
#define WEFT_RESP_CAP_MAX 512
#define WEFT_REQ_CAP_DEFAULT 1024
#define WEFT_RESP_CAP_DEFAULT 512

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
	WEFT_CTX_TCPOPT = 5,   /* the TCP option that came with a TLS request (context/tcpopt.bpf.h) */
};

enum txn_phase {
	TXN_PHASE_REQUEST = 0,
	TXN_PHASE_RESPONSE = 1,
	TXN_PHASE_IDLE = 2, /* kernel only: a connection's slot between exchanges (capture/exchange.bpf.h) */
};

/* struct txn_event.claimed: who holds a connection's slot in txns
 * (capture/exchange.bpf.h). The agent's sweep takes only TXN_OPEN ones. */
enum txn_claim {
	TXN_OPEN = 0,     /* in flight */
	TXN_SENDING = 1,  /* one CPU sends or drops it */
	TXN_BUILDING = 2, /* a new exchange is being written */
	TXN_FREE = 3,     /* idle: a new exchange may claim it */
};

/* The txn_counts map's counters (capture/exchange.bpf.h), kept by the
 * kernel and by the agent's own deletes, each in a cache line of its own. */
enum txn_count_slot {
	TXN_COUNT_ENTRIES = 0, /* entries in txns */
	TXN_COUNT_OPEN = 8,    /* server exchanges whose response waits for its end */
	TXN_COUNTS = 16,
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
	__u32 claimed;  /* who holds the slot (capture/exchange.bpf.h): nonzero once sent */
	__u8 req_header_seen; /* the request header's end was captured */
	__u8 tls;       /* the bytes are TLS plaintext (HTTP: https) */
	__u8 tls_version; /* the connection's TLS version (conn_info.tls_version), 0: unknown */
	__u8 conn_snap; /* kernel only: 0, or 1 + the connection's role: the slot's socket starts its next exchange without its conns entry (capture/data.bpf.h) */
	__u16 tls_cipher; /* and its IANA cipher suite, 0: unknown */
	__u8 tls_hello_pending; /* kernel only: the connection's ServerHello may be this response */
	__u8 open_counted; /* kernel and sweep: counted among the open server responses (capture/exchange.bpf.h) */
	__u64 goid;     /* Go server exchanges: the serving goroutine, else 0 */
	__u64 sk;       /* the connection's struct sock (kernel address) */
	__u64 g;        /* kernel only: with goid, that goroutine's g while its go_serving
			 * entry names this slot (context/serving.bpf.h), else 0 */
	__u8 data[WEFT_REQ_CAP_MAX + WEFT_RESP_CAP_MAX];
};

#define WEFT_TXN_HDR_SIZE 216
_Static_assert(__builtin_offsetof(struct txn_event, data) == WEFT_TXN_HDR_SIZE, "txn_event layout");
_Static_assert(__builtin_offsetof(struct txn_event, tls_cipher) == 188, "txn_event layout");

#endif
