/* HTTP/2 (and gRPC, which is HTTP/2): detection, and the program that
 * forwards an HTTP/2 connection's frames to the agent.
 *
 * Streams interleave on a connection and their headers are HPACK-coded
 * against per-connection tables, so the kernel does not cut exchanges: it
 * forwards every frame header and every frame's payload, except DATA
 * payloads, of which only the first 5 bytes (gRPC's message prefix) go on.
 * The agent (user/protocols/http2/) decodes HPACK and builds one span per
 * stream. The filtered stream keeps each frame header as it was (the
 * length field tells the full payload size), so the agent knows that a
 * DATA frame of length L is followed by min(L, 5) bytes.
 *
 * Frame boundaries are followed per connection and direction across calls
 * (struct stream_state): a frame header split between two calls is joined,
 * a payload continues where the last call stopped. Whatever cannot be
 * forwarded (a frame payload larger than an event, more frames in one call
 * than the walk's bound, a full ring buffer) loses the direction's
 * framing: the next event says STREAM_F_GAP, the agent drops the
 * connection's state (no span rather than a wrong one), and the kernel
 * stops forwarding it (counted: WEFT_CNT_STREAM_GAP). */
#ifndef WEFT_PROTOCOLS_HTTP2_BPF_H
#define WEFT_PROTOCOLS_HTTP2_BPF_H

#include "protocols/protocol.bpf.h"
#include "capture/tables.bpf.h"

#define H2_PREFACE_LEN 24 /* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" */
#define H2_FRAME_HDR 9
#define H2_FRAME_DATA 0
#define H2_FRAME_SETTINGS 4
#define H2_DATA_KEEP 5  /* gRPC: compressed flag + 4-byte message length */
#define H2_WALK_STEPS 8192 /* per call: a frame takes two or three steps (more when payloads exceed H2_COPY_PIECE), a buffer one more; the callback is verified once whatever the bound */
#define H2_IOVS 1024      /* iovecs of one call followed (UIO_MAXIOV) */
#define H2_COPY_PIECE 4096 /* bytes one read from the caller's memory copies at most */

/* "PRI * HT", little-endian halves. */
#define H2_PREFACE_LO W4('P', 'R', 'I', ' ')
#define H2_PREFACE_HI W4('*', ' ', 'H', 'T')

/* A connection's first bytes: the client preface (written by a client,
 * read by a server), or a SETTINGS frame (a server that writes its
 * settings before reading the preface, as grpc-go does, or a connection
 * joined mid-way). */
static __always_inline int http2_detect(const struct detect_ctx *d)
{
	if (d->hn < 8)
		return DETECT_NONE;
	if (W4(d->head[0], d->head[1], d->head[2], d->head[3]) == H2_PREFACE_LO &&
	    W4(d->head[4], d->head[5], d->head[6], d->head[7]) == H2_PREFACE_HI)
		return DETECT_STREAM;
	if (!d->first)
		return DETECT_NONE;
	/* length (3 bytes, a multiple of 6), type 4, flags 0 or ACK, stream 0
	 * (its first 3 bytes are in head). */
	__u32 len = (__u32)d->head[0] << 16 | (__u32)d->head[1] << 8 | d->head[2];
	if (d->head[3] == H2_FRAME_SETTINGS && len % 6 == 0 && len <= 60 && d->head[4] <= 1 && !d->head[5] &&
	    !d->head[6] && !d->head[7] && d->ret >= H2_FRAME_HDR + len)
		return DETECT_STREAM_FRAMES;
	return DETECT_NONE;
}

/* Stream protocols have no exchanges in the kernel. */
static __always_inline int http2_response_first(struct txn_event *t, struct scan_buf *sb, __u32 n)
{
	return 1;
}

static __always_inline bool http2_response_ends(struct txn_event *t, struct io_args *io, long ret)
{
	return false;
}

/* Where the framing of a new HTTP/2 connection starts in each direction.
 * what: DETECT_STREAM (the preface starts these bytes, of which prefix_len
 * came in an earlier read) or DETECT_STREAM_FRAMES (frames start here; on a
 * connection weft saw open, the peer's preface is still to come). */
static __always_inline void http2_begin(struct stream_state *st, struct conn_info *c, __u8 dir, int what,
					__u32 prefix_len)
{
	struct stream_dir *here = &st->dir[dir & 1], *other = &st->dir[!(dir & 1)];
	if (what == DETECT_STREAM) {
		here->frame_left = H2_PREFACE_LEN - prefix_len;
		here->keep_left = here->frame_left;
		here->prefix_len = prefix_len;
		return;
	}
	if (c->role == WEFT_ROLE_UNKNOWN) {
		/* Joined mid-way: frames both ways, HPACK state unknown. */
		st->midway = 1;
		return;
	}
	/* Unless the other direction began on another CPU meanwhile (its
	 * preface: capture/stream.bpf.h), whose state is its own. */
	if (other->started || other->frame_left)
		return;
	other->frame_left = H2_PREFACE_LEN;
	other->keep_left = H2_PREFACE_LEN;
}

/* --- the forwarding program, reached by tail call from the capture front --- */

/* The buffer of the call the walk is in: a plain buffer, or one iovec of
 * the call's array (read when the walk reaches it, so a call of many
 * buffers costs no more than its bytes). */
struct h2_iovs {
	__u64 base; /* the current buffer */
	__u64 len;
	__u64 array; /* the call's iovec array (0: a plain buffer) */
};

/* The walk over one call's bytes. It lives in per-CPU memory, not on the
 * stack: the verifier then reads every field as an unknown scalar and
 * checks the bpf_loop callback once, instead of following the values
 * from step to step. */
struct h2_walk {
	__u32 off;     /* bytes of the call walked */
	__u32 ret;     /* bytes the call moved */
	__u32 iov;     /* the buffer the walk is in */
	__u32 iov_off; /* and where in it */
	__u32 out;     /* filtered bytes in ev.data */
	__u32 lost;    /* the framing was lost */
};

/* Per-CPU (at most 32 KiB): the event being filled (a copy may overrun
 * its end by one piece as far as the verifier knows), the call's buffers,
 * the walk, and the direction's framing state (copied in and back). */
struct h2_scratch {
	struct stream_chunk_event ev;
	__u8 overrun[H2_COPY_PIECE];
	struct h2_iovs iovs;
	struct h2_walk w;
	struct stream_dir d;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct h2_scratch);
} h2_scratch_map SEC(".maps");

/* Sends the event filled so far (more: the call's bytes go on in the
 * next one). -1 when the ring buffer is full. */
static __always_inline int h2_flush(struct h2_scratch *s, bool more)
{
	struct stream_chunk_event *ev = &s->ev;
	__u32 out = s->w.out;
	clamp_for_verifier(out, WEFT_STREAM_CAP);
	ev->len = out;
	ev->seq = s->d.seq++;
	if (more)
		ev->flags |= STREAM_F_MORE;
	__u32 size = WEFT_STREAM_HDR_SIZE + out;
	long err = bpf_ringbuf_output(&events, ev, size, rb_flags(size));
	ev->flags &= ~(STREAM_F_START | STREAM_F_GAP | STREAM_F_MORE);
	s->w.out = 0;
	if (err)
		return -1;
	count(WEFT_CNT_STREAM_EVENTS);
	return 0;
}

/* One bounded action per step (a frame header's bytes, one piece of
 * payload copied or skipped, moving to the next buffer). */
struct h2_loop_ctx {
	struct h2_scratch *s; /* bpf_loop's context must be on the stack */
};

static long h2_step(__u64 i, void *ctx)
{
	struct h2_scratch *s = ((struct h2_loop_ctx *)ctx)->s;
	if (!s)
		return 1;
	struct h2_walk *w = &s->w;
	struct stream_dir *d = &s->d;
	if (w->off >= w->ret)
		return 1;
	__u64 len = s->iovs.len;
	if (w->iov_off >= len) {
		/* This buffer is walked (or empty): the call's next one. */
		__u32 iov = w->iov + 1;
		struct iovec next;
		if (!s->iovs.array || iov >= H2_IOVS ||
		    bpf_probe_read_user(&next, sizeof(next), (void *)(s->iovs.array + iov * sizeof(next))))
			goto lost;
		s->iovs.base = (__u64)next.iov_base;
		s->iovs.len = next.iov_len;
		w->iov = iov;
		w->iov_off = 0;
		return 0;
	}
	/* Bytes of this call at hand in this buffer. */
	__u64 here = len - w->iov_off;
	if (here > w->ret - w->off)
		here = w->ret - w->off;
	__u64 src = s->iovs.base + w->iov_off;
	__u32 n;

	if (!d->frame_left) {
		/* A frame header: gathered in d->hdr, forwarded when whole. */
		__u32 have = d->hdr_have;
		if (have >= H2_FRAME_HDR)
			goto lost;
		n = H2_FRAME_HDR - have;
		if (n > here)
			n = here;
		clamp_for_verifier(n, H2_FRAME_HDR);
		if (bpf_probe_read_user(&d->hdr[have], n, (void *)src))
			goto lost;
		w->off += n;
		w->iov_off += n;
		d->hdr_have = have + n;
		if (have + n < H2_FRAME_HDR)
			return 0; /* the rest is in the next buffer, or the next call */
		d->hdr_have = 0;
		if (w->out + H2_FRAME_HDR > WEFT_STREAM_CAP && h2_flush(s, true))
			goto lost;
		__u32 pos = w->out;
		clamp_for_verifier(pos, WEFT_STREAM_CAP);
		__builtin_memcpy(&s->ev.data[pos], d->hdr, H2_FRAME_HDR);
		w->out = pos + H2_FRAME_HDR;
		__u32 flen = (__u32)d->hdr[0] << 16 | (__u32)d->hdr[1] << 8 | d->hdr[2];
		d->frame_left = flen;
		d->keep_left = d->hdr[3] == H2_FRAME_DATA ? (flen < H2_DATA_KEEP ? flen : H2_DATA_KEEP) : flen;
		if (d->keep_left > WEFT_STREAM_CAP - H2_FRAME_HDR)
			goto lost; /* a frame larger than an event */
		return 0;
	}
	n = d->frame_left < here ? d->frame_left : here;
	if (d->keep_left) {
		/* Payload to forward: one piece. */
		__u32 k = d->keep_left < n ? d->keep_left : n;
		if (k > H2_COPY_PIECE)
			k = H2_COPY_PIECE;
		if (w->out + k > WEFT_STREAM_CAP && h2_flush(s, true))
			goto lost;
		__u32 pos = w->out;
		clamp_for_verifier(pos, WEFT_STREAM_CAP);
		clamp_for_verifier(k, H2_COPY_PIECE);
		if (bpf_probe_read_user(&s->ev.data[pos], k, (void *)src))
			goto lost;
		w->out = pos + k;
		d->keep_left -= k;
		n = k;
	}
	d->frame_left -= n;
	w->off += n;
	w->iov_off += n;
	return 0;
lost:
	w->lost = 1;
	return 1;
}

/* The first buffer of the call io describes, in s->iovs. */
static __always_inline int h2_gather(struct h2_scratch *s, struct io_args *io, __u32 ret)
{
	if (io->kind == IO_PLAIN) {
		s->iovs = (struct h2_iovs){ .base = io->buf, .len = ret };
		return 0;
	}
	if (io->kind != IO_IOV)
		return -1;
	struct iovec first;
	if (bpf_probe_read_user(&first, sizeof(first), (void *)io->buf))
		return -1;
	s->iovs = (struct h2_iovs){ .base = (__u64)first.iov_base, .len = first.iov_len, .array = io->buf };
	return 0;
}

/* Forwards the bytes of the call the capture front left in io_scratch_map
 * (io->ret bytes on io->fd) for the HTTP/2 connection they moved on. */
SEC("tracepoint")
int http2_forward(void *ctx)
{
	__u32 zero = 0;
	struct io_args *io = bpf_map_lookup_elem(&io_scratch_map, &zero);
	struct h2_scratch *s = bpf_map_lookup_elem(&h2_scratch_map, &zero);
	if (!io || !s)
		return 0;
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = io->fd };
	struct conn_info *c = bpf_map_lookup_elem(&conns, &key);
	struct stream_state *st = bpf_map_lookup_elem(&stream_states, &key);
	if (!c)
		return 0;
	if (!st || st->sk != c->sk) {
		/* The framing state went (LRU eviction, or the close of the fd's
		 * previous socket on another CPU, between its check and its
		 * delete: capture.bpf.c): frame boundaries are unknown from here
		 * on. Counted once; the connection is not looked at again. */
		count(WEFT_CNT_STREAM_GAP);
		c->ignored = 1;
		return 0;
	}
	struct stream_dir *d = &st->dir[io->dir & 1];
	if (d->lost)
		return 0;
	__u32 ret = io->ret;

	struct stream_chunk_event *ev = &s->ev;
	ev->type = WEFT_EV_STREAM_CHUNK;
	ev->pid = key.tgid;
	ev->tid = (__u32)bpf_get_current_pid_tgid();
	ev->fd = key.fd;
	ev->ts_ns = io->dir == DIR_WRITE && io->enter_ns ? io->enter_ns : bpf_ktime_get_ns();
	ev->sk = c->sk;
	ev->addr = c->addr;
	ev->orig_len = ret;
	ev->dir = io->dir;
	ev->role = c->role;
	ev->proto = WEFT_PROTO_HTTP2;
	ev->tls_cipher = c->tls_cipher;
	ev->tls_version = c->tls_version;
	ev->flags = (d->started ? 0 : STREAM_F_START) | (d->gap ? STREAM_F_GAP : 0) | (st->midway ? STREAM_F_MIDWAY : 0);
	d->started = 1;
	d->gap = 0;

	s->d = *d;
	s->w = (struct h2_walk){ .ret = ret };
	/* Bytes of the preface an earlier read took (joined here). */
	__u32 pl = d->prefix_len;
	if (pl) {
		clamp_for_verifier(pl, 7);
		bpf_probe_read_kernel(ev->data, pl & 7, st->prefix);
		s->w.out = pl;
		s->d.prefix_len = 0;
	}
	struct h2_loop_ctx lc = { .s = s };
	if (h2_gather(s, io, ret) || bpf_loop(H2_WALK_STEPS, h2_step, &lc, 0) < 0 || s->w.off < s->w.ret)
		s->w.lost = 1;
	if ((s->w.out || ev->flags & STREAM_F_START || s->w.lost) && h2_flush(s, false))
		s->d.gap = 1; /* the agent learns of the loss from the next event */
	if (s->w.lost) {
		/* Frame boundaries are unknown from here on: the agent is told
		 * (this event, or the next if this one was lost), and neither
		 * direction is forwarded any more. */
		count(WEFT_CNT_STREAM_GAP);
		s->d.lost = 1;
		st->dir[!(io->dir & 1)].lost = 1;
		if (!s->d.gap) {
			ev->flags = STREAM_F_GAP;
			h2_flush(s, false);
		}
	}
	*d = s->d;
	return 0;
}

#endif
