/* A server exchange starts and ends: it becomes, then stops being, the
 * context of its thread (context/thread.bpf.h) or, in Go, of its goroutine
 * (context/goroutine.bpf.h: the goroutine's go_serving entry names the
 * connection, whose slot in txns holds the exchange). */
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

/* Goroutine goid of process tgid no longer serves the connection fd (closed,
 * its slot gone, or another goroutine serves the fd now): its entry goes
 * if it names that connection (a goroutine that moved on to another one
 * keeps it). */
static __always_inline void go_serving_forget(__u32 tgid, __u64 goid, __u32 fd)
{
	struct go_key k = { .tgid = tgid, .goid = goid };
	struct go_serving_ref *ref = bpf_map_lookup_elem(&go_serving, &k);
	if (ref && ref->conn.fd == fd)
		go_serving_delete(&k);
}

/* A Go server exchange starts in slot t, the connection key's: its
 * goroutine (r14 at the syscall) serves it, and its go_serving entry names
 * this connection (made at its first request, rewritten only when it moves
 * to another connection). t->goid and t->g: the goroutine, when the entry
 * names the slot. last_g: the g the slot's last exchange was served by,
 * whose entry names the slot already: the same goroutine on the same
 * connection (net/http's keep-alive loop) costs no map operation and no
 * read of its goid. */
static __always_inline void go_serving_start(struct conn_key *key, struct txn_event *t, __u64 last_goid,
					     __u64 last_g)
{
	__u64 g = go_current_g();
	if (!g)
		return;
	if (g == last_g) {
		t->goid = last_goid;
		t->g = g;
		return;
	}
	struct go_proc_info *pi = go_proc_of(key->tgid);
	if (!pi || pi->g_goid < 0)
		return;
	struct go_key k = { .tgid = key->tgid, .goid = go_read_u64(g + pi->g_goid) };
	if (!k.goid)
		return;
	struct go_serving_ref *ref = bpf_map_lookup_elem(&go_serving, &k);
	if (ref) {
		if (ref->conn.fd != key->fd) {
			/* It served another connection: that slot's next request
			 * must not take the entry for its own. */
			struct txn_event *old = bpf_map_lookup_elem(&txns, &ref->conn);
			if (old && old->goid == k.goid)
				old->g = 0;
			ref->conn = *key;
		}
	} else {
		struct go_serving_ref n = { .conn = *key };
		if (bpf_map_update_elem(&go_serving, &k, &n, BPF_NOEXIST)) {
			count(WEFT_CNT_GO_SERVING_FULL);
			return;
		}
		__sync_fetch_and_add(&pi->serving, 1);
	}
	t->goid = k.goid;
	t->g = g;
}

/* A Go server exchange is over. Its slot, idle, is what says its
 * goroutine serves nothing now; a slot that goes takes its goroutine's
 * entry with it. */
static __always_inline void go_serving_end(struct txn_event *t, bool keep)
{
	if (!keep) {
		go_serving_forget(t->pid, t->goid, t->fd);
		t->g = 0;
	}
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
