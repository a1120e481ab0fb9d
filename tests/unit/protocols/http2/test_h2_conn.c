/* The agent's HTTP/2 connection (user/protocols/http2/): frames as the
 * kernel forwards them (DATA payloads cut to 5 bytes), header blocks coded
 * by nghttp2's own deflater (dynamic table, Huffman), both directions, and
 * the spans that come out, field by field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "h2_conn.h"
#include "span.h"

#define MAX_SPANS 16
static struct span *spans[MAX_SPANS];
static size_t n_spans;

static void collect(void *ctx, struct span *s, uint32_t pid)
{
	if (n_spans < MAX_SPANS)
		spans[n_spans++] = s;
	else
		span_free(s);
}

static const struct protocol_ctx pctx = { .emit = collect, .sampler_word = 0 };

/* One connection under test: the traced side's role, a deflater per
 * direction (as the peers' encoders), the bytes of the next event per
 * direction, sequence numbers. */
struct fixture {
	struct h2_conn *c;
	uint8_t role;
	nghttp2_hd_deflater *hd[2];
	uint8_t out[2][16384];
	size_t out_len[2];
	uint32_t seq[2];
	uint64_t ts;
};

static struct fixture fx;

static int setup(void **st)
{
	memset(&fx, 0, sizeof(fx));
	fx.c = h2_conn_new();
	assert_non_null(fx.c);
	for (int i = 0; i < 2; i++)
		assert_int_equal(nghttp2_hd_deflate_new(&fx.hd[i], 4096), 0);
	fx.ts = 1000000;
	n_spans = 0;
	return 0;
}

static int teardown(void **st)
{
	h2_conn_free(fx.c);
	for (int i = 0; i < 2; i++)
		nghttp2_hd_deflate_del(fx.hd[i]);
	for (size_t i = 0; i < n_spans; i++)
		span_free(spans[i]);
	n_spans = 0;
	return 0;
}

static void put(int dir, const void *p, size_t n)
{
	assert_true(fx.out_len[dir] + n <= sizeof(fx.out[dir]));
	memcpy(fx.out[dir] + fx.out_len[dir], p, n);
	fx.out_len[dir] += n;
}

static void frame_hdr(int dir, uint32_t len, uint8_t type, uint8_t flags, uint32_t sid)
{
	uint8_t h[9] = { len >> 16, len >> 8, len, type, flags, sid >> 24, sid >> 16, sid >> 8, sid };
	put(dir, h, 9);
}

static void preface(int dir)
{
	put(dir, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	frame_hdr(dir, 6, 4, 0, 0); /* SETTINGS: MAX_CONCURRENT_STREAMS 100 */
	put(dir, "\x00\x03\x00\x00\x00\x64", 6);
}

/* A header block, HEADERS [+ CONTINUATION when split]. Pairs name, value. */
static void headers(int dir, uint32_t sid, bool end_stream, size_t split, const char *const *nv, size_t n)
{
	nghttp2_nv list[16];
	for (size_t i = 0; i < n; i++)
		list[i] = (nghttp2_nv){ (uint8_t *)nv[2 * i], (uint8_t *)nv[2 * i + 1], strlen(nv[2 * i]),
					strlen(nv[2 * i + 1]), NGHTTP2_NV_FLAG_NONE };
	uint8_t block[4096];
	ssize_t len = nghttp2_hd_deflate_hd(fx.hd[dir], block, sizeof(block), list, n);
	assert_true(len > 0);
	if (!split || (size_t)len <= split) {
		frame_hdr(dir, len, 1, 0x4 | (end_stream ? 1 : 0), sid);
		put(dir, block, len);
		return;
	}
	frame_hdr(dir, split, 1, end_stream ? 1 : 0, sid);
	put(dir, block, split);
	frame_hdr(dir, len - split, 9, 0x4, sid); /* CONTINUATION, END_HEADERS */
	put(dir, block + split, len - split);
}

/* A DATA frame of len payload bytes, as the kernel forwards it: its first
 * 5 bytes only. */
static void data(int dir, uint32_t sid, uint32_t len, bool end_stream)
{
	frame_hdr(dir, len, 0, end_stream ? 1 : 0, sid);
	uint8_t keep[5] = { 0, 0, 0, 0, len > 5 ? len - 5 : 0 };
	put(dir, keep, len < 5 ? len : 5);
}

static void rst(int dir, uint32_t sid, uint32_t code)
{
	frame_hdr(dir, 4, 3, 0, sid);
	uint8_t c[4] = { code >> 24, code >> 16, code >> 8, code };
	put(dir, c, 4);
}

/* Sends what was put for dir as one event (flags: STREAM_F_*). */
static void deliver_flags(int dir, uint8_t flags)
{
	size_t size = WEFT_STREAM_HDR_SIZE + fx.out_len[dir];
	struct stream_chunk_event *ev = calloc(1, sizeof(*ev));
	assert_non_null(ev);
	ev->type = WEFT_EV_STREAM_CHUNK;
	ev->pid = 42;
	ev->tid = 42;
	ev->fd = 7;
	ev->ts_ns = fx.ts += 1000;
	ev->sk = 0xffff888800001000ULL;
	ev->addr.family = AF_INET;
	ev->addr.lport = fx.role == WEFT_ROLE_SERVER ? 50051 : 40000;
	ev->addr.rport = fx.role == WEFT_ROLE_SERVER ? 40000 : 50051;
	memcpy(ev->addr.laddr, "\x7f\x00\x00\x01", 4);
	memcpy(ev->addr.raddr, "\x0a\x00\x00\x02", 4);
	ev->orig_len = fx.out_len[dir];
	ev->len = fx.out_len[dir];
	ev->seq = fx.seq[dir]++;
	ev->dir = dir;
	ev->role = fx.role;
	ev->proto = WEFT_PROTO_HTTP2;
	ev->flags = flags;
	memcpy(ev->data, fx.out[dir], fx.out_len[dir]);
	(void)size;
	h2_conn_chunk(fx.c, ev, &pctx);
	free(ev);
	fx.out_len[dir] = 0;
}

static void deliver(int dir)
{
	deliver_flags(dir, fx.seq[dir] == 0 ? STREAM_F_START : 0);
}

static const char *attr_str(const struct span *s, const char *key)
{
	const struct attr *a = attrs_get(&s->attrs, key);
	return a && a->type == ATTR_STR ? a->str : NULL;
}

static int64_t attr_int(const struct span *s, const char *key)
{
	const struct attr *a = attrs_get(&s->attrs, key);
	return a && a->type == ATTR_INT ? a->i : -999;
}

#define R 0 /* the traced process reads */
#define W 1 /* and writes */

static const char *const grpc_req[] = {
	":method", "POST", ":scheme", "http", ":path", "/shop.Cart/Add", ":authority", "cart:50051",
	"content-type", "application/grpc", "te", "trailers", "user-agent", "grpc-go/1.33.0",
	"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
};
static const char *const resp_200[] = { ":status", "200", "content-type", "application/grpc" };
static const char *const trailers_ok[] = { "grpc-status", "0" };

static void test_grpc_server_unary(void **st)
{
	fx.role = WEFT_ROLE_SERVER;
	preface(R);
	headers(R, 1, false, 0, grpc_req, 8);
	data(R, 1, 12, true);
	deliver(R);
	frame_hdr(W, 0, 4, 0, 0); /* the server's SETTINGS */
	headers(W, 1, false, 0, resp_200, 2);
	data(W, 1, 30, false);
	headers(W, 1, true, 0, trailers_ok, 1);
	deliver(W);
	assert_int_equal(n_spans, 1);
	struct span *s = spans[0];
	assert_string_equal(s->name, "shop.Cart/Add");
	assert_int_equal(s->kind, SPAN_KIND_SERVER);
	assert_int_equal(s->status, SPAN_STATUS_UNSET);
	assert_string_equal(attr_str(s, "rpc.system"), "grpc");
	assert_string_equal(attr_str(s, "rpc.service"), "shop.Cart");
	assert_string_equal(attr_str(s, "rpc.method"), "Add");
	assert_int_equal(attr_int(s, "rpc.grpc.status_code"), 0);
	assert_string_equal(attr_str(s, "network.protocol.version"), "2");
	assert_string_equal(attr_str(s, "server.address"), "cart");
	assert_int_equal(attr_int(s, "server.port"), 50051);
	assert_string_equal(attr_str(s, "client.address"), "10.0.0.2");
	assert_string_equal(attr_str(s, "user_agent.original"), "grpc-go/1.33.0");
	/* The caller's context. */
	assert_memory_equal(s->trace_id, "\x0a\xf7\x65\x19\x16\xcd\x43\xdd\x84\x48\xeb\x21\x1c\x80\x31\x9c", 16);
	assert_memory_equal(s->parent_span_id, "\xb7\xad\x6b\x71\x69\x20\x33\x31", 8);
	assert_true(s->end_ns > s->start_ns);
}

static void test_trailers_only_error_and_interleaved_streams(void **st)
{
	static const char *const trailers_only[] = { ":status", "200", "content-type", "application/grpc",
						     "grpc-status", "12", "grpc-message", "unknown method" };
	static const char *const not_found[] = { "grpc-status", "5", "grpc-message", "no cart" };
	fx.role = WEFT_ROLE_SERVER;
	preface(R);
	headers(R, 1, false, 0, grpc_req, 7); /* no traceparent: a root */
	data(R, 1, 7, true);
	headers(R, 3, false, 0, grpc_req, 7); /* the dynamic table serves this one */
	data(R, 3, 7, true);
	deliver(R);
	/* Stream 3 answers first, trailers-only; then stream 1 with NOT_FOUND. */
	headers(W, 3, true, 0, trailers_only, 4);
	deliver(W);
	assert_int_equal(n_spans, 1);
	headers(W, 1, false, 0, resp_200, 2);
	headers(W, 1, true, 0, not_found, 2);
	deliver(W);
	assert_int_equal(n_spans, 2);
	assert_int_equal(attr_int(spans[0], "rpc.grpc.status_code"), 12);
	assert_int_equal(spans[0]->status, SPAN_STATUS_ERROR); /* UNIMPLEMENTED: a server error */
	assert_string_equal(attr_str(spans[0], "error.type"), "12");
	assert_string_equal(spans[0]->status_message, "unknown method");
	assert_int_equal(attr_int(spans[1], "rpc.grpc.status_code"), 5);
	assert_int_equal(spans[1]->status, SPAN_STATUS_UNSET); /* NOT_FOUND is not the server's error */
	static const uint8_t zero[8];
	assert_memory_equal(spans[0]->parent_span_id, zero, 8);
	assert_memory_not_equal(spans[0]->trace_id, spans[1]->trace_id, 16);
}

static void test_client_continuation_injection_and_rst(void **st)
{
	static const char *const req[] = {
		":method", "GET", ":scheme", "http", ":path", "/items?id=3&X-Goog-Signature=abc", ":authority", "api:8080",
		"x-padding-1", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"x-padding-2", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	};
	static const char *const r404[] = { ":status", "404" };
	fx.role = WEFT_ROLE_CLIENT;
	/* sk_msg's record for stream 1 comes before the bytes. */
	struct stream_inject_event inj = { .type = WEFT_EV_STREAM_INJECT, .pid = 42, .fd = 7, .stream_id = 1,
					   .trace_flags = 1 };
	memset(inj.trace_id, 0x11, 16);
	memset(inj.span_id, 0x22, 8);
	memset(inj.parent_span_id, 0x33, 8);
	h2_conn_injected(fx.c, &inj);
	preface(W);
	headers(W, 1, true, 20, req, 6); /* split: HEADERS + CONTINUATION */
	headers(W, 3, true, 0, req, 4);
	deliver(W);
	frame_hdr(R, 0, 4, 0, 0);
	headers(R, 1, true, 0, r404, 1);
	rst(R, 3, 8); /* CANCEL */
	deliver(R);
	assert_int_equal(n_spans, 2);
	struct span *a = spans[0], *b = spans[1];
	assert_int_equal(a->kind, SPAN_KIND_CLIENT);
	assert_string_equal(a->name, "GET /items");
	assert_string_equal(attr_str(a, "url.full"), "http://api:8080/items?id=3&X-Goog-Signature=REDACTED");
	assert_int_equal(attr_int(a, "http.response.status_code"), 404);
	assert_int_equal(a->status, SPAN_STATUS_ERROR); /* a client's 4xx */
	/* The ids that went on the wire. */
	assert_memory_equal(a->trace_id, "\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11\x11", 16);
	assert_memory_equal(a->span_id, "\x22\x22\x22\x22\x22\x22\x22\x22", 8);
	assert_memory_equal(a->parent_span_id, "\x33\x33\x33\x33\x33\x33\x33\x33", 8);
	/* Stream 3: reset before an answer. */
	assert_int_equal(b->status, SPAN_STATUS_ERROR);
	assert_string_equal(attr_str(b, "error.type"), "stream_reset");
	assert_int_equal(attr_int(b, "http2.rst_stream.error_code"), 8);
	assert_memory_not_equal(b->trace_id, a->trace_id, 16);
}

static void test_gap_gives_up(void **st)
{
	struct h2_stats before, after;
	h2_get_stats(&before);
	fx.role = WEFT_ROLE_SERVER;
	preface(R);
	headers(R, 1, true, 0, grpc_req, 7);
	deliver(R);
	fx.seq[R]++; /* an event lost */
	headers(R, 3, true, 0, grpc_req, 7);
	deliver(R);
	headers(W, 1, true, 0, resp_200, 2);
	deliver(W);
	assert_int_equal(n_spans, 0); /* no span rather than a wrong one */
	h2_get_stats(&after);
	assert_int_equal(after.conns_lost, before.conns_lost + 1);
}

static void test_midway_is_not_decoded(void **st)
{
	struct h2_stats before, after;
	h2_get_stats(&before);
	fx.role = WEFT_ROLE_UNKNOWN;
	headers(R, 5, true, 0, grpc_req, 7);
	deliver_flags(R, STREAM_F_START | STREAM_F_MIDWAY);
	headers(W, 5, true, 0, trailers_ok, 1);
	deliver_flags(W, STREAM_F_START | STREAM_F_MIDWAY);
	assert_int_equal(n_spans, 0);
	h2_get_stats(&after);
	assert_int_equal(after.conns_midway, before.conns_midway + 1);
}

static void test_frames_cut_between_events(void **st)
{
	fx.role = WEFT_ROLE_SERVER;
	preface(R);
	headers(R, 1, false, 0, grpc_req, 7);
	data(R, 1, 100, true);
	/* Deliver the read side one byte per event. */
	uint8_t all[4096];
	size_t n = fx.out_len[R];
	memcpy(all, fx.out[R], n);
	fx.out_len[R] = 0;
	for (size_t i = 0; i < n; i++) {
		put(R, all + i, 1);
		deliver(R);
	}
	headers(W, 1, false, 0, resp_200, 2);
	headers(W, 1, true, 0, trailers_ok, 1);
	deliver(W);
	assert_int_equal(n_spans, 1);
	assert_string_equal(spans[0]->name, "shop.Cart/Add");
}

static void test_close_ends_unanswered_streams(void **st)
{
	fx.role = WEFT_ROLE_CLIENT;
	preface(W);
	headers(W, 1, true, 0, grpc_req, 7);
	headers(W, 3, true, 0, grpc_req, 7);
	deliver(W);
	frame_hdr(R, 0, 4, 0, 0);
	headers(R, 1, false, 0, resp_200, 2); /* stream 1 answered in part, 3 not at all */
	deliver(R);
	assert_int_equal(n_spans, 0);
	h2_conn_closed(fx.c, &pctx);
	assert_int_equal(n_spans, 2);
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(spans[i]->status, SPAN_STATUS_ERROR);
		assert_string_equal(attr_str(spans[i], "error.type"), "no_response");
		assert_string_equal(spans[i]->status_message, "connection closed before the response ended");
		assert_true(spans[i]->end_ns >= spans[i]->start_ns);
	}
	h2_conn_closed(fx.c, &pctx); /* nothing left */
	assert_int_equal(n_spans, 2);
}

static void test_garbage_after_preface(void **st)
{
	fx.role = WEFT_ROLE_SERVER;
	preface(R);
	srand(7);
	for (int i = 0; i < 2000; i++) {
		uint8_t b = rand();
		put(R, &b, 1);
	}
	deliver(R);
	headers(W, 1, true, 0, resp_200, 2);
	deliver(W);
	assert_int_equal(n_spans, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_grpc_server_unary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trailers_only_error_and_interleaved_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_continuation_injection_and_rst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gap_gives_up, setup, teardown),
		cmocka_unit_test_setup_teardown(test_midway_is_not_decoded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frames_cut_between_events, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_ends_unanswered_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_after_preface, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
