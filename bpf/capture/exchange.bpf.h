/* An exchange on a connection, from its request's first bytes to the end
 * of its response: written into its connection's slot in txns (below),
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

/* txns holds an entry per connection that had an exchange: the exchange in
 * flight, or, between two, the idle slot (TXN_PHASE_IDLE) the next one is
 * written into in place. A map insert and delete per exchange (and the copy
 * of a 2.8 KB value from per-CPU scratch into the map) cost more than the
 * rest of starting one; the entry is made at a connection's first
 * exchange, serves the next sockets on the same fd, and goes with the
 * process (capture_forget_process). Idle slots are kept only while the
 * table holds fewer than TXN_KEEP_MAX entries (half its size, counted in
 * txn_counts), so that a new connection's exchange always finds room.
 *
 * A slot's claimed word (enum txn_claim) says who may touch it: Go's writer
 * and reader goroutines may finish one exchange at once. Claims are
 * compare-and-swaps; the phase is published after the slot is complete. */
#define TXN_KEEP_MAX 4096

/* Counts (enum txn_count_slot) kept here and by the agent, which maps them
 * shared and counts its own deletes:
 *  - TXN_COUNT_ENTRIES: entries in txns;
 *  - TXN_COUNT_OPEN: server exchanges whose response went out without
 *    reaching its end (chunked, streamed, no length): a server's next read
 *    ends them (read_nothing). Most responses end by their size, and while
 *    none waits, a read that returns nothing (Go and nginx make one per
 *    request) looks nothing up. An exchange is counted once (open_counted);
 *    a count left too high only costs that lookup. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, TXN_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} txn_counts SEC(".maps");

static __always_inline void txn_count_add(__u32 which, __s64 d)
{
	__u64 *n = bpf_map_lookup_elem(&txn_counts, &which);
	if (n)
		__sync_fetch_and_add(n, d);
}

static __always_inline __u64 txn_count(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&txn_counts, &which);
	return n ? *n : ~0ull;
}

static __always_inline bool txn_keep_slots(void)
{
	return txn_count(TXN_COUNT_ENTRIES) < TXN_KEEP_MAX; /* an underflow reads as crowded: entries go */
}

/* The exchange leaves: no longer among the open server responses. */
static __always_inline void txn_uncount(struct txn_event *t)
{
	if (t->open_counted) {
		t->open_counted = 0;
		txn_count_add(TXN_COUNT_OPEN, -1);
	}
}

static __always_inline bool txn_active(const struct txn_event *t)
{
	return t->phase != TXN_PHASE_IDLE;
}

static __always_inline void txn_map_delete(struct conn_key *key)
{
	if (bpf_map_delete_elem(&txns, key) == 0)
		txn_count_add(TXN_COUNT_ENTRIES, -1);
}

static __always_inline void txn_delete(struct conn_key *key, struct txn_event *t)
{
	txn_release(t, false);
	txn_uncount(t);
	txn_map_delete(key);
}

/* Takes the exchange in flight in t to send or drop it; false when
 * another CPU already does. */
static __always_inline bool txn_claim_send(struct txn_event *t)
{
	return __sync_val_compare_and_swap(&t->claimed, TXN_OPEN, TXN_SENDING) == TXN_OPEN;
}

/* The exchange in t was sent or dropped (t claimed: TXN_SENDING): its slot
 * waits for the connection's next exchange, or goes when txns is crowded.
 * True when the slot stays. */
static __always_inline bool txn_finish(struct conn_key *key, struct txn_event *t)
{
	bool keep = txn_keep_slots();
	txn_release(t, keep);
	txn_uncount(t);
	PROF_AT(PROF_TXN_DELETE);
	if (keep) {
		t->phase = TXN_PHASE_IDLE;
		/* A full barrier: the phase is idle before the slot can be claimed. */
		__sync_lock_test_and_set(&t->claimed, TXN_FREE);
		return true;
	}
	txn_map_delete(key);
	return false;
}

/* Sends the exchange in flight in t (unless another CPU already does).
 * True when t is still the connection's (now idle) slot. */
static __always_inline bool txn_emit(struct conn_key *key, struct txn_event *t, __u8 reason)
{
	/* Two threads may finish one exchange at once (Go: a writer goroutine's
	 * write and the background reader's read): only one sends it. */
	if (!txn_claim_send(t))
		return false;
	t->end_reason = reason;
	if (drop_sampled_out && !(t->trace_flags & 1) && !(weft_proto_flags(t->proto) & WEFT_PROTO_F_CONN_STATE)) {
		count(WEFT_CNT_SAMPLED_OUT);
		return txn_finish(key, t);
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
	return txn_finish(key, t);
}

/* The connection of an exchange in flight is gone (closed, or its fd
 * already names a newer socket): a response that began is complete, and an
 * HTTP request left unanswered is a failed exchange (a Go handler that
 * panicked, a client that gave up): both are sent; anything else is
 * forgotten. As txn_emit, true when t is still the (idle) slot. */
static __always_inline bool txn_end_at_close(struct conn_key *key, struct txn_event *t)
{
	if (t->phase == TXN_PHASE_RESPONSE ||
	    ((weft_proto_flags(t->proto) & WEFT_PROTO_F_CLOSE_IS_ERROR) && t->req_header_seen))
		return txn_emit(key, t, WEFT_END_CLOSE);
	if (!txn_claim_send(t))
		return false;
	return txn_finish(key, t);
}

/* The connection's slot: an idle one, claimed for a new exchange
 * (TXN_BUILDING), or a new entry made idle and claimed. NULL when txns is
 * full (counted) or another CPU holds the slot. */
static __always_inline struct txn_event *txn_slot_claim(struct conn_key *key, struct txn_event *slot)
{
	if (!slot) {
		__u32 zero = 0;
		struct txn_event *s = bpf_map_lookup_elem(&txn_scratch, &zero);
		if (!s)
			return NULL;
		s->phase = TXN_PHASE_IDLE;
		s->claimed = TXN_FREE; /* the rest stays zero: goid and g, no goroutine yet */
		long err = bpf_map_update_elem(&txns, key, s, BPF_NOEXIST);
		if (err == 0)
			txn_count_add(TXN_COUNT_ENTRIES, 1);
		else if (err != -EEXIST) {
			count(WEFT_CNT_TXN_MAP_FULL);
			return NULL;
		}
		PROF_AT(PROF_TXN_INSERT);
		slot = bpf_map_lookup_elem(&txns, key);
		if (!slot)
			return NULL;
	}
	if (slot->phase != TXN_PHASE_IDLE ||
	    __sync_val_compare_and_swap(&slot->claimed, TXN_FREE, TXN_BUILDING) != TXN_FREE)
		return NULL;
	return slot;
}

/* What a slot keeps of its connection for the next exchange on the same
 * socket (conn_snap: 1 + the connection's role), or 0 when that exchange
 * needs the conns entry: TLS (plaintext from the probes, or a ServerHello
 * still to come), a request's first bytes waiting in it, a Unix socket
 * (no close tracepoint: a freed socket's address may name the next one
 * unseen), the syscall front (no socket at hand). */
static __always_inline __u8 conn_snapshot(const struct conn_info *c)
{
	if (!c->sk || c->tls || c->tls_version || tls_hello_pending(c) || c->pending_len ||
	    (c->addr.family != AF_INET && c->addr.family != AF_INET6))
		return 0;
	return 1 + c->role;
}

/* A new exchange written into its connection's slot t (claimed:
 * TXN_BUILDING). The header is cleared around phase and claimed, which
 * keep the slot idle and held until txn_publish. c: the connection, or
 * NULL for the socket the slot's last exchange was on, whose addresses,
 * socket and conn_snap the slot still holds (capture/data.bpf.h). */
static __always_inline void txn_build(struct conn_key *key, struct txn_event *t, struct conn_info *c, __u8 role,
				      __u64 start_ns, const __u8 *src, __u32 avail, long ret, __u32 prefix_len,
				      __u8 proto)
{
	__u8 snap = t->conn_snap;
	__builtin_memset(t, 0, __builtin_offsetof(struct txn_event, addr));
	__builtin_memset(&t->end_reason, 0,
			 __builtin_offsetof(struct txn_event, claimed) - __builtin_offsetof(struct txn_event, end_reason));
	__builtin_memset(&t->req_header_seen, 0,
			 __builtin_offsetof(struct txn_event, sk) - __builtin_offsetof(struct txn_event, req_header_seen));
	t->type = WEFT_EV_TXN;
	t->pid = key->tgid;
	t->tid = (__u32)bpf_get_current_pid_tgid();
	t->fd = key->fd;
	t->start_ns = start_ns;
	t->end_ns = start_ns;
	t->req_bytes = ret + prefix_len;
	t->role = role;
	t->proto = proto;
	if (c) {
		t->addr = c->addr;
		t->sk = c->sk;
		t->conn_opened = c->role != WEFT_ROLE_UNKNOWN;
		t->tls = c->tls;
		t->tls_version = c->tls_version;
		t->tls_cipher = c->tls_cipher;
		/* A database's TLS starts inside its protocol (PostgreSQL's
		 * SSLRequest): the ServerHello is then an exchange's response. */
		t->tls_hello_pending = !c->tls && tls_hello_pending(c);
		/* Bytes an earlier read got (c->pending), then this read's. */
		__builtin_memcpy(t->data, c->pending, 8);
		c->proto = proto;
		t->conn_snap = conn_snapshot(c);
	} else {
		t->conn_opened = snap != 1 + WEFT_ROLE_UNKNOWN;
		t->conn_snap = snap;
	}

	clamp_for_verifier(prefix_len, 7);
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
}

/* The exchange written into t is in flight: unclaimed first, then its
 * phase (another CPU that sees the phase finds the exchange complete). */
static __always_inline void txn_publish(struct txn_event *t)
{
	__sync_lock_test_and_set(&t->claimed, TXN_OPEN);
	t->phase = TXN_PHASE_REQUEST;
}

/* A new exchange starts on this connection, in its slot (slot: the idle
 * entry on_data found, or NULL). A server exchange becomes its goroutine's
 * or thread's context first, so the slot carries the goroutine id. The
 * exchange, or NULL when it could not be kept (counted). */
static __always_inline struct txn_event *txn_start(struct conn_key *key, struct txn_event *slot,
						   struct conn_info *c, __u8 role, __u64 start_ns, const __u8 *src,
						   __u32 avail, long ret, __u32 prefix_len, __u8 proto)
{
	struct txn_event *t = txn_slot_claim(key, slot);
	if (!t)
		return NULL;
	/* The goroutine that served the slot's last exchange (0: none, or a
	 * new slot), and its g while its entry names the slot and the slot's
	 * socket is still this one. */
	__u64 last_goid = t->goid, last_g = t->g, last_sk = t->sk;
	txn_build(key, t, c, role, start_ns, src, avail, ret, prefix_len, proto);
	if (t->sk != last_sk)
		last_g = 0;
	t->g = 0;
	if (role == WEFT_ROLE_SERVER) {
		/* Go: goroutines, not threads, carry the context. A slot a
		 * goroutine served is a Go process's. */
		if (last_g || go_proc_of(key->tgid))
			go_serving_start(key, t, last_goid, last_g);
		else
			thread_ctx_acquire(t);
	}
	/* Another goroutine serves the fd now, or it is a client's: the last
	 * one's idle entry goes (context/serving.bpf.h). */
	if (last_goid && last_goid != t->goid)
		go_serving_forget(key->tgid, last_goid, key->fd);
	PROF_AT(PROF_SERVING);
	txn_publish(t);
	return t;
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
		/* The connection leaves the protocols weft parses: its next
		 * bytes go the long way, to find it ignored. */
		struct conn_info *c = bpf_map_lookup_elem(&conns, key);
		if (c)
			c->ignored = 1;
		t->conn_snap = 0;
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
	else if (t->role == WEFT_ROLE_SERVER && !t->open_counted) {
		/* Its end is the server's next read (read_nothing). */
		t->open_counted = 1;
		txn_count_add(TXN_COUNT_OPEN, 1);
	}
}

#endif
