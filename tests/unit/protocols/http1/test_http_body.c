/* Unit tests for the HTTP/1.x parsers (user/protocols/http1/http_parser.c):
 * responses, Content-Length, chunked bodies, request targets, garbage. */
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

static void test_response_nginx(void **state)
{
	struct http_response resp;
	uint64_t cl = 0;

	assert_int_equal(http_parse_response(S(nginx_200), &resp), 0);
	assert_int_equal(resp.version_minor, 1);
	assert_int_equal(resp.status, 200);
	assert_str(resp.reason, "OK");
	assert_int_equal(resp.headers.n, 8);
	assert_int_equal(resp.headers.header_len, offset_after(nginx_200, "\r\n\r\n"));
	assert_int_equal(http_content_length(&resp.headers, &cl), 0);
	assert_int_equal(cl, 615);
	assert_header(&resp.headers, "etag", "\"6434bbbe-267\"");
	assert_header(&resp.headers, "date", "Wed, 31 Jan 2024 10:00:00 GMT");
}

static void test_response_go_chunked(void **state)
{
	struct http_response resp;
	uint64_t payload = 0;
	size_t consumed = 0, body;

	assert_int_equal(http_parse_response(S(go_chunked), &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_true(http_is_chunked(&resp.headers));
	assert_int_equal(http_content_length(&resp.headers, &(uint64_t){ 0 }), -ENOENT);
	body = resp.headers.header_len;
	assert_int_equal(http_chunked_scan(go_chunked + body, sizeof(go_chunked) - 1 - body,
					   &payload, &consumed),
			 1);
	assert_int_equal(payload, 12);
	assert_int_equal(consumed, sizeof(go_chunked) - 1 - body);
}

static void test_response_python_http10(void **state)
{
	struct http_response resp;

	assert_int_equal(http_parse_response(S(python_404), &resp), 0);
	assert_int_equal(resp.version_minor, 0);
	assert_int_equal(resp.status, 404);
	assert_str(resp.reason, "File not found");
	assert_header(&resp.headers, "server", "SimpleHTTP/0.6 Python/3.11.2");
}

static void test_response_status_lines(void **state)
{
	struct http_response resp;

	assert_int_equal(http_parse_response(S("HTTP/1.1 200\r\n\r\n"), &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.reason.len, 0);
	assert_int_equal(http_parse_response(S("HTTP/1.1 204 \r\n\r\n"), &resp), 0);
	assert_int_equal(resp.status, 204);
	assert_int_equal(resp.reason.len, 0);
	assert_int_equal(http_parse_response(S("HTTP/1.1 100 Continue\r\n\r\n"), &resp), 0);
	assert_int_equal(resp.status, 100);
	assert_int_equal(http_parse_response(S("HTTP/1.1 999 Whatever It Is\r\n\r\n"), &resp), 0);
	assert_int_equal(resp.status, 999);
	assert_str(resp.reason, "Whatever It Is");
	assert_int_equal(http_parse_response(S("HTTP/1.1 500 Erreur \xc3\xa9\t!\n\n"), &resp), 0);
	assert_str(resp.reason, "Erreur \xc3\xa9\t!");
	assert_int_equal(http_parse_response(S("HTTP/1.1 301 Moved Permanently\r\n"
						"Location: https://example.com/\r\n\r\n"),
					      &resp),
			 0);
	assert_header(&resp.headers, "location", "https://example.com/");
}

static void test_response_100_continue_then_final(void **state)
{
	static const char msg[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n";
	struct http_response resp;
	size_t off;

	assert_int_equal(http_parse_response(S(msg), &resp), 0);
	assert_int_equal(resp.status, 100);
	off = resp.headers.header_len;
	assert_int_equal(http_parse_response(msg + off, sizeof(msg) - 1 - off, &resp), 0);
	assert_int_equal(resp.status, 201);
	assert_str(resp.reason, "Created");
}

static void test_response_invalid(void **state)
{
	static const char *const bad[] = {
		"HTTP/1.1 099 Low\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 2000 OK\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
		"HTTP/1.1  200 OK\r\n\r\n",
		"HTTP/1.1\t200 OK\r\n\r\n",
		"HTTP/2 200\r\n\r\n",
		"HTTP/1.2 200 OK\r\n\r\n",
		"http/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 O\0K\r\n\r\n",
		"HTTP/1.1 200 O\x01K\r\n\r\n",
		"HTTP/1.1 200 OK\rX\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
		"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n",
	};
	struct http_response resp;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* strlen stops at an embedded NUL, which is still invalid there */
		size_t len = strlen(bad[i]);
		int err;

		if (i == 9)
			len = sizeof("HTTP/1.1 200 O\0K\r\n\r\n") - 1;
		err = http_parse_response(bad[i], len, &resp);
		if (err != -EINVAL)
			fail_msg("case %zu (%s): got %d", i, bad[i], err);
	}
}

static void test_response_incomplete_line(void **state)
{
	static const char *const partial[] = {
		"", "H", "HTTP/1", "HTTP/1.1", "HTTP/1.1 ", "HTTP/1.1 2", "HTTP/1.1 200",
		"HTTP/1.1 200 ", "HTTP/1.1 200 O", "HTTP/1.1 200 OK\r", "HTTP/1.1 200\r",
	};
	struct http_response resp;

	for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
		assert_int_equal(http_parse_response(partial[i], strlen(partial[i]), &resp), -EAGAIN);
}

static void test_response_every_prefix(void **state)
{
	check_every_prefix(S(nginx_200), false);
	check_every_prefix(S(go_chunked), false);
	check_every_prefix(S(python_404), false);
}

/* ---- Content-Length / Transfer-Encoding ---- */

static int content_length_of(const char *headers, uint64_t *out)
{
	static char buf[1024];
	static struct http_request req;
	int n = snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\n%s\r\n", headers);

	assert_int_equal(http_parse_request(buf, (size_t)n, &req), 0);
	return http_content_length(&req.headers, out);
}

static void test_content_length(void **state)
{
	uint64_t v = 7;

	assert_int_equal(content_length_of("", &v), -ENOENT);
	assert_int_equal(content_length_of("Content-Length: 0\r\n", &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(content_length_of("content-length: 42\r\n", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(content_length_of("CONTENT-LENGTH:   0042  \r\n", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(content_length_of("Content-Length: 18446744073709551615\r\n", &v), 0);
	assert_true(v == UINT64_MAX);
	assert_int_equal(content_length_of("Content-Length: 42\r\nX: y\r\ncontent-length: 42\r\n", &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(content_length_of("Content-Length: 42, 42\r\n", &v), 0);
	assert_int_equal(v, 42);
}

static void test_content_length_invalid(void **state)
{
	static const char *const bad[] = {
		"Content-Length: 18446744073709551616\r\n",
		"Content-Length: 99999999999999999999999999999999\r\n",
		"Content-Length: -1\r\n",
		"Content-Length: +1\r\n",
		"Content-Length: 0x10\r\n",
		"Content-Length: 1 2\r\n",
		"Content-Length: 12a\r\n",
		"Content-Length:\r\n",
		"Content-Length: 42,\r\n",
		"Content-Length: 42, 43\r\n",
		"Content-Length: 42\r\nContent-Length: 43\r\n",
		"Content-Length: 42\r\nContent-Length: x\r\n",
	};
	uint64_t v = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int err = content_length_of(bad[i], &v);

		if (err != -EINVAL)
			fail_msg("case %zu (%s): got %d", i, bad[i], err);
	}
}

static bool chunked_of(const char *headers)
{
	static char buf[1024];
	static struct http_response resp;
	int n = snprintf(buf, sizeof(buf), "HTTP/1.1 200 OK\r\n%s\r\n", headers);

	assert_int_equal(http_parse_response(buf, (size_t)n, &resp), 0);
	return http_is_chunked(&resp.headers);
}

static void test_is_chunked(void **state)
{
	assert_true(chunked_of("Transfer-Encoding: chunked\r\n"));
	assert_true(chunked_of("transfer-encoding: CHUNKED\r\n"));
	assert_true(chunked_of("Transfer-Encoding: gzip, chunked\r\n"));
	assert_true(chunked_of("Transfer-Encoding: gzip,chunked\r\n"));
	assert_true(chunked_of("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"));
	assert_true(chunked_of("Transfer-Encoding: chunked , \r\n"));
	assert_true(chunked_of("Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n"));
	assert_true(chunked_of("Transfer-Encoding: chunked;x=1\r\n"));

	assert_false(chunked_of(""));
	assert_false(chunked_of("Transfer-Encoding: gzip\r\n"));
	assert_false(chunked_of("Transfer-Encoding: chunked, gzip\r\n"));
	assert_false(chunked_of("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"));
	assert_false(chunked_of("Transfer-Encoding: chunkedx\r\n"));
	assert_false(chunked_of("Transfer-Encoding: notchunked\r\n"));
	assert_false(chunked_of("Transfer-Encoding: \r\n"));
	assert_false(chunked_of("X-Transfer-Encoding: chunked\r\n"));
}

/* ---- chunked bodies ---- */

static int scan(const char *body, size_t len, uint64_t *payload, size_t *consumed)
{
	char *copy = exact_copy(body, len);
	int ret = http_chunked_scan(copy, len, payload, consumed);

	free(copy);
	return ret;
}

static void test_chunked_simple(void **state)
{
	static const char body[] = "a\r\n0123456789\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
	uint64_t payload = 0;
	size_t consumed = 0;

	assert_int_equal(scan(S(body), &payload, &consumed), 1);
	assert_int_equal(payload, 36);
	assert_int_equal(consumed, sizeof(body) - 1);
}

static void test_chunked_trailing_data_not_consumed(void **state)
{
	static const char body[] = "3\r\nabc\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n";
	uint64_t payload = 0;
	size_t consumed = 0;

	assert_int_equal(scan(S(body), &payload, &consumed), 1);
	assert_int_equal(payload, 3);
	assert_int_equal(consumed, offset_after(body, "0\r\n\r\n"));
}

static void test_chunked_extensions(void **state)
{
	static const char body[] = "5;name=value\r\nhello\r\n"
				   "6 ; quoted=\"a;b\" ;flag\r\n world\r\n"
				   "0;last\r\n\r\n";
	uint64_t payload = 0;
	size_t consumed = 0;

	assert_int_equal(scan(S(body), &payload, &consumed), 1);
	assert_int_equal(payload, 11);
	assert_int_equal(consumed, sizeof(body) - 1);
}

static void test_chunked_trailers(void **state)
{
	static const char body[] = "4\r\nwiki\r\n0\r\nExpires: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
				   "X-Checksum: abc\r\n\r\n";
	uint64_t payload = 0;
	size_t consumed = 0;

	assert_int_equal(scan(S(body), &payload, &consumed), 1);
	assert_int_equal(payload, 4);
	assert_int_equal(consumed, sizeof(body) - 1);

	assert_int_equal(scan(S("0\r\n bad\r\n\r\n"), &payload, &consumed), -EINVAL);
	assert_int_equal(scan(S("0\r\nBad Name: x\r\n\r\n"), &payload, &consumed), -EINVAL);
	assert_int_equal(scan(S("0\r\n\x01"), &payload, &consumed), -EINVAL);
	assert_int_equal(scan(S("0\r\nX: y\r\n"), &payload, &consumed), 0);
	assert_int_equal(consumed, 0);
}

static void test_chunked_bare_lf_and_case(void **state)
{
	static const char body[] = "A\n0123456789\nff\r\n";
	char big[512];
	uint64_t payload = 0;
	size_t consumed = 0, n;

	assert_int_equal(scan(S("A\n0123456789\n0\n\n"), &payload, &consumed), 1);
	assert_int_equal(payload, 10);
	/* "ff" then 255 bytes */
	n = sizeof(body) - 1;
	memcpy(big, body, n);
	memset(big + n, 'z', 255);
	n += 255;
	memcpy(big + n, "\r\n0\r\n\r\n", 7);
	n += 7;
	assert_int_equal(scan(big, n, &payload, &consumed), 1);
	assert_int_equal(payload, 265);
	assert_int_equal(consumed, n);
}

static void test_chunked_leading_zeros(void **state)
{
	uint64_t payload = 0;
	size_t consumed = 0;

	assert_int_equal(scan(S("0000000000000000000000000005\r\nhello\r\n000\r\n\r\n"), &payload, &consumed), 1);
	assert_int_equal(payload, 5);
}

static void test_chunked_malformed(void **state)
{
	static const char *const bad[] = {
		"x\r\n",
		"-5\r\nhello\r\n",
		" 5\r\nhello\r\n",
		";ext\r\n",
		"5\r\nhelloXX0\r\n\r\n",
		"5\r\nhello\rX",
		"5\rX",
		"5 x\r\n",
		"10000000000000000\r\n",           /* 2^64: overflow */
		"fffffffffffffffff\r\n",           /* 17 nibbles */
		"5;a\rb\r\nhello\r\n",
		"5;a\0b\r\nhello\r\n",
		"\r\n",
	};
	uint64_t payload;
	size_t consumed;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);
		int err;

		if (i == 11)
			len = sizeof("5;a\0b\r\nhello\r\n") - 1;
		err = scan(bad[i], len, &payload, &consumed);
		if (err != -EINVAL)
			fail_msg("case %zu: got %d", i, err);
	}
}

static void test_chunked_huge_size_needs_more(void **state)
{
	uint64_t payload = 1;
	size_t consumed = 1;

	assert_int_equal(scan(S("ffffffffffffffff\r\nabc"), &payload, &consumed), 0);
	assert_int_equal(payload, 0);
	assert_int_equal(consumed, 0);
	assert_int_equal(scan(S("3\r\nabc\r\n7fffffffffffffff;x\r\nabc"), &payload, &consumed), 0);
	assert_int_equal(payload, 3);
	assert_int_equal(consumed, 8);
}

static void test_chunked_empty_and_null_outputs(void **state)
{
	uint64_t payload = 9;
	size_t consumed = 9;

	assert_int_equal(scan("", 0, &payload, &consumed), 0);
	assert_int_equal(payload, 0);
	assert_int_equal(consumed, 0);
	assert_int_equal(http_chunked_scan(NULL, 0, &payload, &consumed), 0);
	assert_int_equal(http_chunked_scan(S("0\r\n\r\n"), NULL, NULL), 1);
}

/* Every split point: the first part returns 0 (or 1 when whole), consumed
 * lands on a chunk boundary, and resuming there finishes the body with the
 * same total payload. */
static void test_chunked_split_everywhere(void **state)
{
	static const char body[] = "5;ext=1\r\nhello\r\n"
				   "1\r\n,\r\n"
				   "6\r\n world\r\n"
				   "0\r\nTrailer: x\r\n\r\n";
	size_t len = sizeof(body) - 1;

	for (size_t cut = 0; cut <= len; cut++) {
		uint64_t p1 = 0, p2 = 0;
		size_t c1 = 0, c2 = 0;
		int r1 = scan(body, cut, &p1, &c1), r2;

		assert_int_equal(r1, cut == len ? 1 : 0);
		assert_true(c1 <= cut);
		if (r1 == 1) {
			assert_int_equal(p1, 12);
			continue;
		}
		r2 = scan(body + c1, len - c1, &p2, &c2);
		assert_int_equal(r2, 1);
		assert_int_equal(c1 + c2, len);
		assert_int_equal(p1 + p2, 12);
	}
}

/* ---- target split ---- */

static void split(const char *target, const char *want_path, const char *want_query)
{
	struct http_str path, query;

	http_target_split((struct http_str){ target, strlen(target) }, &path, &query);
	assert_str(path, want_path);
	assert_str(query, want_query);
}

static void test_target_split(void **state)
{
	split("/a/b?x=1", "/a/b", "x=1");
	split("/a", "/a", "");
	split("/", "/", "");
	split("/a?", "/a", "");
	split("/a?b?c", "/a", "b?c");
	split("/a#frag", "/a", "");
	split("/a?x=1#frag", "/a", "x=1");
	split("/redirect?to=http://x/y", "/redirect", "to=http://x/y");
	split("http://h:8/a?q", "/a", "q");
	split("http://example.com:8080/a/b?x=1", "/a/b", "x=1");
	split("https://user@host/p", "/p", "");
	split("http://h:8", "/", "");
	split("http://h:8?x=1", "/", "x=1");
	split("http://", "/", "");
	split("*", "*", "");
	split("example.com:443", "example.com:443", "");
	split("", "", "");
	http_target_split((struct http_str){ NULL, 0 }, NULL, NULL);
}

/* ---- quick test ---- */

static void test_looks_like_request(void **state)
{
	static const char *const methods[] = {
		"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t n = (size_t)snprintf(buf, sizeof(buf), "%s /x", methods[i]);

		assert_true(http_looks_like_request(buf, n));
		assert_true(http_looks_like_request(buf, strlen(methods[i]) + 1));
		assert_false(http_looks_like_request(buf, strlen(methods[i])));
	}
	assert_false(http_looks_like_request(S("get /")));
	assert_false(http_looks_like_request(S("GET/")));
	assert_false(http_looks_like_request(S("GETS /")));
	assert_false(http_looks_like_request(S("HTTP/1.1 200 OK")));
	assert_false(http_looks_like_request(S("PRI * HTTP/2.0")));
	assert_false(http_looks_like_request(S("")));
	assert_false(http_looks_like_request(NULL, 10));
}

/* ---- robustness ---- */

static uint32_t prng_state = 12345;

static uint32_t prng(void)
{
	prng_state ^= prng_state << 13;
	prng_state ^= prng_state >> 17;
	prng_state ^= prng_state << 5;
	return prng_state;
}

static void run_all_parsers(const char *buf, size_t len)
{
	struct http_request req;
	struct http_response resp;
	struct http_str path, query;
	uint64_t v;
	size_t consumed;
	int err;

	err = http_parse_request(buf, len, &req);
	assert_true(err == 0 || err == -EAGAIN || err == -EINVAL);
	if (err == 0) {
		assert_headers_within(&req.headers, buf, len);
		assert_true(slice_within(req.method, buf, len));
		assert_true(slice_within(req.target, buf, len));
		http_content_length(&req.headers, &v);
		http_is_chunked(&req.headers);
		http_target_split(req.target, &path, &query);
		assert_true(path.len <= req.target.len || str_is(path, "/"));
	}
	err = http_parse_response(buf, len, &resp);
	assert_true(err == 0 || err == -EAGAIN || err == -EINVAL);
	if (err == 0) {
		assert_headers_within(&resp.headers, buf, len);
		assert_true(resp.status >= 100 && resp.status <= 999);
		assert_true(slice_within(resp.reason, buf, len));
	}
	err = http_chunked_scan(buf, len, &v, &consumed);
	assert_true(err == 0 || err == 1 || err == -EINVAL);
	assert_true(consumed <= len && v <= len);
	http_looks_like_request(buf, len);
}

static void test_garbage_never_crashes(void **state)
{
	static const char *const seeds[] = { curl_get, python_post, nginx_200, go_chunked };

	/* random bytes */
	for (int round = 0; round < 2000; round++) {
		size_t len = prng() % 200;
		char *buf = malloc(len ? len : 1);

		assert_non_null(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (char)prng();
		run_all_parsers(buf, len);
		free(buf);
	}
	/* realistic messages with a few bytes flipped to CR, LF, NUL, SP, ':' or random */
	for (int round = 0; round < 4000; round++) {
		const char *seed = seeds[round % 4];
		size_t len = strlen(seed);
		char *buf = exact_copy(seed, len);
		static const char specials[] = "\r\n\0 :\t;0";

		for (int k = 0; k < 3; k++) {
			uint32_t r = prng();

			buf[r % len] = (r & 0x10000) ? specials[(r >> 17) % 8] : (char)(r >> 20);
		}
		len = prng() % (len + 1); /* and a random cut */
		run_all_parsers(buf, len);
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response_nginx),
		cmocka_unit_test(test_response_go_chunked),
		cmocka_unit_test(test_response_python_http10),
		cmocka_unit_test(test_response_status_lines),
		cmocka_unit_test(test_response_100_continue_then_final),
		cmocka_unit_test(test_response_invalid),
		cmocka_unit_test(test_response_incomplete_line),
		cmocka_unit_test(test_response_every_prefix),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_content_length_invalid),
		cmocka_unit_test(test_is_chunked),
		cmocka_unit_test(test_chunked_simple),
		cmocka_unit_test(test_chunked_trailing_data_not_consumed),
		cmocka_unit_test(test_chunked_extensions),
		cmocka_unit_test(test_chunked_trailers),
		cmocka_unit_test(test_chunked_bare_lf_and_case),
		cmocka_unit_test(test_chunked_leading_zeros),
		cmocka_unit_test(test_chunked_malformed),
		cmocka_unit_test(test_chunked_huge_size_needs_more),
		cmocka_unit_test(test_chunked_empty_and_null_outputs),
		cmocka_unit_test(test_chunked_split_everywhere),
		cmocka_unit_test(test_target_split),
		cmocka_unit_test(test_looks_like_request),
		cmocka_unit_test(test_garbage_never_crashes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
