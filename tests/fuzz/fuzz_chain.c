/* libFuzzer harness for the agent's whole per-event chain: kernel events
 * of every type, as the ring buffer callback receives them (any length,
 * any field) -> the protocols (registry, per-connection state, every
 * parser, HTTP/2 included) -> spans -> the OTLP encoding, decoded with
 * protobuf-c and compared field by field. The events are dispatched as
 * user/agent/agent.c's on_event does (the protocol side of it: the rest
 * needs the kernel).
 *
 * Input: records, each
 *   b0: bits 0-2 the event's type (TXN, STREAM_CHUNK, STREAM_INJECT,
 *       CONN_CLOSE, PROC_EXIT, PROC_EXEC, or the first 4 data bytes as
 *       they are); bit 3 the event is made plausible (a known protocol, a
 *       few processes and fds, lengths that agree with the event's size),
 *       so that the parsers see it; else it is passed as it comes
 *   b1-b2: the event's size after its 4-byte type (little endian, cut
 *       at the largest event and at the end of the input), then its bytes
 * The first 16 bytes of the input are the service name of every process
 * (it comes from the traced process's OTEL_SERVICE_NAME); the 17th says
 * --db-statement.
 *
 * Checked: no memory error, leak or undefined behaviour (every event is
 * allocated at its exact size); each span is encoded and decoded back
 * with the same ids, name, kind, times, status and attributes; every
 * string in the encoding is valid UTF-8 (a collector rejects the whole
 * request otherwise); everything is freed at the end (protocol state
 * included). Seeds: tests/fuzz/make_chain_seeds. Built and run by
 * tests/fuzz/run_chain. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "abi/weft.h"
#include "otlp_encode.h"
#include "protocol.h"
#include "sampler.h"
#include "span.h"

#define CHECK(cond)                                                               \
	do {                                                                      \
		if (!(cond)) {                                                    \
			fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__); \
			abort();                                                  \
		}                                                                 \
	} while (0)

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;

#define SPANS_MAX 64
#define PIDS 4

struct chain {
	struct span *spans[SPANS_MAX];
	size_t n;
	uint64_t dropped; /* spans past SPANS_MAX: freed unchecked */
	enum db_statement_mode db_statement;
	struct resource res[PIDS];
};

static uint32_t pid_of(uint32_t raw)
{
	return 100 + raw % PIDS;
}

static void keep_span(struct chain *ch, struct span *s, uint32_t pid)
{
	CHECK(s->name);
	/* the agent's deliver_span: the process's resource */
	s->resource = pid >= 100 && pid < 100 + PIDS ? resource_get(&ch->res[pid - 100]) : NULL;
	if (ch->n == SPANS_MAX) {
		ch->dropped++;
		span_free(s);
		return;
	}
	ch->spans[ch->n++] = s;
}

static void emit(void *ctx, struct span *s, uint32_t pid)
{
	keep_span(ctx, s, pid);
}

/* RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	if (c < 0x80)
		return 1;
	size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
	    (c == 0xf4 && p[1] > 0x8f))
		return 0;
	return len;
}

static void check_utf8(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t n = strlen(s);
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		CHECK(k);
		i += k;
	}
}

/* The exported form of a string: each byte that does not begin a valid
 * UTF-8 sequence replaced by '?'. Equal to the input for valid text. */
static void expect_str(const char *got, const char *want)
{
	size_t n = strlen(want);
	CHECK(strlen(got) == n);
	const uint8_t *w = (const uint8_t *)want;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(w + i, n - i);
		if (!k) {
			CHECK(got[i] == '?');
			i++;
			continue;
		}
		CHECK(!memcmp(got + i, want + i, k));
		i += k;
	}
	check_utf8(got);
}

static void check_attrs(const struct attr_list *l, bool resource, KV **kvs, size_t n)
{
	size_t j = 0;
	for (size_t i = 0; i < l->len; i++) {
		const struct attr *a = &l->items[i];
		if (otlp_attr_internal(a->key, resource))
			continue;
		CHECK(j < n);
		KV *kv = kvs[j++];
		CHECK(kv->value);
		expect_str(kv->key, a->key);
		switch (a->type) {
		case ATTR_STR:
			CHECK(kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
			expect_str(kv->value->string_value, a->str);
			break;
		case ATTR_INT:
			CHECK(kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE &&
			      kv->value->int_value == a->i);
			break;
		case ATTR_BOOL:
			CHECK(kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE &&
			      kv->value->bool_value == a->b);
			break;
		case ATTR_DOUBLE:
			CHECK(kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE &&
			      !memcmp(&kv->value->double_value, &a->d, sizeof(a->d)));
			break;
		}
	}
	CHECK(j == n);
}

static bool zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void check_span(const struct span *s, const Opentelemetry__Proto__Trace__V1__Span *p)
{
	CHECK(p->trace_id.len == 16 && !memcmp(p->trace_id.data, s->trace_id, 16));
	CHECK(p->span_id.len == 8 && !memcmp(p->span_id.data, s->span_id, 8));
	if (zero(s->parent_span_id, 8))
		CHECK(p->parent_span_id.len == 0);
	else
		CHECK(p->parent_span_id.len == 8 && !memcmp(p->parent_span_id.data, s->parent_span_id, 8));
	expect_str(p->name, s->name);
	CHECK((int)p->kind == (int)s->kind);
	CHECK(p->start_time_unix_nano == s->start_ns && p->end_time_unix_nano == s->end_ns);
	CHECK(p->flags == s->trace_flags);
	expect_str(p->trace_state, s->trace_state ? s->trace_state : "");
	if (s->status || s->status_message) {
		CHECK(p->status && (int)p->status->code == (int)s->status);
		expect_str(p->status->message, s->status_message ? s->status_message : "");
	} else {
		CHECK(!p->status);
	}
	check_attrs(&s->attrs, false, p->attributes, p->n_attributes);
}

/* The spans of the input, as the exporter sends them: one request. */
static void encode_and_check(struct chain *ch)
{
	if (!ch->n)
		return;
	uint8_t *out = NULL;
	size_t outlen = 0;
	CHECK(otlp_encode_spans((const struct span *const *)ch->spans, ch->n, &out, &outlen) == 0);
	Req *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, outlen, out);
	CHECK(req);
	/* one ResourceSpans per resource, in order of first appearance */
	const struct resource *order[PIDS + 1];
	size_t norder = 0, seen = 0;
	for (size_t i = 0; i < ch->n; i++) {
		size_t k = 0;
		while (k < norder && order[k] != ch->spans[i]->resource)
			k++;
		if (k == norder)
			order[norder++] = ch->spans[i]->resource;
	}
	CHECK(req->n_resource_spans == norder);
	for (size_t k = 0; k < norder; k++) {
		Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[k];
		CHECK(rs->n_scope_spans == 1);
		Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[0];
		const struct resource *r = order[k];
		size_t j = 0;
		for (size_t i = 0; i < ch->n; i++) {
			if (ch->spans[i]->resource != r)
				continue;
			CHECK(j < ss->n_spans);
			check_span(ch->spans[i], ss->spans[j++]);
		}
		CHECK(j == ss->n_spans);
		if (r)
			check_attrs(&r->attrs, true, rs->resource ? rs->resource->attributes : NULL,
				    rs->resource ? rs->resource->n_attributes : 0);
		seen += j;
	}
	CHECK(seen == ch->n);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	free(out);
}

/* agent.c's deliver_txn, minus sampling (every span is kept here). */
static void on_txn(struct chain *ch, const struct txn_event *ev, size_t len, const struct protocol_ctx *pc)
{
	struct span *s = span_new();
	CHECK(s);
	int rc = protocol_span(ev, len, pc, s);
	CHECK(rc <= PROTOCOL_NO_SPAN);
	if (rc != 0) {
		span_free(s);
		return;
	}
	keep_span(ch, s, len >= 8 ? ev->pid : 0);
}

/* agent.c's on_event, the protocols' part. */
static void on_event(struct chain *ch, void *data, size_t len)
{
	struct protocol_ctx pc = { .mono_to_real = 1700000000000000000ll, .db_statement = ch->db_statement,
				   .emit = emit, .emit_ctx = ch, .sampler_word = SAMPLER_RANDOMNESS_LIMIT };
	if (len < sizeof(uint32_t))
		return;
	switch (*(uint32_t *)data) {
	case WEFT_EV_TXN:
		on_txn(ch, data, len, &pc);
		break;
	case WEFT_EV_STREAM_CHUNK:
	case WEFT_EV_STREAM_INJECT:
		(void)protocol_stream_event(data, len, &pc);
		break;
	case WEFT_EV_PROC_EXIT:
	case WEFT_EV_PROC_EXEC:
		if (len >= sizeof(struct proc_exit_event))
			protocol_forget_pid(((struct proc_exit_event *)data)->pid);
		break;
	case WEFT_EV_CONN_CLOSE:
		if (len >= sizeof(struct conn_close_event))
			protocol_conn_closed(((struct conn_close_event *)data)->pid,
					     ((struct conn_close_event *)data)->fd, &pc);
		break;
	}
}

static const uint32_t types[] = { WEFT_EV_TXN,	     WEFT_EV_STREAM_CHUNK, WEFT_EV_STREAM_INJECT,
				   WEFT_EV_CONN_CLOSE, WEFT_EV_PROC_EXIT,    WEFT_EV_PROC_EXEC };

/* Fields a plausible event has: a known protocol, one of a few processes
 * and fds, lengths within the event. */
static void plausible(uint8_t *ev, size_t len)
{
	uint32_t type = *(uint32_t *)ev;
	if (type == WEFT_EV_TXN && len >= WEFT_TXN_HDR_SIZE) {
		struct txn_event *t = (struct txn_event *)ev;
		size_t avail = len - WEFT_TXN_HDR_SIZE;
		t->pid = pid_of(t->pid);
		t->fd %= 8;
		if (!t->proto || t->proto > 5) /* the exchange protocols: 1 to 5 */
			t->proto = 1 + t->proto % 5;
		if (t->req_len > avail)
			t->req_len = (uint16_t)avail;
		if (t->resp_len > avail - t->req_len)
			t->resp_len = (uint16_t)(avail - t->req_len);
	} else if (type == WEFT_EV_STREAM_CHUNK && len >= WEFT_STREAM_HDR_SIZE) {
		struct stream_chunk_event *c = (struct stream_chunk_event *)ev;
		c->pid = pid_of(c->pid);
		c->fd %= 8;
		c->proto = WEFT_PROTO_HTTP2;
		if (c->len > len - WEFT_STREAM_HDR_SIZE)
			c->len = (uint32_t)(len - WEFT_STREAM_HDR_SIZE);
	} else if (type == WEFT_EV_STREAM_INJECT && len >= sizeof(struct stream_inject_event)) {
		struct stream_inject_event *i = (struct stream_inject_event *)ev;
		i->pid = pid_of(i->pid);
		i->fd %= 8;
	} else if (type == WEFT_EV_CONN_CLOSE && len >= sizeof(struct conn_close_event)) {
		struct conn_close_event *c = (struct conn_close_event *)ev;
		c->pid = pid_of(c->pid);
		c->fd %= 8;
	} else if ((type == WEFT_EV_PROC_EXIT || type == WEFT_EV_PROC_EXEC) && len >= sizeof(struct proc_exit_event)) {
		((struct proc_exit_event *)ev)->pid = pid_of(((struct proc_exit_event *)ev)->pid);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct chain ch;
	char svc[17] = "";
	size_t max = sizeof(struct txn_event) > sizeof(struct stream_chunk_event) ? sizeof(struct txn_event)
										     : sizeof(struct stream_chunk_event);
	if (size >= 17) {
		memcpy(svc, data, 16);
		ch.db_statement = (enum db_statement_mode)(data[16] % 3);
		data += 17;
		size -= 17;
	}
	for (int i = 0; i < PIDS; i++) {
		ch.res[i] = (struct resource){ .refs = 1, .pid = 100 + (uint32_t)i };
		attrs_add_str(&ch.res[i].attrs, "service.name", svc[0] ? svc : "unknown_service");
		attrs_add_int(&ch.res[i].attrs, "process.pid", 100 + i);
		attrs_add_str(&ch.res[i].attrs, OTLP_ATTR_SERVICE_FROM_PROCESS, "1");
	}
	while (size >= 3) {
		uint8_t sel = data[0];
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;
		data += 3;
		size -= 3;
		if (len > max - 4)
			len = max - 4;
		if (len > size)
			len = size;
		uint8_t *ev = malloc(4 + len); /* exactly: ASan sees a read past its end */
		CHECK(ev);
		uint32_t type = sel % 8 < 6 ? types[sel % 8] : 0;
		memcpy(ev + 4, data, len);
		if (sel % 8 < 6)
			memcpy(ev, &type, 4);
		else if (len >= 4)
			memcpy(ev, data, 4); /* whatever type the bytes say */
		else
			memset(ev, 0xff, 4);
		if (sel & 8)
			plausible(ev, 4 + len);
		on_event(&ch, ev, 4 + len);
		free(ev);
		data += len;
		size -= len;
	}
	encode_and_check(&ch);
	if (getenv("FUZZ_CHAIN_PRINT")) /* what a seed makes */
		for (size_t i = 0; i < ch.n; i++)
			fprintf(stderr, "span %s (%zu attributes)\n", ch.spans[i]->name, ch.spans[i]->attrs.len);
	for (size_t i = 0; i < ch.n; i++)
		span_free(ch.spans[i]);
	ch.n = 0;
	protocol_conns_clear();
	for (int i = 0; i < PIDS; i++) {
		CHECK(ch.res[i].refs == 1); /* every span's reference was returned */
		attrs_free(&ch.res[i].attrs);
	}
	return 0;
}
