/* What the syscall capture front notes about a read-like or write-like
 * call, and the per-CPU notes of entries it leaves for the programs that
 * run inside those calls (sk_msg, sockops). */
#ifndef WEFT_CAPTURE_IO_BPF_H
#define WEFT_CAPTURE_IO_BPF_H

#include "lib/common.bpf.h"

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
	__u64 sk; /* the socket, when the front knows it (socket front); else 0 */
	__u64 ret; /* bytes moved: for the programs a front tail-calls (stream protocols) */
	__u32 fd;
	__u8 kind;
	__u8 dir;
	__u8 tls; /* plaintext from the TLS probes (capture/tls.bpf.h), not the socket's bytes */
	__u8 pad;
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

/* Where the syscall's data is and how much of it is contiguous there. */
static __always_inline int io_source(struct io_args *io, long ret, const __u8 **src, __u32 *avail)
{
	if (io->kind == IO_NONE)
		return -1;
	if (io->kind == IO_PLAIN) {
		*src = (const __u8 *)io->buf;
		*avail = ret;
		return 0;
	}
	struct iovec iov;
	if (bpf_probe_read_user(&iov, sizeof(iov), (void *)io->buf))
		return -1;
	*src = iov.iov_base;
	*avail = iov.iov_len < (__u64)ret ? iov.iov_len : ret;
	return 0;
}

/* The last (up to) 6 bytes of this syscall's data, right-aligned in tail
 * (a shorter read leaves zeros in front). */
static __always_inline bool io_tail6(struct io_args *io, long ret, __u8 tail[6])
{
	__u64 end;
	if (ret < 1)
		return false;
	if (io->kind == IO_PLAIN) {
		end = io->buf + ret;
	} else if (io->kind == IO_IOV) {
		/* The last iovec that holds data. */
		__u64 left = ret;
		end = 0;
		for (int i = 0; i < 8; i++) {
			struct iovec iov;
			if (bpf_probe_read_user(&iov, sizeof(iov), (void *)(io->buf + i * sizeof(iov))))
				return false;
			if (iov.iov_len >= left) {
				if (left < 6 && left < (__u64)ret)
					return false; /* the tail spans two iovecs */
				end = (__u64)iov.iov_base + left;
				break;
			}
			left -= iov.iov_len;
		}
		if (!end)
			return false;
	} else {
		return false;
	}
	if (ret >= 6)
		return bpf_probe_read_user(tail, 6, (void *)(end - 6)) == 0;
	/* A short read: take 8 bytes ending... not before the buffer: read the
	 * ret bytes at its start and shift them to the right. */
	__u64 v = 0;
	__u32 n = ret;
	clamp_for_verifier(n, 5);
	if (bpf_probe_read_user(&v, n, (void *)(end - ret)))
		return false;
	v <<= 8 * (6 - n); /* little-endian: the last byte moves to index 5 */
	__builtin_memcpy(tail, &v, 6);
	return true;
}

#endif
