/* HTTP/2 client streams and their in-process parents (h2_conn_parent, the
 * Go uprobe's h2_parent_event), and the gRPC status of a stream the client
 * reset at its deadline: a client connection is fed as the kernel sends it
 * (stream_chunk_events of real frames, headers HPACK-coded by nghttp2's
 * deflater), spans are collected from the emit callback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>

#include "h2_conn.h"
#include "span.h"

#define SK 0xffff888012345678ull
#define MS 1000000ull

struct conn {
	struct h2_conn *c;
	nghttp2_hd_deflater *req_hd, *resp_hd;
	uint32_t seq[2];
	struct span *spans[8];
	int n;
	struct protocol_ctx ctx;
	uint64_t sk;
};

static void emit(void *p, struct span *s, uint32_t pid)
{
	struct conn *k = p;
	assert_true(k->n < 8);
	k->spans[k->n++] = s;
}

/* One chunk of direction dir (1: the client writes) at time ts. */
static void chunk(struct conn *k, int dir, uint64_t ts, const uint8_t *data, size_t len)
{
	struct stream_chunk_event *ev = calloc(1, sizeof(*ev));
	assert_non_null(ev);
	ev->type = WEFT_EV_STREAM_CHUNK;
	ev->pid = 42;
	ev->fd = 7;
	ev->ts_ns = ts;
	ev->sk = k->sk;
	ev->addr.family = 2; /* AF_INET */
	ev->addr.rport = 50051;
	ev->orig_len = ev->len = (uint32_t)len;
	ev->seq = k->seq[dir]++;
	ev->dir = (uint8_t)dir;
	ev->role = WEFT_ROLE_CLIENT;
	ev->proto = WEFT_PROTO_HTTP2;
	ev->flags = ev->seq == 0 ? STREAM_F_START : 0;
	memcpy(ev->data, data, len);
	h2_conn_chunk(k->c, ev, &k->ctx);
	free(ev);
}

static size_t frame(uint8_t *out, uint8_t type, uint8_t flags, uint32_t sid, const uint8_t *p, size_t n)
{
	out[0] = (uint8_t)(n >> 16);
	out[1] = (uint8_t)(n >> 8);
	out[2] = (uint8_t)n;
	out[3] = type;
	out[4] = flags;
	out[5] = (uint8_t)(sid >> 24);
	out[6] = (uint8_t)(sid >> 16);
	out[7] = (uint8_t)(sid >> 8);
	out[8] = (uint8_t)sid;
	if (n)
		memcpy(out + 9, p, n);
	return 9 + n;
}

/* A HEADERS frame (END_HEADERS) of name/value pairs. */
static size_t headers(nghttp2_hd_deflater *hd, uint8_t *out, uint32_t sid, bool end_stream, ...)
{
	nghttp2_nv nv[8];
	size_t n = 0;
	va_list ap;
	va_start(ap, end_stream);
	for (const char *name; (name = va_arg(ap, const char *)) && n < 8; n++) {
		const char *value = va_arg(ap, const char *);
		nv[n] = (nghttp2_nv){ (uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value), 0 };
	}
	va_end(ap);
	uint8_t block[1024];
	ssize_t len = nghttp2_hd_deflate_hd(hd, block, sizeof(block), nv, n);
	assert_true(len > 0);
	return frame(out, 1, 0x4 | (end_stream ? 0x1 : 0), sid, block, (size_t)len);
}

static void setup_conn(struct conn *k)
{
	memset(k, 0, sizeof(*k));
	k->c = h2_conn_new();
	k->sk = SK;
	k->ctx.emit = emit;
	k->ctx.emit_ctx = k;
	assert_int_equal(nghttp2_hd_deflate_new(&k->req_hd, 4096), 0);
	assert_int_equal(nghttp2_hd_deflate_new(&k->resp_hd, 4096), 0);
	uint8_t buf[64];
	size_t n = 24;
	memcpy(buf, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
	n += frame(buf + n, 4, 0, 0, NULL, 0); /* SETTINGS */
	chunk(k, 1, 1 * MS, buf, n);
	n = frame(buf, 4, 0, 0, NULL, 0);
	chunk(k, 0, 1 * MS, buf, n);
}

static void teardown_conn(struct conn *k)
{
	for (int i = 0; i < k->n; i++)
		span_free(k->spans[i]);
	h2_conn_free(k->c);
	nghttp2_hd_deflate_del(k->req_hd);
	nghttp2_hd_deflate_del(k->resp_hd);
}

/* The request of stream sid (with extra header name/value, or NULL). */
static void request(struct conn *k, uint32_t sid, uint64_t ts, const char *name, const char *value)
{
	uint8_t buf[2048];
	size_t n = headers(k->req_hd, buf, sid, false, ":method", "POST", ":scheme", "http", ":path",
			   "/weft.test.Greeter/Hello", ":authority", "127.0.0.1:50051", "content-type",
			   "application/grpc", name, value, NULL);
	uint8_t msg[5] = { 0, 0, 0, 0, 0 };
	n += frame(buf + n, 0, 0x1, sid, msg, 5);
	chunk(k, 1, ts, buf, n);
}

/* The response of stream sid, ending with grpc-status code. */
static void response(struct conn *k, uint32_t sid, uint64_t ts, const char *code)
{
	uint8_t buf[2048];
	size_t n = headers(k->resp_hd, buf, sid, false, ":status", "200", "content-type", "application/grpc", NULL);
	n += headers(k->resp_hd, buf + n, sid, true, "grpc-status", code, NULL);
	chunk(k, 0, ts, buf, n);
}

static struct h2_parent_event parent_event(uint64_t sk, uint32_t sid, uint8_t tag)
{
	struct h2_parent_event e = { .type = WEFT_EV_H2_PARENT, .pid = 42, .fd = 7, .stream_id = sid, .sk = sk };
	memset(e.parent.trace_id, tag, 16);
	memset(e.parent.span_id, tag + 1, 8);
	e.parent.trace_flags = 1;
	e.parent.at_ns = 1 * MS + 500; /* after the connection began (setup_conn) */
	return e;
}

static void assert_parent(const struct span *s, uint8_t tag)
{
	uint8_t t[16], p[8];
	memset(t, tag, 16);
	memset(p, tag + 1, 8);
	assert_memory_equal(s->trace_id, t, 16);
	assert_memory_equal(s->parent_span_id, p, 8);
}

static void assert_root(const struct span *s)
{
	assert_false(span_has_parent(s));
}

static void test_parent_before_headers(void **state)
{
	struct conn k;
	setup_conn(&k);
	struct h2_parent_event e = parent_event(SK, 1, 0x11);
	h2_conn_parent(k.c, &e);
	request(&k, 1, 2 * MS, NULL, NULL);
	response(&k, 1, 3 * MS, "0");
	assert_int_equal(k.n, 1);
	assert_int_equal(k.spans[0]->kind, SPAN_KIND_CLIENT);
	assert_parent(k.spans[0], 0x11);
	teardown_conn(&k);
}

static void test_parent_after_headers(void **state)
{
	struct conn k;
	setup_conn(&k);
	struct h2_stats before, after;
	h2_get_stats(&before);
	request(&k, 1, 2 * MS, NULL, NULL);
	struct h2_parent_event e = parent_event(SK, 1, 0x21);
	h2_conn_parent(k.c, &e); /* the writer goroutine was first */
	response(&k, 1, 3 * MS, "0");
	assert_int_equal(k.n, 1);
	assert_parent(k.spans[0], 0x21);
	h2_get_stats(&after);
	assert_int_equal(after.parents - before.parents, 1);
	assert_int_equal(after.parents_late - before.parents_late, 1);
	teardown_conn(&k);
}

static void test_parent_of_other_socket_or_stream(void **state)
{
	struct conn k;
	setup_conn(&k);
	struct h2_parent_event other_sk = parent_event(SK + 64, 1, 0x31), other_id = parent_event(SK, 3, 0x41);
	h2_conn_parent(k.c, &other_sk);
	h2_conn_parent(k.c, &other_id);
	request(&k, 1, 2 * MS, NULL, NULL);
	response(&k, 1, 3 * MS, "0");
	assert_int_equal(k.n, 1);
	assert_root(k.spans[0]);
	/* Stream 3 then gets its own. */
	request(&k, 3, 4 * MS, NULL, NULL);
	response(&k, 3, 5 * MS, "0");
	assert_int_equal(k.n, 2);
	assert_parent(k.spans[1], 0x41);
	teardown_conn(&k);
}

static void test_parent_after_the_stream_ended(void **state)
{
	struct conn k;
	setup_conn(&k);
	request(&k, 1, 2 * MS, NULL, NULL);
	response(&k, 1, 3 * MS, "0");
	struct h2_parent_event e = parent_event(SK, 1, 0x51);
	h2_conn_parent(k.c, &e); /* nothing to give it to: never another stream's */
	request(&k, 3, 4 * MS, NULL, NULL);
	response(&k, 3, 5 * MS, "0");
	assert_int_equal(k.n, 2);
	assert_root(k.spans[0]);
	assert_root(k.spans[1]);
	teardown_conn(&k);
}

static void test_app_traceparent_wins(void **state)
{
	struct conn k;
	setup_conn(&k);
	struct h2_parent_event e = parent_event(SK, 1, 0x61);
	h2_conn_parent(k.c, &e);
	request(&k, 1, 2 * MS, "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	response(&k, 1, 3 * MS, "0");
	assert_int_equal(k.n, 1);
	char hex[33];
	hex_encode(k.spans[0]->trace_id, 16, hex);
	assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
	teardown_conn(&k);
}

/* The client resets stream 1 at t ms after its HEADERS (at 2 ms). */
static int64_t reset_code(const char *timeout, uint64_t t)
{
	struct conn k;
	setup_conn(&k);
	request(&k, 1, 2 * MS, timeout ? "grpc-timeout" : NULL, timeout);
	uint8_t buf[32], code[4] = { 0, 0, 0, 8 }; /* CANCEL */
	size_t n = frame(buf, 3, 0, 1, code, 4);
	chunk(&k, 1, (2 + t) * MS, buf, n);
	assert_int_equal(k.n, 1);
	assert_int_equal(k.spans[0]->status, SPAN_STATUS_ERROR);
	const struct attr *a = attrs_get(&k.spans[0]->attrs, "rpc.grpc.status_code");
	assert_non_null(a);
	int64_t v = a->i;
	teardown_conn(&k);
	return v;
}

static void test_reset_at_deadline(void **state)
{
	assert_int_equal(reset_code("100m", 100), 4);	    /* DEADLINE_EXCEEDED */
	assert_int_equal(reset_code("99986u", 100), 4);	    /* what grpc-go sends for 100 ms */
	assert_int_equal(reset_code("100m", 99), 4);	    /* within 1% */
	assert_int_equal(reset_code("100m", 50), 1);	    /* cancelled early */
	assert_int_equal(reset_code(NULL, 5000), 1);	    /* no deadline */
	assert_int_equal(reset_code("1S", 1000), 4);
	assert_int_equal(reset_code("10x", 1000), 1);	    /* not a timeout */
	assert_int_equal(reset_code("123456789m", 1000), 1); /* 9 digits: not one */
}

/* A record made before the connection began is a late one of an earlier
 * connection that had the same socket address: never a parent. */
static void test_parent_older_than_connection(void **state)
{
	struct conn k;
	setup_conn(&k);
	struct h2_parent_event e = parent_event(SK, 1, 0x71);
	e.parent.at_ns = 1 * MS - 1;
	h2_conn_parent(k.c, &e);
	request(&k, 1, 2 * MS, NULL, NULL);
	h2_conn_parent(k.c, &e); /* and not once the stream is in flight */
	response(&k, 1, 3 * MS, "0");
	assert_int_equal(k.n, 1);
	assert_root(k.spans[0]);
	teardown_conn(&k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parent_before_headers),
		cmocka_unit_test(test_parent_older_than_connection),
		cmocka_unit_test(test_parent_after_headers),
		cmocka_unit_test(test_parent_of_other_socket_or_stream),
		cmocka_unit_test(test_parent_after_the_stream_ended),
		cmocka_unit_test(test_app_traceparent_wins),
		cmocka_unit_test(test_reset_at_deadline),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
