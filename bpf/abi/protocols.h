/* Protocol identities and what they imply, from the one protocol list
 * (abi/protocols.def). */
#ifndef WEFT_ABI_PROTOCOLS_H
#define WEFT_ABI_PROTOCOLS_H

/* Kernel-side behaviour a protocol asks for. */
#define WEFT_PROTO_F_TRACEPARENT 0x01  /* requests may carry a traceparent header: scan them */
#define WEFT_PROTO_F_CLOSE_IS_ERROR 0x02 /* a request closed unanswered is a failed exchange */
#define WEFT_PROTO_F_GO_ROUNDTRIP 0x04 /* Go net/http requests take their context from the roundTrip uprobe */
#define WEFT_PROTO_F_STICKY 0x08       /* once detected, every client write starts a request of it */
#define WEFT_PROTO_F_CONN_STATE 0x10   /* the agent keeps per-connection state: tell it of closes */
#define WEFT_PROTO_F_STREAM 0x20       /* exchanges interleave: forward the bytes (abi/stream.h), the agent cuts them */

enum weft_proto {
	WEFT_PROTO_UNKNOWN = 0,
#define WEFT_PROTOCOL(NAME, id, value, flags) WEFT_PROTO_##NAME = value,
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
};

/* WEFT_PROTO_F_* of a protocol, 0 for unknown ones. */
static inline unsigned int weft_proto_flags(unsigned int proto)
{
	switch (proto) {
#define WEFT_PROTOCOL(NAME, id, value, flags) \
	case value:                            \
		return (flags);
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
	}
	return 0;
}

#endif
