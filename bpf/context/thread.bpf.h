/* In-process trace context: which request a thread is serving, so that the
 * HTTP requests it sends become children of it. Shared by the capture
 * front (which maintains it) and inject/propagation.bpf.c (which injects it).
 *
 * A wrong parent is worse than none: a thread's context is used only while
 * exactly one server exchange started by it is in flight and nothing
 * ambiguous happened since it went idle (event loops serving several
 * requests at once taint it), and only in processes the agent vetted
 * (PROC_THREAD_CTX: not Go, whose goroutines move between threads). */
#ifndef WEFT_CONTEXT_BPF_H
#define WEFT_CONTEXT_BPF_H

#include "lib/common.bpf.h"

struct thread_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];   /* the server span being served */
	__u8 trace_flags;
	__u8 tainted;      /* several exchanges overlapped: unusable until idle */
	__u8 from_parent;  /* inherited from the parent process at fork */
	__u8 pad;
	__u32 inflight;    /* server exchanges started by this thread, not finished */
	__u32 owner_tid;   /* thread whose exchange this is (inherited by forks) */
	__u32 pad2;
};

/* Context a sk_msg program injected into a request being written, for the
 * client exchange the same syscall's exit will open. */
struct injected_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];        /* the client span: its id went on the wire */
	__u8 parent_span_id[8]; /* zero: root */
	__u8 trace_flags;
	__u8 pad[7];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32); /* tid */
	__type(value, struct thread_ctx);
} thread_ctxs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid of the writing thread */
	__type(value, struct injected_ctx);
} injected SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32); /* tgid */
	__type(value, __u32); /* PROC_* */
} proc_flags SEC(".maps");

static __always_inline void random_id(__u8 *p, __u32 words)
{
	for (__u32 i = 0; i < words; i++) {
		__u32 r = bpf_get_prandom_u32();
		__builtin_memcpy(p + 4 * i, &r, 4);
	}
	p[0] |= 1; /* W3C: an all-zero id is invalid */
}

/* The context thread tid may parent a client request to, or NULL. */
static __always_inline struct thread_ctx *thread_ctx_usable(__u32 tgid, __u32 tid)
{
	/* The thread's entry first: a thread that never served (a pure client:
	 * redis-benchmark, pgbench) has none, and one lookup answers. */
	struct thread_ctx *c = bpf_map_lookup_elem(&thread_ctxs, &tid);
	if (!c)
		return NULL;
	__u32 *pf = bpf_map_lookup_elem(&proc_flags, &tgid);
	if (!pf || !(*pf & (PROC_THREAD_CTX | PROC_UNVETTED)))
		return NULL;
	if (!(*pf & PROC_THREAD_CTX) && !c->from_parent)
		return NULL;
	struct thread_ctx *owner = c;
	if (c->owner_tid != tid) {
		__u32 o = c->owner_tid;
		owner = bpf_map_lookup_elem(&thread_ctxs, &o);
		__u64 a, b;
		if (!owner)
			return NULL;
		__builtin_memcpy(&a, owner->span_id, 8);
		__builtin_memcpy(&b, c->span_id, 8);
		if (a != b)
			return NULL; /* the request it inherited is over */
	}
	if (owner->inflight == 0)
		return NULL;
	if (owner->inflight > 1 || owner->tainted) {
		count(WEFT_CNT_CTX_AMBIGUOUS);
		return NULL;
	}
	return c;
}

#endif
