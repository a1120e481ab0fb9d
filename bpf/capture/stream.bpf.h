/* Stream protocols (WEFT_PROTO_F_STREAM, abi/stream.h): a connection whose
 * exchanges interleave is not cut into exchanges here; its bytes go to the
 * protocol's forwarding program (a tail call from the capture front, so
 * each is verified on its own), which sends them to the agent. */
#ifndef WEFT_CAPTURE_STREAM_BPF_H
#define WEFT_CAPTURE_STREAM_BPF_H

#include "capture/tables.bpf.h"
#include "protocols/dispatch.bpf.h"

/* A new stream state is copied from here (off the stack). */
static const struct stream_state stream_state_init;

/* Connection key (c) turns out to be of stream protocol proto: its framing
 * state starts (what: the detect hook's answer; prefix_len bytes of it
 * came in an earlier read, in c->pending). Returns proto: the caller
 * tail-calls its forwarding program with io (ret bytes). */
static __always_inline int stream_begin(struct conn_key *key, struct conn_info *c, struct io_args *io, long ret,
					int what, __u8 proto, __u32 prefix_len)
{
	struct stream_state *st = NULL;
	bool join = false;
	if (bpf_map_update_elem(&stream_states, key, &stream_state_init, BPF_NOEXIST)) {
		/* The other direction's first bytes, on another CPU, began the
		 * stream a moment ago (a Go HTTP/2 server writes its SETTINGS while
		 * its reader goroutine reads the preface): this direction joins
		 * it; starting it afresh would restart the other direction's
		 * sequence mid-stream (the agent then gives the connection up).
		 * An entry of an older socket, or one whose this direction already
		 * sent, is stale: it starts afresh. sk 0: being made just now. */
		st = bpf_map_lookup_elem(&stream_states, key);
		join = st && (st->sk == c->sk || !st->sk) && !st->dir[io->dir & 1].started;
		if (!join && bpf_map_update_elem(&stream_states, key, &stream_state_init, BPF_ANY))
			return 0;
	}
	if (!join)
		st = bpf_map_lookup_elem(&stream_states, key);
	if (!st)
		return 0;
	st->sk = c->sk; /* the forwarding program checks it */
	if (!join || what == DETECT_STREAM) {
		__builtin_memcpy(st->prefix, c->pending, 8);
		proto_stream_begin(proto, st, c, io->dir, what, prefix_len);
	}
	c->proto = proto;
	io->ret = ret;
	return proto;
}

/* Data on a connection a stream protocol has: forward it. */
static __always_inline int stream_more(struct conn_info *c, struct io_args *io, long ret)
{
	io->ret = ret;
	return c->proto;
}

/* Called by a front's program with what on_data returned: a stream
 * protocol's forwarding program takes over (no return on success). */
static __always_inline void stream_forward(void *ctx, int proto)
{
	if (proto > 0)
		bpf_tail_call(ctx, &stream_progs, proto);
}

#endif
