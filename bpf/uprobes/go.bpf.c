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
 *    (net/http's server starts one per request). */
#include "lib/common.bpf.h"
#include "context/goroutine.bpf.h"

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
