/* A server exchange starts and ends: it becomes, then stops being, the
 * context of its thread (context/thread.bpf.h) or, in Go, of its goroutine
 * (context/goroutine.bpf.h). */
#ifndef WEFT_CONTEXT_SERVING_BPF_H
#define WEFT_CONTEXT_SERVING_BPF_H

#include "context/thread.bpf.h"
#include "context/goroutine.bpf.h"

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
	if (c && c->owner_tid == tid && !c->from_parent) {
		/* The thread's own idle entry is rewritten in place: an LRU map
		 * update (a new element, the old one freed) on every request cost
		 * more than the rest of this. inflight goes last: a reader (a
		 * forked child, context/thread.bpf.h) takes the ids only while it
		 * is 1 and the owner's span id is its own. */
		__builtin_memcpy(c->trace_id, t->trace_id, 16);
		__builtin_memcpy(c->span_id, t->span_id, 8);
		c->trace_flags = t->trace_flags;
		c->tainted = 0;
		__sync_fetch_and_add(&c->inflight, 1);
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

#endif
