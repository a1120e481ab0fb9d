/* tls.* attributes of a span whose connection's ServerHello the kernel
 * read (bpf/capture/tls_hello.bpf.h): tls.protocol.name, .version and
 * tls.cipher, as OpenTelemetry's semantic conventions spell them. */
#ifndef WEFT_SPAN_TLS_ATTRS_H
#define WEFT_SPAN_TLS_ATTRS_H

#include <stdint.h>

#include "span.h"

/* The IANA name of cipher suite code ("TLS_AES_256_GCM_SHA384"), or NULL
 * for a code weft's table does not have. */
const char *tls_cipher_name(uint16_t code);

/* Adds the attributes for version (minor of 3.x: 1 = TLS 1.0 ... 4 = TLS
 * 1.3; 0: the handshake was not seen, nothing is added) and cipher (an
 * unknown code adds no tls.cipher). 0 or -ENOMEM. */
int span_add_tls(struct attr_list *a, uint8_t version, uint16_t cipher);

#endif
