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

/* A goroutine's go_serving entry goes: its process counts one fewer
 * (go_proc_info.serving counts entries, not requests: no shared counter
 * moves per request). */
static __always_inline void go_serving_delete(struct go_key *k)
{
	if (bpf_map_delete_elem(&go_serving, k))
		return;
	struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &k->tgid);
	if (pi && pi->serving)
		__sync_fetch_and_add(&pi->serving, -1);
}

/* A Go server exchange starts: its goroutine (r14 at the syscall) serves
 * it. Its go_serving entry, idle since its last request, is rewritten in
 * place: the ids first, valid last (a reader on another CPU takes the ids
 * only while valid and the span id its own, context/goroutine.bpf.h). */
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
	struct go_ctx *e = bpf_map_lookup_elem(&go_serving, &k);
	if (e) {
		/* A goroutine that starts a new exchange before the last one
		 * ended (pipelining) serves the new one. */
		e->valid = 0;
		asm volatile("" ::: "memory");
		__builtin_memcpy(e->trace_id, t->trace_id, 16);
		__builtin_memcpy(e->span_id, t->span_id, 8);
		e->trace_flags = t->trace_flags;
		e->origin_goid = k.goid;
		asm volatile("" ::: "memory");
		e->valid = 1;
		t->goid = k.goid;
		return;
	}
	struct go_ctx c = { .trace_flags = t->trace_flags, .valid = 1, .origin_goid = k.goid };
	__builtin_memcpy(c.trace_id, t->trace_id, 16);
	__builtin_memcpy(c.span_id, t->span_id, 8);
	if (bpf_map_update_elem(&go_serving, &k, &c, BPF_NOEXIST)) {
		count(WEFT_CNT_GO_SERVING_FULL);
		return;
	}
	__sync_fetch_and_add(&pi->serving, 1);
	t->goid = k.goid;
}

/* A Go server exchange is over: its goroutine serves nothing now. Its
 * entry stays for its next request when keep, else goes. */
static __always_inline void go_serving_end(struct txn_event *t, bool keep)
{
	struct go_key k = { .tgid = t->pid, .goid = t->goid };
	struct go_ctx *c = bpf_map_lookup_elem(&go_serving, &k);
	__u64 a, b;
	if (!c || !c->valid)
		return;
	__builtin_memcpy(&a, c->span_id, 8);
	__builtin_memcpy(&b, t->span_id, 8);
	if (a != b)
		return; /* the goroutine serves a newer exchange */
	if (keep)
		c->valid = 0;
	else
		go_serving_delete(&k);
}

/* Goroutine goid of process tgid no longer serves the connection whose
 * slot remembered it (closed, or its fd serves another goroutine now):
 * its entry goes unless it serves a request. */
static __always_inline void go_serving_forget(__u32 tgid, __u64 goid)
{
	struct go_key k = { .tgid = tgid, .goid = goid };
	struct go_ctx *c = bpf_map_lookup_elem(&go_serving, &k);
	if (c && !c->valid)
		go_serving_delete(&k);
}

/* The exchange no longer makes its goroutine's or thread's context. */
static __always_inline void txn_release(struct txn_event *t, bool keep)
{
	if (t->goid)
		go_serving_end(t, keep);
	else
		thread_ctx_release(t);
}

#endif
