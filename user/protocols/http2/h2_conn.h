/* An HTTP/2 connection in the agent: the frames of both directions from
 * the kernel's filtered stream (bpf/protocols/http2.bpf.h: every frame,
 * DATA payloads cut to 5 bytes), HPACK decoding per direction (nghttp2's
 * inflater), and the streams in flight. A finished stream becomes a span
 * (h2_span.c), handed to ctx->emit. */
#ifndef WEFT_H2_CONN_H
#define WEFT_H2_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "abi/weft.h"
#include "protocol.h"

struct h2_conn;

struct h2_conn *h2_conn_new(void);
void h2_conn_free(struct h2_conn *c);
/* The next chunk of one direction (ev: len bytes, checked by the caller). */
void h2_conn_chunk(struct h2_conn *c, const struct stream_chunk_event *ev, const struct protocol_ctx *ctx);
/* The connection closed: streams whose request weft saw and whose response
 * did not end become ERROR spans (error.type no_response). */
void h2_conn_closed(struct h2_conn *c, const struct protocol_ctx *ctx);
/* sk_msg injected a traceparent into the HEADERS of a stream to come. */
void h2_conn_injected(struct h2_conn *c, const struct stream_inject_event *ev);

/* A Go uprobe found the request a client stream (to come, or begun) is
 * made for: its span's parent. */
void h2_conn_parent(struct h2_conn *c, const struct h2_parent_event *ev);

/* What the HTTP/2 parser dropped, for the agent's report. */
struct h2_stats {
	uint64_t spans;
	uint64_t conns_midway;  /* joined mid-way: HPACK state unknown, not decoded */
	uint64_t conns_lost;    /* framing or events lost, or HPACK failed: given up */
	uint64_t streams_dropped; /* unfinished at close, or over the per-connection bound */
	uint64_t parents;       /* client streams given an in-process parent */
	uint64_t parents_late;  /* of those, the parent came after the HEADERS */
};
void h2_get_stats(struct h2_stats *out);

#endif
