/* Go's crypto/tls as a byte source (docs/TLS.md): the plaintext of
 * crypto/tls.(*Conn).Write at its entry and of (*Conn).Read at its RETs
 * (found by disassembly: no uretprobes on Go code, Go moves stacks) goes to
 * the capture front's on_data, as OpenSSL's does. Part of the tls object.
 *
 * Go's register ABI (amd64): the *Conn in RAX, the slice's pointer and
 * length in RBX and RCX; Read returns n in RAX; R14 is the goroutine. The
 * socket comes from the Conn itself (tls.Conn.conn, a net.Conn whose data
 * is the *net.TCPConn -> netFD -> poll.FD.Sysfd, offsets in go_procs), so
 * no socket event has to name it, and it is checked against the fd table
 * (a socket, or nothing is sent). */
#ifndef WEFT_UPROBES_GO_TLS_BPF_H
#define WEFT_UPROBES_GO_TLS_BPF_H

#include "capture/tls.bpf.h"
#include "context/goroutine.bpf.h"

/* A Read in progress, per goroutine (its g: the same from entry to RET). */
struct go_tls_key {
	__u32 tgid;
	__u32 pad;
	__u64 g;
};

struct go_tls_read {
	__u64 buf;
	__u64 sk;
	__u32 len;
	__u32 fd;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct go_tls_key);
	__type(value, struct go_tls_read);
} go_tls_reads SEC(".maps");

/* The fd and socket under a *tls.Conn, into io (fd, sk); 0 on success.
 * Everything goes through io (per-CPU), not the stack: these run at the
 * top of the chain down to on_data, whose depth is what the verifier
 * limits. */
static __always_inline int go_tls_sock(__u32 tgid, __u64 tc, struct io_args *io)
{
	struct go_proc_info *pi = bpf_map_lookup_elem(&go_procs, &tgid);
	if (!pi || !tc || pi->tlsconn_conn < 0 || pi->tcpconn_conn < 0 || pi->conn_fd < 0 || pi->netfd_pfd < 0 ||
	    pi->pfd_sysfd < 0)
		return -1;
	/* tls.Conn.conn is a net.Conn: (itab, data); data is the *net.TCPConn
	 * (or another conn of net's: same embedded conn first). */
	__u64 inner = go_read_u64(tc + pi->tlsconn_conn + 8);
	if (!inner)
		return -1;
	__u64 netfd = go_read_u64(inner + pi->tcpconn_conn + pi->conn_fd);
	if (!netfd)
		return -1;
	__s64 sysfd = (__s64)go_read_u64(netfd + pi->netfd_pfd + pi->pfd_sysfd);
	if (sysfd < 0 || sysfd > 0x7fffffff)
		return -1;
	io->sk = (__u64)stream_sock_from_fd((__u32)sysfd);
	if (!io->sk)
		return -1; /* not a TCP socket (a wrapped or unix conn): nothing */
	io->fd = (__u32)sysfd;
	return 0;
}

/* Fills the per-CPU io_args for a Go TLS call on *tls.Conn tc: 0, or -1
 * (no socket). A global function: its frame (the pointer chase) is not
 * stacked on on_data's. */
__attribute__((noinline)) int go_tls_io(__u64 tc, __u8 dir)
{
	__u32 zero = 0;
	struct io_args *io = bpf_map_lookup_elem(&io_scratch_map, &zero);
	if (!io || go_tls_sock(bpf_get_current_pid_tgid() >> 32, tc, io))
		return -1;
	io->kind = IO_PLAIN;
	io->dir = dir;
	io->tls = 1;
	io->pad = 0;
	return 0;
}

static __always_inline struct io_args *io_scratch_get(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&io_scratch_map, &zero);
}

/* (*Conn).Write(b) entered: its plaintext goes now: the io_args are
 * prepared in io_scratch_map and the length returned (0: nothing), for the
 * probe to call on_data (tls_deliver). A global function: verified once. */
__attribute__((noinline)) long go_tls_write(__u64 tc, __u64 buf, __u64 len)
{
	if ((__s64)len <= 0 || !buf || go_tls_io(tc, DIR_WRITE))
		return 0;
	struct io_args *io = io_scratch_get();
	if (!io)
		return 0;
	io->buf = buf;
	io->enter_ns = bpf_ktime_get_ns();
	return len > TLS_NUM_MAX ? TLS_NUM_MAX : len;
}

/* (*Conn).Read(b) entered by goroutine g: note the buffer and the socket. */
__attribute__((noinline)) int go_tls_read_enter(__u64 g, __u64 tc, __u64 buf, __u64 len)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct go_tls_key k = { .tgid = tgid, .g = g };
	struct io_args *io = g && buf && (__s64)len > 0 && !go_tls_io(tc, DIR_READ) ? io_scratch_get() : NULL;
	if (!io) {
		bpf_map_delete_elem(&go_tls_reads, &k);
		return 0;
	}
	struct go_tls_read r = { .buf = buf, .sk = io->sk, .fd = io->fd,
				 .len = len > TLS_NUM_MAX ? TLS_NUM_MAX : (__u32)len };
	bpf_map_update_elem(&go_tls_reads, &k, &r, BPF_ANY);
	return 0;
}

/* A RET of (*Conn).Read in goroutine g, n bytes read: returns as
 * go_tls_write. */
__attribute__((noinline)) long go_tls_read_ret(__u64 g, long n)
{
	struct go_tls_key k = { .tgid = bpf_get_current_pid_tgid() >> 32, .g = g };
	struct go_tls_read *r = bpf_map_lookup_elem(&go_tls_reads, &k);
	struct io_args *io = io_scratch_get();
	if (!r || !io)
		return 0;
	io->buf = r->buf;
	io->sk = r->sk;
	io->fd = r->fd;
	if (n > r->len)
		n = r->len;
	bpf_map_delete_elem(&go_tls_reads, &k);
	if (n <= 0)
		return 0;
	io->enter_ns = bpf_ktime_get_ns();
	io->kind = IO_PLAIN;
	io->dir = DIR_READ;
	io->tls = 1;
	io->pad = 0;
	return n;
}

#endif
