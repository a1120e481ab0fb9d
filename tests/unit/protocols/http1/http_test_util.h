/* Captured messages and assertions shared by the HTTP/1 parser tests
 * (test_http_parser.c: requests and headers; test_http_body.c: responses,
 * lengths, chunked bodies, targets). */
#ifndef WEFT_TEST_HTTP_UTIL_H
#define WEFT_TEST_HTTP_UTIL_H

#include "http_parser.h"

/* Realistic captures. */
__attribute__((unused)) static const char curl_get[] =
	"GET /api/users/42?expand=true HTTP/1.1\r\n"
	"Host: localhost:8080\r\n"
	"User-Agent: curl/7.88.1\r\n"
	"Accept: */*\r\n"
	"\r\n";

__attribute__((unused)) static const char python_post[] =
	"POST /api/orders HTTP/1.1\r\n"
	"Host: orders.internal:5000\r\n"
	"User-Agent: python-requests/2.28.1\r\n"
	"Accept-Encoding: gzip, deflate\r\n"
	"Accept: */*\r\n"
	"Connection: keep-alive\r\n"
	"Content-Length: 26\r\n"
	"Content-Type: application/json\r\n"
	"\r\n"
	"{\"item\": \"book\", \"qty\": 2}";

__attribute__((unused)) static const char go_get[] =
	"GET /v1/items?limit=10&offset=20 HTTP/1.1\r\n"
	"Host: inventory:9000\r\n"
	"User-Agent: Go-http-client/1.1\r\n"
	"Traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"
	"Accept-Encoding: gzip\r\n"
	"\r\n";

__attribute__((unused)) static const char nginx_200[] =
	"HTTP/1.1 200 OK\r\n"
	"Server: nginx/1.22.1\r\n"
	"Date: Wed, 31 Jan 2024 10:00:00 GMT\r\n"
	"Content-Type: text/html\r\n"
	"Content-Length: 615\r\n"
	"Last-Modified: Tue, 11 Apr 2023 01:45:34 GMT\r\n"
	"Connection: keep-alive\r\n"
	"ETag: \"6434bbbe-267\"\r\n"
	"Accept-Ranges: bytes\r\n"
	"\r\n"
	"<!DOCTYPE html>\n<html>";

__attribute__((unused)) static const char go_chunked[] =
	"HTTP/1.1 200 OK\r\n"
	"Content-Type: text/plain; charset=utf-8\r\n"
	"Date: Wed, 31 Jan 2024 10:00:00 GMT\r\n"
	"Transfer-Encoding: chunked\r\n"
	"\r\n"
	"5\r\nhello\r\n"
	"7\r\n, world\r\n"
	"0\r\n\r\n";

__attribute__((unused)) static const char python_404[] =
	"HTTP/1.0 404 File not found\r\n"
	"Server: SimpleHTTP/0.6 Python/3.11.2\r\n"
	"Date: Wed, 31 Jan 2024 10:00:00 GMT\r\n"
	"Connection: close\r\n"
	"Content-Type: text/html;charset=utf-8\r\n"
	"Content-Length: 335\r\n"
	"\r\n";

__attribute__((unused)) static bool str_is(struct http_str s, const char *lit)
{
	return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

#define assert_str(s, lit)                                                      \
	do {                                                                    \
		struct http_str s_ = (s);                                       \
		if (!str_is(s_, (lit)))                                         \
			fail_msg("got \"%.*s\", want \"%s\"", (int)s_.len,      \
				 s_.p ? s_.p : "", (lit));                       \
	} while (0)

__attribute__((unused)) static void assert_header(const struct http_headers *h, const char *name, const char *value)
{
	const struct http_str *v = http_header_get(h, name);

	if (!v)
		fail_msg("header %s missing", name);
	assert_str(*v, value);
}

__attribute__((unused)) static bool slice_within(struct http_str s, const char *buf, size_t len)
{
	if (s.len == 0)
		return true;
	return s.p >= buf && s.p + s.len <= buf + len;
}

__attribute__((unused)) static void assert_headers_within(const struct http_headers *h, const char *buf, size_t len)
{
	assert_true(h->n <= HTTP_MAX_HEADERS);
	assert_true(h->header_len <= len);
	for (size_t i = 0; i < h->n; i++) {
		assert_true(h->h[i].name.len > 0);
		assert_true(slice_within(h->h[i].name, buf, len));
		assert_true(slice_within(h->h[i].value, buf, len));
	}
}

/* Copies the first len bytes to an exact-size heap block, so that reading
 * past len is caught by ASan or valgrind. */
static char *exact_copy(const char *buf, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, buf, len);
	return p;
}

__attribute__((unused)) static size_t offset_after(const char *buf, const char *needle)
{
	const char *p = strstr(buf, needle);

	assert_non_null(p);
	return (size_t)(p - buf) + strlen(needle);
}

/* ---- requests ---- */


/* Every prefix of a message: -EAGAIN inside the first line, then 0 with
 * truncated headers, then 0 complete; header counts never decrease. */
__attribute__((unused)) static void check_every_prefix(const char *msg, size_t len, bool is_request)
{
	size_t line_end = offset_after(msg, "\n");
	size_t head_end = offset_after(msg, "\r\n\r\n");
	size_t prev_n = 0;

	for (size_t i = 0; i <= len; i++) {
		char *buf = exact_copy(msg, i);
		struct http_request req;
		struct http_response resp;
		struct http_headers *h;
		int err;

		if (is_request) {
			err = http_parse_request(buf, i, &req);
			h = &req.headers;
		} else {
			err = http_parse_response(buf, i, &resp);
			h = &resp.headers;
		}
		if (i < line_end) {
			if (err != -EAGAIN)
				fail_msg("prefix %zu: got %d, want -EAGAIN", i, err);
		} else {
			if (err != 0)
				fail_msg("prefix %zu: got %d, want 0", i, err);
			assert_headers_within(h, buf, i);
			assert_int_equal(h->truncated, i < head_end);
			assert_int_equal(h->header_len, i < head_end ? 0 : head_end);
			assert_true(h->n >= prev_n);
			prev_n = h->n;
		}
		free(buf);
	}
}

#endif
