// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Syscall-level connection tracking and HTTP/1 exchange capture.
 *
 * Every read-like and write-like syscall of a traced process on a TCP
 * socket passes through here. Per connection (tgid, fd) at most one
 * exchange is in flight: it starts with request bytes, switches to the
 * response when the direction changes, and is sent to userspace as one
 * txn_event when the response is complete (Content-Length, chunked end,
 * no-body status), when a server starts reading again, when a new request
 * starts, or when the socket closes. Owned by user/sockets.c. */
#include "common.bpf.h"
#include "sock.bpf.h"
#include "http.bpf.h"
#include "context.bpf.h"
#include "go_ctx.bpf.h"
#include "db.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Run-time capture limits, at most the compile-time maxima. */
const volatile __u32 req_capture = WEFT_REQ_CAP_DEFAULT;
const volatile __u32 resp_capture = WEFT_RESP_CAP_DEFAULT;

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_info);
} conns SEC(".maps");

/* In-flight exchanges (an exchange lives from its request to its response).
 * Preallocated, about 23 MiB: with BPF_F_NO_PREALLOC its 2.8 KB elements
 * came from the BPF allocator's per-CPU caches, which hold only a few
 * elements of that size, and an exchange allocated on one CPU and freed on
 * another (a Go client's writer and reader goroutines) refilled or drained
 * them by irq_work, a self-IPI, on nearly every exchange: 10-15 us each on
 * a VM. Full: counted (WEFT_CNT_TXN_MAP_FULL), that exchange is not traced. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct conn_key);
	__type(value, struct txn_event);
} txns SEC(".maps");

/* Per-CPU scratch: a new exchange is built here, then inserted. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct txn_event);
} txn_scratch SEC(".maps");

/* Per-CPU scratch for scanning the first bytes of a response. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct resp_scan_buf);
} scan_scratch SEC(".maps");

/* Records a connection of the current process: fd, its socket sk (a
 * kernel address) and role. A global function: the 104-byte conn_info is
 * built in its own stack frame, off the chain of the exchange logic.
 * 0, or -1 when the table is full (counted). */
__attribute__((noinline)) int conn_new(__u32 fd, __u64 sk, __u32 role)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	struct conn_info c = { .role = role };
	sock_read_addr((struct sock *)sk, &c.addr);
	if (bpf_map_update_elem(&conns, &key, &c, BPF_ANY)) {
		count(WEFT_CNT_CONN_MAP_FULL);
		return -1;
	}
	if (trace_all) {
		/* Remember the process so its state is cleaned when it exits. */
		__u8 seen = TRACED_SEEN;
		bpf_map_update_elem(&traced_pids, &key.tgid, &seen, BPF_NOEXIST);
	}
	return 0;
}

/* Known connection, or a TCP socket that predates weft (role inferred). */
static __always_inline struct conn_info *conn_get(struct conn_key *key)
{
	struct conn_info *c = bpf_map_lookup_elem(&conns, key);
	if (c)
		return c;
	struct sock *sk = stream_sock_from_fd(key->fd);
	if (!sk || conn_new(key->fd, (__u64)sk, WEFT_ROLE_UNKNOWN))
		return NULL;
	return bpf_map_lookup_elem(&conns, key);
}

/* A server exchange started by t->tid is over: its thread serves one fewer. */
static __always_inline void thread_ctx_release(struct txn_event *t)
{
	if (t->role != WEFT_ROLE_SERVER)
		return;
	__u32 tid = t->tid;
	struct thread_ctx *c = bpf_map_lookup_elem(&thread_ctxs, &tid);
	if (c && c->owner_tid == tid && c->inflight > 0) {
		c->inflight--;
		if (c->inflight == 0)
			c->tainted = 0;
	}
}

/* A server exchange starts on this thread: it becomes the thread's context. */
static __always_inline void thread_ctx_acquire(struct txn_event *t)
{
	__u32 tid = t->tid;
	struct thread_ctx *c = bpf_map_lookup_elem(&thread_ctxs, &tid);
	if (c && c->owner_tid == tid && c->inflight > 0) {
		/* Another exchange of this thread is still in flight (event loop):
		 * which one a client request belongs to is unknowable. */
		c->inflight++;
		c->tainted = 1;
		return;
	}
	struct thread_ctx n = { .trace_flags = t->trace_flags, .inflight = 1, .owner_tid = tid };
	__builtin_memcpy(n.trace_id, t->trace_id, 16);
	__builtin_memcpy(n.span_id, t->span_id, 8);
	bpf_map_update_elem(&thread_ctxs, &tid, &n, BPF_ANY);
}

/* A Go server exchange starts: its goroutine (r14 at the syscall) serves it. */
static __always_inline void go_serving_start(struct txn_event *t, struct go_proc_info *pi)
{
	__u32 tgid = t->pid;
	if (pi->g_goid < 0)
		return;
	__u64 g = go_current_g();
	if (!g)
		return;
	struct go_key k = { .tgid = tgid, .goid = go_read_u64(g + pi->g_goid) };
	if (!k.goid)
		return;
	struct go_ctx c = { .trace_flags = t->trace_flags, .valid = 1, .origin_goid = k.goid };
	__builtin_memcpy(c.trace_id, t->trace_id, 16);
	__builtin_memcpy(c.span_id, t->span_id, 8);
	/* Usually the goroutine serves nothing yet; a goroutine that starts a
	 * new exchange before the last one ended (pipelining) replaces it. */
	long err = bpf_map_update_elem(&go_serving, &k, &c, BPF_NOEXIST);
	if (err == 0)
		__sync_fetch_and_add(&pi->serving, 1);
	else if (err != -EEXIST || bpf_map_update_elem(&go_serving, &k, &c, BPF_EXIST)) {
		count(WEFT_CNT_GO_SERVING_FULL);
		return;
	}
	t->goid = k.goid;
}

/* A Go server exchange is over: its goroutine serves nothing now. */
static __always_inline void go_serving_end(struct txn_event *t)
{
	struct go_key k = { .tgid = t->pid, .goid = t->goid };
	struct go_ctx *c = bpf_map_lookup_elem(&go_serving, &k);
	__u64 a, b;
	if (!c)
		return;
	__builtin_memcpy(&a, c->span_id, 8);
	__builtin_memcpy(&b, t->span_id, 8);
	if (a != b || bpf_map_delete_elem(&go_serving, &k))
		return; /* the goroutine serves a newer exchange */
	struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &k.tgid);
	if (pi && pi->serving)
		__sync_fetch_and_add(&pi->serving, -1);
}

/* The exchange no longer makes its goroutine's or thread's context. */
static __always_inline void txn_release(struct txn_event *t)
{
	if (t->goid)
		go_serving_end(t);
	else
		thread_ctx_release(t);
}

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
	__u32 size = WEFT_TXN_HDR_SIZE + (__u32)t->req_len + (__u32)t->resp_len;
	clamp_for_verifier(size, sizeof(*t));
	if (bpf_ringbuf_output(&events, t, size, rb_flags(size)))
		count(WEFT_CNT_RINGBUF_FULL);
	else
		count(WEFT_CNT_TXN_EMITTED);
	txn_delete(key, t);
}

/* Where the syscall's data is and how much of it is contiguous there. */
static __always_inline int io_source(struct io_args *io, long ret, const __u8 **src, __u32 *avail)
{
	if (io->kind == IO_NONE)
		return -1;
	if (io->kind == IO_PLAIN) {
		*src = (const __u8 *)io->buf;
		*avail = ret;
		return 0;
	}
	struct iovec iov;
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)io->buf))
		return -1;
	*src = iov.iov_base;
	*avail = iov.iov_len < (__u64)ret ? iov.iov_len : ret;
	return 0;
}

/* Context of a client exchange a Go process starts: -1 not Go (use the
 * thread's), 0 none, 1 in *out. net/http's requests are written by
 * Transport's writer goroutine: their context was bound to the connection
 * by the roundTrip probe; other clients (database drivers) write from the
 * calling goroutine. */
static __always_inline int go_client_ctx(struct txn_event *t, struct go_ctx *out)
{
	__u32 tgid = t->pid;
	struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!pi)
		return -1;
	struct conn_key k = { .tgid = tgid, .fd = t->fd };
	struct go_ctx *c = bpf_map_lookup_elem(&go_fd_ctx, &k);
	if (c) {
		*out = *c;
		bpf_map_delete_elem(&go_fd_ctx, &k);
		return 1;
	}
	if (t->proto == WEFT_PROTO_HTTP1 && (pi->flags & GO_PROC_ROUNDTRIP))
		return 0;
	return go_ctx_resolve(tgid, go_current_g(), out);
}

#define CTX_RESCAN 0x100 /* with a role: the header grew, look again */

/* Trace id, span id and parent of a new exchange (t: per-CPU scratch
 * holding the captured request), or, with CTX_RESCAN, of a server exchange
 * whose header came in several reads (an injected traceparent may travel in
 * a segment of its own). A global function: the verifier checks it once,
 * apart from its callers. */
__attribute__((noinline)) int txn_assign_context(struct txn_event *t, __u32 mode)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 role = mode & 0xff;
	bool rescan = mode & CTX_RESCAN;
	if (!t)
		return 0;
	if (!rescan) {
		random_id(t->span_id, 2);
		t->trace_flags = 1; /* sampled */
	}

	if (role == WEFT_ROLE_CLIENT) {
		struct injected_ctx *inj = bpf_map_lookup_elem(&injected, &id);
		if (inj) {
			/* sk_msg put this span's id on the wire in this very syscall. */
			__builtin_memcpy(t->trace_id, inj->trace_id, 16);
			__builtin_memcpy(t->span_id, inj->span_id, 8);
			__builtin_memcpy(t->parent_span_id, inj->parent_span_id, 8);
			t->trace_flags = inj->trace_flags;
			t->ctx_source = WEFT_CTX_INJECTED;
			t->req_header_seen = 1; /* sk_msg injects only into a whole header */
			bpf_map_delete_elem(&injected, &id);
			return 0;
		}
	}

	struct w3c_context w = {};
	struct go_ctx *gctx = go_scratch(GO_SCRATCH_RESULT);
	if (!gctx)
		return 0;
	/* The header is scanned in the per-CPU scan buffer (see struct
	 * hdr_scan); database requests carry no traceparent header. */
	__u32 zero = 0;
	struct resp_scan_buf *sb = bpf_map_lookup_elem(&scan_scratch, &zero);
	if (!sb)
		return 0;
	__u32 n = t->proto == WEFT_PROTO_HTTP1 ? t->req_len : 0;
	clamp_for_verifier(n, SCAN_BUF - 1);
	if (n && bpf_probe_read_kernel(sb->b, n, t->data))
		n = 0;
	sb->b[n & SCAN_MASK] = 0; /* stale bytes beyond the capture never match */
	hdr_scan_run(sb, n);
	struct hdr_scan *s = &sb->s;
	t->req_header_seen = s->header_len != 0;
	if (traceparent_parse(sb, &w)) {
		/* Server: the caller's context. Client: the app's own SDK's. */
		__builtin_memcpy(t->trace_id, w.trace_id, 16);
		__builtin_memcpy(t->parent_span_id, w.span_id, 8);
		t->trace_flags = w.flags;
		t->ctx_source = WEFT_CTX_HEADER;
		if (rescan) {
			/* The thread sent nothing for this request yet (its header was
			 * incomplete): its context takes the caller's trace. */
			__u32 tid = t->tid;
			struct thread_ctx *c = bpf_map_lookup_elem(&thread_ctxs, &tid);
			__u64 a = 0, b;
			if (c)
				__builtin_memcpy(&a, c->span_id, 8);
			__builtin_memcpy(&b, t->span_id, 8);
			if (c && c->owner_tid == tid && a == b) {
				__builtin_memcpy(c->trace_id, w.trace_id, 16);
				c->trace_flags = w.flags;
			}
			struct go_key gk = { .tgid = t->pid, .goid = t->goid };
			struct go_ctx *gc = t->goid ? bpf_map_lookup_elem(&go_serving, &gk) : NULL;
			if (gc) {
				__builtin_memcpy(&a, gc->span_id, 8);
				if (a == b) {
					__builtin_memcpy(gc->trace_id, w.trace_id, 16);
					gc->trace_flags = w.flags;
				}
			}
		}
		return 0;
	}
	if (rescan)
		return 0;
	int go = role == WEFT_ROLE_CLIENT ? go_client_ctx(t, gctx) : -1;
	if (go > 0) {
		__builtin_memcpy(t->trace_id, gctx->trace_id, 16);
		__builtin_memcpy(t->parent_span_id, gctx->span_id, 8);
		t->trace_flags = gctx->trace_flags;
		t->ctx_source = WEFT_CTX_GOROUTINE;
	} else if (go < 0 && role == WEFT_ROLE_CLIENT) {
		struct thread_ctx *c = thread_ctx_usable(id >> 32, (__u32)id);
		if (c) {
			__builtin_memcpy(t->trace_id, c->trace_id, 16);
			__builtin_memcpy(t->parent_span_id, c->span_id, 8);
			t->trace_flags = c->trace_flags;
			t->ctx_source = WEFT_CTX_THREAD;
		}
	}
	if (t->ctx_source == WEFT_CTX_NEW)
		random_id(t->trace_id, 4);
	return 0;
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
	t->role = role;
	t->proto = proto;
	t->conn_opened = c->role != WEFT_ROLE_UNKNOWN;
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
	if (n && bpf_probe_read_user(&t->data[prefix_len], n, src) == 0)
		t->req_len = prefix_len + n;
	txn_assign_context(t, role);
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
		struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &tgid);
		if (pi)
			go_serving_start(t, pi);
		else
			thread_ctx_acquire(t);
	}
	if (bpf_map_update_elem(&txns, key, t, BPF_ANY)) {
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
	if (!src || off >= cap)
		return;
	__u32 n = avail;
	if (n > cap - off)
		n = cap - off;
	clamp_for_verifier(n, 512); /* keeps off + n provably inside data[] */
	clamp_for_verifier(off, WEFT_REQ_CAP_MAX - 1);
	if (n && bpf_probe_read_user(&t->data[off], n, src) == 0) {
		t->req_len = off + n;
		if (!t->req_header_seen && t->role == WEFT_ROLE_SERVER && t->proto == WEFT_PROTO_HTTP1 &&
		    t->ctx_source == WEFT_CTX_NEW)
			txn_assign_context(t, WEFT_ROLE_SERVER | CTX_RESCAN);
	}
}

/* Total response size from the header in sb (n bytes): sets
 * t->resp_expected or t->chunked. Returns the status. Global: verified once. */
__attribute__((noinline)) int txn_response_lengths(struct txn_event *t, struct resp_scan_buf *sb, __u32 n, __u32 status)
{
	if (!t || !sb)
		return 0;
	hdr_scan_run(sb, n);
	struct hdr_scan *s = &sb->s;
	if (!s->header_len)
		return status; /* header longer than the capture: ends at next read/request/close */
	bool head = t->req_len >= 4 && http_is_head_request(t->data);
	if (status == 101)
		t->resp_expected = 1;
	else if ((status >= 100 && status < 200) || status == 204 || status == 304 || head)
		t->resp_expected = s->header_len;
	else if (s->has_length)
		t->resp_expected = s->header_len + s->content_length;
	else if (s->chunked)
		t->chunked = 1;
	return status;
}

/* The first response bytes: capture them and learn the response's length. */
/* Captures the response's first bytes and learns its length. Returns false
 * for an interim "100 Continue" (the request body and the real response
 * follow: the exchange stays in its request phase). */
static __always_inline bool txn_response_capture(struct conn_key *key, struct txn_event *t, const __u8 *src,
						 __u32 avail)
{
	__u32 zero = 0;
	struct resp_scan_buf *sb = bpf_map_lookup_elem(&scan_scratch, &zero);
	if (!sb || !src)
		return true;
	__u32 n = avail;
	__u32 cap = resp_capture;
	if (n > cap)
		n = cap;
	clamp_for_verifier(n, WEFT_RESP_CAP_MAX);
	if (!n || bpf_probe_read_user(sb->b, n, src))
		return true;
	sb->b[n & (SCAN_BUF - 1)] = 0; /* stale bytes beyond n never match */
	__u32 off = t->req_len;
	clamp_for_verifier(off, WEFT_REQ_CAP_MAX);
	if (t->proto != WEFT_PROTO_HTTP1) {
		clamp_for_verifier(n, WEFT_RESP_CAP_MAX);
		if (bpf_probe_read_kernel(&t->data[off], n, sb->b) == 0)
			t->resp_len = n;
		return true;
	}
	if (!http_is_response_start(sb->b, n))
		return true;
	__u32 status = http_status(sb);
	if (status == 100)
		return false;
	clamp_for_verifier(n, WEFT_RESP_CAP_MAX);
	if (bpf_probe_read_kernel(&t->data[off], n, sb->b) == 0)
		t->resp_len = n;

	if (txn_response_lengths(t, sb, n, status) == 101) {
		/* A protocol switch (WebSocket, h2c): the rest is not HTTP/1. */
		struct conn_info *c = bpf_map_lookup_elem(&conns, key);
		if (c)
			c->ignored = 1;
	}
	return true;
}

/* The first response bytes. The phase changes last: another thread (Go's
 * background reader) may finish the exchange as soon as it sees the
 * response phase, and must find the capture complete. */
static __always_inline void txn_response_begin(struct conn_key *key, struct txn_event *t, const __u8 *src,
					       __u32 avail, __u64 now)
{
	if (!txn_response_capture(key, t, src, avail))
		return;
	t->resp_start_ns = now;
	/* A fully ordered atomic: the capture is visible before the phase. */
	__sync_fetch_and_add(&t->claimed, 0);
	t->phase = TXN_PHASE_RESPONSE;
}

/* The last (up to) 6 bytes of this syscall's data, right-aligned in tail
 * (a shorter read leaves zeros in front). */
static __always_inline bool io_tail6(struct io_args *io, long ret, __u8 tail[6])
{
	__u64 end;
	if (ret < 1)
		return false;
	if (io->kind == IO_PLAIN) {
		end = io->buf + ret;
	} else if (io->kind == IO_IOV) {
		/* The last iovec that holds data. */
		__u64 left = ret;
		end = 0;
		for (int i = 0; i < 8; i++) {
			struct iovec iov;
			if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(io->buf + i * sizeof(iov))))
				return false;
			if (iov.iov_len >= left) {
				if (left < 6 && left < (__u64)ret)
					return false; /* the tail spans two iovecs */
				end = (__u64)iov.iov_base + left;
				break;
			}
			left -= iov.iov_len;
		}
		if (!end)
			return false;
	} else {
		return false;
	}
	if (ret >= 6)
		return bpf_probe_read_user(tail, 6, (void *)(end - 6)) == 0;
	/* A short read: take 8 bytes ending... not before the buffer: read the
	 * ret bytes at its start and shift them to the right. */
	__u64 v = 0;
	__u32 n = ret;
	clamp_for_verifier(n, 5);
	if (bpf_probe_read_user(&v, n, (void *)(end - ret)))
		return false;
	v <<= 8 * (6 - n); /* little-endian: the last byte moves to index 5 */
	__builtin_memcpy(tail, &v, 6);
	return true;
}

/* Does this read (the response so far) end the exchange? */
static __always_inline bool response_ends_here(struct txn_event *t, struct io_args *io, long ret)
{
	__u8 tail[6] = {};
	if (t->proto == WEFT_PROTO_HTTP1 && !t->chunked)
		return false;
	if (!io_tail6(io, ret, tail))
		return false;
	switch (t->proto) {
	case WEFT_PROTO_HTTP1: /* the last chunk */
		return tail[1] == '0' && tail[2] == '\r' && tail[3] == '\n' && tail[4] == '\r' && tail[5] == '\n';
	case WEFT_PROTO_PGSQL: /* ReadyForQuery: 'Z', length 5, status */
		return tail[0] == 'Z' && tail[1] == 0 && tail[2] == 0 && tail[3] == 0 && tail[4] == 5 &&
		       (tail[5] == 'I' || tail[5] == 'T' || tail[5] == 'E');
	case WEFT_PROTO_REDIS: /* replies end a line; a reply cut between reads rarely does */
		return tail[4] == '\r' && tail[5] == '\n';
	case WEFT_PROTO_MYSQL: { /* one OK or ERR packet filling the response */
		__u8 *r = &t->data[t->req_len & (WEFT_REQ_CAP_MAX - 1)];
		__u32 len = r[0] | (__u32)r[1] << 8 | (__u32)r[2] << 16;
		return t->resp_len >= 5 && (r[4] == 0x00 || r[4] == 0xff) && len + 4 == t->resp_bytes;
	}
	}
	return false;
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
	else if (response_ends_here(t, io, ret))
		txn_emit(key, t, WEFT_END_COMPLETE);
}

/* May the first bytes weft sees on this connection rule it out? Yes when
 * weft saw it open (they are its first bytes), and for Unix sockets always:
 * processes hold many (logging, D-Bus, X11) and a pre-existing one that is
 * HTTP or a database is rare; looking at each of their writes is not free. */
static __always_inline bool judge_first_bytes(struct conn_info *c)
{
	return c->role != WEFT_ROLE_UNKNOWN || c->addr.family == AF_UNIX;
}

/* Data moved on fd: ret bytes, read or written. A global function: the
 * verifier checks it once, whatever the caller knows about io. */
__attribute__((noinline)) int on_data(struct io_args *io, long ret)
{
	if (!io)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = io->fd };
	const __u8 *src = NULL;
	__u32 avail = 0;
	if (io_source(io, ret, &src, &avail))
		src = NULL;

	/* An exchange in flight continues without the connection's entry (one
	 * map lookup per syscall on the hot path): more request bytes, or the
	 * response. A server reading after its response, or a client writing
	 * after the response came, ends it and may start the next: below. */
	struct txn_event *t = bpf_map_lookup_elem(&txns, &key);
	if (t) {
		bool server = t->role == WEFT_ROLE_SERVER, request = t->phase == TXN_PHASE_REQUEST;
		if (io->dir == DIR_READ ? !server : server) {
			txn_response_more(&key, t, io, src, avail, ret, now);
			return 0;
		}
		if (request) {
			txn_request_more(t, src, avail, ret);
			return 0;
		}
	}

	struct conn_info *c = conn_get(&key);
	if (!c || c->ignored)
		return 0;
	__u8 head[8] = {};
	if (src)
		bpf_probe_read_user(head, 8, src); /* bytes past avail are ignored via hn */
	__u32 hn = avail < 8 ? avail : 8;
	bool first = c->bytes_seen == 0;
	c->bytes_seen += ret;
	bool is_request = src && http_is_request_start(head, hn);

	if (io->dir == DIR_READ) {
		if (t) {
			/* A server's response phase: it reads the next request. */
			txn_emit(&key, t, WEFT_END_NEXT_REQUEST);
			t = NULL;
		}
		if (c->pending_len) {
			/* A request's first bytes came alone: test them with these. */
			__u8 joined[16];
			__u32 pl = c->pending_len & 7;
			__u64 p, h, lo, hi;
			__builtin_memcpy(&p, c->pending, 8);
			__builtin_memcpy(&h, head, 8);
			p &= (1ull << (8 * pl)) - 1; /* little-endian: first bytes are low */
			lo = p | (h << (8 * pl));
			hi = pl ? h >> (64 - 8 * pl) : 0;
			__builtin_memcpy(joined, &lo, 8);
			__builtin_memcpy(joined + 8, &hi, 8);
			c->pending_len = 0;
			if (src && http_is_request_start(joined, pl + hn))
				txn_start(&key, c, WEFT_ROLE_SERVER, c->pending_ns, src, avail, ret, pl, WEFT_PROTO_HTTP1);
			return 0;
		}
		if (is_request) {
			txn_start(&key, c, WEFT_ROLE_SERVER, now, src, avail, ret, 0, WEFT_PROTO_HTTP1);
		} else if (first && c->role == WEFT_ROLE_CLIENT && src && mysql_is_greeting(head, hn)) {
			/* MySQL speaks first: its greeting is an exchange of its own
			 * (the parser learns MariaDB vs MySQL from it). */
			t = txn_build(&key, c, WEFT_ROLE_CLIENT, now, src, 0, 0, 0, WEFT_PROTO_MYSQL);
			if (t) {
				txn_response_begin(&key, t, src, avail, now);
				t->resp_bytes = ret;
				t->end_ns = now;
				txn_emit(&key, t, WEFT_END_COMPLETE);
			}
		} else if (src && avail == ret && http_may_start_request(head, hn)) {
			__builtin_memcpy(c->pending, head, 8);
			c->pending_len = hn;
			c->pending_ns = now;
		} else if (first && judge_first_bytes(c) && !(src && http_is_response_start(head, hn))) {
			goto not_http;
		}
		return 0;
	}

	/* DIR_WRITE; t: a client exchange whose response came. */
	__u8 db = is_request || !src ? 0 : db_detect_request(c, head, hn, ret, first);
	if (t) {
		if (!is_request && !db)
			return 0;
		txn_emit(&key, t, WEFT_END_NEXT_REQUEST);
	}
	if (is_request)
		txn_start(&key, c, WEFT_ROLE_CLIENT, io->enter_ns, src, avail, ret, 0, WEFT_PROTO_HTTP1);
	else if (db)
		txn_start(&key, c, WEFT_ROLE_CLIENT, io->enter_ns, src, avail, ret, 0, db);
	else if (first && judge_first_bytes(c) && !(src && http_is_response_start(head, hn)))
		goto not_http;
	return 0;

not_http:
	/* The connection began with bytes that are no HTTP/1 message. */
	c->ignored = 1;
	count(WEFT_CNT_NON_HTTP_CONN);
	return 0;
}

/* A read that returned nothing (EAGAIN, EOF): a server that reads again
 * has finished its response. A global function: verified once, apart. */
__attribute__((noinline)) int read_nothing(__u32 fd)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	struct txn_event *t = bpf_map_lookup_elem(&txns, &key);
	if (t && t->role == WEFT_ROLE_SERVER && t->phase == TXN_PHASE_RESPONSE)
		txn_emit(&key, t, WEFT_END_NEXT_READ);
	return 0;
}

/* --- syscall arguments: from the user registers at exit --- */

/* x86-64 syscall numbers of the calls sys_exit_io serves. */
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDFILE 40
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47

/* The iovec array of a struct user_msghdr: only that field is read (the
 * whole struct on the stack cost 56 bytes of the call chain's 512). */
static __always_inline __u64 msghdr_iov(__u64 msg)
{
	__u64 iov = 0;
	bpf_probe_read_user(&iov, sizeof(iov), (void *)(msg + __builtin_offsetof(struct user_msghdr, msg_iov)));
	return iov;
}

/* When the write-like syscall thread id is leaving on fd entered: from this
 * CPU's slot if it is still this call's, else now. The slot is cleared: a
 * later write of this thread that enters on another CPU and comes back here
 * must not take this one's time. */
static __always_inline __u64 write_enter_time(__u64 id, __u32 fd)
{
	struct write_enter *w = write_enter_of(id);
	if (w && w->fd == fd) {
		w->pid_tgid = 0;
		return w->enter_ns;
	}
	return bpf_ktime_get_ns();
}

/* A read-like or write-like syscall returned: its arguments are still in
 * the user registers saved at entry (x86-64: fd in di, buffer or msghdr in
 * si), so no entry program has to save them in a map (Go alone does several
 * reads per request that return EAGAIN). False: not traced. */
static __always_inline bool io_args_at_exit(long nr, struct io_args *io)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!tgid_traced(id >> 32))
		return false;
	struct pt_regs *regs = user_regs();
	io->fd = regs->di;
	io->buf = regs->si;
	io->kind = IO_PLAIN;
	io->dir = DIR_READ;
	io->enter_ns = 0; /* reads are timed at exit */
	switch (nr) {
	case NR_READ:
	case NR_RECVFROM:
		return true;
	case NR_READV:
		io->kind = IO_IOV;
		return true;
	case NR_RECVMSG:
		io->kind = IO_IOV;
		io->buf = msghdr_iov(io->buf);
		return true;
	case NR_WRITE:
	case NR_SENDTO:
		break;
	case NR_WRITEV:
		io->kind = IO_IOV;
		break;
	case NR_SENDMSG:
		io->kind = IO_IOV;
		io->buf = msghdr_iov(io->buf);
		break;
	case NR_SENDFILE:
		io->kind = IO_NONE;
		break;
	default:
		return false;
	}
	io->dir = DIR_WRITE;
	io->enter_ns = write_enter_time(id, io->fd);
	return true;
}

/* One program for the entry of every write-like syscall (user/sockets.c
 * attaches it to each): it notes when, on which fd and by whom in this
 * CPU's slot, for any process (cheaper than asking whether it is traced). */
SEC("tracepoint")
int sys_enter_io(struct trace_event_raw_sys_enter *ctx)
{
	__u32 zero = 0;
	struct write_enter *w = bpf_map_lookup_elem(&write_enters, &zero);
	if (w) {
		w->pid_tgid = bpf_get_current_pid_tgid();
		w->enter_ns = bpf_ktime_get_ns();
		w->fd = ctx->args[0];
	}
	return 0;
}

/* One program for the exit of every read-like and write-like syscall
 * (they share the sys_exit context): the big exchange logic is verified
 * once, and user/sockets.c attaches it to each exit tracepoint. */
SEC("tracepoint")
int sys_exit_io(struct trace_event_raw_sys_exit *ctx)
{
	/* The syscalls:sys_exit_* record holds an int __syscall_nr where the
	 * raw_syscalls struct has a long: only its low 32 bits are the number. */
	long nr = (int)ctx->id, ret = ctx->ret;
	struct io_args io;
	if (!io_args_at_exit(nr, &io))
		return 0;
	if (ret > 0)
		on_data(&io, ret);
	else if (io.dir == DIR_READ)
		read_nothing(io.fd);
	return 0;
}

/* --- connection lifecycle --- */
static __always_inline void conn_opened(__u32 fd, __u8 role)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	struct sock *sk = stream_sock_from_fd(fd);
	if (!sk)
		return;
	/* fd numbers are reused: drop whatever an earlier socket left. */
	struct txn_event *stale = bpf_map_lookup_elem(&txns, &key);
	if (stale)
		txn_delete(&key, stale);
	conn_new(fd, (__u64)sk, role);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret >= 0 && tgid_traced(bpf_get_current_pid_tgid() >> 32))
		conn_opened(ctx->ret, WEFT_ROLE_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret >= 0 && tgid_traced(bpf_get_current_pid_tgid() >> 32))
		conn_opened(ctx->ret, WEFT_ROLE_SERVER);
	return 0;
}

/* Only where sockops cannot tell the process (see struct connect_enter):
 * the loader turns it off elsewhere. */
SEC("tracepoint/syscalls/sys_enter_connect")
int sys_enter_connect(struct trace_event_raw_sys_enter *ctx)
{
	__u32 zero = 0;
	struct connect_enter *e = bpf_map_lookup_elem(&connect_enters, &zero);
	if (e) {
		__u64 id = bpf_get_current_pid_tgid();
		e->pid_tgid = id;
		e->tgid_traced = tgid_traced(id >> 32) ? id >> 32 : 0;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_connect")
int sys_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	if (ctx->ret != 0 && ctx->ret != -EINPROGRESS)
		return 0;
	if (!tgid_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	/* The fd argument is still in the user registers saved at entry. */
	conn_opened(user_regs()->di, WEFT_ROLE_CLIENT);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = ctx->args[0] };
	if (!tgid_traced(key.tgid))
		return 0;
	struct txn_event *t = bpf_map_lookup_elem(&txns, &key);
	if (t) {
		/* An HTTP request that got no response before its connection closed
		 * is a failed exchange (a Go handler that panicked, a client that
		 * gave up): its span says so. */
		if (t->phase == TXN_PHASE_RESPONSE || (t->proto == WEFT_PROTO_HTTP1 && t->req_header_seen))
			txn_emit(&key, t, WEFT_END_CLOSE);
		else
			txn_delete(&key, t);
	}
	struct conn_info *c = bpf_map_lookup_elem(&conns, &key);
	if (c && c->proto >= WEFT_PROTO_PGSQL) {
		/* The agent keeps per-connection protocol state (prepared statements). */
		struct conn_close_event e = { .type = WEFT_EV_CONN_CLOSE, .pid = key.tgid, .fd = key.fd };
		if (bpf_ringbuf_output(&events, &e, sizeof(e), rb_flags(sizeof(e))))
			count(WEFT_CNT_RINGBUF_FULL);
	}
	bpf_map_delete_elem(&conns, &key);
	return 0;
}

/* --- process lifecycle --- */
SEC("tracepoint/task/task_newtask")
int task_newtask(struct trace_event_raw_task_newtask *ctx)
{
	/* Processes forked by a selected process are selected too (pre-fork
	 * servers, workers); threads share the tgid and need nothing. */
	__u64 id = bpf_get_current_pid_tgid();
	__u32 parent = id >> 32, child = ctx->pid;
	if (!tgid_traced(parent))
		return 0;
	/* Threads and processes started while a request is served act for it. */
	struct thread_ctx *pc = thread_ctx_usable(parent, (__u32)id);
	if (pc) {
		struct thread_ctx inherited = *pc;
		inherited.inflight = 0;
		bpf_map_update_elem(&thread_ctxs, &child, &inherited, BPF_ANY);
	} else {
		bpf_map_delete_elem(&thread_ctxs, &child); /* a recycled tid */
	}
	if (ctx->clone_flags & 0x00010000 /* CLONE_THREAD */)
		return 0;
	__u32 *pf = bpf_map_lookup_elem(&proc_flags, &parent);
	if (pf)
		bpf_map_update_elem(&proc_flags, &child, pf, BPF_ANY);
	__u8 *v = bpf_map_lookup_elem(&traced_pids, &parent);
	if (!v || *v != TRACED_EXPLICIT)
		return 0;
	__u8 flag = TRACED_EXPLICIT;
	bpf_map_update_elem(&traced_pids, &child, &flag, BPF_ANY);
	traced_bit_set(child, true);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int sched_process_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u32 tid = id;
	bpf_map_delete_elem(&thread_ctxs, &tid);
	bpf_map_delete_elem(&injected, &id);
	if (tid != tgid)
		return 0;
	bpf_map_delete_elem(&proc_flags, &tgid);
	bpf_map_delete_elem(&go_procs, &tgid);
	if (!bpf_map_lookup_elem(&traced_pids, &tgid))
		return 0;
	bpf_map_delete_elem(&traced_pids, &tgid);
	traced_bit_set(tgid, false);
	/* Userspace drops the process's connections and cached resource. */
	struct proc_exit_event e = { .type = WEFT_EV_PROC_EXIT, .pid = tgid };
	if (bpf_ringbuf_output(&events, &e, sizeof(e), 0))
		count(WEFT_CNT_RINGBUF_FULL);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int sched_process_exec(void *ctx)
{
	/* A new program: what the agent knew of the old one (Go or not) is void. */
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (!tgid_traced(tgid))
		return 0;
	bpf_map_delete_elem(&proc_flags, &tgid);
	bpf_map_delete_elem(&go_procs, &tgid);
	struct proc_exit_event e = { .type = WEFT_EV_PROC_EXEC, .pid = tgid };
	/* Wake the agent now: it reads the new program's /proc entries while the
	 * process lives (a short-lived client may be gone 100 ms later). */
	if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_FORCE_WAKEUP))
		count(WEFT_CNT_RINGBUF_FULL);
	return 0;
}
