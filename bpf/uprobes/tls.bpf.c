// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Uprobes on OpenSSL: entries of SSL_read, SSL_read_ex, SSL_write,
 * SSL_write_ex, and returns of the two reads (capture/tls.bpf.h, docs/TLS.md:
 * hits per exchange). Owned by user/loaders/tls.c, which attaches them per
 * traced process and reuses the capture object's maps: the plaintext goes
 * through the capture front's own on_data, and a stream protocol's bytes
 * (HTTP/2 over TLS) to its forwarding program, which this object carries
 * as a kprobe-type copy in its own stream_progs (a tail call stays within
 * one program type: user/loaders/tls.c). */
#include "lib/common.bpf.h"
#include "abi/tls.h"

#define TLS_NUM_MAX (1u << 30)

#include "capture/tls.bpf.h"
#include "uprobes/go_tls.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The program that takes prepared plaintext to on_data (tls_data, below),
 * in slot 0 (user/loaders/tls.c fills it). The probes tail-call it: on_data's
 * chain is verified once for this object instead of once per probe program
 * (six of them: about 42k instructions each, most of weft's load time). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tls_data_prog SEC(".maps");

/* n bytes of plaintext prepared in io_scratch_map (by tls_plain_io,
 * tls_send_prepare, tls_read_return or the Go TLS probes) go to on_data
 * (tls_data) and on to a stream protocol's program. The calling probe
 * ends here when the tail call succeeds. */
static __always_inline void tls_deliver(void *ctx, long n)
{
	__u32 zero = 0;
	struct io_args *io = bpf_map_lookup_elem(&io_scratch_map, &zero);
	if (!io || n <= 0)
		return;
	io->ret = n;
	bpf_tail_call(ctx, &tls_data_prog, 0);
}

/* Reached by tail call only (tls_deliver): the prepared plaintext, io->ret
 * bytes, to the capture front's on_data. */
SEC("uprobe")
int tls_data(struct pt_regs *ctx)
{
	__u32 zero = 0;
	struct io_args *io = bpf_map_lookup_elem(&io_scratch_map, &zero);
	if (io && (long)io->ret > 0)
		stream_forward(ctx, on_data(io, io->ret));
	return 0;
}

/* SSL_read*(ssl, buf, num, [readbytes]) or SSL_write*(ssl, buf, num, ...)
 * entered: the thread's note of the call. 1 when a write's plaintext can go
 * now (its socket is known). A global function: verified once. */
__attribute__((noinline)) int tls_enter(__u64 ssl, __u64 buf, __u64 num, __u64 readbytes, __u32 dir)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!ssl || !buf || (__s32)num <= 0) {
		tls_call_end(id);
		return 0;
	}
	struct tls_call call = {
		.ssl = ssl,
		.buf = buf,
		.num = num > TLS_NUM_MAX ? TLS_NUM_MAX : (__u32)num,
		.readbytes = readbytes,
		.dir = dir,
		.ts = bpf_ktime_get_ns(),
	};
	struct tls_conn_key k = { .tgid = id >> 32, .ssl = ssl };
	struct tls_conn *tc = bpf_map_lookup_elem(&tls_conns, &k);
	if (tc) {
		/* An SSL* freed and allocated again names another connection:
		 * the fd must still hold the socket it was learnt with. */
		__u64 sk = (__u64)stream_sock_from_fd(tc->fd);
		if (sk && sk == tc->sk) {
			call.fd = tc->fd;
			call.sk = tc->sk;
			call.has_fd = 1;
		} else {
			bpf_map_delete_elem(&tls_conns, &k);
		}
	}
	if (bpf_map_update_elem(&tls_calls, &id, &call, BPF_ANY))
		return 0;
	tls_thread_mark((__u32)id, true);
	return dir == DIR_WRITE && call.has_fd;
}

static __always_inline int tls_probe(struct pt_regs *ctx, __u64 id, __u64 readbytes, __u32 dir)
{
	if (tls_enter(PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), readbytes, dir))
		/* the socket is known: the plaintext goes now, timed at entry */
		tls_deliver(ctx, tls_send_prepare(id));
	return 0;
}

/* The entry of SSL_read, SSL_read_ex, SSL_write, SSL_write_ex or
 * SSL_set_fd, which one the probe's cookie says (enum tls_fn): one program,
 * so that a library's entry probes are one link (user/loaders/uprobes.h).
 * SSL_set_fd(ssl, fd) gives the SSL's socket before its first write (whose
 * plaintext then goes at its entry, before its first segment: the TCP
 * option of a TLS request, inject/propagation.bpf.c, needs that); one hit
 * per connection. */
SEC("uprobe")
int probe_ssl_entry(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!tgid_traced(id >> 32))
		return 0;
	switch (bpf_get_attach_cookie(ctx)) {
	case TLS_FN_READ:
		return tls_probe(ctx, id, 0, DIR_READ);
	case TLS_FN_READ_EX: {
		__u64 rb = PT_REGS_PARM4(ctx);
		return tls_probe(ctx, id, rb ? rb : 1 /* never 0: marks _ex */, DIR_READ);
	}
	case TLS_FN_WRITE:
	case TLS_FN_WRITE_EX:
		return tls_probe(ctx, id, 0, DIR_WRITE);
	case TLS_FN_SET_FD:
		tls_set_fd(id >> 32, PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx));
		return 0;
	}
	return 0;
}

/* SSL_read or SSL_read_ex returned: the plaintext is in the buffer. */
SEC("uretprobe")
int probe_ssl_read_ret(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	if (!tgid_traced(id >> 32))
		return 0;
	tls_deliver(ctx, tls_read_return(id, (int)PT_REGS_RC(ctx)));
	return 0;
}

/* --- Go's crypto/tls (uprobes/go_tls.bpf.h) --- */

/* crypto/tls.(*Conn).Write: AX = the *Conn, BX/CX = the slice. */
SEC("uprobe")
int probe_go_tls_write(struct pt_regs *ctx)
{
	if (!tgid_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	tls_deliver(ctx, go_tls_write(ctx->ax, ctx->bx, ctx->cx));
	return 0;
}

/* crypto/tls.(*Conn).Read entered: R14 = the goroutine. */
SEC("uprobe")
int probe_go_tls_read(struct pt_regs *ctx)
{
	if (!tgid_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	go_tls_read_enter(ctx->r14, ctx->ax, ctx->bx, ctx->cx);
	return 0;
}

/* At a RET of crypto/tls.(*Conn).Read: AX = n. */
SEC("uprobe")
int probe_go_tls_read_ret(struct pt_regs *ctx)
{
	if (!tgid_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	tls_deliver(ctx, go_tls_read_ret(ctx->r14, (long)ctx->ax));
	return 0;
}
