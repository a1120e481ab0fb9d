// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* The syscall capture front: connection and exchange capture from the
 * syscall tracepoints, and the process lifecycle.
 *
 * Every read-like and write-like syscall of a traced process on a TCP or
 * Unix stream socket passes through here (capture/data.bpf.h). Per
 * connection (tgid, fd) at most one exchange is in flight
 * (capture/exchange.bpf.h); what its bytes are is the protocols' call
 * (protocols/, in the order of abi/protocols.def). Owned by
 * user/loaders/capture.c. */
#include "lib/common.bpf.h"
#include "capture/data.bpf.h"
#include "context/h2_parent.bpf.h" /* created here, shared with the Go uprobes and sk_msg */
#include "capture/tls.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

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
	io->tls = 0;
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
	/* The socket front times its writes itself (send_time). */
	io->enter_ns = socket_front ? 0 : write_enter_time(id, io->fd);
	return true;
}

static __always_inline struct io_args *io_scratch(void)
{
	__u32 zero = 0;
	struct io_args *io = bpf_map_lookup_elem(&io_scratch_map, &zero);
	if (io)
		io->sk = 0;
	return io;
}

/* Both fronts, once a socket call's arguments are in io (ret: its
 * result): TLS ciphertext inside an SSL call gives way to the call's
 * plaintext (an SSL_write's: io now describes it) or is only looked at for
 * a ServerHello; other bytes go to on_data; a read that moved nothing may
 * end a server response (read_nothing). dir: io->dir, which the socket
 * front knows as a constant. A stream protocol's program takes over by tail
 * call from the front's ctx. */
static __always_inline void io_deliver(void *ctx, struct io_args *io, long ret, __u8 dir)
{
	long plain = tls_io(io, ret);
	PROF_AT(PROF_TLS);
	if (plain >= 0) {
		if (plain > 0)
			stream_forward(ctx, on_data(io, plain));
		else
			tls_hello_cipher(io, ret);
		return;
	}
	if (ret > 0)
		stream_forward(ctx, on_data(io, ret));
	else if (dir == DIR_READ)
		read_nothing(io->fd);
}

/* One program for the entry of every write-like syscall (user/loaders/capture.c
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
 * once, and user/loaders/capture.c attaches it to each exit tracepoint. */
SEC("tracepoint")
int sys_exit_io(struct trace_event_raw_sys_exit *ctx)
{
	/* The syscalls:sys_exit_* record holds an int __syscall_nr where the
	 * raw_syscalls struct has a long: only its low 32 bits are the number. */
	long nr = (int)ctx->id, ret = ctx->ret;
	struct io_args *io = io_scratch();
	if (!io || !io_args_at_exit(nr, io))
		return 0;
	PROF_MARK();
	io_deliver(ctx, io, ret, io->dir);
	return 0;
}

/* --- connection lifecycle --- */
static __always_inline void conn_opened(__u32 fd, __u8 role)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	struct sock *sk = stream_sock_from_fd(fd);
	if (!sk)
		return;
	/* fd numbers are reused: what an earlier socket left (its close not
	 * seen: dup2, close_range) ends as at its close. */
	struct txn_event *stale = bpf_map_lookup_elem(&txns, &key);
	if (stale && txn_active(stale))
		txn_end_at_close(&key, stale);
	conn_new(fd, (__u64)sk, role, 1);
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

/* The connection key is closed: an exchange with its response, or an
 * HTTP/1 request left unanswered, is sent; the agent is told when it keeps
 * state for the connection. sk: the socket that closed (socket front), or 0
 * (a close in the process's own thread). A socket's close comes from the
 * network stack, at any time on any CPU: its process may have reused the fd
 * for a newer socket meanwhile, whose exchange and entry are left alone
 * (the maps have no compare-and-delete: checked just before each delete;
 * conn_get makes up for an entry lost in what is left of that window). */
static __always_inline void conn_closed(struct conn_key *key, __u64 sk)
{
	/* The slot stays for the next socket on the fd (fds are reused lowest
	 * first: a process has about as many slots as it has connections at
	 * once) and goes with the process. Deleting an idle slot here raced
	 * with the accept that reused its fd on another CPU: 8 nginx exchanges
	 * in 10,000 went with it (tests/e2e/test_churn.py). */
	struct txn_event *t = bpf_map_lookup_elem(&txns, key);
	if (t && (!sk || t->sk == sk)) {
		/* The socket goes: its address may name the fd's next one. */
		t->conn_snap = 0;
		if (txn_active(t))
			txn_end_at_close(key, t);
		/* And the goroutine that served it, if it serves nothing else;
		 * the fd's next socket is another connection, served by another
		 * goroutine even if it gets this one's g (Go reuses them). */
		if (t->goid)
			go_serving_forget(key->tgid, t->goid, key->fd);
		t->g = 0;
	}
	struct conn_info *c = bpf_map_lookup_elem(&conns, key);
	if (c && sk && c->sk != sk)
		return;
	if (c && (weft_proto_flags(c->proto) & WEFT_PROTO_F_CONN_STATE)) {
		/* The agent keeps per-connection protocol state (prepared statements). */
		struct conn_close_event e = { .type = WEFT_EV_CONN_CLOSE, .pid = key->tgid, .fd = key->fd };
		if (bpf_ringbuf_output(&events, &e, sizeof(e), rb_flags(sizeof(e))))
			count(WEFT_CNT_RINGBUF_FULL);
	}
	if (c && (weft_proto_flags(c->proto) & WEFT_PROTO_F_STREAM))
		bpf_map_delete_elem(&stream_states, key);
	bpf_map_delete_elem(&conns, key);
}

SEC("tracepoint/syscalls/sys_enter_close")
int sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = ctx->args[0] };
	if (tgid_traced(key.tgid))
		conn_closed(&key, 0);
	return 0;
}

/* --- the socket front: socket-layer tracepoints, no syscall tracepoint ---
 *
 * sock_sendmsg and sock_recvmsg (every read-like and write-like call on a
 * socket: read, write, readv, writev, send*, recv*) report what they moved
 * on sock:sock_{send,recv}_length, in the calling task: the call's fd and
 * buffer are in the user registers saved at syscall entry, as at a syscall
 * exit. Enabling them taxes nothing else, unlike any syscall tracepoint
 * (which sends every syscall of every thread on the host down the slow
 * path). Connections are known by their socket: a TCP socket's opening and
 * close come from sock:inet_sock_set_state. */

#define MSG_PEEK 2
#define PF_IO_WORKER 0x00000010
#define PF_KTHREAD 0x00200000
#define TCP_SYN_SENT 2
#define TCP_LISTEN 10
#define TCP_SYN_RECV 3
#define TCP_CLOSE 7

/* When the data of a send on socket sk left: for TCP, the socket's last
 * transmit (tcp_wstamp_ns, the time the kernel stamps each segment it sends
 * with) when the send left nothing queued: this send's last bytes went out
 * during it, so that stamp is this send's. Else (queued behind the window,
 * Nagle or a qdisc; not TCP) now. A server's response is out once it is
 * transmitted: the peer may read it before sock_sendmsg returns, and a
 * response must not end after the request that reads it. No program of
 * weft runs inside tcp_sendmsg (one fewer per send of every process on the
 * host than a tracepoint at the send's start). */
static __always_inline __u64 send_time(__u64 skp)
{
	__u64 now = bpf_ktime_get_ns();
	struct tcp_sock *tp = (struct tcp_sock *)skp;
	if (BPF_CORE_READ((struct sock *)skp, sk_protocol) != IPPROTO_TCP ||
	    !bpf_core_field_exists(tp->tcp_wstamp_ns))
		return now;
	if (BPF_CORE_READ(tp, write_seq) != BPF_CORE_READ(tp, snd_nxt))
		return now;
	__u64 sent = BPF_CORE_READ(tp, tcp_wstamp_ns);
	/* Pacing (BBR, fq) stamps a departure time that may lie ahead. */
	return sent && sent <= now ? sent : now;
}

/* ret bytes moved on socket sk by the current task: its syscall's
 * arguments, as at the syscall's exit. The socket front's programs are raw
 * tracepoints (args: sk, ret, flags): no trace record is built for them,
 * which a classic tracepoint program pays on every socket call of the host. */
static __always_inline int sock_io(struct bpf_raw_tracepoint_args *ctx, __u8 dir)
{
	__u64 sk = ctx->args[0];
	long ret = (int)ctx->args[1];
	if ((int)ctx->args[2] & MSG_PEEK)
		return 0;
	/* Untraced processes leave first: most socket calls of a host. */
	if (!tgid_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	/* Kernel threads and io_uring workers have no syscall registers of
	 * their own to read the call's fd and buffer from. */
	if (bpf_get_current_task_btf()->flags & (PF_KTHREAD | PF_IO_WORKER)) {
		if (ret > 0)
			count(WEFT_CNT_IO_UNREACHABLE);
		return 0;
	}
	/* A call that moved nothing (EAGAIN, EOF: Go and nginx make a read per
	 * request that does) matters only inside an SSL call (the call learns
	 * its socket from it) or, a read, while a server response waits for
	 * its end (read_nothing): else no argument is read. */
	if (ret <= 0 && (dir == DIR_WRITE || !txn_count(TXN_COUNT_OPEN)) && !tls_in_call())
		return 0;
	PROF_MARK();
	long nr = user_regs()->orig_ax;
	struct io_args *io = io_scratch();
	if (!io)
		return 0;
	if (!io_args_at_exit(nr, io) || io->dir != dir) {
		if (ret > 0)
			count(WEFT_CNT_IO_UNREACHABLE); /* io_uring, sendmmsg, splice: no buffer at hand */
		return 0;
	}
	io->sk = sk;
	if (dir == DIR_WRITE && ret > 0)
		io->enter_ns = send_time(sk);
	PROF_AT(PROF_IO_ARGS);
	io_deliver(ctx, io, ret, dir);
	return 0;
}

SEC("raw_tracepoint/sock_recv_length")
int sock_recv(struct bpf_raw_tracepoint_args *ctx)
{
	return sock_io(ctx, DIR_READ);
}

SEC("raw_tracepoint/sock_send_length")
int sock_send(struct bpf_raw_tracepoint_args *ctx)
{
	return sock_io(ctx, DIR_WRITE);
}

/* inet_sock_set_state's raw arguments: sk, oldstate, newstate. */
static __always_inline bool tcp_sock_arg(struct bpf_raw_tracepoint_args *ctx)
{
	struct sock *sk = (struct sock *)ctx->args[0];
	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

SEC("raw_tracepoint/inet_sock_set_state")
int sock_state(struct bpf_raw_tracepoint_args *ctx)
{
	int newstate = (int)ctx->args[2];
	if (newstate != TCP_SYN_SENT && newstate != TCP_SYN_RECV && newstate != TCP_CLOSE)
		return 0;
	if (!tcp_sock_arg(ctx))
		return 0;
	__u64 sk = ctx->args[0];
	__u8 role;
	switch (newstate) {
	case TCP_SYN_SENT: /* connect(), in the connecting task */
		if (!tgid_traced(bpf_get_current_pid_tgid() >> 32))
			return 0;
		role = WEFT_ROLE_CLIENT;
		bpf_map_update_elem(&sock_roles, &sk, &role, BPF_ANY);
		return 0;
	case TCP_SYN_RECV: /* a connection to a listener: no task of its own */
		role = WEFT_ROLE_SERVER;
		bpf_map_update_elem(&sock_roles, &sk, &role, BPF_ANY);
		return 0;
	case TCP_CLOSE: {
		bpf_map_delete_elem(&sock_roles, &sk);
		struct conn_key *k = bpf_map_lookup_elem(&sock_conns, &sk);
		if (!k)
			return 0;
		struct conn_key key = *k;
		bpf_map_delete_elem(&sock_conns, &sk);
		conn_closed(&key, sk);
		return 0;
	}
	}
	return 0;
}

/* --- process lifecycle ---
 *
 * Raw tracepoints, as the socket front's: no trace record is built for them
 * (they run for every process of the host), and closing a raw tracepoint's
 * link does not wait for a grace period as a classic one's does (~45 ms
 * each on a VM here, at every exit of weft). */

/* task_newtask's raw arguments: the new task, clone_flags. */
SEC("raw_tracepoint/task_newtask")
int task_newtask(struct bpf_raw_tracepoint_args *ctx)
{
	/* Processes forked by a selected process are selected too (pre-fork
	 * servers, workers); threads share the tgid and need nothing. */
	__u64 id = bpf_get_current_pid_tgid();
	__u32 parent = id >> 32;
	if (!tgid_traced(parent))
		return 0;
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u64 clone_flags = ctx->args[1];
	__u32 child = BPF_CORE_READ(task, pid);
	/* Threads and processes started while a request is served act for it. */
	struct thread_ctx *pc = thread_ctx_usable(parent, (__u32)id);
	if (pc) {
		struct thread_ctx inherited = *pc;
		inherited.inflight = 0;
		if (!(clone_flags & 0x00010000 /* CLONE_THREAD */))
			inherited.from_parent = 1;
		bpf_map_update_elem(&thread_ctxs, &child, &inherited, BPF_ANY);
	} else {
		bpf_map_delete_elem(&thread_ctxs, &child); /* a recycled tid */
	}
	if (clone_flags & 0x00010000 /* CLONE_THREAD */)
		return 0;
	__u32 *pf = bpf_map_lookup_elem(&proc_flags, &parent);
	if (pf) {
		/* A provisional parent's child is not traced: not provisional either. */
		__u32 f = *pf & ~(PROC_PROVISIONAL | PROC_TOUCHED);
		bpf_map_update_elem(&proc_flags, &child, &f, BPF_ANY);
	}
	__u8 *v = bpf_map_lookup_elem(&traced_pids, &parent);
	if (!v || *v != TRACED_EXPLICIT)
		return 0;
	__u8 flag = TRACED_EXPLICIT;
	bpf_map_update_elem(&traced_pids, &child, &flag, BPF_ANY);
	traced_bit_set(child, true);
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int sched_process_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	__u32 tid = id;
	bpf_map_delete_elem(&thread_ctxs, &tid);
	bpf_map_delete_elem(&injected, &id);
	tls_call_end(id);
	if (tid != tgid)
		return 0;
	__u32 *pf = bpf_map_lookup_elem(&proc_flags, &tgid);
	__u32 flags = pf ? *pf : 0;
	bpf_map_delete_elem(&proc_flags, &tgid);
	go_proc_forget(tgid);
	if (!bpf_map_lookup_elem(&traced_pids, &tgid)) {
		if (!(flags & PROC_PROVISIONAL))
			return 0;
		/* Gone before the agent decided about it (discovery). */
		traced_bit_set(tgid, false);
		if (!(flags & PROC_TOUCHED))
			return 0; /* no state to clean: the agent need not hear of it */
	} else {
		bpf_map_delete_elem(&traced_pids, &tgid);
		traced_bit_set(tgid, false);
	}
	/* Userspace drops the process's connections and cached resource. */
	struct proc_exit_event e = { .type = WEFT_EV_PROC_EXIT, .pid = tgid };
	if (bpf_ringbuf_output(&events, &e, sizeof(e), 0))
		count(WEFT_CNT_RINGBUF_FULL);
	return 0;
}

/* Discovery selects by listening port: a socket starts listening (in the
 * listening task; rare). Loaded only then, on either front. */
SEC("raw_tracepoint/inet_sock_set_state")
int sock_listen(struct bpf_raw_tracepoint_args *ctx)
{
	if ((int)ctx->args[2] != TCP_LISTEN || !tcp_sock_arg(ctx))
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == self_tgid)
		return 0;
	struct inet_sock *inet = (struct inet_sock *)ctx->args[0];
	__u16 sport = bpf_ntohs(BPF_CORE_READ(inet, inet_sport));
	struct proc_listen_event e = { .type = WEFT_EV_PROC_LISTEN, .pid = tgid, .port = sport };
	if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_FORCE_WAKEUP))
		count(WEFT_CNT_RINGBUF_FULL);
	return 0;
}

/* sched_process_exec's raw arguments: the task, its old pid, its binprm. */
SEC("raw_tracepoint/sched_process_exec")
int sched_process_exec(struct bpf_raw_tracepoint_args *ctx)
{
	/* A new program: what the agent knew of the old one (Go or not) is void. */
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	/* Discovery: the agent decides about every new program. */
	bool traced = tgid_traced(tgid);
	if (!traced && !discovery)
		return 0;
	/* Discovery: traced until the agent decides (PROC_PROVISIONAL). */
	__u32 flags = traced ? PROC_UNVETTED : PROC_UNVETTED | PROC_PROVISIONAL;
	if (bpf_map_update_elem(&proc_flags, &tgid, &flags, BPF_ANY) == 0 && !traced && tgid != self_tgid)
		traced_bit_set(tgid, true);
	go_proc_forget(tgid);
	struct proc_exec_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(WEFT_CNT_RINGBUF_FULL);
		return 0;
	}
	e->type = WEFT_EV_PROC_EXEC;
	e->pid = tgid;
	/* The path the program was exec'd by (what the classic tracepoint's
	 * record holds). */
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	const char *filename = BPF_CORE_READ(bprm, filename);
	if (!filename || bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), filename) < 0)
		e->filename[0] = '\0';
	/* Wake the agent now: it reads the new program's /proc entries while the
	 * process lives (a short-lived client may be gone 100 ms later). */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}
