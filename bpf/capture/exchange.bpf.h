/* An exchange on a connection, from its request's first bytes to the end
 * of its response: built in per-CPU scratch, kept in txns while in flight,
 * sent to the agent when its protocol says the response is complete, when
 * a server reads again, when a new request starts, or on close. */
#ifndef WEFT_CAPTURE_EXCHANGE_BPF_H
#define WEFT_CAPTURE_EXCHANGE_BPF_H

#include "capture/tables.bpf.h"
#include "capture/io.bpf.h"
#include "capture/tls_hello.bpf.h"
#include "context/serving.bpf.h"
#include "context/assign.bpf.h"
#include "protocols/dispatch.bpf.h"

static __always_inline void txn_delete(struct conn_key *key, struct txn_event *t)
{
	txn_release(t);
	bpf_map_delete_elem(&txns, key);
}

static __always_inline void txn_emit(struct conn_key *key, struct txn_event *t, __u8 reason)
{
	/* Two threads may finish one exchange at once (Go: a writer goroutine's
	 * write and the background reader's read): only one sends it. */
	if (__sync_lock_test_and_set(&t->claimed, 1))
		return;
	t->end_reason = reason;
	if (drop_sampled_out && !(t->trace_flags & 1) && !(weft_proto_flags(t->proto) & WEFT_PROTO_F_CONN_STATE)) {
		count(WEFT_CNT_SAMPLED_OUT);
		txn_delete(key, t);
		return;
	}
	__u32 size = WEFT_TXN_HDR_SIZE + (__u32)t->req_len + (__u32)t->resp_len;
	clamp_for_verifier(size, sizeof(*t));
	__u64 flags = rb_flags(size);
	PROF_AT(PROF_RB_FLAGS);
	if (bpf_ringbuf_output(&events, t, size, flags))
		count(WEFT_CNT_RINGBUF_FULL);
	else
		count(WEFT_CNT_TXN_EMITTED);
	PROF_AT(PROF_RINGBUF);
	txn_delete(key, t);
	PROF_AT(PROF_TXN_DELETE);
}

/* The connection of an exchange in flight is gone (closed, or its fd
 * already names a newer socket): a response that began is complete, and an
 * HTTP request left unanswered is a failed exchange (a Go handler that
 * panicked, a client that gave up): both are sent; anything else is
 * forgotten. */
static __always_inline void txn_end_at_close(struct conn_key *key, struct txn_event *t)
{
	if (t->phase == TXN_PHASE_RESPONSE ||
	    ((weft_proto_flags(t->proto) & WEFT_PROTO_F_CLOSE_IS_ERROR) && t->req_header_seen))
		txn_emit(key, t, WEFT_END_CLOSE);
	else
		txn_delete(key, t);
}

/* A new exchange built in the per-CPU scratch (not yet in txns). */
static __always_inline struct txn_event *txn_build(struct conn_key *key, struct conn_info *c, __u8 role,
						   __u64 start_ns, const __u8 *src, __u32 avail, long ret,
						   __u32 prefix_len, __u8 proto)
{
	__u32 zero = 0;
	struct txn_event *t = bpf_map_lookup_elem(&txn_scratch, &zero);
	if (!t)
		return NULL;
	__builtin_memset(t, 0, WEFT_TXN_HDR_SIZE);
	t->type = WEFT_EV_TXN;
	t->pid = key->tgid;
	t->tid = (__u32)bpf_get_current_pid_tgid();
	t->fd = key->fd;
	t->start_ns = start_ns;
	t->end_ns = start_ns;
	t->req_bytes = ret + prefix_len;
	t->addr = c->addr;
	t->sk = c->sk;
	t->role = role;
	t->proto = proto;
	t->conn_opened = c->role != WEFT_ROLE_UNKNOWN;
	t->tls = c->tls;
	t->tls_version = c->tls_version;
	t->tls_cipher = c->tls_cipher;
	/* A database's TLS starts inside its protocol (PostgreSQL's
	 * SSLRequest): the ServerHello is then an exchange's response. */
	t->tls_hello_pending = !c->tls && tls_hello_pending(c);
	t->phase = TXN_PHASE_REQUEST;

	/* Bytes an earlier read got (c->pending), then this read's. */
	clamp_for_verifier(prefix_len, 7);
	__builtin_memcpy(t->data, c->pending, 8);
	__u32 n = avail;
	__u32 cap = req_capture - prefix_len;
	if (n > cap)
		n = cap;
	clamp_for_verifier(n, WEFT_REQ_CAP_MAX - 8);
	t->req_len = prefix_len;
	PROF_AT(PROF_TXN_HEADER);
	if (n && bpf_probe_read_user(&t->data[prefix_len], n, src) == 0)
		t->req_len = prefix_len + n;
	PROF_AT(PROF_REQ_COPY);
	txn_assign_context(t, role);
	PROF_AT(PROF_CONTEXT);
	c->proto = proto;
	return t;
}

/* A new exchange starts on this connection: built, then stored in txns.
 * A server exchange becomes its goroutine's or thread's context first, so
 * the stored copy carries the goroutine id (one map write, no lookup). */
static __always_inline void txn_start(struct conn_key *key, struct conn_info *c, __u8 role, __u64 start_ns,
				      const __u8 *src, __u32 avail, long ret, __u32 prefix_len, __u8 proto)
{
	struct txn_event *t = txn_build(key, c, role, start_ns, src, avail, ret, prefix_len, proto);
	if (!t)
		return;
	if (role == WEFT_ROLE_SERVER) {
		/* Go: goroutines, not threads, carry the context. */
		__u32 tgid = key->tgid;
		struct go_proc_info *pi = go_proc_of(tgid);
		if (pi)
			go_serving_start(t, pi);
		else
			thread_ctx_acquire(t);
	}
	PROF_AT(PROF_SERVING);
	long err = bpf_map_update_elem(&txns, key, t, BPF_ANY);
	PROF_AT(PROF_TXN_INSERT);
	if (err) {
		count(WEFT_CNT_TXN_MAP_FULL);
		txn_release(t);
	}
}

/* More request bytes (headers split over several syscalls, or a body). */
static __always_inline void txn_request_more(struct txn_event *t, const __u8 *src, __u32 avail, long ret)
{
	t->req_bytes += ret;
	__u32 off = t->req_len;
	__u32 cap = req_capture;
	if (cap > WEFT_REQ_CAP_MAX)
		cap = WEFT_REQ_CAP_MAX;
	if (!src || off >= cap || t->req_header_seen)
		return; /* a body: not kept (see txn_assign_context) */
	__u32 n = avail;
	if (n > cap - off)
		n = cap - off;
	clamp_for_verifier(n, 512); /* keeps off + n provably inside data[] */
	clamp_for_verifier(off, WEFT_REQ_CAP_MAX - 1);
	if (n && bpf_probe_read_user(&t->data[off], n, src) == 0) {
		t->req_len = off + n;
		if (!t->req_header_seen && t->role == WEFT_ROLE_SERVER &&
		    (weft_proto_flags(t->proto) & WEFT_PROTO_F_TRACEPARENT) &&
		    t->ctx_source == WEFT_CTX_NEW)
			txn_assign_context(t, WEFT_ROLE_SERVER | CTX_RESCAN);
	}
}

/* Captures the response's first bytes and lets its protocol learn where
 * it ends (protocols/dispatch.bpf.h). False while the response has not
 * begun (an interim HTTP/1 100 Continue: the exchange stays in its request
 * phase). */
static __always_inline bool txn_response_capture(struct conn_key *key, struct txn_event *t, const __u8 *src,
						 __u32 avail)
{
	__u32 zero = 0;
	struct scan_buf *sb = bpf_map_lookup_elem(&scan_scratch, &zero);
	if (!sb || !src)
		return true;
	__u32 n = avail;
	__u32 cap = resp_capture;
	if (n > cap)
		n = cap;
	clamp_for_verifier(n, WEFT_RESP_CAP_MAX);
	if (!n || bpf_probe_read_user(sb->b, n, src))
		return true;
	sb->b[n & SCAN_MASK] = 0; /* stale bytes beyond n never match */
	int r = proto_response_first(t, sb, n);
	if (r < 0) {
		/* The connection leaves the protocols weft parses. */
		struct conn_info *c = bpf_map_lookup_elem(&conns, key);
		if (c)
			c->ignored = 1;
	}
	return r != 0;
}

/* The first response bytes. The phase changes last: another thread (Go's
 * background reader) may finish the exchange as soon as it sees the
 * response phase, and must find the capture complete. */
static __always_inline void txn_response_begin(struct conn_key *key, struct txn_event *t, const __u8 *src,
					       __u32 avail, __u64 now)
{
	bool begun = txn_response_capture(key, t, src, avail);
	PROF_AT(PROF_RESP_CAPTURE);
	if (!begun)
		return;
	t->resp_start_ns = now;
	/* A fully ordered atomic: the capture is visible before the phase. */
	__sync_fetch_and_add(&t->claimed, 0);
	t->phase = TXN_PHASE_RESPONSE;
}

static __always_inline void txn_response_more(struct conn_key *key, struct txn_event *t, struct io_args *io,
					      const __u8 *src, __u32 avail, long ret, __u64 now)
{
	if (t->phase == TXN_PHASE_REQUEST)
		txn_response_begin(key, t, src, avail, now);
	if (t->phase != TXN_PHASE_RESPONSE)
		return; /* 100 Continue */
	t->resp_bytes += ret;
	/* A server's response is out when its write enters the kernel: the client
	 * may read it before that write returns. */
	t->end_ns = io->dir == DIR_WRITE ? io->enter_ns : now;
	if (t->resp_expected && t->resp_bytes >= t->resp_expected)
		txn_emit(key, t, WEFT_END_COMPLETE);
	else if (proto_response_ends(t, io, ret))
		txn_emit(key, t, WEFT_END_COMPLETE);
}

#endif
