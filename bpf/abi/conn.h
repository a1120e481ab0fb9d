/* A connection as the kernel and the agent see it: its key, addresses and
 * the kernel's per-connection record. Fixed-width types; sizes asserted. */
#ifndef WEFT_ABI_CONN_H
#define WEFT_ABI_CONN_H

#include "abi/types.h"

enum weft_role {
	WEFT_ROLE_UNKNOWN = 0, /* socket existed before weft: inferred from bytes */
	WEFT_ROLE_SERVER = 1,  /* accepted socket */
	WEFT_ROLE_CLIENT = 2,  /* connected socket */
};

struct conn_key {
	__u32 tgid;
	__u32 fd;
};

#define WEFT_UNIX_PATH_MAX 64

/* Addresses as seen by the traced process: l* local, r* remote.
 * IPv4 addresses are stored in the first 4 bytes; ports in host order.
 * AF_UNIX: the server's socket path instead (cut at 63 bytes, "" when
 * abstract or unknown), no ports. */
struct conn_addr {
	__u16 family; /* AF_INET, AF_INET6 or AF_UNIX */
	__u16 lport;
	__u16 rport;
	__u16 pad;
	union {
		struct {
			__u8 laddr[16];
			__u8 raddr[16];
		};
		char unix_path[WEFT_UNIX_PATH_MAX];
	};
};

struct conn_info {
	struct conn_addr addr;
	__u8 role;     /* enum weft_role */
	__u8 proto;    /* enum weft_proto once known */
	__u8 ignored;  /* not a protocol weft parses: skip all further I/O */
	__u8 pending_len; /* a read of a request's first bytes only (Go reads 1) */
	__u8 pending_proto; /* the protocol those bytes may start */
	__u8 tls;      /* TLS: only the TLS probes' plaintext counts (capture/tls.bpf.h) */
	__u8 pad2[2];
	__u64 bytes_seen; /* payload bytes observed, both directions */
	__u8 pending[8];  /* those bytes, joined with the next read */
	__u64 pending_ns; /* when they arrived: the request's start */
	__u64 sk;         /* the struct sock (kernel address): a reused fd has another */
	/* The TLS handshake's ServerHello, read from the clear-text record
	 * (capture/tls_hello.bpf.h): the connection's exchanges carry these. */
	__u16 tls_cipher;  /* IANA cipher suite, 0: not seen */
	__u8 tls_version;  /* minor of 3.x: 1 TLS 1.0 ... 4 TLS 1.3; 0: not seen */
	__u8 tls_hello;    /* TLS_HELLO_*: where the search for the ServerHello stands */
	__u8 pad3[4];
};

_Static_assert(sizeof(struct conn_addr) == 72, "conn_addr layout");
_Static_assert(sizeof(struct conn_info) == 120, "conn_info layout");

#endif
