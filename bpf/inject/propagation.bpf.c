// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Outgoing context propagation without bpf_probe_write_user: a sockops
 * program puts the client sockets of traced processes into a sockhash, and
 * an sk_msg program on that sockhash inserts
 *     traceparent: 00-<trace id>-<client span id>-<flags>\r\n
 * right after the request line of each HTTP/1 request they send, and an
 * HPACK traceparent field into the HEADERS frame of each HTTP/2 request
 * (inject/http2_inject.bpf.h). Owned by user/loaders/propagation.c.
 *
 * Only sockets that a traced process connects are ever added (sockmap
 * membership changes socket behaviour); they leave the sockhash when they
 * close, and all of them when weft exits (the map is freed). A request is
 * left untouched unless its whole header is in the first write, it has no
 * traceparent of its own, and there is room: either correct injection or
 * none, never altered bytes. */
#include "lib/common.bpf.h"
#include "capture/io.bpf.h"
#include "context/thread.bpf.h"
#include "context/goroutine.bpf.h"
#include "context/assign.bpf.h" /* the sampler */
#include "context/tcpopt.bpf.h"
#include "protocols/http1.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TRACEPARENT_LINE 70 /* "traceparent: " + 55 + "\r\n" */
#define INJECT_SCAN 2048    /* header bytes examined (SCAN_BUF) */

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* socket cookie */
	__type(value, __u64);
} traced_socks SEC(".maps");

/* Sockets a traced process is connecting: the connect callback runs in the
 * process's context, the established one often does not. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* socket cookie */
	__type(value, __u32); /* tgid */
} connecting SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_buf);
} msg_scratch SEC(".maps");

/* Set by the loader (--propagation ...,tcp): trace context in TCP options
 * on TLS connections between traced processes (context/tcpopt.bpf.h). */
const volatile __u8 tcp_opt = 0;

/* Per socket cookie: hello to send on the next data segment. */
#define HELLO_CLIENT 1 /* a traced client's hello */
#define HELLO_SENT 2   /* the client's went: waiting for the answer */
#define HELLO_ANSWER 3 /* a server heard one: answered if its process is traced */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} tcpopt_hello SEC(".maps");

static __always_inline void cb_flags(struct bpf_sock_ops *ops, __u32 add, __u32 del)
{
	bpf_sock_ops_cb_flags_set(ops, (ops->bpf_sock_ops_cb_flags | add) & ~del);
}

/* An option with kind 253 and the given ExID in the segment: 0 if found
 * (len bytes of it in buf). */
static __always_inline int tcpopt_find(struct bpf_sock_ops *ops, __u8 *buf, __u32 len, __u16 exid)
{
	buf[0] = TCPOPT_WEFT_KIND;
	buf[1] = 4; /* search by 2-byte ExID */
	buf[2] = exid >> 8;
	buf[3] = exid & 0xff;
	return bpf_load_hdr_opt(ops, buf, len, 0) > 0 ? 0 : -1;
}

static __always_inline void tcpopt_parse(struct bpf_sock_ops *ops)
{
	__u64 ck = bpf_get_socket_cookie(ops);
	__u8 buf[TCPOPT_WEFT_CTX_LEN] = {};
	if (tcpopt_find(ops, buf, TCPOPT_WEFT_HELLO_LEN, TCPOPT_WEFT_HELLO) == 0) {
		__u8 *h = bpf_map_lookup_elem(&tcpopt_hello, &ck);
		if (h) {
			/* Our client's hello was answered: the peer is traced. */
			__u8 one = 1;
			bpf_map_update_elem(&tcpopt_peers, &ck, &one, BPF_ANY);
		} else {
			__u8 st = HELLO_ANSWER;
			bpf_map_update_elem(&tcpopt_hello, &ck, &st, BPF_ANY);
			cb_flags(ops, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG, 0);
		}
	}
	__u8 flags = 1;
	if (tcpopt_find(ops, buf, TCPOPT_WEFT_CTX_LEN, TCPOPT_WEFT_CTX)) {
		flags = 0;
		if (tcpopt_find(ops, buf, TCPOPT_WEFT_CTX_LEN, TCPOPT_WEFT_CTX_UNSAMPLED))
			return;
	}
	struct tcpopt_ctx in = { .flags = flags };
	__builtin_memcpy(in.trace_id, buf + 4, 16);
	__builtin_memcpy(in.span_id, buf + 20, 8);
	struct tcpopt_ctx *old = bpf_map_lookup_elem(&tcpopt_in, &ck);
	__u64 a = 0, b;
	if (old)
		__builtin_memcpy(&a, old->span_id, 8);
	__builtin_memcpy(&b, in.span_id, 8);
	if (old && a == b)
		return; /* the same request's ids again (another segment of it) */
	bpf_map_update_elem(&tcpopt_in, &ck, &in, BPF_ANY);
	count(WEFT_CNT_TCPOPT_RECEIVED);
}

/* Room for what the next data segment carries (a TLS request's ids, else
 * a hello). With BPF_WRITE_HDR_TCP_CURRENT_MSS the kernel sizes segments:
 * the same room is asked, so a full segment still fits the path MTU. */
static __always_inline void tcpopt_len(struct bpf_sock_ops *ops)
{
	bool mss = ops->args[0] == BPF_WRITE_HDR_TCP_CURRENT_MSS;
	if (!mss && (ops->skb_len == 0 || ops->skb_tcp_flags & (TCPHDR_SYN | TCPHDR_FIN | TCPHDR_RST)))
		return; /* only segments that carry data */
	__u64 ck = bpf_get_socket_cookie(ops);
	if (bpf_map_lookup_elem(&tcpopt_out, &ck)) {
		if (bpf_reserve_hdr_opt(ops, TCPOPT_WEFT_CTX_LEN, 0) == 0 || mss)
			return;
		/* SACK blocks took the room: this request goes without. */
		bpf_map_delete_elem(&tcpopt_out, &ck);
		count(WEFT_CNT_TCPOPT_NO_ROOM);
		return;
	}
	__u8 *h = bpf_map_lookup_elem(&tcpopt_hello, &ck);
	if (!h || *h == HELLO_SENT)
		return;
	if (*h == HELLO_ANSWER && !mss && !tgid_traced(bpf_get_current_pid_tgid() >> 32)) {
		/* A server weft does not trace says nothing. */
		bpf_map_delete_elem(&tcpopt_hello, &ck);
		cb_flags(ops, 0, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		return;
	}
	bpf_reserve_hdr_opt(ops, TCPOPT_WEFT_HELLO_LEN, 0);
}

static __always_inline void tcpopt_write(struct bpf_sock_ops *ops)
{
	__u64 ck = bpf_get_socket_cookie(ops);
	struct tcpopt_ctx *o = bpf_map_lookup_elem(&tcpopt_out, &ck);
	if (o) {
		__u8 buf[TCPOPT_WEFT_CTX_LEN];
		__u16 exid = o->flags & 1 ? TCPOPT_WEFT_CTX : TCPOPT_WEFT_CTX_UNSAMPLED;
		buf[0] = TCPOPT_WEFT_KIND;
		buf[1] = TCPOPT_WEFT_CTX_LEN;
		buf[2] = exid >> 8;
		buf[3] = exid & 0xff;
		__builtin_memcpy(buf + 4, o->trace_id, 16);
		__builtin_memcpy(buf + 20, o->span_id, 8);
		if (bpf_store_hdr_opt(ops, buf, sizeof(buf), 0) == 0) {
			bpf_map_delete_elem(&tcpopt_out, &ck);
			count(WEFT_CNT_TCPOPT_SENT);
			return;
		}
	}
	__u8 *h = bpf_map_lookup_elem(&tcpopt_hello, &ck);
	if (!h || *h == HELLO_SENT)
		return;
	__u8 hello[TCPOPT_WEFT_HELLO_LEN] = { TCPOPT_WEFT_KIND, TCPOPT_WEFT_HELLO_LEN, TCPOPT_WEFT_HELLO >> 8,
					      TCPOPT_WEFT_HELLO & 0xff };
	if (bpf_store_hdr_opt(ops, hello, sizeof(hello), 0))
		return;
	if (*h == HELLO_CLIENT) {
		*h = HELLO_SENT; /* the flag stays: the client's requests' ids go the same way */
	} else {
		bpf_map_delete_elem(&tcpopt_hello, &ck);
		cb_flags(ops, 0, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
	}
}

/* The header option callbacks (only where tcp_opt is set: weft_sockops). */
static __always_inline void sockops_tcpopt(struct bpf_sock_ops *ops, bool traced_client)
{
	if (!tcp_opt)
		return;
	switch (ops->op) {
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		if (traced_client) {
			__u64 ck = bpf_get_socket_cookie(ops);
			__u8 st = HELLO_CLIENT;
			bpf_map_update_elem(&tcpopt_hello, &ck, &st, BPF_ANY);
			cb_flags(ops, BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG | BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG, 0);
		}
		break;
	case BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB:
		/* The program runs only for segments with an unknown option. */
		bpf_get_socket_cookie(ops); /* gives the socket the cookie the capture front reads */
		cb_flags(ops, BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG, 0);
		break;
	case BPF_SOCK_OPS_PARSE_HDR_OPT_CB:
		tcpopt_parse(ops);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		tcpopt_len(ops);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		tcpopt_write(ops);
		break;
	}
}

/* A traced process (tgid, 0 if not) is connecting this socket: remember
 * it until the connection is established, then put it in the sockhash.
 * Returns true for an established connection of a traced client. */
static __always_inline bool sockops_track(struct bpf_sock_ops *ops, __u32 tgid)
{
	__u64 cookie;
	switch (ops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		if (!tgid)
			break;
		cookie = bpf_get_socket_cookie(ops);
		bpf_map_update_elem(&connecting, &cookie, &tgid, BPF_ANY);
		break;
	case BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB:
		cookie = bpf_get_socket_cookie(ops);
		if (!bpf_map_lookup_elem(&connecting, &cookie))
			break;
		bpf_map_delete_elem(&connecting, &cookie);
		bpf_sock_hash_update(ops, &traced_socks, &cookie, BPF_NOEXIST);
		return true;
	}
	return false;
}

SEC("sockops")
int weft_sockops(struct bpf_sock_ops *ops)
{
	__u32 tgid = 0;
	if (ops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		tgid = bpf_get_current_pid_tgid() >> 32;
		if (!tgid_traced(tgid))
			tgid = 0;
	}
	sockops_tcpopt(ops, sockops_track(ops, tgid));
	return 1;
}

/* The same where sockops cannot call bpf_get_current_pid_tgid (6.1): the
 * owner of a connecting socket is the process whose connect() this CPU
 * entered last (sys_enter_connect of capture/capture.bpf.c, struct connect_enter).
 * The loader loads one of the two. */
SEC("sockops")
int weft_sockops_cpu(struct bpf_sock_ops *ops)
{
	__u32 tgid = 0, zero = 0;
	if (ops->op == BPF_SOCK_OPS_TCP_CONNECT_CB) {
		struct connect_enter *e = bpf_map_lookup_elem(&connect_enters, &zero);
		if (e) {
			tgid = e->tgid_traced;
			e->tgid_traced = 0; /* one connect, one socket */
		}
	}
	sockops_track(ops, tgid);
	return 1; /* no TCP options: the server's answer needs its process (sockops_tcpopt) */
}

/* Received data of sockets in the sockhash: passed on unchanged. With an
 * sk_msg program alone, the kernel answers FIONREAD from the psock's ingress
 * queue, which stays empty (so FIONREAD says 0 while recv would return
 * data: programs that size reads with it stall). Routing ingress through
 * this verdict fills that queue, so FIONREAD and recv agree again. */
SEC("sk_skb")
int weft_sk_skb(struct __sk_buff *skb)
{
	return SK_PASS;
}

static __always_inline __u8 hexdigit(__u8 v)
{
	return v < 10 ? '0' + v : 'a' + v - 10;
}

/* "00-<trace id>-<span id>-<flags>" (55 bytes) at d, which the caller made
 * writable and checked against the message's end. */
static __always_inline void put_traceparent_value(__u8 *d, const struct injected_ctx *inj)
{
	__builtin_memcpy(d, "00-", 3);
#pragma unroll
	for (int k = 0; k < 16; k++) {
		d[3 + 2 * k] = hexdigit(inj->trace_id[k] >> 4);
		d[4 + 2 * k] = hexdigit(inj->trace_id[k] & 15);
	}
	d[35] = '-';
#pragma unroll
	for (int k = 0; k < 8; k++) {
		d[36 + 2 * k] = hexdigit(inj->span_id[k] >> 4);
		d[37 + 2 * k] = hexdigit(inj->span_id[k] & 15);
	}
	d[52] = '-';
	d[53] = hexdigit(inj->trace_flags >> 4);
	d[54] = hexdigit(inj->trace_flags & 15);
}

/* Go: the context the roundTrip probe bound to the connection this write
 * is on (Transport's writer goroutine writes what another goroutine asked
 * for). The fd comes from the write syscall the capture front saw enter. */
/* Set by the loader: no syscall front, so the fd of the write comes from
 * the task's registers saved at syscall entry (x86-64: the first argument),
 * not from sys_enter_io's note. */
const volatile __u8 fd_from_regs = 0;

/* The fd of the write sk_msg runs in (negative: unknown). */
static __always_inline long msg_write_fd(__u64 id)
{
	return fd_from_regs ? (long)(__u32)user_regs()->di : write_enter_fd(id);
}

static __always_inline bool go_fd_context(__u64 id, struct injected_ctx *inj)
{
	long fd = msg_write_fd(id);
	if (fd < 0)
		return false;
	struct conn_key k = { .tgid = id >> 32, .fd = fd };
	struct go_ctx *c = bpf_map_lookup_elem(&go_fd_ctx, &k);
	if (!c)
		return false;
	__builtin_memcpy(inj->trace_id, c->trace_id, 16);
	__builtin_memcpy(inj->parent_span_id, c->span_id, 8);
	inj->trace_flags = c->trace_flags;
	bpf_map_delete_elem(&go_fd_ctx, &k);
	return true;
}

#include "inject/http2_inject.bpf.h"

SEC("sk_msg")
int weft_sk_msg(struct sk_msg_md *msg)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 zero = 0;
	if (!tgid_traced(id >> 32))
		return SK_PASS;
	__u32 size = msg->size;
	if (size < 16)
		return SK_PASS;
	__u32 want = size < INJECT_SCAN ? size : INJECT_SCAN;
	if (bpf_msg_pull_data(msg, 0, want, 0))
		return SK_PASS;
	__u8 *d = msg->data, *e = msg->data_end;
	if (d + 8 > e)
		return SK_PASS;
	if (!http_is_request_start(d, 8)) {
		h2_msg(msg, id);
		return SK_PASS;
	}

	struct scan_buf *sb = bpf_map_lookup_elem(&msg_scratch, &zero);
	if (!sb)
		return SK_PASS;
	__u32 n = e - d;
	clamp_for_verifier(n, INJECT_SCAN - 1);
	if (bpf_probe_read_kernel(sb->b, n, d))
		return SK_PASS;
	sb->b[n & SCAN_MASK] = 0;
	hdr_scan_run(sb, n);
	__u32 header_len = sb->s.header_len;
	if (!header_len || sb->s.traceparent) {
		count(WEFT_CNT_INJECT_SKIPPED); /* split header, or the app traces itself */
		return SK_PASS;
	}
	__u32 line_end = sb->s.first_line_end; /* after the request line */
	if (!line_end || line_end >= header_len)
		return SK_PASS;

	struct injected_ctx inj = { .trace_flags = 1 };
	struct thread_ctx *c = thread_ctx_usable(id >> 32, (__u32)id);
	if (c) {
		__builtin_memcpy(inj.trace_id, c->trace_id, 16);
		__builtin_memcpy(inj.parent_span_id, c->span_id, 8);
		inj.trace_flags = sample_flags(inj.trace_id, c->trace_flags, true);
	} else if (go_fd_context(id, &inj)) {
		inj.trace_flags = sample_flags(inj.trace_id, inj.trace_flags, true);
	} else {
		random_id(inj.trace_id, 4);
		inj.trace_flags = sample_flags(inj.trace_id, 1, false); /* a root */
	}
	random_id(inj.span_id, 2);

	if (bpf_msg_push_data(msg, line_end, TRACEPARENT_LINE, 0))
		return SK_PASS;
	if (bpf_msg_pull_data(msg, line_end, line_end + TRACEPARENT_LINE, 0)) {
		bpf_msg_pop_data(msg, line_end, TRACEPARENT_LINE, 0); /* never leave a gap */
		return SK_PASS;
	}
	d = msg->data;
	e = msg->data_end;
	if (d + TRACEPARENT_LINE > e) {
		bpf_msg_pop_data(msg, line_end, TRACEPARENT_LINE, 0);
		return SK_PASS;
	}
	__builtin_memcpy(d, "traceparent: ", 13);
	put_traceparent_value(d + 13, &inj);
	d[68] = '\r';
	d[69] = '\n';
	bpf_map_update_elem(&injected, &id, &inj, BPF_ANY);
	count(WEFT_CNT_INJECTED);
	return SK_PASS;
}
