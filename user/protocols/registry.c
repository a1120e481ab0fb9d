/* The agent's protocols, from the one protocol list. */
#include <errno.h>
#include <stddef.h>

#include "protocol.h"
#include "tls_attrs.h"

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

void protocol_report_all(void)
{
	for (size_t i = 0; i < sizeof(protocols) / sizeof(protocols[0]); i++)
		if (protocols[i]->report)
			protocols[i]->report();
}

int protocol_span(const struct txn_event *ev, size_t len, const struct protocol_ctx *ctx, struct span *s)
{
	if (len < WEFT_TXN_HDR_SIZE) /* the header's fields (proto, conn_opened) are read before span() */
		return -EINVAL;
	if (len > sizeof(*ev)) /* lengths past data[] would index beyond it */
		len = sizeof(*ev);
	const struct protocol *p = protocol_get(ev->proto);
	if (!p || !p->span)
		return -EPROTONOSUPPORT;
	void *state = NULL;
	if (p->conn_new) {
		state = protocol_conn_state(p, ev->pid, ev->fd, ev->tls, ev);
		if (!state)
			return -ENOMEM;
	}
	int err = p->span(ev, len, state, ctx, s);
	if (err)
		return err;
	/* Every protocol's span over TLS: what the connection's ServerHello chose. */
	return span_add_tls(&s->attrs, ev->tls_version, ev->tls_cipher);
}

int protocol_stream_event(const void *ev, size_t len, const struct protocol_ctx *ctx)
{
	if (len < sizeof(uint32_t))
		return -EINVAL;
	uint32_t type = *(const uint32_t *)ev;
	if (type == WEFT_EV_STREAM_CHUNK) {
		const struct stream_chunk_event *c = ev;
		if (len < WEFT_STREAM_HDR_SIZE || c->len > len - WEFT_STREAM_HDR_SIZE)
			return -EINVAL;
		const struct protocol *p = protocol_get(c->proto);
		if (!p || !p->stream_chunk || !p->conn_new)
			return -EPROTONOSUPPORT;
		void *state = protocol_conn_state(p, c->pid, c->fd, false /* a stream starts its state at STREAM_F_START */, c);
		if (!state)
			return -ENOMEM;
		p->stream_chunk(c, len, state, ctx);
		return 0;
	}
	if (type == WEFT_EV_H2_PARENT) {
		const struct h2_parent_event *e = ev;
		if (len < sizeof(*e))
			return -EINVAL;
		const struct protocol *p = protocol_get(WEFT_PROTO_HTTP2);
		if (!p || !p->stream_parent)
			return -EPROTONOSUPPORT;
		void *state = protocol_conn_state(p, e->pid, e->fd, false, NULL);
		if (!state)
			return -ENOMEM;
		p->stream_parent(e, state);
		return 0;
	}
	const struct stream_inject_event *i = ev;
	if (len < sizeof(*i))
		return -EINVAL;
	const struct protocol *p = protocol_get(WEFT_PROTO_HTTP2);
	if (!p || !p->stream_injected)
		return -EPROTONOSUPPORT;
	void *state = protocol_conn_state(p, i->pid, i->fd, false, NULL) /* sk_msg never injects into TLS */;
	if (!state)
		return -ENOMEM;
	p->stream_injected(i, state);
	return 0;
}
