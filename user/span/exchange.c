/* What every span built from a captured exchange shares: ids, kind and
 * times from the kernel's record, and its addresses as text. */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "exchange.h"

void span_set_exchange(struct span *s, const struct txn_event *ev, enum span_kind kind, int64_t mono_to_real)
{
	memcpy(s->trace_id, ev->trace_id, 16);
	memcpy(s->span_id, ev->span_id, 8);
	memcpy(s->parent_span_id, ev->parent_span_id, 8);
	s->trace_flags = ev->trace_flags;
	s->kind = kind;
	s->start_ns = ev->start_ns + mono_to_real;
	s->end_ns = (ev->end_ns > ev->start_ns ? ev->end_ns : ev->start_ns) + mono_to_real;
}

/* Dotted decimal as inet_ntop writes it, without its sprintf per call. */
static void ipv4_format(const __u8 *a, char *out)
{
	for (int i = 0; i < 4; i++) {
		unsigned v = a[i];
		if (v >= 100)
			*out++ = (char)('0' + v / 100);
		if (v >= 10)
			*out++ = (char)('0' + v / 10 % 10);
		*out++ = (char)('0' + v % 10);
		*out++ = i < 3 ? '.' : '\0';
	}
}

void conn_addr_format(const __u8 *addr, __u16 family, char *out, size_t outlen)
{
	static const __u8 v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	bool mapped = family == AF_INET6 && memcmp(addr, v4mapped, sizeof(v4mapped)) == 0;
	if ((family != AF_INET6 || mapped) && outlen >= INET_ADDRSTRLEN)
		ipv4_format(mapped ? addr + 12 : addr, out);
	else if (mapped)
		inet_ntop(AF_INET, addr + 12, out, outlen);
	else if (!inet_ntop(family == AF_INET6 ? AF_INET6 : AF_INET, addr, out, outlen))
		snprintf(out, outlen, "unknown");
}
