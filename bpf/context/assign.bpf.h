/* Trace id, span id and parent of a new exchange: from what sk_msg
 * injected, the request's own traceparent, the goroutine or thread that
 * sends it (docs/PROPAGATION.md). */
#ifndef WEFT_CONTEXT_ASSIGN_BPF_H
#define WEFT_CONTEXT_ASSIGN_BPF_H

#include "capture/tables.bpf.h"
#include "context/thread.bpf.h"
#include "context/goroutine.bpf.h"
#include "context/tcpopt.bpf.h"
#include "protocols/http1.bpf.h"

/* A TLS server exchange: the ids the TCP option of its request carried,
 * once (context/tcpopt.bpf.h). Global functions, verified once: their
 * frames are not added to txn_assign_context's (the chain down from a
 * front's program must stay well under 512 bytes). */
__attribute__((noinline)) int tcpopt_take(struct txn_event *t)
{
	if (!t)
		return 0;
	__u64 ck = tcpopt_cookie(t->sk);
	struct tcpopt_ctx *o = ck ? bpf_map_lookup_elem(&tcpopt_in, &ck) : NULL;
	if (!o || o->used)
		return 0;
	o->used = 1;
	__builtin_memcpy(t->trace_id, o->trace_id, 16);
	__builtin_memcpy(t->parent_span_id, o->span_id, 8);
	t->trace_flags = o->flags;
	t->ctx_source = WEFT_CTX_TCPOPT;
	return 1;
}

static const struct tcpopt_ctx tcpopt_ctx_init;

/* A TLS client exchange on a connection whose peer is traced: its ids go
 * with the connection's next data segment (sockops writes them). */
__attribute__((noinline)) int tcpopt_offer(struct txn_event *t)
{
	if (!t)
		return 0;
	__u64 ck = tcpopt_cookie(t->sk);
	if (!ck || !bpf_map_lookup_elem(&tcpopt_peers, &ck))
		return 0;
	bpf_map_update_elem(&tcpopt_out, &ck, &tcpopt_ctx_init, BPF_ANY);
	struct tcpopt_ctx *o = bpf_map_lookup_elem(&tcpopt_out, &ck);
	if (!o)
		return 0;
	__builtin_memcpy(o->trace_id, t->trace_id, 16);
	__builtin_memcpy(o->span_id, t->span_id, 8);
	o->flags = t->trace_flags;
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
	struct go_proc_info *pi = go_proc_of(tgid);
	if (!pi)
		return -1;
	struct conn_key k = { .tgid = tgid, .fd = t->fd };
	struct go_ctx *c = bpf_map_lookup_elem(&go_fd_ctx, &k);
	if (c) {
		*out = *c;
		bpf_map_delete_elem(&go_fd_ctx, &k);
		return 1;
	}
	if ((weft_proto_flags(t->proto) & WEFT_PROTO_F_GO_ROUNDTRIP) && (pi->flags & GO_PROC_ROUNDTRIP))
		return 0;
	return go_ctx_resolve(tgid, go_current_g(), out);
}

/* The sampler (user/sampling/sampler.c writes it once, after load), one
 * word: bits 0-56 the threshold T, bit 63 set when the sampler is not
 * parent-based. A trace is sampled when R, the 56 low bits of its id read
 * big-endian (W3C Trace Context level 2 randomness), is >= T, as the
 * OpenTelemetry TraceIdRatioBased sampler decides: T = 0 keeps every trace,
 * 1 << 56 none. Zero (never written) is parentbased_always_on. Shared with
 * inject/propagation.bpf.c, which decides for the roots it starts. */
#define SAMPLER_IGNORE_PARENT (1ull << 63)
#define SAMPLER_THRESHOLD_MASK ((1ull << 57) - 1)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} sampler SEC(".maps");

/* W3C flags of a span of trace_id: a root's (no parent) sampled bit is the
 * sampler's decision; a child keeps its parent's unless the sampler is not
 * parent-based. Other flag bits are kept. */
static __always_inline __u8 sample_flags(const __u8 *trace_id, __u8 flags, bool has_parent)
{
	__u32 zero = 0;
	__u64 *cfg = bpf_map_lookup_elem(&sampler, &zero);
	__u64 c = cfg ? *cfg : 0, r = 0;
	if (has_parent && !(c & SAMPLER_IGNORE_PARENT))
		return flags;
#pragma unroll
	for (int i = 9; i < 16; i++)
		r = r << 8 | trace_id[i];
	return r >= (c & SAMPLER_THRESHOLD_MASK) ? flags | 1 : flags & ~1;
}

/* An HTTP/1 request's header, scanned in the per-CPU scan buffer (see
 * struct hdr_scan): where it ends, and its traceparent. 1 when that
 * decided t's context (or the scratch could not be had), 0 to go on. */
static __always_inline int txn_header_context(struct txn_event *t, bool rescan)
{
	__u32 zero = 0;
	struct scan_buf *sb = bpf_map_lookup_elem(&scan_scratch, &zero);
	if (!sb)
		return 1;
	__u32 n = t->req_len;
	clamp_for_verifier(n, SCAN_BUF - 1);
	if (n && bpf_probe_read_kernel(sb->b, n, t->data))
		n = 0;
	sb->b[n & SCAN_MASK] = 0; /* stale bytes beyond the capture never match */
	hdr_scan_run(sb, n);
	struct hdr_scan *s = &sb->s;
	t->req_header_seen = s->header_len != 0;
	/* The agent reads the header alone: a body would cost the ring
	 * buffer's cache lines and copies, not give a span anything. */
	if (s->header_len && s->header_len < t->req_len)
		t->req_len = s->header_len;
	struct w3c_context *w = &sb->tp;
	if (!traceparent_parse(sb, w))
		return 0;
	/* Server: the caller's context. Client: the app's own SDK's. */
	__builtin_memcpy(t->trace_id, w->trace_id, 16);
	__builtin_memcpy(t->parent_span_id, w->span_id, 8);
	t->trace_flags = sample_flags(w->trace_id, w->flags, true);
	t->ctx_source = WEFT_CTX_HEADER;
	if (rescan) {
		/* The thread sent nothing for this request yet (its header was
		 * incomplete): its context takes the caller's trace. A
		 * goroutine's is t itself (context/goroutine.bpf.h). */
		__u32 tid = t->tid;
		struct thread_ctx *c = bpf_map_lookup_elem(&thread_ctxs, &tid);
		if (c && c->owner_tid == tid && span_word(c->span_id) == span_word(t->span_id)) {
			__builtin_memcpy(c->trace_id, w->trace_id, 16);
			c->trace_flags = t->trace_flags;
		}
	}
	return 1;
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

	/* Only HTTP/1 requests carry a traceparent header, read or injected
	 * (inject/propagation.bpf.c): a database's skip both lookups and the
	 * scan. */
	bool http = weft_proto_flags(t->proto) & WEFT_PROTO_F_TRACEPARENT;
	if (role == WEFT_ROLE_CLIENT && http) {
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

	struct go_ctx *gctx = go_scratch(GO_SCRATCH_RESULT);
	if (!gctx)
		return 0;
	if (http && txn_header_context(t, rescan))
		return 0;
	if (rescan)
		return 0;
	if (role == WEFT_ROLE_SERVER && t->tls && tcpopt_take(t)) {
		t->trace_flags = sample_flags(t->trace_id, t->trace_flags, true);
		return 0;
	}
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
	if (t->ctx_source == WEFT_CTX_NEW) {
		random_id(t->trace_id, 4);
		t->trace_flags = sample_flags(t->trace_id, 1, false);
	} else {
		t->trace_flags = sample_flags(t->trace_id, t->trace_flags, true);
	}
	if (role == WEFT_ROLE_CLIENT && t->tls)
		tcpopt_offer(t);
	return 0;
}

#endif
