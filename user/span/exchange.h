/* What every span built from a captured exchange shares. */
#ifndef WEFT_SPAN_EXCHANGE_H
#define WEFT_SPAN_EXCHANGE_H

#include <stddef.h>
#include <stdint.h>

#include "abi/weft.h"
#include "span.h"

/* Ids, trace flags, kind, and start/end converted from CLOCK_MONOTONIC to
 * unix time (an end before the start is clamped to it). */
void span_set_exchange(struct span *s, const struct txn_event *ev, enum span_kind kind, int64_t mono_to_real);

/* An address of a struct conn_addr (IPv4, IPv6, IPv4-mapped IPv6 shown as
 * IPv4) as text; "unknown" if it cannot be. */
void conn_addr_format(const __u8 *addr, __u16 family, char *out, size_t outlen);

#endif
