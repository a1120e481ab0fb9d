// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Uprobes on Go programs, only where no syscall sees what is needed (a hit
 * costs ~10 us against ~0.1 us for a syscall tracepoint). Owned by
 * user/loaders/go.c, which attaches them per process.
 *
 *  - net/http.(*persistConn).roundTrip, entry: the calling goroutine hands a
 *    request to a connection whose writer goroutine will write it. Binds the
 *    caller's context to the connection's fd (go_fd_ctx), under TLS too
 *    (the tls object's crypto/tls probes write the plaintext on that fd).
 *    One hit per client request.
 *  - Go < 1.21 only (no g.parentGoid): the CALL runtime.runqput in
 *    runtime.newproc.func1 (else every RET of runtime.newproc1): a
 *    goroutine started by one that acts for a request inherits its
 *    context, before it can run anywhere. One hit per goroutine created
 *    (net/http's server starts one per request).
 *  - google.golang.org/grpc/internal/transport.(*http2Client).NewStream, at
 *    its RETs, in the calling goroutine: the new stream's id is assigned;
 *    its HEADERS frame is written by grpc-go's writer goroutine. Records
 *    the caller's request as the stream's parent (h2_client_parents, and an
 *    h2_parent_event for the agent). One hit per gRPC call. */
#include "lib/common.bpf.h"
#include "lib/sock.bpf.h"
#include "capture/tables.bpf.h"
#include "context/goroutine.bpf.h"
#include "context/h2_parent.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline __u64 off_ptr(__u64 base, __s16 off)
{
	return off < 0 || !base ? 0 : go_read_u64(base + off);
}

/* AX = the *persistConn (Go's register ABI), r14 = the calling goroutine. */
SEC("uprobe")
int probe_go_persistconn_roundtrip(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!pi || pi->pc_conn < 0 || pi->tcpconn_conn < 0 || pi->conn_fd < 0 || pi->netfd_pfd < 0 ||
	    pi->pfd_sysfd < 0)
		return 0;
	__u64 pc = PT_REGS_RC(ctx); /* rax */
	if (!pc)
		return 0;
	/* persistConn.conn is a net.Conn: (itab, data); data is the *net.TCPConn
	 * (or *net.UnixConn: same layout) whose conn.fd is the *netFD. */
	__u64 tcpconn = go_read_u64(pc + pi->pc_conn + 8);
	if (pi->pc_tls_state >= 0 && go_read_u64(pc + pi->pc_tls_state)) {
		/* HTTPS: data is the *tls.Conn, whose plaintext the TLS probes
		 * hand to the capture front with the socket's fd; its own conn
		 * is the TCP connection. */
		if (pi->tlsconn_conn < 0)
			return 0;
		tcpconn = off_ptr(tcpconn, pi->tlsconn_conn + 8);
	}
	__u64 netfd = off_ptr(tcpconn, pi->tcpconn_conn + pi->conn_fd);
	if (!netfd)
		return 0;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + pi->netfd_pfd + pi->pfd_sysfd)) ||
	    sysfd < 0 || sysfd > 0x7fffffff)
		return 0;
	struct conn_key k = { .tgid = tgid, .fd = (__u32)sysfd };
	struct go_ctx c;
	if (go_ctx_resolve(tgid, ctx->r14, &c))
		bpf_map_update_elem(&go_fd_ctx, &k, &c, BPF_ANY);
	else
		bpf_map_delete_elem(&go_fd_ctx, &k); /* never a previous request's */
	return 0;
}

/* newg, just made by the creating goroutine (g0.m.curg: this runs on the
 * system stack, r14 is g0), inherits its creator's context before it is
 * queued, so before it can run anywhere. */
static __always_inline int go_inherit(struct pt_regs *ctx, __u64 newg)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!pi || !pi->serving || pi->g_goid < 0)
		return 0;
	__u64 m = off_ptr(ctx->r14, pi->g_m);
	__u64 creator = off_ptr(m, pi->m_curg);
	if (!newg || !creator)
		return 0;
	struct go_ctx c;
	if (!go_ctx_resolve(tgid, creator, &c))
		return 0;
	struct go_key k = { .tgid = tgid, .goid = go_read_u64(newg + pi->g_goid) };
	if (!k.goid)
		return 0;
	c.valid = 1;
	bpf_map_update_elem(&go_inherited, &k, &c, BPF_ANY);
	return 0;
}

/* At runtime.newproc.func1's CALL runtime.runqput(pp, newg, next): BX is
 * the new g. A CALL is emulated by the kernel: one trap, no single-step. */
SEC("uprobe")
int probe_go_newproc_runqput(struct pt_regs *ctx)
{
	return go_inherit(ctx, ctx->bx);
}

/* Fallback, at a RET of runtime.newproc1: AX is the new g. A RET is
 * single-stepped after the trap (a second, costlier trap). */
SEC("uprobe")
int probe_go_newproc1_ret(struct pt_regs *ctx)
{
	return go_inherit(ctx, PT_REGS_RC(ctx));
}

/* The fd behind a net.Conn interface value at addr holding a *net.TCPConn
 * (or *net.UnixConn: same layout), or -1. */
static __always_inline __s64 go_conn_sysfd(const struct go_proc_info *pi, __u64 addr)
{
	__u64 tcpconn = go_read_u64(addr + 8);
	__u64 netfd = off_ptr(tcpconn, pi->tcpconn_conn + pi->conn_fd);
	if (!netfd)
		return -1;
	__s64 sysfd = -1;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd), (void *)(netfd + pi->netfd_pfd + pi->pfd_sysfd)) ||
	    sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	return sysfd;
}

/* At a RET of grpc-go's (*http2Client).NewStream(ctx, callHdr) (*Stream,
 * error): AX = the stream (nil on error), r14 = the calling goroutine. Its
 * id was assigned under the transport's controlBuf lock, just before its
 * HEADERS were queued for the writer goroutine, so this may come after
 * they went out: such an entry is never used (ids are not reused on a
 * connection). The connection is checked to be an HTTP/2 one weft follows
 * on this very socket (a TLS or wrapped net.Conn is not a *net.TCPConn:
 * its fd, if any, has no plaintext HTTP/2 state). */
SEC("uprobe")
int probe_go_grpc_newstream(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!pi || !pi->serving || pi->grpc_stream_id < 0 || pi->grpc_stream_ct < 0 || pi->grpc_client_conn < 0 ||
	    pi->tcpconn_conn < 0 || pi->conn_fd < 0 || pi->netfd_pfd < 0 || pi->pfd_sysfd < 0)
		return 0; /* nothing served: no call can have a parent */
	__u64 s = PT_REGS_RC(ctx); /* rax */
	if (!s)
		return 0;
	__u32 id = 0;
	if (bpf_probe_read_user(&id, sizeof(id), (void *)(s + pi->grpc_stream_id)) || !(id & 1))
		return 0;
	__u64 t = off_ptr(s, pi->grpc_stream_ct);
	if (!t)
		return 0;
	__s64 fd = go_conn_sysfd(pi, t + pi->grpc_client_conn);
	if (fd < 0)
		return 0;
	struct conn_key k = { .tgid = tgid, .fd = (__u32)fd };
	struct sock *sk = stream_sock_from_fd(k.fd);
	struct stream_state *st = bpf_map_lookup_elem(&stream_states, &k);
	if (!sk || !st || st->sk != (__u64)sk || st->midway)
		return 0;
	struct h2_parent_key pk = { .sk = (__u64)sk, .stream_id = id };
	struct go_ctx c;
	if (!go_ctx_resolve(tgid, ctx->r14, &c))
		return 0;
	struct h2_parent_event ev = { .type = WEFT_EV_H2_PARENT, .pid = tgid, .fd = k.fd, .stream_id = id,
				      .sk = pk.sk };
	__builtin_memcpy(ev.parent.trace_id, c.trace_id, 16);
	__builtin_memcpy(ev.parent.span_id, c.span_id, 8);
	ev.parent.trace_flags = c.trace_flags;
	ev.parent.at_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&h2_client_parents, &pk, &ev.parent, BPF_ANY);
	if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0))
		count(WEFT_CNT_RINGBUF_FULL);
	return 0;
}
