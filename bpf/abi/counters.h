/* Drop and health counters the kernel keeps for the agent to report. */
#ifndef WEFT_ABI_COUNTERS_H
#define WEFT_ABI_COUNTERS_H

/* Drop and health counters, a per-CPU array indexed by this enum. */
enum weft_counter {
	WEFT_CNT_RINGBUF_FULL = 0, /* events lost: ring buffer full */
	WEFT_CNT_CONN_MAP_FULL,    /* connection not tracked: map full */
	WEFT_CNT_TXN_MAP_FULL,     /* transaction not tracked: map full */
	WEFT_CNT_TXN_EMITTED,      /* transactions sent to userspace */
	WEFT_CNT_CONN_IGNORED,     /* connections whose first bytes no protocol claims */
	WEFT_CNT_CTX_AMBIGUOUS,    /* client request not parented: thread served several */
	WEFT_CNT_INJECTED,         /* traceparent headers injected */
	WEFT_CNT_INJECT_SKIPPED,   /* requests left alone: already traced, split or too long */
	WEFT_CNT_GO_SERVING_FULL,  /* Go server request not registered: goroutine table full */
	WEFT_CNT_IO_UNREACHABLE,   /* socket front: data moved by a call whose buffer weft cannot reach (io_uring, sendmmsg, ...) */
	WEFT_CNT_SAMPLED_OUT,      /* exchanges of sampled-out traces not sent (nothing in the agent wants them) */
	WEFT_CNT_STREAM_GAP,       /* stream protocols: bytes not forwarded (ring buffer full, frame too large, too many frames in one call, framing state lost) */
	WEFT_CNT_STREAM_EVENTS,    /* stream protocols: chunk events sent */
	WEFT_CNT_TCPOPT_SENT,      /* TLS requests whose ids went in a TCP option */
	WEFT_CNT_TCPOPT_NO_ROOM,   /* TLS requests whose segment had no room for the option (SACK) */
	WEFT_CNT_TCPOPT_RECEIVED,  /* TCP options with ids received */
	WEFT_CNT_CONN_CLOSE_RACE,  /* socket front: a connection's entry made again (the close of the fd's previous socket, on another CPU, took it) */
	WEFT_CNT_MAX,
};

#endif
