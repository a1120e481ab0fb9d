/* The TLS version and cipher suite of a connection, from its ServerHello:
 * the handshake is clear text on the wire, and the capture front sees the
 * bytes of every traced connection anyway, so this costs no uprobe hit.
 * Once per connection: the first bytes the server sends (its writes, or
 * the client's reads) are looked at, and the search ends there.
 *
 * ServerHello (RFC 5246 7.4.1.3, RFC 8446 4.1.3), after the record header
 * (type 0x16, version 3.x, length: 5 bytes):
 *   msg_type 0x02, length (3), legacy_version (2), random (32),
 *   session_id length (1) and id (0-32), cipher_suite (2), ...
 * TLS 1.3's version is in the supported_versions extension, but its
 * cipher suites (0x13xx) are used by TLS 1.3 only and TLS 1.3 uses no
 * others, so the suite says 1.3 and the extensions need no walk (a
 * bounded loop the verifier would have to follow). HelloRetryRequest has
 * the ServerHello's form and the suite the ServerHello then repeats.
 *
 * OpenSSL clients read the record header (5 bytes) and the body in two
 * reads: a lone header is noted (TLS_HELLO_HEADER) and the next read is
 * the body. PostgreSQL's server answers 'S' to SSLRequest before the TLS
 * records, so the first TLS_HELLO_TRIES sends that are no handshake record
 * do not end the search. */
#ifndef WEFT_CAPTURE_TLS_HELLO_BPF_H
#define WEFT_CAPTURE_TLS_HELLO_BPF_H

#include "capture/conns.bpf.h"
#include "capture/io.bpf.h"

#define TLS_HELLO_TRIES 2     /* 0..TRIES-1: server sends seen without a record */
#define TLS_HELLO_HEADER 0x40 /* the last send was a handshake record's header alone */
#define TLS_HELLO_DONE 0x80   /* found, or not to be found */

#define TLS_REC_HANDSHAKE 0x16
#define TLS_HS_SERVER_HELLO 0x02
/* msg_type, length, legacy_version, random, session_id length */
#define TLS_SH_SID_LEN_OFF 38

/* Whether the connection's ServerHello may still come (on_data asks before
 * calling tls_hello_see: one byte compared on the hot path). */
static __always_inline bool tls_hello_pending(const struct conn_info *c)
{
	return !(c->tls_hello & TLS_HELLO_DONE);
}

/* Bytes moved on connection c (dir, avail of them readable at src): is it
 * the server's ServerHello? A global function: verified once, its few
 * bytes of stack apart from on_data's chain. */
__attribute__((noinline)) int tls_hello_see(struct conn_info *c, __u64 src, __u32 avail, __u32 dir)
{
	if (!c || (c->tls_hello & TLS_HELLO_DONE))
		return 0;
	if (c->role != WEFT_ROLE_CLIENT && c->role != WEFT_ROLE_SERVER) {
		/* A socket that predates weft: joined after its handshake. */
		c->tls_hello = TLS_HELLO_DONE;
		return 0;
	}
	if ((c->role == WEFT_ROLE_CLIENT) != (dir == DIR_READ))
		return 0; /* the client's bytes (ClientHello) */
	__u32 off = 0; /* where the handshake message starts in src */
	if (!(c->tls_hello & TLS_HELLO_HEADER)) {
		__u8 rec[3] = {};
		if (avail < 5 || bpf_probe_read_user(rec, sizeof(rec), (void *)src) || rec[0] != TLS_REC_HANDSHAKE ||
		    rec[1] != 3) {
			__u8 tries = (c->tls_hello & 0x0f) + 1;
			c->tls_hello = tries >= TLS_HELLO_TRIES ? TLS_HELLO_DONE : tries;
			return 0;
		}
		if (avail == 5) {
			c->tls_hello = TLS_HELLO_HEADER;
			return 0;
		}
		off = 5;
	}
	c->tls_hello = TLS_HELLO_DONE;
	__u8 hs[TLS_SH_SID_LEN_OFF + 1] = {};
	if (avail < off + sizeof(hs) || bpf_probe_read_user(hs, sizeof(hs), (void *)(src + off)))
		return 0;
	__u32 sid_len = hs[TLS_SH_SID_LEN_OFF];
	if (hs[0] != TLS_HS_SERVER_HELLO || hs[4] != 3 || sid_len > 32)
		return 0;
	__u32 at = off + sizeof(hs) + sid_len;
	__u8 suite[2];
	if (avail < at + 2 || bpf_probe_read_user(suite, sizeof(suite), (void *)(src + at)))
		return 0;
	__u16 cipher = (__u16)suite[0] << 8 | suite[1];
	__u8 minor = suite[0] == 0x13 ? 4 : hs[5];
	if (minor < 1 || minor > 4 || !cipher)
		return 0;
	c->tls_cipher = cipher;
	c->tls_version = minor;
	return 0;
}

/* The response bytes of an exchange built while the connection's
 * ServerHello was still to come (txn_event.tls_hello_pending): a database
 * whose TLS begins inside its protocol (PostgreSQL: SSLRequest, 'S', then
 * the handshake: more response bytes of the SSLRequest's exchange). Returns
 * whether the search goes on (the exchange keeps asking: at most a few
 * sends of the server). A global function. */
__attribute__((noinline)) int tls_hello_txn(__u32 fd, __u64 sk, __u64 src, __u32 avail, __u32 dir)
{
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = fd };
	struct conn_info *c = bpf_map_lookup_elem(&conns, &key);
	if (!c || (sk && c->sk != sk) || c->tls)
		return 0;
	tls_hello_see(c, src, avail, dir);
	return tls_hello_pending(c);
}

/* A socket event the TLS probes took for an SSL call's ciphertext
 * (capture/tls.bpf.h: it never reaches on_data) may still carry the
 * ServerHello: a handshake done inside SSL_read/SSL_write, or a thread's
 * note of an SSL_write that has returned (writes have no return probe) met
 * again on a reused fd number (the syscall front knows no socket to tell
 * them apart). One connection lookup per such event. A global function. */
__attribute__((noinline)) int tls_hello_cipher(struct io_args *io, long ret)
{
	if (!io || ret <= 0)
		return 0;
	struct conn_key key = { .tgid = bpf_get_current_pid_tgid() >> 32, .fd = io->fd };
	struct conn_info *c = conn_get(&key, io->sk);
	const __u8 *src = NULL;
	__u32 avail = 0;
	if (!c || c->tls || !tls_hello_pending(c) || io_source(io, ret, &src, &avail))
		return 0;
	tls_hello_see(c, (__u64)src, avail, io->dir);
	return 0;
}

#endif
