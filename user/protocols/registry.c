/* The agent's protocols, from the one protocol list. */
#include <errno.h>
#include <stddef.h>

#include "protocol.h"

#define WEFT_PROTOCOL(NAME, id, value, flags) extern const struct protocol protocol_##id;
#include "abi/protocols.def"
#undef WEFT_PROTOCOL

static const struct protocol *const protocols[] = {
#define WEFT_PROTOCOL(NAME, id, value, flags) &protocol_##id,
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
};

const struct protocol *protocol_get(unsigned int id)
{
	for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
		if (protocols[i]->id == id)
			return protocols[i];
	return NULL;
}

int protocol_span(const struct txn_event *ev, size_t len, const struct protocol_ctx *ctx, struct span *s)
{
	const struct protocol *p = protocol_get(ev->proto);
	if (!p)
		return -EPROTONOSUPPORT;
	void *state = NULL;
	if (p->conn_new) {
		state = protocol_conn_state(p, ev);
		if (!state)
			return -ENOMEM;
	}
	return p->span(ev, len, state, ctx, s);
}
