/* TLS as a byte source: the plaintext of OpenSSL's SSL_read/SSL_write fed
 * to the same on_data as a socket's bytes, so every protocol parses TLS
 * traffic with the code it parses plaintext with (docs/TLS.md).
 *
 * Shared by the capture object (the socket events inside an SSL call name
 * its fd and socket, and are kept from on_data: ciphertext) and
 * uprobes/tls.bpf.c (the SSL_* probes), whose loader reuses the capture
 * object's maps.
 *
 * An SSL call's entry notes (SSL*, buffer, length) for its thread
 * (tls_calls). A write's plaintext is complete at entry: it goes to on_data
 * at entry when the SSL's socket is known, else at the first socket write
 * inside the call. A read's plaintext goes to on_data at SSL_read's return
 * (a return probe: the only place the length is known and the buffer still
 * the app's; docs/TLS.md says why the next socket event cannot stand in).
 * Outside the probed calls (handshake, alerts), the connection's mark
 * (conn_info.tls) makes on_data skip its ciphertext. */
#ifndef WEFT_CAPTURE_TLS_BPF_H
#define WEFT_CAPTURE_TLS_BPF_H

#include "capture/data.bpf.h"

/* The SSL call a thread is in. */
struct tls_call {
	__u64 ssl;
	__u64 buf;
	__u64 ts;	  /* entry */
	__u64 sk;	  /* the socket, once known */
	__u64 readbytes;  /* SSL_read_ex: where it stores the length read */
	__u32 num;	  /* the buffer's length */
	__u32 fd;
	__u8 dir;	  /* DIR_READ or DIR_WRITE */
	__u8 has_fd;	  /* fd/sk known (from the SSL's entry or a socket event) */
	__u8 sent;	  /* write: the plaintext went to on_data */
	__u8 pad[5];
};

struct tls_conn_key {
	__u32 tgid;
	__u32 pad;
	__u64 ssl;
};

/* Per SSL*: its socket. */
struct tls_conn {
	__u64 sk;
	__u32 fd;
	__u32 pad;
};

/* Non-zero once the TLS loader probed some process: the capture front asks
 * nothing more of a socket event until then (an array read, inlined). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} tls_on SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct tls_call);
} tls_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct tls_conn_key);
	__type(value, struct tls_conn);
} tls_conns SEC(".maps");

/* The threads that have a tls_calls entry, one bit per tid (bit tid % 64
 * of word tid / 64): a socket event asks this array, inlined, before the
 * hash map, where most events of a process that loaded libssl find nothing
 * (a hash miss cost ~100-170 ns per event here). Set with the entry,
 * cleared with it, or when the entry is found gone (LRU eviction). Only the
 * thread itself changes its bit; the word is shared, hence the atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACED_BITS_WORDS);
	__type(key, __u32);
	__type(value, __u64);
} tls_threads SEC(".maps");

static __always_inline bool tls_thread_in_call(__u32 tid)
{
	__u32 w = tid / 64;
	__u64 *v = bpf_map_lookup_elem(&tls_threads, &w);
	return v && (*v >> (tid % 64)) & 1;
}

static __always_inline void tls_thread_mark(__u32 tid, bool on)
{
	__u32 w = tid / 64;
	__u64 *v = bpf_map_lookup_elem(&tls_threads, &w);
	if (!v)
		return;
	if (on)
		__sync_fetch_and_or(v, 1ull << (tid % 64));
	else
		__sync_fetch_and_and(v, ~(1ull << (tid % 64)));
}

/* The thread's SSL call is over: its note goes. */
static __always_inline void tls_call_end(__u64 id)
{
	bpf_map_delete_elem(&tls_calls, &id);
	tls_thread_mark((__u32)id, false);
}

static __always_inline bool tls_enabled(void)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&tls_on, &zero);
	return on && *on;
}

/* Is the current thread inside a probed SSL call? (A bit per thread: a
 * process without libssl or crypto/tls probes answers no at tls_on.) */
static __always_inline bool tls_in_call(void)
{
	return tls_enabled() && tls_thread_in_call((__u32)bpf_get_current_pid_tgid());
}

/* n plaintext bytes at buf, moved in direction dir on the call's socket.
 * Returns on_data's answer: the stream protocol (HTTP/2) whose forwarding
 * program the caller tail-calls. The io_args go in the capture front's own
 * io_scratch_map, where that program reads them (io->buf: the SSL call's
 * buffer, IO_PLAIN). Called from the capture front, this overwrites the
 * socket event's io_args: that event is the call's ciphertext, which the
 * front drops once tls_io answers. */
static __always_inline struct io_args *tls_plain_io(struct tls_call *call, __u8 dir, __u64 ts, long n)
{
	__u32 zero = 0;
	struct io_args *io = bpf_map_lookup_elem(&io_scratch_map, &zero);
	if (!io || n <= 0)
		return NULL;
	io->buf = call->buf;
	io->enter_ns = ts;
	io->sk = call->sk;
	io->fd = call->fd;
	io->kind = IO_PLAIN;
	io->dir = dir;
	io->tls = 1;
	io->pad = 0;
	return io;
}

/* The thread's SSL_read returned ret (SSL_read: the length, or <= 0;
 * SSL_read_ex: 1 and the length in *readbytes). A global function:
 * verified once. The plaintext's length, prepared for tls_deliver
 * (uprobes/tls.bpf.c). */
__attribute__((noinline)) long tls_read_return(__u64 id, long ret)
{
	struct tls_call *call = bpf_map_lookup_elem(&tls_calls, &id);
	if (!call)
		return 0;
	long plain = 0;
	if (call->dir == DIR_READ && call->has_fd && ret > 0) {
		__u64 n = ret;
		if (call->readbytes && (ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)call->readbytes)))
			n = 0;
		if (n > call->num)
			n = call->num;
		plain = tls_plain_io(call, DIR_READ, bpf_ktime_get_ns(), n) ? n : 0;
	}
	tls_call_end(id);
	return plain;
}

/* What tls_sock_event tells its caller (which acts on it: kept out of its
 * frame, the stack chain down to on_data stays within 512 bytes). */
#define TLS_EV_CIPHER 1 /* the call's ciphertext: on_data must not see it */
#define TLS_EV_SEND 2	/* the plaintext of the SSL_write this event is in goes to on_data */

/* A socket event of a thread that is in an SSL call: TLS_EV_* bits. A
 * global function: verified once, apart. */
__attribute__((noinline)) int tls_sock_event(struct io_args *io, long ret)
{
	if (!io)
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct tls_call *call = bpf_map_lookup_elem(&tls_calls, &id);
	if (!call) {
		tls_thread_mark((__u32)id, false); /* evicted */
		return 0;
	}
	/* The syscall front sees every fd: a write to stderr or a pipe inside
	 * an SSL call (curl -v logs from inside SSL_read) is not the call's. */
	__u64 sk = io->sk ? io->sk : (__u64)stream_sock_from_fd(io->fd);
	if (!sk)
		return 0;
	if (call->has_fd && (call->fd != io->fd || call->sk != sk)) {
		/* Another socket: the SSL call (a write: no return probe) returned. */
		tls_call_end(id);
		return 0;
	}
	if (!call->has_fd) {
		/* The SSL's socket, learnt now (the syscall front finds it). */
		struct tls_conn_key k = { .tgid = id >> 32, .ssl = call->ssl };
		struct tls_conn fresh = { .sk = sk, .fd = io->fd };
		bpf_map_update_elem(&tls_conns, &k, &fresh, BPF_ANY);
		call->fd = io->fd;
		call->sk = fresh.sk;
		call->has_fd = 1;
	}
	if (call->dir == DIR_WRITE && io->dir == DIR_WRITE && ret > 0 && !call->sent)
		return TLS_EV_SEND | TLS_EV_CIPHER;
	if (ret <= 0 && io->dir == DIR_READ)
		return 0; /* a server reading again has answered: read_nothing */
	return TLS_EV_CIPHER;
}

/* SSL_set_fd: the SSL* of process tgid is on socket fd. */
static __always_inline void tls_set_fd(__u32 tgid, __u64 ssl, __u64 fd)
{
	if (!ssl || (__s64)fd < 0 || fd > 0x7fffffff)
		return;
	struct tls_conn_key k = { .tgid = tgid, .ssl = ssl };
	struct tls_conn tc = { .sk = (__u64)stream_sock_from_fd((__u32)fd), .fd = (__u32)fd };
	if (tc.sk)
		bpf_map_update_elem(&tls_conns, &k, &tc, BPF_ANY);
}

/* The SSL_write this socket event is in: its plaintext's io_args replace
 * the event's in io_scratch_map, and its length is returned (0: none or
 * sent already). A global function; the caller calls on_data itself, so
 * that the chain down from on_data stays as deep as for any event. */
__attribute__((noinline)) long tls_send_prepare(__u64 id)
{
	struct tls_call *call = bpf_map_lookup_elem(&tls_calls, &id);
	if (!call || call->dir != DIR_WRITE || call->sent)
		return 0;
	call->sent = 1;
	return tls_plain_io(call, DIR_WRITE, call->ts, call->num) ? call->num : 0;
}

/* The capture front's question about a socket event: -1, not TLS (on_data
 * takes it as ever); 0, TLS ciphertext that on_data must not see; n > 0,
 * ciphertext too, and the SSL_write it is in left n bytes of plaintext in
 * io_scratch_map (io) for on_data. */
static __always_inline long tls_io(struct io_args *io, long ret)
{
	if (!tls_in_call())
		return -1;
	int r = tls_sock_event(io, ret);
	if (!(r & TLS_EV_CIPHER))
		return -1;
	return r & TLS_EV_SEND ? tls_send_prepare(bpf_get_current_pid_tgid()) : 0;
}

#endif
