/* Data moved on a traced socket: continue the exchange in flight, or ask
 * the protocols what the bytes start (protocols/dispatch.bpf.h). */
#ifndef WEFT_CAPTURE_DATA_BPF_H
#define WEFT_CAPTURE_DATA_BPF_H

#include "capture/conns.bpf.h"
#include "capture/exchange.bpf.h"
#include "capture/stream.bpf.h"
#include "capture/tls_hello.bpf.h"

/* What the protocols are asked about (protocols/protocol.bpf.h), in
 * per-CPU memory: off the stack of the deepest call chain (512 bytes by
 * 6.1's rules). NULL if the scratch cannot be had. */
static __always_inline struct detect_ctx *detect_prepare(const struct io_args *io, const __u8 *src, __u32 avail,
							 long ret, __u8 role, __u8 conn_proto, bool first)
{
	__u32 zero = 0;
	struct detect_ctx *dp = bpf_map_lookup_elem(&detect_scratch, &zero);
	if (!dp)
		return NULL;
	__builtin_memset(dp, 0, sizeof(*dp));
	dp->hn = src ? (avail < 8 ? avail : 8) : 0;
	dp->avail = avail;
	dp->ret = ret;
	dp->dir = io->dir;
	dp->first = first;
	dp->role = role;
	dp->conn_proto = conn_proto;
	if (src)
		bpf_probe_read_user(dp->head, 8, src); /* bytes past avail are ignored via hn */
	return dp;
}

/* The next request on a keep-alive connection, on the socket its idle
 * slot's last exchange was on: the slot holds what starting an exchange
 * needs of the connection (conn_snap, capture/exchange.bpf.h), so the
 * conns lookup (an LRU map's, ~250 ns of cache misses here) is skipped.
 * False when these bytes need the connection (not that protocol's
 * request, a request's first bytes alone): the slot forgets its snapshot
 * and on_data goes the long way. */
static __always_inline bool conn_fast_start(struct conn_key *key, struct txn_event *slot, struct io_args *io,
					    const __u8 *src, __u32 avail, long ret, __u64 now)
{
	if (!sock_same_ports(io->sk, &slot->addr))
		goto slow;
	struct detect_ctx *dp = detect_prepare(io, src, avail, ret, slot->conn_snap - 1, slot->proto, false);
	if (!dp)
		return false;
	__u8 proto = WEFT_PROTO_UNKNOWN;
	if (proto_detect(dp, &proto) != DETECT_REQUEST || proto != slot->proto)
		goto slow;
	bool server = io->dir == DIR_READ;
	txn_start(key, slot, NULL, server ? WEFT_ROLE_SERVER : WEFT_ROLE_CLIENT, server ? now : io->enter_ns, src,
		  avail, ret, 0, proto);
	return true;
slow:
	slot->conn_snap = 0;
	return false;
}

/* Data moved on fd: ret bytes, read or written. A global function: the
 * verifier checks it once, whatever the caller knows about io. Returns 0,
 * or the stream protocol whose forwarding program the caller tail-calls
 * (capture/stream.bpf.h) with io. */
__attribute__((noinline)) int on_data(struct io_args *io, long ret)
{
	if (!io)
		return 0;
	/* TLS plaintext of a read comes after the fact, timed at its ciphertext. */
	__u64 now = io->tls && io->dir == DIR_READ && io->enter_ns ? io->enter_ns : bpf_ktime_get_ns();
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = io->fd };
	const __u8 *src = NULL;
	__u32 avail = 0;
	if (io_source(io, ret, &src, &avail))
		src = NULL;

	/* An exchange in flight continues without the connection's entry (one
	 * map lookup per syscall on the hot path): more request bytes, or the
	 * response. A server reading after its response, or a client writing
	 * after the response came, ends it and may start the next: below. */
	PROF_AT(PROF_DATA_ENTRY);
	/* The connection's slot (capture/exchange.bpf.h), and in it the
	 * exchange in flight, if any. */
	struct txn_event *slot = bpf_map_lookup_elem(&txns, &key);
	struct txn_event *t = slot && txn_active(slot) ? slot : NULL;
	PROF_AT(PROF_TXN_LOOKUP);
	if (t && io->sk && t->sk != io->sk) {
		/* The fd was closed and reused before weft saw the old socket go
		 * (a server that closes first hears of TCP_CLOSE only when its peer
		 * closes too): the old exchange ends as at its close. */
		if (!txn_end_at_close(&key, t))
			slot = NULL;
		t = NULL;
	}
	if (t && io->tls && !t->tls) {
		/* An exchange read from ciphertext meets the TLS plaintext. */
		txn_delete(&key, t);
		t = slot = NULL;
	}
	if (t && t->tls && !io->tls)
		return 0; /* ciphertext outside the probed SSL calls (capture/tls.bpf.h) */
	if (t) {
		bool server = t->role == WEFT_ROLE_SERVER, request = t->phase == TXN_PHASE_REQUEST;
		if (io->dir == DIR_READ ? !server : server) {
			if (t->tls_hello_pending && !io->tls && src)
				t->tls_hello_pending = tls_hello_txn(io->fd, io->sk, (__u64)src, avail, io->dir);
			txn_response_more(&key, t, io, src, avail, ret, now);
			PROF_AT(PROF_RESP_MORE);
			return 0;
		}
		if (request) {
			txn_request_more(t, src, avail, ret);
			return 0;
		}
	}

	if (!t && slot && slot->conn_snap && src && ret > 0 && !io->tls && io->sk && slot->sk == io->sk &&
	    conn_fast_start(&key, slot, io, src, avail, ret, now))
		return 0;
	struct conn_info *c = conn_get(&key, io->sk);
	PROF_AT(PROF_CONN_GET);
	if (!c)
		return 0;
	/* A connection's first bytes from its server may be a TLS ServerHello
	 * (tls.protocol.version, tls.cipher): looked at once. */
	if (!io->tls && !c->tls && src && tls_hello_pending(c))
		tls_hello_see(c, (__u64)src, avail, io->dir);
	/* --- TLS (capture/tls.bpf.h): once plaintext comes from the TLS probes,
	 * the connection's own bytes are ciphertext, and what the handshake
	 * looked like (ignored, claimed, first bytes) is forgotten. */
	if (io->tls && !c->tls) {
		c->tls = 1;
		/* A stream protocol here is the other direction's plaintext,
		 * begun a moment ago on another CPU (ciphertext is never taken
		 * for one): resetting it would restart that direction's stream. */
		if (!(weft_proto_flags(c->proto) & WEFT_PROTO_F_STREAM)) {
			c->ignored = 0;
			c->proto = WEFT_PROTO_UNKNOWN;
			c->bytes_seen = 0;
			c->pending_len = 0;
		}
	}
	if (c->ignored || (c->tls && !io->tls))
		return 0;
	/* --- */
	if (weft_proto_flags(c->proto) & WEFT_PROTO_F_STREAM)
		return stream_more(c, io, ret);
	struct detect_ctx *dp = detect_prepare(io, src, avail, ret, c->role, c->proto, c->bytes_seen == 0);
	if (!dp)
		return 0;
	c->bytes_seen += ret;

	if (io->dir == DIR_READ) {
		if (t) {
			/* A server's response phase: it reads the next request. */
			if (!txn_emit(&key, t, WEFT_END_NEXT_REQUEST))
				slot = NULL;
			t = NULL;
		}
		if (c->pending_len) {
			/* A request's first bytes came alone: test them with these. */
			__u32 pl = c->pending_len & 7;
			__u64 p, h, lo, hi;
			__builtin_memcpy(&p, c->pending, 8);
			__builtin_memcpy(&h, dp->head, 8);
			p &= (1ull << (8 * pl)) - 1; /* little-endian: first bytes are low */
			lo = p | (h << (8 * pl));
			hi = pl ? h >> (64 - 8 * pl) : 0;
			__builtin_memcpy(dp->head, &lo, 8);
			__builtin_memcpy(dp->head + 8, &hi, 8);
			c->pending_len = 0;
			__u8 proto = c->pending_proto;
			dp->hn = pl + dp->hn;
			__u8 again;
			int what = src ? proto_detect(dp, &again) : DETECT_NONE;
			if (what == DETECT_REQUEST && again == proto)
				txn_start(&key, slot, c, WEFT_ROLE_SERVER, c->pending_ns, src, avail, ret, pl, proto);
			else if (what == DETECT_STREAM)
				return stream_begin(&key, c, io, ret, what, again, pl);
			return 0;
		}
	}
	__u8 proto = WEFT_PROTO_UNKNOWN;
	PROF_AT(PROF_DETECT_PREP);
	int what = src ? proto_detect(dp, &proto) : DETECT_NONE;
	PROF_AT(PROF_DETECT);
	if (what == DETECT_STREAM || what == DETECT_STREAM_FRAMES)
		return stream_begin(&key, c, io, ret, what, proto, 0);
	if (io->dir == DIR_READ) {
		switch (what) {
		case DETECT_REQUEST:
			txn_start(&key, slot, c, WEFT_ROLE_SERVER, now, src, avail, ret, 0, proto);
			return 0;
		case DETECT_GREETING:
			/* The server spoke first: an exchange of its own, with no request. */
			t = txn_start(&key, slot, c, WEFT_ROLE_CLIENT, now, src, 0, 0, 0, proto);
			if (t) {
				txn_response_begin(&key, t, src, avail, now);
				t->resp_bytes = ret;
				t->end_ns = now;
				txn_emit(&key, t, WEFT_END_COMPLETE);
			}
			return 0;
		case DETECT_PARTIAL:
			__builtin_memcpy(c->pending, dp->head, 8);
			c->pending_len = dp->hn;
			c->pending_proto = proto;
			c->pending_ns = now;
			return 0;
		}
	} else {
		/* t: a client exchange whose response came. */
		if (t) {
			if (what != DETECT_REQUEST)
				return 0;
			if (!txn_emit(&key, t, WEFT_END_NEXT_REQUEST))
				slot = NULL;
		}
		if (what == DETECT_REQUEST) {
			txn_start(&key, slot, c, WEFT_ROLE_CLIENT, io->enter_ns, src, avail, ret, 0, proto);
			return 0;
		}
	}
	if (what == DETECT_NONE && dp->first && judge_first_bytes(c)) {
		/* The connection began with bytes of no protocol weft parses. */
		c->ignored = 1;
		count(WEFT_CNT_CONN_IGNORED);
	}
	return 0;
}

/* A read that returned nothing (EAGAIN, EOF): a server that reads again
 * has finished its response. A global function: verified once, apart. */
__attribute__((noinline)) int read_nothing(__u32 fd)
{
	if (!txn_count(TXN_COUNT_OPEN))
		return 0; /* no server response waits for its end (capture/exchange.bpf.h) */
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	struct txn_event *t = bpf_map_lookup_elem(&txns, &key);
	if (t && t->role == WEFT_ROLE_SERVER && t->phase == TXN_PHASE_RESPONSE)
		txn_emit(&key, t, WEFT_END_NEXT_READ);
	return 0;
}

#endif
