/* Unit tests for http_span_from_txn (user/protocols/http1/http_span.c): a captured exchange
 * as the kernel sends it -> span fields and attributes. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "http_span.h"
#include "span.h"

static struct txn_event ev;

static size_t make_txn(uint8_t role, const char *req, const char *resp, uint8_t end_reason)
{
	memset(&ev, 0, sizeof(ev));
	ev.type = WEFT_EV_TXN;
	ev.role = role;
	ev.proto = WEFT_PROTO_HTTP1;
	ev.start_ns = 1000;
	ev.end_ns = 2000;
	ev.end_reason = end_reason;
	ev.addr.family = AF_INET;
	ev.addr.lport = 8080;
	ev.addr.rport = 40000;
	ev.req_len = strlen(req);
	ev.resp_len = strlen(resp);
	memcpy(ev.data, req, ev.req_len);
	memcpy(ev.data + ev.req_len, resp, ev.resp_len);
	return WEFT_TXN_HDR_SIZE + ev.req_len + ev.resp_len;
}

static const char *str_attr(struct span *s, const char *key)
{
	const struct attr *a = attrs_get(&s->attrs, key);
	return a ? a->str : NULL;
}

static void test_server_query_redacted(void **state)
{
	size_t len = make_txn(WEFT_ROLE_SERVER,
			      "GET /dl?id=7&Signature=abc%2F&sig=x&AWSAccessKeyId=AK&keep=1 HTTP/1.1\r\nHost: h\r\n\r\n",
			      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", WEFT_END_COMPLETE);
	struct span *s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_string_equal(str_attr(s, "url.path"), "/dl");
	assert_string_equal(str_attr(s, "url.query"),
			    "id=7&Signature=REDACTED&sig=REDACTED&AWSAccessKeyId=REDACTED&keep=1");
	assert_int_equal(s->status, SPAN_STATUS_UNSET);
	span_free(s);

	len = make_txn(WEFT_ROLE_SERVER, "GET /plain HTTP/1.1\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
		       WEFT_END_COMPLETE);
	s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_null(attrs_get(&s->attrs, "url.query")); /* no query, no attribute */
	span_free(s);
}

static void test_unanswered_at_close_is_error(void **state)
{
	size_t len = make_txn(WEFT_ROLE_SERVER, "GET /panic HTTP/1.1\r\nHost: h\r\n\r\n", "", WEFT_END_CLOSE);
	struct span *s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_int_equal(s->status, SPAN_STATUS_ERROR);
	assert_string_equal(str_attr(s, "error.type"), "no_response");
	assert_null(attrs_get(&s->attrs, "http.response.status_code"));
	span_free(s);

	/* The same request still waiting for its response at a sweep is no error. */
	len = make_txn(WEFT_ROLE_CLIENT, "GET /slow HTTP/1.1\r\nHost: h\r\n\r\n", "", WEFT_END_NEXT_REQUEST);
	s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_int_equal(s->status, SPAN_STATUS_UNSET);
	span_free(s);
}

/* attrs_add_* appends: every key must come once. */
static void assert_keys_distinct(const struct span *s)
{
	for (size_t i = 0; i < s->attrs.len; i++)
		for (size_t j = i + 1; j < s->attrs.len; j++)
			if (strcmp(s->attrs.items[i].key, s->attrs.items[j].key) == 0)
				fail_msg("attribute %s set twice", s->attrs.items[i].key);
}

static int64_t int_attr(struct span *s, const char *key)
{
	const struct attr *a = attrs_get(&s->attrs, key);
	assert_non_null(a);
	assert_int_equal(a->type, ATTR_INT);
	return a->i;
}

static void test_server_attributes(void **state)
{
	size_t len = make_txn(WEFT_ROLE_SERVER, "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
			      "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n", WEFT_END_COMPLETE);
	ev.addr.laddr[0] = 10, ev.addr.laddr[3] = 1;
	ev.addr.raddr[0] = 192, ev.addr.raddr[1] = 168, ev.addr.raddr[2] = 100, ev.addr.raddr[3] = 255;
	struct span *s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 5, s), 0);
	assert_keys_distinct(s);
	assert_string_equal(s->name, "GET /hello");
	assert_int_equal(s->kind, SPAN_KIND_SERVER);
	assert_int_equal(s->start_ns, 1005);
	assert_int_equal(s->end_ns, 2005);
	assert_int_equal(s->attrs.len, 11);
	assert_string_equal(str_attr(s, "http.request.method"), "GET");
	assert_string_equal(str_attr(s, "url.path"), "/hello");
	assert_string_equal(str_attr(s, "url.scheme"), "http");
	assert_string_equal(str_attr(s, "network.protocol.version"), "1.1");
	assert_string_equal(str_attr(s, "network.peer.address"), "192.168.100.255");
	assert_int_equal(int_attr(s, "network.peer.port"), 40000);
	assert_string_equal(str_attr(s, "server.address"), "127.0.0.1");
	assert_int_equal(int_attr(s, "server.port"), 8080);
	assert_string_equal(str_attr(s, "client.address"), "192.168.100.255");
	assert_int_equal(int_attr(s, "client.port"), 40000);
	assert_int_equal(int_attr(s, "http.response.status_code"), 200);
	span_free(s);

	/* no Host: the local address and port */
	len = make_txn(WEFT_ROLE_SERVER, "POST /x/123 HTTP/1.0\r\n\r\n", "HTTP/1.0 503 Unavailable\r\n\r\n",
		       WEFT_END_COMPLETE);
	ev.addr.laddr[0] = 10, ev.addr.laddr[3] = 1;
	s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_keys_distinct(s);
	assert_string_equal(s->name, "POST /x/*");
	assert_string_equal(str_attr(s, "network.protocol.version"), "1.0");
	assert_string_equal(str_attr(s, "server.address"), "10.0.0.1");
	assert_int_equal(int_attr(s, "server.port"), 8080);
	assert_string_equal(str_attr(s, "network.peer.address"), "0.0.0.0");
	assert_string_equal(str_attr(s, "error.type"), "503");
	assert_int_equal(s->status, SPAN_STATUS_ERROR);
	span_free(s);
}

static void test_client_attributes(void **state)
{
	size_t len = make_txn(WEFT_ROLE_CLIENT,
			      "GET /api/v1/users/42?x=1&sig=s HTTP/1.1\r\nHost: backend:9090\r\n"
			      "User-Agent: curl/8\r\ntracestate: a=b\r\n\r\n",
			      "HTTP/1.1 404 Not Found\r\n\r\n", WEFT_END_COMPLETE);
	ev.ctx_source = WEFT_CTX_HEADER;
	struct span *s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_keys_distinct(s);
	assert_string_equal(s->name, "GET /api/v1/users/*");
	assert_int_equal(s->kind, SPAN_KIND_CLIENT);
	assert_string_equal(str_attr(s, "server.address"), "backend");
	assert_int_equal(int_attr(s, "server.port"), 9090);
	/* credentials' values redacted, as in url.query */
	assert_string_equal(str_attr(s, "url.full"), "http://backend:9090/api/v1/users/42?x=1&sig=REDACTED");
	assert_null(attrs_get(&s->attrs, "url.query")); /* servers only */
	assert_string_equal(str_attr(s, "user_agent.original"), "curl/8");
	assert_string_equal(s->trace_state, "a=b");
	assert_string_equal(str_attr(s, "error.type"), "404");
	assert_int_equal(s->status, SPAN_STATUS_ERROR);
	span_free(s);

	/* IPv6 peer without Host: bracketed in url.full, the peer's port */
	len = make_txn(WEFT_ROLE_CLIENT, "BREW /pot HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n",
		       WEFT_END_COMPLETE);
	ev.addr.family = AF_INET6;
	ev.addr.raddr[0] = 0x20, ev.addr.raddr[1] = 0x01, ev.addr.raddr[15] = 2;
	s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_keys_distinct(s);
	assert_string_equal(s->name, "HTTP");
	assert_string_equal(str_attr(s, "http.request.method"), "_OTHER");
	assert_string_equal(str_attr(s, "http.request.method_original"), "BREW");
	assert_string_equal(str_attr(s, "server.address"), "2001::2");
	assert_string_equal(str_attr(s, "url.full"), "http://[2001::2]:40000/pot");
	span_free(s);

	/* Host with an IPv6 literal and no port: port 80 */
	len = make_txn(WEFT_ROLE_CLIENT, "GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n",
		       WEFT_END_COMPLETE);
	s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_string_equal(str_attr(s, "server.address"), "::1");
	assert_int_equal(int_attr(s, "server.port"), 80);
	assert_string_equal(str_attr(s, "url.full"), "http://[::1]:80/");
	span_free(s);
}

static void test_unix_socket(void **state)
{
	size_t len = make_txn(WEFT_ROLE_CLIENT, "GET /v1.43/info HTTP/1.1\r\nHost: docker\r\n\r\n",
			      "HTTP/1.1 200 OK\r\n\r\n", WEFT_END_COMPLETE);
	ev.addr.family = AF_UNIX;
	strcpy(ev.addr.unix_path, "/run/docker.sock");
	struct span *s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_keys_distinct(s);
	assert_string_equal(str_attr(s, "network.transport"), "unix");
	assert_string_equal(str_attr(s, "network.peer.address"), "/run/docker.sock");
	assert_string_equal(str_attr(s, "server.address"), "docker");
	assert_null(attrs_get(&s->attrs, "server.port"));
	assert_string_equal(str_attr(s, "url.full"), "http://docker/v1.43/info");
	span_free(s);

	len = make_txn(WEFT_ROLE_CLIENT, "GET /x HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", WEFT_END_COMPLETE);
	ev.addr.family = AF_UNIX;
	s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_string_equal(str_attr(s, "network.peer.address"), "unix");
	assert_string_equal(str_attr(s, "server.address"), "unix");
	assert_string_equal(str_attr(s, "url.full"), "http://localhost/x");
	span_free(s);

	/* A path of the field's whole length has no NUL: nothing past it is read
	 * (the event's next fields, role and protocol, are not zero). */
	len = make_txn(WEFT_ROLE_CLIENT, "GET /x HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", WEFT_END_COMPLETE);
	ev.addr.family = AF_UNIX;
	memset(ev.addr.unix_path, 'p', WEFT_UNIX_PATH_MAX);
	s = span_new();
	assert_int_equal(http_span_from_txn(&ev, len, 0, s), 0);
	assert_int_equal(strlen(str_attr(s, "network.peer.address")), WEFT_UNIX_PATH_MAX);
	assert_int_equal(strlen(str_attr(s, "server.address")), WEFT_UNIX_PATH_MAX);
	span_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_query_redacted),
		cmocka_unit_test(test_unanswered_at_close_is_error),
		cmocka_unit_test(test_server_attributes),
		cmocka_unit_test(test_client_attributes),
		cmocka_unit_test(test_unix_socket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
