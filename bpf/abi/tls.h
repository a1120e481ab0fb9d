/* The OpenSSL functions weft probes: the cookie of each entry probe, which
 * tells bpf/uprobes/tls.bpf.c's one entry program which function it is in
 * (user/loaders/tls.c attaches them). */
#ifndef WEFT_ABI_TLS_H
#define WEFT_ABI_TLS_H

enum tls_fn { TLS_FN_READ, TLS_FN_READ_EX, TLS_FN_WRITE, TLS_FN_WRITE_EX, TLS_FN_SET_FD, TLS_FN_N };

#endif
