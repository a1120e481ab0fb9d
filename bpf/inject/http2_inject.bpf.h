/* traceparent into HTTP/2 requests on the wire (included by
 * propagation.bpf.c): sk_msg follows the frames a traced client writes on
 * an HTTP/2 connection and appends to the header block of each new
 * stream's HEADERS frame one HPACK field
 *     0x00 | 0x0b "traceparent" | 0x37 "00-<trace id>-<span id>-<flags>"
 * a "literal header field without indexing" with a new name (RFC 7541
 * 6.2.2): the peer's dynamic table is untouched, so the rest of the
 * connection decodes as the client encoded it. The frame's 24-bit length
 * grows by those 69 bytes.
 *
 * Never: into a frame without END_HEADERS (a CONTINUATION sequence
 * follows) or with PADDED (the field would land after the padding), when
 * the frame would pass 16,384 bytes (the smallest SETTINGS_MAX_FRAME_SIZE
 * a peer may announce, so whatever it announced), twice for a stream (only
 * stream ids above the last one seen), or on a connection whose client
 * sends its own traceparent (once seen, the connection is left alone: a
 * later request may name the field through the dynamic table, which the
 * kernel cannot read). Framing is followed across writes per socket
 * (socket-local storage: it goes with the socket); whatever cannot be
 * followed (a frame header split between two sk_msg calls, more frames in
 * one call than the walk's bound) ends injection on that connection.
 *
 * The agent learns each injection from a stream_inject_event (the same
 * ring buffer as the capture's events, sent before the write's bytes
 * reach it), so the client span it exports has the ids on the wire. */
#ifndef WEFT_INJECT_HTTP2_INJECT_BPF_H
#define WEFT_INJECT_HTTP2_INJECT_BPF_H

#include "abi/stream.h"
#include "abi/h2_parent.h"

#define H2_INJ_FIELD 69      /* 1 + 1 + 11 + 1 + 55 */
#define H2_INJ_FRAME_HDR 9   /* an HTTP/2 frame header */
#define H2_INJ_MAX_FRAME 16384
#define H2_INJ_FRAMES 16     /* frames followed per sk_msg call */
#define H2_INJ_SCAN 1024     /* header block bytes searched for the app's own traceparent */
#define H2_FRAME_HEADERS 1
#define H2_FLAG_END_HEADERS 0x04
#define H2_FLAG_PADDED 0x08
#define H2_CLIENT_PREFACE_LEN 24

/* One HTTP/2 client connection's framing, as sk_msg follows it. */
struct h2_msg_state {
	__u32 skip;        /* bytes of this direction before the next frame header */
	__u32 last_stream; /* highest stream id whose HEADERS went by */
	__u8 lost;         /* framing lost: no more injection here */
	__u8 app_traces;   /* the client sends traceparent itself */
	__u8 pad[6];
	__u64 start_ns;    /* when the preface went out */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct h2_msg_state);
} h2_msg_states SEC(".maps");

/* A header block being searched and what injecting into it needs, per
 * CPU: too large for the stack, and kept off sk_msg's deepest chain of
 * calls (the scan's bpf_loop deepens it). */
struct h2_block_scan {
	__u8 b[H2_INJ_SCAN + 16];
	__u32 len;
	__u32 found;
	struct injected_ctx inj;
	struct stream_inject_event ev;
	struct h2_parent_key pk;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2_block_scan);
} h2_block_scratch SEC(".maps");

/* Go (and whoever else knows it): the context a client stream is made in,
 * by (socket, stream id); filled before the HEADERS frame is written. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct h2_parent_key);
	__type(value, struct h2_parent);
} h2_client_parents SEC(".maps");

/* "tracepar" as a little-endian word, and "traceparent" Huffman-coded
 * (RFC 7541 appendix B: 8 bytes, each string literal starts on a byte). */
#define H2_RAW_NAME 0x7261706563617274ULL
#define H2_HUFF_NAME 0x3fa9851d6b21834dULL

/* One position of the block: does the field name start here? A false
 * match only costs one injection. */
static long h2_scan_step(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct h2_block_scan *s = bpf_map_lookup_elem(&h2_block_scratch, &zero);
	if (!s || i + 8 > s->len)
		return 1;
	if (i < 1)
		return 0;
	__u32 k = i & (H2_INJ_SCAN - 1);
	__u64 w;
	__builtin_memcpy(&w, &s->b[k], 8);
	__u8 lenbyte = s->b[(k - 1) & (H2_INJ_SCAN - 1)];
	if ((w == H2_RAW_NAME && lenbyte == 11) || (w == H2_HUFF_NAME && lenbyte == 0x88)) {
		s->found = 1;
		return 1;
	}
	return 0;
}

/* The context of the stream sid a traced thread is writing: the Go
 * probes' record for it, the thread's request, or a new root. */
static __always_inline void h2_stream_context(struct sk_msg_md *msg, __u64 id, __u32 sid, struct h2_block_scan *s)
{
	struct injected_ctx *inj = &s->inj;
	struct h2_parent_key *pk = &s->pk;
	__builtin_memset(pk, 0, sizeof(*pk));
	pk->sk = (__u64)msg->sk;
	pk->stream_id = sid;
	struct h2_parent *p = bpf_map_lookup_elem(&h2_client_parents, pk);
	struct h2_msg_state *hs = bpf_sk_storage_get(&h2_msg_states, msg->sk, 0, 0);
	if (p && (!hs || p->at_ns < hs->start_ns)) {
		bpf_map_delete_elem(&h2_client_parents, pk); /* an earlier connection's */
		p = NULL;
	}
	struct thread_ctx *c;
	__u8 flags = 1;
	bool parent = true;
	if (p) {
		__builtin_memcpy(inj->trace_id, p->trace_id, 16);
		__builtin_memcpy(inj->parent_span_id, p->span_id, 8);
		flags = p->trace_flags;
		bpf_map_delete_elem(&h2_client_parents, pk);
	} else if ((c = thread_ctx_usable(id >> 32, (__u32)id))) {
		__builtin_memcpy(inj->trace_id, c->trace_id, 16);
		__builtin_memcpy(inj->parent_span_id, c->span_id, 8);
		flags = c->trace_flags;
	} else {
		random_id(inj->trace_id, 4); /* a root */
		__builtin_memset(inj->parent_span_id, 0, 8);
		parent = false;
	}
	inj->trace_flags = sample_flags(inj->trace_id, flags, parent);
	random_id(inj->span_id, 2);
}

/* The HEADERS frame at off (payload len bytes, flags) opens stream sid:
 * its traceparent, if it may have one. The bytes added (0 or
 * H2_INJ_FIELD), or -1: the client sends its own traceparent. A global
 * function: verified once, whatever calls it. */
__attribute__((noinline)) int h2_inject_headers(struct sk_msg_md *msg, __u32 off, __u32 len, __u32 flags, __u32 sid)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!msg)
		return 0;
	__u32 zero = 0;
	if (!(flags & H2_FLAG_END_HEADERS) || (flags & H2_FLAG_PADDED) || len > H2_INJ_SCAN ||
	    len + H2_INJ_FIELD > H2_INJ_MAX_FRAME || off + H2_INJ_FRAME_HDR + len > msg->size) {
		count(WEFT_CNT_INJECT_SKIPPED);
		return 0;
	}
	struct h2_block_scan *s = bpf_map_lookup_elem(&h2_block_scratch, &zero);
	if (!s)
		return 0;
	__u32 start = off + H2_INJ_FRAME_HDR, end = start + len;
	if (len) {
		if (bpf_msg_pull_data(msg, start, end, 0))
			return 0;
		__u8 *d = msg->data, *e = msg->data_end;
		__u32 n = len;
		clamp_for_verifier(n, H2_INJ_SCAN);
		if (n == 0 || (void *)(d + n) > (void *)e || bpf_probe_read_kernel(s->b, n, d))
			return 0;
	}
	s->len = len;
	s->found = 0;
	bpf_loop(H2_INJ_SCAN, h2_scan_step, NULL, 0);
	if (s->found) {
		count(WEFT_CNT_INJECT_SKIPPED);
		return -1;
	}

	struct injected_ctx *inj = &s->inj;
	h2_stream_context(msg, id, sid, s);
	if (bpf_msg_push_data(msg, end, H2_INJ_FIELD, 0))
		return 0;
	if (bpf_msg_pull_data(msg, end, end + H2_INJ_FIELD, 0)) {
		bpf_msg_pop_data(msg, end, H2_INJ_FIELD, 0); /* never leave a gap */
		return 0;
	}
	__u8 *d = msg->data, *e = msg->data_end;
	if ((void *)(d + H2_INJ_FIELD) > (void *)e) {
		bpf_msg_pop_data(msg, end, H2_INJ_FIELD, 0);
		return 0;
	}
	d[0] = 0x00; /* literal without indexing, new name */
	d[1] = 11;
	__builtin_memcpy(&d[2], "traceparent", 11);
	d[13] = 55;
	put_traceparent_value(d + 14, inj);

	/* The frame's new length. */
	if (bpf_msg_pull_data(msg, off, off + 3, 0)) {
		bpf_msg_pop_data(msg, end, H2_INJ_FIELD, 0);
		return 0;
	}
	d = msg->data;
	e = msg->data_end;
	if ((void *)(d + 3) > (void *)e) {
		bpf_msg_pop_data(msg, end, H2_INJ_FIELD, 0);
		return 0;
	}
	__u32 nlen = len + H2_INJ_FIELD;
	d[0] = nlen >> 16;
	d[1] = nlen >> 8;
	d[2] = nlen;

	struct stream_inject_event *ev = &s->ev;
	ev->type = WEFT_EV_STREAM_INJECT;
	ev->pid = id >> 32;
	ev->fd = (__u32)msg_write_fd(id);
	ev->stream_id = sid;
	ev->sk = (__u64)msg->sk;
	ev->trace_flags = inj->trace_flags;
	__builtin_memcpy(ev->trace_id, inj->trace_id, 16);
	__builtin_memcpy(ev->span_id, inj->span_id, 8);
	__builtin_memcpy(ev->parent_span_id, inj->parent_span_id, 8);
	if (bpf_ringbuf_output(&events, ev, sizeof(*ev), 0))
		count(WEFT_CNT_RINGBUF_FULL);
	count(WEFT_CNT_INJECTED);
	return H2_INJ_FIELD;
}

/* A write on a traced client socket: HTTP/2 framing, if it is HTTP/2 (the
 * client preface starts it, or weft follows it already). A global
 * function: verified once, off the HTTP/1 path. */
__attribute__((noinline)) int h2_msg(struct sk_msg_md *msg, __u64 id)
{
	if (!msg)
		return 0;
	struct h2_msg_state *hs = bpf_sk_storage_get(&h2_msg_states, msg->sk, 0, 0);
	if (!hs) {
		/* The preface: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". */
		__u8 *d = msg->data, *e = msg->data_end;
		if ((void *)(d + 16) > (void *)e || d[0] != 'P' || d[1] != 'R' || d[2] != 'I' || d[3] != ' ' ||
		    d[4] != '*' || d[11] != '2' || d[12] != '.' || d[13] != '0')
			return 0;
		struct h2_msg_state init = { .skip = H2_CLIENT_PREFACE_LEN, .start_ns = bpf_ktime_get_ns() };
		hs = bpf_sk_storage_get(&h2_msg_states, msg->sk, &init, BPF_SK_STORAGE_GET_F_CREATE);
		if (!hs)
			return 0;
	}
	if (hs->lost)
		return 0;
	__u32 off = hs->skip;
#pragma clang loop unroll(disable)
	for (int i = 0; i < H2_INJ_FRAMES; i++) {
		__u32 size = msg->size;
		if (off >= size) {
			hs->skip = off - size;
			return 0;
		}
		if (off + H2_INJ_FRAME_HDR > size || bpf_msg_pull_data(msg, off, off + H2_INJ_FRAME_HDR, 0))
			break;
		__u8 *d = msg->data, *e = msg->data_end;
		if ((void *)(d + H2_INJ_FRAME_HDR) > (void *)e)
			break;
		__u32 len = (__u32)d[0] << 16 | (__u32)d[1] << 8 | d[2];
		__u8 type = d[3], flags = d[4];
		__u32 sid = ((__u32)d[5] & 0x7f) << 24 | (__u32)d[6] << 16 | (__u32)d[7] << 8 | d[8];
		if (type == H2_FRAME_HEADERS && sid > hs->last_stream && (sid & 1)) {
			hs->last_stream = sid;
			int added = hs->app_traces ? 0 : h2_inject_headers(msg, off, len, flags, sid);
			if (added < 0)
				hs->app_traces = 1;
			else
				len += added;
		}
		off += H2_INJ_FRAME_HDR + len;
	}
	if (off >= msg->size) {
		hs->skip = off - msg->size;
		return 0;
	}
	/* A frame header split between two calls, or too many frames. */
	hs->lost = 1;
	count(WEFT_CNT_INJECT_SKIPPED);
	return 0;
}

#endif
