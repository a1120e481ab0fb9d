/* HTTP/2 and gRPC in the agent: a stream protocol (abi/stream.h). The
 * kernel forwards each connection's frames (bpf/protocols/http2.bpf.h);
 * h2_conn.c follows them and HPACK, h2_span.c makes one span per stream. */
#include "h2_conn.h"
#include "log.h"
#include "protocol.h"

static void *http2_conn_new(const void *first)
{
	return h2_conn_new();
}

static void http2_conn_free(void *state)
{
	h2_conn_free(state);
}

static void http2_closed(void *state, const struct protocol_ctx *ctx)
{
	h2_conn_closed(state, ctx);
}

static void http2_chunk(const struct stream_chunk_event *ev, size_t len, void *state, const struct protocol_ctx *ctx)
{
	h2_conn_chunk(state, ev, ctx);
}

static void http2_injected(const struct stream_inject_event *ev, void *state)
{
	h2_conn_injected(state, ev);
}

static void http2_parent(const struct h2_parent_event *ev, void *state)
{
	h2_conn_parent(state, ev);
}

static void http2_report(void)
{
	struct h2_stats st;
	h2_get_stats(&st);
	if (st.parents || st.parents_late)
		log_info("HTTP/2: %llu client streams parented in-process (Go uprobe), %llu of them after their "
			 "HEADERS were written", (unsigned long long)st.parents, (unsigned long long)st.parents_late);
	if (st.spans || st.conns_lost || st.conns_midway || st.streams_dropped)
		log_info("HTTP/2: %llu spans; %llu connections given up (frames lost, HPACK failed), %llu joined "
			 "mid-way (header compression state unknown: not decoded), %llu streams unfinished at close",
			 (unsigned long long)st.spans, (unsigned long long)st.conns_lost,
			 (unsigned long long)st.conns_midway, (unsigned long long)st.streams_dropped);
}

const struct protocol protocol_http2 = {
	.name = "http2",
	.id = WEFT_PROTO_HTTP2,
	.conn_new = http2_conn_new,
	.conn_free = http2_conn_free,
	.conn_closed = http2_closed,
	.stream_chunk = http2_chunk,
	.stream_injected = http2_injected,
	.stream_parent = http2_parent,
	.report = http2_report,
};
