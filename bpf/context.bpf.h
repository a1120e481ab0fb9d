/* In-process trace context: which request a thread is serving, so that the
 * HTTP requests it sends become children of it. Shared by sockets.bpf.c
 * (which maintains it) and propagation.bpf.c (which injects it).
 *
 * A wrong parent is worse than none: a thread's context is used only while
 * exactly one server exchange started by it is in flight and nothing
 * ambiguous happened since it went idle (event loops serving several
 * requests at once taint it), and only in processes the agent vetted
 * (PROC_THREAD_CTX: not Go, whose goroutines move between threads). */
#ifndef WEFT_CONTEXT_BPF_H
#define WEFT_CONTEXT_BPF_H

#include "common.bpf.h"

struct thread_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];   /* the server span being served */
	__u8 trace_flags;
	__u8 tainted;      /* several exchanges overlapped: unusable until idle */
	__u16 pad;
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

/* How a syscall's buffer argument is to be read. */
enum io_kind {
	IO_PLAIN = 0, /* buf is the data */
	IO_IOV = 1,   /* buf is a struct iovec array; only iov[0] is captured */
	IO_NONE = 2,  /* sendfile: bytes come from a file, nothing to capture */
};

enum io_dir { DIR_READ = 0, DIR_WRITE = 1 };

/* A read-like or write-like syscall at its exit: its arguments (from the
 * user registers saved at entry) and, for writes, when it entered. */
struct io_args {
	__u64 buf;
	__u64 enter_ns;
	__u32 fd;
	__u8 kind;
	__u8 dir;
	__u16 pad;
};

/* The write-like syscall this CPU entered last: which thread, on which fd,
 * when. Its exit takes the enter time from here (a response is out when its
 * write enters: the peer may read it before the write returns), sk_msg the
 * fd. A per-CPU slot costs no hashing and no lock, and entering needs no
 * process filter. A write that slept while another thread's write took the
 * slot, or that moved to another CPU, finds someone else's entry (thread id
 * and fd differ, or the slot was cleared) and is timed at its exit. */
struct write_enter {
	__u64 pid_tgid;
	__u64 enter_ns;
	__u32 fd;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct write_enter);
} write_enters SEC(".maps");

/* This CPU's slot if it holds the write-like syscall thread id is in. */
static __always_inline struct write_enter *write_enter_of(__u64 id)
{
	__u32 zero = 0;
	struct write_enter *w = bpf_map_lookup_elem(&write_enters, &zero);
	return w && w->pid_tgid == id ? w : NULL;
}

/* The fd of the write-like syscall thread id is in on this CPU, or -1. */
static __always_inline long write_enter_fd(__u64 id)
{
	struct write_enter *w = write_enter_of(id);
	return w ? (long)w->fd : -1;
}

/* The connect() this CPU entered last, for the sockops fallback on kernels
 * whose sockops programs cannot ask which process runs (6.1 has no
 * bpf_get_current_pid_tgid there): sys_enter_connect notes every connect
 * (tgid 0 for untraced processes), and sockops, which runs inside that
 * connect on the same CPU, takes the owner from here. A connect that moved
 * to another CPU meanwhile finds another call's entry, at worst a socket of
 * an untraced process in the sockhash, where sk_msg (which can ask) leaves
 * it untouched. */
struct connect_enter {
	__u64 pid_tgid;
	__u32 tgid_traced; /* the tgid if traced, else 0 */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct connect_enter);
} connect_enters SEC(".maps");

#define PROC_THREAD_CTX 1 /* thread-based parenting is safe in this process */

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
	__u32 *pf = bpf_map_lookup_elem(&proc_flags, &tgid);
	if (!pf || !(*pf & PROC_THREAD_CTX))
		return NULL;
	struct thread_ctx *c = bpf_map_lookup_elem(&thread_ctxs, &tid);
	if (!c)
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
