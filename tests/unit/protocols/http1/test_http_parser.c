/* Unit tests for the HTTP/1.x parsers: requests and headers (user/protocols/http1/http_parser.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_parser.h"
#include "http_test_util.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_request_curl(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S(curl_get), &req), 0);
	assert_str(req.method, "GET");
	assert_str(req.target, "/api/users/42?expand=true");
	assert_int_equal(req.version_minor, 1);
	assert_false(req.headers.truncated);
	assert_int_equal(req.headers.n, 3);
	assert_int_equal(req.headers.header_len, sizeof(curl_get) - 1);
	assert_str(req.headers.h[0].name, "Host");
	assert_str(req.headers.h[0].value, "localhost:8080");
	assert_header(&req.headers, "user-agent", "curl/7.88.1");
	assert_header(&req.headers, "ACCEPT", "*/*");
}

static void test_request_python_post_with_body(void **state)
{
	struct http_request req;
	uint64_t cl = 0;
	size_t body;

	assert_int_equal(http_parse_request(S(python_post), &req), 0);
	assert_str(req.method, "POST");
	assert_str(req.target, "/api/orders");
	assert_int_equal(req.headers.n, 7);
	body = offset_after(python_post, "\r\n\r\n");
	assert_int_equal(req.headers.header_len, body);
	assert_int_equal(http_content_length(&req.headers, &cl), 0);
	assert_int_equal(cl, sizeof(python_post) - 1 - body);
	assert_false(http_is_chunked(&req.headers));
	assert_header(&req.headers, "Accept-Encoding", "gzip, deflate");
	assert_header(&req.headers, "connection", "keep-alive");
}

static void test_request_go_client(void **state)
{
	struct http_request req;
	struct http_str path, query;

	assert_int_equal(http_parse_request(S(go_get), &req), 0);
	assert_int_equal(req.headers.n, 4);
	assert_header(&req.headers, "traceparent",
		      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
	http_target_split(req.target, &path, &query);
	assert_str(path, "/v1/items");
	assert_str(query, "limit=10&offset=20");
	assert_int_equal(http_content_length(&req.headers, &(uint64_t){ 0 }), -ENOENT);
}

static void test_request_http10(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("GET /index.html HTTP/1.0\r\n\r\n"), &req), 0);
	assert_int_equal(req.version_minor, 0);
	assert_int_equal(req.headers.n, 0);
	assert_false(req.headers.truncated);
	assert_int_equal(req.headers.header_len, 28);
}

static void test_request_keep_alive_pipelined(void **state)
{
	char buf[1024];
	struct http_request req;
	uint64_t cl = 0;
	size_t off, len;

	len = (size_t)snprintf(buf, sizeof(buf), "%s%s", python_post, curl_get);
	assert_int_equal(http_parse_request(buf, len, &req), 0);
	assert_int_equal(http_content_length(&req.headers, &cl), 0);
	off = req.headers.header_len + cl;
	assert_int_equal(off, sizeof(python_post) - 1);
	assert_int_equal(http_parse_request(buf + off, len - off, &req), 0);
	assert_str(req.method, "GET");
	assert_str(req.target, "/api/users/42?expand=true");
	assert_int_equal(req.headers.header_len, len - off);
}

static void test_request_absolute_form(void **state)
{
	struct http_request req;
	struct http_str path, query;

	assert_int_equal(http_parse_request(S("GET http://example.com:8080/a/b?x=1 HTTP/1.1\r\n"
					       "Host: example.com:8080\r\nProxy-Connection: keep-alive\r\n\r\n"),
					     &req),
			 0);
	assert_str(req.target, "http://example.com:8080/a/b?x=1");
	http_target_split(req.target, &path, &query);
	assert_str(path, "/a/b");
	assert_str(query, "x=1");
}

static void test_request_asterisk_and_authority_forms(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), &req), 0);
	assert_str(req.method, "OPTIONS");
	assert_str(req.target, "*");
	assert_int_equal(http_parse_request(S("CONNECT example.com:443 HTTP/1.1\r\n"
					       "Host: example.com:443\r\n\r\n"),
					     &req),
			 0);
	assert_str(req.method, "CONNECT");
	assert_str(req.target, "example.com:443");
}

static void test_request_bare_lf(void **state)
{
	struct http_request req;
	static const char msg[] = "GET / HTTP/1.1\nHost: a\nX: b\r\n\nbody";

	assert_int_equal(http_parse_request(S(msg), &req), 0);
	assert_int_equal(req.headers.n, 2);
	assert_header(&req.headers, "host", "a");
	assert_header(&req.headers, "x", "b");
	assert_int_equal(req.headers.header_len, sizeof(msg) - 1 - 4);
}

static void test_request_extension_method(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("PROPFIND /dav HTTP/1.1\r\n\r\n"), &req), 0);
	assert_str(req.method, "PROPFIND");
	assert_int_equal(http_parse_request(S("M-SEARCH * HTTP/1.1\r\n\r\n"), &req), 0);
	assert_str(req.method, "M-SEARCH");
}

static void test_header_ows_trimmed(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\n"
					       "A:   spaced value \t \r\n"
					       "B:\tx\r\n"
					       "Empty:\r\n"
					       "Blank:    \r\n"
					       "C:d\r\n\r\n"),
					     &req),
			 0);
	assert_int_equal(req.headers.n, 5);
	assert_header(&req.headers, "a", "spaced value");
	assert_header(&req.headers, "b", "x");
	assert_header(&req.headers, "empty", "");
	assert_header(&req.headers, "blank", "");
	assert_header(&req.headers, "c", "d");
	assert_null(http_header_get(&req.headers, "absent"));
	assert_null(http_header_get(&req.headers, "a "));
	assert_null(http_header_get(&req.headers, ""));
}

static void test_header_first_match_wins(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n"), &req), 0);
	assert_header(&req.headers, "X-a", "1");
}

static void test_header_obs_fold_tolerated(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\n"
					       "X-Long: part one\r\n"
					       "  part two\r\n"
					       "\tpart three\r\n"
					       "Host: h\r\n\r\n"),
					     &req),
			 0);
	assert_int_equal(req.headers.n, 2);
	assert_header(&req.headers, "x-long", "part one");
	assert_header(&req.headers, "host", "h");
	assert_false(req.headers.truncated);
}

/* A malformed header line is skipped and counted; the message, and the
 * good lines around it, still parse. */
static void test_header_malformed(void **state)
{
	static const char *const bad_line[] = {
		"Host : h",  /* whitespace before the colon */
		": h",       /* empty name */
		"Host",      /* no colon */
		"X(y): h",   /* non-token name */
		"X\0: h",    /* NUL in the name */
		"X: a\0b",   /* NUL in the value */
		"X: a\rb",   /* bare CR in the value */
	};
	static const size_t bad_len[] = {8, 3, 4, 7, 5, 6, 6};
	struct http_request req;
	struct http_response resp;
	char msg[256];

	for (size_t i = 0; i < sizeof(bad_line) / sizeof(bad_line[0]); i++) {
		int n = snprintf(msg, sizeof(msg), "GET /p HTTP/1.1\r\nA: 1\r\n");
		memcpy(msg + n, bad_line[i], bad_len[i]);
		n += (int)bad_len[i];
		n += snprintf(msg + n, sizeof(msg) - n, "\r\nB: 2\r\n\r\n");
		assert_int_equal(http_parse_request(msg, (size_t)n, &req), 0);
		assert_str(req.target, "/p");
		if (req.headers.n != 2 || req.headers.malformed != 1)
			fail_msg("case %zu: %zu headers, %zu malformed", i, req.headers.n, req.headers.malformed);
		assert_header(&req.headers, "a", "1");
		assert_header(&req.headers, "b", "2");
		assert_int_equal(req.headers.header_len, (size_t)n);
		assert_false(req.headers.truncated);

		/* a response keeps its status */
		n = snprintf(msg, sizeof(msg), "HTTP/1.1 404 Not Found\r\n");
		memcpy(msg + n, bad_line[i], bad_len[i]);
		n += (int)bad_len[i];
		n += snprintf(msg + n, sizeof(msg) - n, "\r\nContent-Length: 0\r\n\r\n");
		assert_int_equal(http_parse_response(msg, (size_t)n, &resp), 0);
		assert_int_equal(resp.status, 404);
		assert_int_equal(resp.headers.malformed, 1);
		assert_header(&resp.headers, "content-length", "0");
	}
	/* NUL in an obs-fold line: skipped too */
	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\nX: a\r\n \0\r\n\r\n"), &req), 0);
	assert_int_equal(req.headers.n, 1);
	assert_int_equal(req.headers.malformed, 1);
	/* a clean message counts none */
	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\nX: a\r\n\r\n"), &req), 0);
	assert_int_equal(req.headers.malformed, 0);
}

static void test_header_value_allows_obs_text(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\nX: caf\xc3\xa9\r\n\r\n"), &req), 0);
	assert_header(&req.headers, "x", "caf\xc3\xa9");
}

static void test_request_line_invalid(void **state)
{
	static const char *const bad[] = {
		"GET  / HTTP/1.1\r\n\r\n",        /* double space */
		"GET /  HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1 \r\n\r\n",        /* trailing space */
		"GET\t/ HTTP/1.1\r\n\r\n",        /* tab separator */
		" GET / HTTP/1.1\r\n\r\n",        /* leading space */
		"GET / HTTP/2.0\r\n\r\n",
		"GET / HTTP/1.2\r\n\r\n",
		"GET / http/1.1\r\n\r\n",
		"GET / HTTP/1.10\r\n\r\n",
		"GET / HTTP/1.1x\r\n\r\n",
		"GET /\r\n\r\n",                  /* HTTP/0.9 */
		"GET / HTTP/1.1\rX\n\r\n",        /* bare CR */
		"GET /a\x01 HTTP/1.1\r\n\r\n",    /* control in target */
		"GET /a\x7f HTTP/1.1\r\n\r\n",
		"G(T / HTTP/1.1\r\n\r\n",         /* non-token method */
		"\r\nGET / HTTP/1.1\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",        /* a response */
		"{\"json\": true}",
	};
	struct http_request req;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = http_parse_request(bad[i], strlen(bad[i]), &req);

		if (err != -EINVAL)
			fail_msg("case %zu (%s): got %d", i, bad[i], err);
	}
}

static void test_request_nul_bytes(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("GET /\0 HTTP/1.1\r\n\r\n"), &req), -EINVAL);
	assert_int_equal(http_parse_request(S("G\0T / HTTP/1.1\r\n\r\n"), &req), -EINVAL);
	assert_int_equal(http_parse_request(S("\0\0\0\0\0\0\0\0"), &req), -EINVAL);
	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\0\n\r\n"), &req), -EINVAL);
	/* NUL after the header section is body: not our business */
	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\n\r\n\0\0"), &req), 0);
}

static void test_request_incomplete_line(void **state)
{
	static const char *const partial[] = {
		"", "G", "GET", "GET ", "GET /", "GET /a/b", "GET / ", "GET / H",
		"GET / HTTP/1.", "GET / HTTP/1.1", "GET / HTTP/1.1\r",
	};
	struct http_request req;

	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
		assert_int_equal(http_parse_request(partial[i], strlen(partial[i]), &req), -EAGAIN);
	assert_int_equal(http_parse_request(NULL, 0, &req), -EAGAIN);
}

static void test_request_truncated_headers(void **state)
{
	struct http_request req;

	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\n"), &req), 0);
	assert_true(req.headers.truncated);
	assert_int_equal(req.headers.n, 0);
	assert_int_equal(req.headers.header_len, 0);

	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\nHost: a"), &req), 0);
	assert_true(req.headers.truncated);
	assert_int_equal(req.headers.n, 0);

	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\nHost: a\r\nUser-Ag"), &req), 0);
	assert_true(req.headers.truncated);
	assert_int_equal(req.headers.n, 1);
	assert_header(&req.headers, "host", "a");

	assert_int_equal(http_parse_request(S("GET / HTTP/1.1\r\nHost: a\r\n\r"), &req), 0);
	assert_true(req.headers.truncated);
	assert_int_equal(req.headers.n, 1);
	assert_int_equal(req.headers.header_len, 0);
}


static void test_request_every_prefix(void **state)
{
	check_every_prefix(S(curl_get), true);
	check_every_prefix(S(python_post), true);
	check_every_prefix(S(go_get), true);
}

static void test_request_overlong(void **state)
{
	size_t big = 64 * 1024;
	char *buf = malloc(big + 64);
	struct http_request req;
	size_t n;

	assert_non_null(buf);
	/* a method longer than any real one is not HTTP */
	memset(buf, 'A', 100);
	assert_int_equal(http_parse_request(buf, 100, &req), -EINVAL);
	memset(buf, 'A', 32);
	assert_int_equal(http_parse_request(buf, 32, &req), -EAGAIN);
	buf[32] = ' ';
	assert_int_equal(http_parse_request(buf, 33, &req), -EAGAIN);

	/* a 64 KB target: complete is fine, cut short is -EAGAIN */
	memcpy(buf, "GET /", 5);
	memset(buf + 5, 'a', big);
	n = 5 + big;
	assert_int_equal(http_parse_request(buf, n, &req), -EAGAIN);
	memcpy(buf + n, " HTTP/1.1\r\n\r\n", 13);
	n += 13;
	assert_int_equal(http_parse_request(buf, n, &req), 0);
	assert_int_equal(req.target.len, big + 1);
	assert_int_equal(req.headers.header_len, n);

	/* a 64 KB header value */
	memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
	memset(buf + 19, 'v', big);
	n = 19 + big;
	assert_int_equal(http_parse_request(buf, n, &req), 0);
	assert_true(req.headers.truncated);
	assert_int_equal(req.headers.n, 0);
	memcpy(buf + n, "\r\n\r\n", 4);
	assert_int_equal(http_parse_request(buf, n + 4, &req), 0);
	assert_int_equal(req.headers.n, 1);
	assert_int_equal(req.headers.h[0].value.len, big);
	free(buf);
}

static size_t build_many_headers(char *buf, size_t cap, int count)
{
	size_t n = (size_t)snprintf(buf, cap, "GET / HTTP/1.1\r\n");

	for (int i = 0; i < count; i++)
		n += (size_t)snprintf(buf + n, cap - n, "X-H%d: %d\r\n", i, i);
	n += (size_t)snprintf(buf + n, cap - n, "\r\n");
	return n;
}

static void test_header_count_limit(void **state)
{
	char buf[4096];
	struct http_request req;
	size_t n;

	n = build_many_headers(buf, sizeof(buf), HTTP_MAX_HEADERS);
	assert_int_equal(http_parse_request(buf, n, &req), 0);
	assert_int_equal(req.headers.n, HTTP_MAX_HEADERS);
	assert_false(req.headers.truncated);
	assert_int_equal(req.headers.header_len, n);

	n = build_many_headers(buf, sizeof(buf), HTTP_MAX_HEADERS + 1);
	assert_int_equal(http_parse_request(buf, n, &req), 0);
	assert_int_equal(req.headers.n, HTTP_MAX_HEADERS);
	assert_true(req.headers.truncated);
	assert_int_equal(req.headers.header_len, 0);
	assert_header(&req.headers, "x-h63", "63");

	n = build_many_headers(buf, sizeof(buf), 200);
	assert_true(n < sizeof(buf));
	assert_int_equal(http_parse_request(buf, n, &req), 0);
	assert_int_equal(req.headers.n, HTTP_MAX_HEADERS);
	assert_true(req.headers.truncated);
}

/* ---- responses ---- */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_curl),
		cmocka_unit_test(test_request_python_post_with_body),
		cmocka_unit_test(test_request_go_client),
		cmocka_unit_test(test_request_http10),
		cmocka_unit_test(test_request_keep_alive_pipelined),
		cmocka_unit_test(test_request_absolute_form),
		cmocka_unit_test(test_request_asterisk_and_authority_forms),
		cmocka_unit_test(test_request_bare_lf),
		cmocka_unit_test(test_request_extension_method),
		cmocka_unit_test(test_header_ows_trimmed),
		cmocka_unit_test(test_header_first_match_wins),
		cmocka_unit_test(test_header_obs_fold_tolerated),
		cmocka_unit_test(test_header_malformed),
		cmocka_unit_test(test_header_value_allows_obs_text),
		cmocka_unit_test(test_request_line_invalid),
		cmocka_unit_test(test_request_nul_bytes),
		cmocka_unit_test(test_request_incomplete_line),
		cmocka_unit_test(test_request_truncated_headers),
		cmocka_unit_test(test_request_every_prefix),
		cmocka_unit_test(test_request_overlong),
		cmocka_unit_test(test_header_count_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
