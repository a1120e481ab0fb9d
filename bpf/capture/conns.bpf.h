/* The connection table: a connection is recorded when weft sees it open
 * (accept, connect) or, for one that predates weft, on its first bytes. */
#ifndef WEFT_CAPTURE_CONNS_BPF_H
#define WEFT_CAPTURE_CONNS_BPF_H

#include "lib/common.bpf.h"
#include "lib/sock.bpf.h"
#include "capture/tables.bpf.h"
#include "context/thread.bpf.h" /* proc_flags */

/* The role of a socket no accept or connect was seen for: a TCP socket
 * whose opening the socket front saw, or a Unix stream socket (the server
 * side shares the listener's address; weft cannot tell when it opened and
 * takes it for new: see docs/ARCHITECTURE.md). Else WEFT_ROLE_UNKNOWN. */
static __always_inline __u8 sock_role(__u64 sk, __u16 family)
{
	__u8 *r = bpf_map_lookup_elem(&sock_roles, &sk);
	if (r)
		return *r;
	if (family == AF_UNIX && socket_front)
		return BPF_CORE_READ((struct unix_sock *)sk, addr) ? WEFT_ROLE_SERVER : WEFT_ROLE_CLIENT;
	return WEFT_ROLE_UNKNOWN;
}

/* Records a connection of the current process: fd, its socket sk (a
 * kernel address) and role (WEFT_ROLE_UNKNOWN: from what weft knows of the
 * socket). A global function: the conn_info is built in its own stack
 * frame, off the chain of the exchange logic. opened: the caller saw the
 * connection open (accept, connect: a new connection whatever the table
 * holds for the fd); else an entry another CPU made for the same socket a
 * moment ago stays. The role recorded (>= 0), or -1 when the table is
 * full (counted). */
__attribute__((noinline)) int conn_new(__u32 fd, __u64 sk, __u32 role, __u32 opened)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	struct conn_info c = { .role = role, .sk = sk };
	sock_read_addr((struct sock *)sk, &c.addr);
	if (c.role == WEFT_ROLE_UNKNOWN)
		c.role = sock_role(sk, c.addr.family);
	long err = bpf_map_update_elem(&conns, &key, &c, opened ? BPF_ANY : BPF_NOEXIST);
	if (err == -EEXIST) {
		/* The same socket met a moment ago on another CPU (a server
		 * reads and writes a new connection at once from two threads):
		 * that entry stays, with what it learnt since (its protocol).
		 * Overwritten, it lost that, and its role: the other CPU had
		 * consumed the socket's sock_roles entry. An entry of an older
		 * socket (a reused fd) is replaced. */
		struct conn_info *o = bpf_map_lookup_elem(&conns, &key);
		if (o && o->sk == sk) {
			if (role != WEFT_ROLE_UNKNOWN)
				o->role = role;
			return o->role;
		}
		err = bpf_map_update_elem(&conns, &key, &c, BPF_ANY);
	}
	if (err) {
		count(WEFT_CNT_CONN_MAP_FULL);
		return -1;
	}
	if (socket_front) {
		bpf_map_delete_elem(&sock_roles, &sk);
		bpf_map_update_elem(&sock_conns, &sk, &key, BPF_ANY);
	}
	if (discovery) {
		/* A program traced until the agent decides has state to clean if
		 * it is not selected (PROC_TOUCHED). */
		__u32 *pf = bpf_map_lookup_elem(&proc_flags, &key.tgid);
		if (pf && (*pf & (PROC_PROVISIONAL | PROC_TOUCHED)) == PROC_PROVISIONAL)
			__sync_fetch_and_or(pf, PROC_TOUCHED);
	}
	if (trace_all) {
		/* Remember the process so its state is cleaned when it exits. */
		__u8 seen = TRACED_SEEN;
		bpf_map_update_elem(&traced_pids, &key.tgid, &seen, BPF_NOEXIST);
	}
	return c.role;
}

/* The connection of key: known, or a stream socket weft meets now (one
 * that predates weft, or any, for the socket front). sk: the socket the
 * data moved on, when the front knows it: a recorded connection on another
 * socket is a reused fd, recorded anew. */
static __always_inline struct conn_info *conn_get(struct conn_key *key, __u64 sk)
{
	struct conn_info *c = bpf_map_lookup_elem(&conns, key);
	if (c && (!sk || c->sk == sk))
		return c;
	if (c && (weft_proto_flags(c->proto) & WEFT_PROTO_F_CONN_STATE)) {
		/* The fd names a new socket: the old connection closed unseen (a
		 * Unix socket has no close tracepoint). Its agent-side state goes. */
		struct conn_close_event e = { .type = WEFT_EV_CONN_CLOSE, .pid = key->tgid, .fd = key->fd };
		if (bpf_ringbuf_output(&events, &e, sizeof(e), rb_flags(sizeof(e))))
			count(WEFT_CNT_RINGBUF_FULL);
	}
	if (!sk)
		sk = (__u64)stream_sock_from_fd(key->fd);
	else if (!stream_sock_ok((struct sock *)sk))
		sk = 0;
	int role = sk ? conn_new(key->fd, sk, WEFT_ROLE_UNKNOWN, 0) : -1;
	if (role < 0)
		return NULL;
	c = bpf_map_lookup_elem(&conns, key);
	if (!c && conn_new(key->fd, sk, role, 0) >= 0) {
		/* The close of the socket the fd named before, on another CPU,
		 * deleted the entry just made (capture.bpf.c: conn_closed). */
		count(WEFT_CNT_CONN_CLOSE_RACE);
		c = bpf_map_lookup_elem(&conns, key);
	}
	return c;
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
