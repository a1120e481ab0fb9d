/* Trace context in a TCP header option, for TLS connections (no header can
 * be injected into ciphertext): docs/PROPAGATION.md, "Across TLS".
 *
 * Option: kind 253 (RFC 4727 experimental) with a 16-bit ExID (RFC 6994).
 *   hello:   253, 4, ExID_HELLO                      once per direction and connection
 *   context: 253, 28, ExID_CTX(_UNSAMPLED), trace id (16), span id (8)
 * 28 bytes: what the 40 bytes of options leave next to timestamps (12
 * with padding); the W3C flags byte does not fit and is the ExID's choice
 * (sampled or not). A segment that also carries SACK blocks has no room:
 * the context is dropped (counted), the server span starts its own trace.
 *
 * Both ends must be traced: the client's first data segment says hello;
 * the server answers hello on its first data segment only if it is traced
 * and heard one; the client sends contexts only after that answer. So a
 * peer weft does not trace receives at most one 4-byte option, which TCP
 * ignores (RFC 9293: unknown options are skipped).
 *
 * Shared by the capture front (a TLS client exchange leaves its ids for
 * its connection's next data segment; a TLS server exchange takes the ids
 * that came with its request) and inject/propagation.bpf.c (sockops:
 * writes and parses the options). Keyed by socket cookie. */
#ifndef WEFT_CONTEXT_TCPOPT_BPF_H
#define WEFT_CONTEXT_TCPOPT_BPF_H

#include "lib/common.bpf.h"

#define TCPOPT_WEFT_KIND 253
#define TCPOPT_WEFT_HELLO 0x5768	     /* "Wh" */
#define TCPOPT_WEFT_CTX 0x5763	     /* "Wc": sampled */
#define TCPOPT_WEFT_CTX_UNSAMPLED 0x5775 /* "Wu" */
#define TCPOPT_WEFT_HELLO_LEN 4
#define TCPOPT_WEFT_CTX_LEN 28

#ifndef TCPHDR_FIN
#define TCPHDR_FIN 0x01
#define TCPHDR_SYN 0x02
#define TCPHDR_RST 0x04
#endif

struct tcpopt_ctx {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;
	__u8 used; /* tcpopt_in: a server exchange took it */
	__u8 pad[6];
};

/* A TLS client request's ids, waiting for its connection's next data
 * segment (sockops writes them, then deletes the entry). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64); /* socket cookie */
	__type(value, struct tcpopt_ctx);
} tcpopt_out SEC(".maps");

/* The ids the last context option on a connection carried (every segment
 * of a GSO burst repeats the option: used stays set for the same ids). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct tcpopt_ctx);
} tcpopt_in SEC(".maps");

/* Client connections whose peer answered hello (value unused). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} tcpopt_peers SEC(".maps");

/* The cookie of a socket (0 if nothing gave it one yet: sockops does, for
 * every socket it handles). */
static __always_inline __u64 tcpopt_cookie(__u64 sk)
{
	if (!sk)
		return 0;
	return BPF_CORE_READ((struct sock *)sk, __sk_common.skc_cookie.counter);
}

#endif
