/* From a file descriptor of the current task to its TCP socket, with CO-RE
 * reads, and the socket's addresses. */
#ifndef WEFT_SOCK_BPF_H
#define WEFT_SOCK_BPF_H

#include "lib/common.bpf.h"

/* Is sk a TCP socket (IPv4 or IPv6) or a Unix domain stream socket? */
static __always_inline bool stream_sock_ok(struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_UNIX)
		return BPF_CORE_READ(sk, sk_type) == SOCK_STREAM;
	if (family != AF_INET && family != AF_INET6)
		return false;
	return BPF_CORE_READ(sk, sk_type) == SOCK_STREAM && BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

/* The struct sock behind fd if it is a TCP socket (IPv4 or IPv6) or a Unix
 * domain stream socket, else NULL. */
static __always_inline struct sock *stream_sock_from_fd(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *file = NULL;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return NULL;
	struct socket *sock = BPF_CORE_READ(file, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	return sk && stream_sock_ok(sk) ? sk : NULL;
}

/* Does socket sk still have the ports recorded in a (one read of the
 * socket's port pair)? A freed socket's address may name a new one. */
static __always_inline bool sock_same_ports(__u64 sk, const struct conn_addr *a)
{
	__u32 pp = BPF_CORE_READ((struct sock *)sk, __sk_common.skc_portpair);
	/* skc_dport (network order) in the low half, skc_num in the high. */
	return (pp >> 16) == a->lport && bpf_ntohs((__u16)pp) == a->rport;
}

static __always_inline void sock_read_addr(struct sock *sk, struct conn_addr *a)
{
	a->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	a->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	a->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (a->family == AF_UNIX) {
		/* The server's path: our own address on the server side (accepted
		 * sockets share the listener's), the peer's on the client side. */
		struct unix_sock *us = (struct unix_sock *)sk;
		struct unix_address *ua = BPF_CORE_READ(us, addr);
		if (!ua) {
			struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ(us, peer);
			ua = peer ? BPF_CORE_READ(peer, addr) : NULL;
		}
		if (ua)
			bpf_probe_read_kernel_str(a->unix_path, sizeof(a->unix_path), &ua->name[0].sun_path);
		a->lport = a->rport = 0;
		return;
	}
	if (a->family == AF_INET) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(a->laddr, &l, 4);
		__builtin_memcpy(a->raddr, &r, 4);
	} else {
		/* &a->laddr: the size read is that of *dst, the whole array. */
		BPF_CORE_READ_INTO(&a->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&a->raddr, sk, __sk_common.skc_v6_daddr);
	}
}

#endif
