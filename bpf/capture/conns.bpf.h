/* The connection table: a connection is recorded when weft sees it open
 * (accept, connect) or, for one that predates weft, on its first bytes. */
#ifndef WEFT_CAPTURE_CONNS_BPF_H
#define WEFT_CAPTURE_CONNS_BPF_H

#include "lib/common.bpf.h"
#include "lib/sock.bpf.h"
#include "capture/tables.bpf.h"

/* Records a connection of the current process: fd, its socket sk (a
 * kernel address) and role. A global function: the 104-byte conn_info is
 * built in its own stack frame, off the chain of the exchange logic.
 * 0, or -1 when the table is full (counted). */
__attribute__((noinline)) int conn_new(__u32 fd, __u64 sk, __u32 role)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	struct conn_info c = { .role = role };
	sock_read_addr((struct sock *)sk, &c.addr);
	if (bpf_map_update_elem(&conns, &key, &c, BPF_ANY)) {
		count(WEFT_CNT_CONN_MAP_FULL);
		return -1;
	}
	if (trace_all) {
		/* Remember the process so its state is cleaned when it exits. */
		__u8 seen = TRACED_SEEN;
		bpf_map_update_elem(&traced_pids, &key.tgid, &seen, BPF_NOEXIST);
	}
	return 0;
}

/* Known connection, or a TCP socket that predates weft (role inferred). */
static __always_inline struct conn_info *conn_get(struct conn_key *key)
{
	struct conn_info *c = bpf_map_lookup_elem(&conns, key);
	if (c)
		return c;
	struct sock *sk = stream_sock_from_fd(key->fd);
	if (!sk || conn_new(key->fd, (__u64)sk, WEFT_ROLE_UNKNOWN))
		return NULL;
	return bpf_map_lookup_elem(&conns, key);
}

/* May the first bytes weft sees on this connection rule it out? Yes when
 * weft saw it open (they are its first bytes), and for Unix sockets always:
 * processes hold many (logging, D-Bus, X11) and a pre-existing one that is
 * HTTP or a database is rare; looking at each of their writes is not free. */
static __always_inline bool judge_first_bytes(struct conn_info *c)
{
	return c->role != WEFT_ROLE_UNKNOWN || c->addr.family == AF_UNIX;
}

#endif
