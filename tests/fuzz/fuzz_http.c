/* libFuzzer harness for the HTTP/1.x parsers and the route heuristic: every
 * parser sees the raw input, and what a parser returns is checked to lie
 * within the input, as the agent relies on it.  Built and run by
 * tests/fuzz/run. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_parser.h"
#include "route.h"

#define CHECK(cond)                \
	do {                       \
		if (!(cond))       \
			abort();   \
	} while (0)

static void check_slice(struct http_str s, const char *buf, size_t len)
{
	if (s.len == 0)
		return;
	CHECK(s.p >= buf && s.p + s.len <= buf + len);
}

static void check_headers(const struct http_headers *h, const char *buf, size_t len)
{
	uint64_t cl;

	CHECK(h->n <= HTTP_MAX_HEADERS);
	CHECK(h->header_len <= len);
	CHECK(h->truncated == (h->header_len == 0));
	for (size_t i = 0; i < h->n; i++) {
		CHECK(h->h[i].name.len > 0);
		check_slice(h->h[i].name, buf, len);
		check_slice(h->h[i].value, buf, len);
	}
	(void)http_header_get(h, "content-type");
	(void)http_content_length(h, &cl);
	(void)http_is_chunked(h);
}

static void check_route(const char *p, size_t n)
{
	char out[64];
	int r;

	r = route_from_path(p, n, out, sizeof(out));
	CHECK(r == -EINVAL || (r >= 0 && (size_t)r < sizeof(out) && strlen(out) == (size_t)r));
	/* tiny buffers too */
	for (size_t outlen = 1; outlen <= 6; outlen++) {
		r = route_from_path(p, n, out, outlen);
		CHECK(r == -EINVAL || (r >= 0 && (size_t)r < outlen));
		CHECK(strlen(out) < outlen);
	}
}

static void fuzz_request(const char *buf, size_t len)
{
	struct http_request req;
	struct http_str path, query;
	int r = http_parse_request(buf, len, &req);

	CHECK(r == 0 || r == -EAGAIN || r == -EINVAL);
	if (r != 0)
		return;
	CHECK(req.method.len > 0 && req.target.len > 0);
	check_slice(req.method, buf, len);
	check_slice(req.target, buf, len);
	CHECK(req.version_minor == 0 || req.version_minor == 1);
	check_headers(&req.headers, buf, len);
	http_target_split(req.target, &path, &query);
	check_slice(query, buf, len);
	if (!(path.len == 1 && path.p[0] == '/'))
		check_slice(path, buf, len);
	check_route(path.p, path.len);
}

static void fuzz_response(const char *buf, size_t len)
{
	struct http_response resp;
	int r = http_parse_response(buf, len, &resp);

	CHECK(r == 0 || r == -EAGAIN || r == -EINVAL);
	if (r != 0)
		return;
	CHECK(resp.status >= 100 && resp.status <= 999);
	check_slice(resp.reason, buf, len);
	check_headers(&resp.headers, buf, len);
}

static void fuzz_chunked(const char *buf, size_t len)
{
	uint64_t payload = 0, payload2 = 0;
	size_t consumed = 0, consumed2 = 0;
	int r = http_chunked_scan(buf, len, &payload, &consumed);

	CHECK(r == 1 || r == 0 || r == -EINVAL);
	CHECK(consumed <= len && payload <= consumed);
	if (r == 0) {
		/* resuming at the boundary must agree with the whole scan */
		r = http_chunked_scan(buf + consumed, len - consumed, &payload2, &consumed2);
		CHECK(r == 0 && consumed2 == 0 && payload2 == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so that ASan catches any read past size. */
	char *buf = malloc(size ? size : 1);
	struct http_str path, query;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	fuzz_request(buf, size);
	fuzz_response(buf, size);
	fuzz_chunked(buf, size);
	(void)http_looks_like_request(buf, size);
	http_target_split((struct http_str){ buf, size }, &path, &query);
	check_route(buf, size);
	free(buf);
	return 0;
}
