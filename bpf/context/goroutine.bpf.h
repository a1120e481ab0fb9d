/* Goroutine context for Go processes: which request a goroutine acts for,
 * so that the requests it sends become children of that request's server
 * span. Goroutines move between threads, so the thread context of
 * context/thread.bpf.h is off for Go; this replaces it. Shared by the capture
 * front (server exchanges register their goroutine, client exchanges look
 * it up), uprobes/go.bpf.c and inject/propagation.bpf.c (sk_msg injects it).
 *
 * Cost is what shapes it (a uprobe hit ~10 us, a syscall tracepoint
 * ~0.1 us): the goroutine is read from the user registers a syscall
 * tracepoint already has (Go keeps g in r14 on amd64), so serving a request
 * costs no uprobe. A goroutine's ancestry comes from g.parentGoid (Go >=
 * 1.21), looked up lazily when the goroutine sends something; older Go has
 * no such field and gets a uprobe on runtime.newproc1's returns instead.
 *
 * A wrong parent is worse than none: an ancestor's context counts only
 * while the request it was serving is in flight (checked on every use), and
 * a goroutine found to have no serving ancestor is remembered as such. */
#ifndef WEFT_GO_CTX_BPF_H
#define WEFT_GO_CTX_BPF_H

#include "lib/common.bpf.h"
#include "abi/go.h"
#include "capture/tables.bpf.h" /* txns: a serving goroutine's request is its connection's slot */

struct go_key {
	__u32 tgid;
	__u32 pad;
	__u64 goid; /* unique per process: g structs are reused, goids are not */
};

struct go_ctx {
	__u8 trace_id[16];
	__u8 span_id[8]; /* the server span the goroutine acts for */
	__u8 trace_flags;
	__u8 valid;      /* go_inherited: 0 = known to act for no request */
	__u8 pad[6];
	__u64 origin_goid; /* the goroutine serving that request */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* tgid */
	__type(value, struct go_proc_info);
} go_procs SEC(".maps");

/* The tgids with a go_procs entry, one bit each (bit tgid % 64 of word
 * tgid / 64), set by the agent (mapped shared, atomically) before the
 * entry, cleared by the kernel with it: every exchange asks whether its
 * process is Go, and for most processes this array access answers no
 * without a hash miss (~100 ns here). A bit set without an entry (a missed
 * clear) costs a lookup, nothing else. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACED_BITS_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} go_bits SEC(".maps");

/* The Go facts of process tgid, or NULL when it is not a Go process weft follows. */
static __always_inline struct go_proc_info *go_proc_of(__u32 tgid)
{
	__u32 w = tgid / 64;
	__u64 *v = bpf_map_lookup_elem(&go_bits, &w);
	if (!v || !((*v >> (tgid % 64)) & 1))
		return NULL;
	return bpf_map_lookup_elem(&go_procs, &tgid);
}

/* The process is not (or no longer) a Go process weft follows. */
static __always_inline void go_proc_forget(__u32 tgid)
{
	__u32 w = tgid / 64;
	__u64 *v = bpf_map_lookup_elem(&go_bits, &w);
	bpf_map_delete_elem(&go_procs, &tgid);
	if (v)
		__sync_fetch_and_and(v, ~(1ull << (tgid % 64)));
}

/* Goroutines that serve a connection (net/http: one per connection, for
 * all its keep-alive requests): each names the connection whose slot in
 * txns holds the exchange it serves, and that slot's ids are the context
 * (go_serving_ctx). A request costs the server no write here: the entry
 * is made at the goroutine's first request and rewritten only when it
 * serves another connection (context/serving.bpf.h); an idle slot (between
 * two requests) serves nothing. It goes when its connection closes or
 * another goroutine serves the connection's fd, when txns is too crowded
 * to keep the slot, and with the process. A full table is counted, never
 * evicted. */
struct go_serving_ref {
	struct conn_key conn; /* the connection's key in txns */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_key);
	__type(value, struct go_serving_ref);
} go_serving SEC(".maps");

/* Goroutines resolved to a serving ancestor (or to none): a cache, so LRU;
 * entries are checked against go_serving on every use. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct go_key);
	__type(value, struct go_ctx);
} go_inherited SEC(".maps");

/* Context of the next HTTP/1 request on a connection, set by the
 * persistConn.roundTrip uprobe in the calling goroutine, consumed when
 * Transport's writer goroutine writes the request. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct conn_key);
	__type(value, struct go_ctx);
} go_fd_ctx SEC(".maps");

/* Per-CPU room for goroutine contexts, off the BPF stack (the call chain
 * from sys_exit_io must fit in 512 bytes on every kernel, 6.1 included):
 * slot GO_SCRATCH_RESULT for a caller's result, GO_SCRATCH_WORK for
 * go_ctx_resolve's working copy. */
#define GO_SCRATCH_RESULT 0
#define GO_SCRATCH_WORK 1
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct go_ctx);
} go_ctx_scratch SEC(".maps");

static __always_inline struct go_ctx *go_scratch(__u32 slot)
{
	return bpf_map_lookup_elem(&go_ctx_scratch, &slot);
}

/* A goroutine's g found in allgs (go_find_g). */
struct go_find_g {
	__u64 slots;   /* allgs' backing array */
	__u64 want;    /* goid */
	__u64 found;   /* its g, 0 if none */
	__s64 goid_off;
};

/* go_ctx_resolve's map keys and allgs scan, per CPU: off its stack, which
 * the bpf_loop of that scan deepens (on the capture's deepest chain of
 * calls). */
struct go_resolve_scratch {
	struct go_key self;   /* the goroutine asked about */
	struct go_key parent; /* the ancestor looked at */
	struct go_key origin; /* the goroutine serving a cached context's request */
	struct go_find_g find;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct go_resolve_scratch);
} go_resolve_scratch SEC(".maps");

#define GO_ANCESTORS 4      /* parentGoid steps followed */
#define GO_ALLGS_SCAN 16384 /* goroutines examined to find one ancestor */

static __always_inline __u64 go_read_u64(__u64 addr)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

/* The goroutine running on this thread, from the user registers saved at
 * syscall entry (for a syscall tracepoint). */
static __always_inline __u64 go_current_g(void)
{
#if defined(__TARGET_ARCH_x86)
	return user_regs()->r14;
#else
	return 0; /* arm64 keeps g in x28: not wired yet */
#endif
}

static __always_inline __u64 span_word(const __u8 *span_id)
{
	__u64 x;
	__builtin_memcpy(&x, span_id, 8);
	return x;
}

/* The server exchange slot t holds, if goroutine goid serves it now: in
 * flight (published, not being sent) and registered to that goroutine. */
static __always_inline bool go_slot_serves(const struct txn_event *t, __u64 goid)
{
	return t->goid == goid && t->role == WEFT_ROLE_SERVER && t->phase != TXN_PHASE_IDLE &&
	       t->claimed == TXN_OPEN;
}

/* The context of the request goroutine goid serves now, from the slot its
 * go_serving entry ref names: 1 and *out filled, or 0 (idle between
 * requests, or the slot moved on) with *out zeroed. The slot is checked
 * again after the copy: a request that ended meanwhile is not taken. */
static __always_inline int go_serving_ctx(const struct go_serving_ref *ref, __u64 goid, struct go_ctx *out)
{
	struct txn_event *t = bpf_map_lookup_elem(&txns, &ref->conn);
	if (!t || !go_slot_serves(t, goid))
		return 0;
	__u64 start = t->start_ns;
	__builtin_memcpy(out->trace_id, t->trace_id, 16);
	__builtin_memcpy(out->span_id, t->span_id, 8);
	out->trace_flags = t->trace_flags;
	out->valid = 1;
	out->origin_goid = goid;
	asm volatile("" ::: "memory");
	if (go_slot_serves(t, goid) && t->start_ns == start)
		return 1;
	__builtin_memset(out, 0, sizeof(*out));
	return 0;
}

/* A cached inherited context, if the request it names is still served. */
static __always_inline int go_inherited_check(struct go_key *ok, __u32 tgid, const struct go_ctx *c,
					      struct go_ctx *out)
{
	if (!c->valid)
		return 0;
	ok->tgid = tgid;
	ok->pad = 0;
	ok->goid = c->origin_goid;
	struct go_serving_ref *ref = bpf_map_lookup_elem(&go_serving, ok);
	struct txn_event *t = ref ? bpf_map_lookup_elem(&txns, &ref->conn) : NULL;
	if (!t || !go_slot_serves(t, c->origin_goid) || span_word(t->span_id) != span_word(c->span_id))
		return 0;
	*out = *c;
	return 1;
}

/* One allgs slot (bpf_loop callback; its state is in go_resolve_scratch,
 * so the loop needs no stack of go_ctx_resolve's). */
static long go_find_g_cb(__u64 i, void *unused)
{
	__u32 zero = 0;
	struct go_resolve_scratch *k = bpf_map_lookup_elem(&go_resolve_scratch, &zero);
	if (!k)
		return 1;
	struct go_find_g *f = &k->find;
	__u64 g = 0, goid = 0;
	if (bpf_probe_read_user(&g, sizeof(g), (void *)(f->slots + i * 8)) || !g)
		return 0;
	if (bpf_probe_read_user(&goid, sizeof(goid), (void *)(g + f->goid_off)))
		return 0;
	if (goid != f->want)
		return 0;
	f->found = g;
	return 1;
}

/* The g struct of goroutine goid, from the runtime's list of all goroutines
 * (dead ones included: their parentGoid stays until the struct is reused). */
static __always_inline __u64 go_find_g(struct go_find_g *f, const struct go_proc_info *pi, __u64 goid)
{
	if (!pi->allgs)
		return 0;
	f->want = goid;
	f->goid_off = pi->g_goid;
	f->found = 0;
	f->slots = go_read_u64(pi->allgs);
	__u64 n = go_read_u64(pi->allgs + 8);
	if (!f->slots || !n)
		return 0;
	if (n > GO_ALLGS_SCAN)
		n = GO_ALLGS_SCAN;
	bpf_loop(n, go_find_g_cb, NULL, 0);
	return f->found;
}

/* The context goroutine g of process tgid acts for: its own request, or
 * the one an ancestor is serving. 1 and *out filled, or 0. A global
 * function: verified once, apart from its callers. Map updates take their
 * value from the per-CPU v, never from out: a global function's pointer
 * argument is plain memory, which 6.1's verifier refuses as a map value. */
__attribute__((noinline)) int go_ctx_resolve(__u32 tgid, __u64 g, struct go_ctx *out)
{
	__u32 zero = 0;
	if (!out || !g)
		return 0;
	struct go_resolve_scratch *k = bpf_map_lookup_elem(&go_resolve_scratch, &zero);
	struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!k || !pi || pi->g_goid < 0)
		return 0;
	k->self.tgid = tgid;
	k->self.pad = 0;
	k->self.goid = go_read_u64(g + pi->g_goid);
	if (!k->self.goid)
		return 0;
	struct go_serving_ref *ref = bpf_map_lookup_elem(&go_serving, &k->self);
	if (ref && go_serving_ctx(ref, k->self.goid, out))
		return 1;
	if (!pi->serving)
		return 0; /* no goroutine serves: no ancestor can be serving */
	struct go_ctx *c = bpf_map_lookup_elem(&go_inherited, &k->self);
	if (c)
		return go_inherited_check(&k->origin, tgid, c, out);
	if (pi->g_parent_goid < 0)
		return 0; /* Go < 1.21: the newproc1 probe fills go_inherited */

	struct go_ctx *v = go_scratch(GO_SCRATCH_WORK);
	if (!v)
		return 0;
	__builtin_memset(v, 0, sizeof(*v)); /* valid = 0: known to act for no request */
	int found = 0;
	__u64 cur = g;
	k->parent.tgid = tgid;
	k->parent.pad = 0;
	for (int d = 0; d < GO_ANCESTORS; d++) {
		k->parent.goid = go_read_u64(cur + pi->g_parent_goid);
		if (!k->parent.goid)
			break;
		ref = bpf_map_lookup_elem(&go_serving, &k->parent);
		if (ref && go_serving_ctx(ref, k->parent.goid, v)) {
			found = 1;
			break;
		}
		c = bpf_map_lookup_elem(&go_inherited, &k->parent);
		if (c) {
			found = go_inherited_check(&k->origin, tgid, c, v);
			if (!found)
				__builtin_memset(v, 0, sizeof(*v));
			break;
		}
		cur = go_find_g(&k->find, pi, k->parent.goid); /* an ancestor weft never met */
		if (!cur)
			break;
	}
	/* Without a serving ancestor now, none will serve this goroutine's: the
	 * requests its ancestors serve later began after it was created. */
	bpf_map_update_elem(&go_inherited, &k->self, v, BPF_ANY);
	if (found)
		*out = *v;
	return found;
}

#endif
