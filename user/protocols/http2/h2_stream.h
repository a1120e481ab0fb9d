/* One HTTP/2 stream as the agent follows it (an exchange of HTTP/2 is a
 * stream, not a connection): what its request and response headers said,
 * when it began and ended, and where its trace context comes from. */
#ifndef WEFT_H2_STREAM_H
#define WEFT_H2_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "abi/weft.h"

#define H2_PATH_MAX 2048

struct h2_stream {
	uint32_t id;
	uint64_t start_ns, end_ns; /* CLOCK_MONOTONIC */
	char method[16];
	char scheme[8];
	char authority[256];
	char path[H2_PATH_MAX];
	char content_type[64];
	char user_agent[256];
	char traceparent[64]; /* the request's own, if any */
	char tracestate[256];
	int status;      /* :status of the response, 0 until known */
	int grpc_status; /* -1 until known */
	char grpc_message[256];
	uint64_t req_body, resp_body; /* DATA payload bytes */
	bool req_end, resp_headers, resp_end;
	bool reset;          /* RST_STREAM ended it */
	bool reset_by_client; /* ... sent by the client */
	bool closed;         /* the connection closed before it ended */
	uint32_t rst_code;
	uint64_t grpc_timeout_ns; /* the request's grpc-timeout, 0 if none */
	bool injected;       /* sk_msg put the client span's ids on the wire */
	uint8_t inj_trace_id[16], inj_span_id[8], inj_parent[8], inj_flags;
	bool has_parent;     /* the request this client stream is made for (h2_conn_parent) */
	struct h2_parent parent;
	struct h2_stream *next;
};

/* The connection a stream belongs to, as its spans need it. */
struct h2_conn_info {
	uint32_t pid;
	bool client; /* the traced process is the HTTP/2 client */
	struct conn_addr addr;
	uint8_t tls_version; /* from the ServerHello (abi/stream.h), 0: unknown */
	uint16_t tls_cipher;
};

#endif
