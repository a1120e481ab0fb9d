/* What the agent needs of a protocol: a small interface each
 * user/protocols/<id>/ implements as `const struct protocol protocol_<id>`,
 * listed by the one protocol list (bpf/abi/protocols.def) in registry.c.
 * The kernel side of a protocol is bpf/protocols/<id>.bpf.h. */
#ifndef WEFT_PROTOCOLS_PROTOCOL_H
#define WEFT_PROTOCOLS_PROTOCOL_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi/weft.h"
#include "db.h"
#include "span.h"

/* What every protocol's span builder may use. */
struct protocol_ctx {
	int64_t mono_to_real;                /* CLOCK_MONOTONIC -> unix time, ns */
	enum db_statement_mode db_statement; /* --db-statement */
	/* Stream protocols: where the spans they complete go (owned by the
	 * callee from then on), and the sampler's word (user/sampling) for the
	 * roots they start (the kernel decides for the other protocols). */
	void (*emit)(void *emit_ctx, struct span *s, uint32_t pid);
	void *emit_ctx;
	uint64_t sampler_word;
};

/* span() returns this when the bytes were understood and only changed the
 * connection's state (a handshake, a prepared statement): nothing to
 * report. Equal to DB_PARSE_NO_SPAN. */
#define PROTOCOL_NO_SPAN 1

struct protocol {
	const char *name; /* "http1", as in protocols.def */
	uint8_t id;       /* enum weft_proto */
	/* An answered exchange whose end the kernel could not see (no length,
	 * the connection stays open) is complete once quiet this long. */
	uint64_t idle_ns;
	/* State kept between the exchanges of one connection, fed them in
	 * order (prepared statements, the database in use); NULL: stateless.
	 * The kernel reports the connection's close for protocols with
	 * WEFT_PROTO_F_CONN_STATE in protocols.def. */
	void *(*conn_new)(const void *first); /* the connection's first event: a struct txn_event,
					       * or for stream protocols a struct stream_chunk_event */
	void (*conn_free)(void *state);
	/* The connection closed (before conn_free): what it left unfinished
	 * may still make spans (ctx->emit). NULL: nothing to do. */
	void (*conn_closed)(void *state, const struct protocol_ctx *ctx);
	/* The span of one exchange (ev of len bytes) into s (new, from
	 * span_new): 0, PROTOCOL_NO_SPAN, or a negative errno when the bytes
	 * are not parsable (the agent counts it). state: conn_new's. */
	int (*span)(const struct txn_event *ev, size_t len, void *state, const struct protocol_ctx *ctx,
		    struct span *s);
	/* Stream protocols (WEFT_PROTO_F_STREAM), instead of span: a
	 * connection's bytes in order (abi/stream.h) and what sk_msg injected
	 * into its requests; spans go to ctx->emit. */
	void (*stream_chunk)(const struct stream_chunk_event *ev, size_t len, void *state,
			     const struct protocol_ctx *ctx);
	void (*stream_injected)(const struct stream_inject_event *ev, void *state);
	/* The request a client stream is made for (a Go uprobe's finding). */
	void (*stream_parent)(const struct h2_parent_event *ev, void *state);
	/* Logs what the protocol counted, at exit; NULL: nothing to say. */
	void (*report)(void);
};

/* The protocol of id (enum weft_proto), or NULL. */
const struct protocol *protocol_get(unsigned int id);

/* Each protocol's report(), at exit. */
void protocol_report_all(void);

/* The span of an exchange, through its protocol (with its connection's
 * state): as struct protocol's span(); -EPROTONOSUPPORT for an unknown
 * protocol, -EINVAL for an event shorter than its header. */
int protocol_span(const struct txn_event *ev, size_t len, const struct protocol_ctx *ctx, struct span *s);

/* Per-connection state (conn_state.c): a connection closed, a process
 * exited, or everything (tests, exit). */
void protocol_conn_closed(uint32_t pid, uint32_t fd, const struct protocol_ctx *ctx);
void protocol_forget_pid(uint32_t pid);
void protocol_conns_clear(void);
size_t protocol_conns_count(void);
/* The state of connection (pid, fd) for protocol p: a new one when there
 * is none or it belongs to another protocol (the fd was reused). NULL when
 * p is stateless or on allocation failure. tls: the connection's bytes are
 * TLS plaintext (the state of what came before TLS began is another). */
void *protocol_conn_state(const struct protocol *p, uint32_t pid, uint32_t fd, bool tls, const void *first);

/* A stream protocol's event (WEFT_EV_STREAM_CHUNK or _INJECT) to its
 * protocol, with its connection's state. -EPROTONOSUPPORT for an unknown
 * or not-stream protocol, -EINVAL for a short event. */
int protocol_stream_event(const void *ev, size_t len, const struct protocol_ctx *ctx);

#endif
