/* Unit tests for http_span_from_txn (user/http_span.c): a captured exchange
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_query_redacted),
		cmocka_unit_test(test_unanswered_at_close_is_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
