/* HTTP/1.x message parsing: pure functions over captured bytes.
 * Captured messages are often truncated (weft keeps the first N bytes), so
 * the parsers return what the complete part holds and say what was cut. */
#ifndef WEFT_HTTP_PARSER_H
#define WEFT_HTTP_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A slice of the input buffer (not NUL-terminated). */
struct http_str {
	const char *p;
	size_t len;
};

#define HTTP_MAX_HEADERS 64

struct http_header {
	struct http_str name, value; /* value without surrounding blanks */
};

struct http_headers {
	struct http_header h[HTTP_MAX_HEADERS];
	size_t n;
	bool truncated;      /* input ended before the blank line */
	size_t header_len;   /* bytes up to and including CRLFCRLF, 0 if truncated */
	size_t malformed;    /* header lines skipped as malformed */
};

struct http_request {
	struct http_str method, target; /* target as sent: origin-form or absolute-form */
	int version_minor;              /* 0 or 1 (HTTP/1.x) */
	struct http_headers headers;
};

struct http_response {
	int version_minor;
	int status;                /* 100..999 */
	struct http_str reason;
	struct http_headers headers;
};

/* Return 0 on success (possibly with headers.truncated set: the request
 * line itself was complete; malformed header lines are skipped and counted
 * in headers.malformed), -EINVAL when the start line is not an HTTP/1.x
 * request line, -EAGAIN when the request line itself is cut short. */
int http_parse_request(const char *buf, size_t len, struct http_request *req);
/* Same contract for a status line and headers. */
int http_parse_response(const char *buf, size_t len, struct http_response *resp);

/* Case-insensitive header lookup; NULL when absent. */
const struct http_str *http_header_get(const struct http_headers *h, const char *name);

/* Content-Length value: 0 and *out on success, -ENOENT if absent, -EINVAL
 * when malformed (non-digits, overflow, conflicting duplicates). */
int http_content_length(const struct http_headers *h, uint64_t *out);
/* True when Transfer-Encoding's last coding is "chunked". */
bool http_is_chunked(const struct http_headers *h);

/* Decode a chunked body in place-less fashion: walks chunk-size lines over
 * buf and returns the total size of the decoded payload in *payload, the
 * number of input bytes consumed in *consumed, and 1 when the terminating
 * zero chunk (and trailers) were seen, 0 when more input is needed,
 * -EINVAL on malformed framing. */
int http_chunked_scan(const char *buf, size_t len, uint64_t *payload, size_t *consumed);

/* Path part of a request target ("/a/b?x=1" -> "/a/b"; absolute-form
 * "http://h:8/a?q" -> "/a"), and the query without '?' (may be empty). */
void http_target_split(struct http_str target, struct http_str *path, struct http_str *query);

/* True if buf starts like an HTTP/1.x request line ("GET /", "POST /" ...):
 * the quick test the kernel side also makes. */
bool http_looks_like_request(const char *buf, size_t len);

#endif
