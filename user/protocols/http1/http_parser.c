/* HTTP/1.x parsing over captured bytes (see http_parser.h).
 *
 * Every function here is pure and bounded by len: inputs are slices of a
 * capture buffer, never NUL-terminated, and often cut short.  The request
 * and status lines are validated byte by byte so that a prefix of a valid
 * line is reported as -EAGAIN while a byte that can never start a valid
 * line is reported as -EINVAL, whatever the length of the capture. */
#include "http_parser.h"

#include <errno.h>
#include <string.h>

/* Longer "methods" are not HTTP: every registered method is far shorter,
 * and the bound lets a run of letters be rejected early. */
#define HTTP_MAX_METHOD_LEN 32

static const char http_version_prefix[] = "HTTP/1.";
#define HTTP_VERSION_PREFIX_LEN (sizeof(http_version_prefix) - 1)

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_tchar(unsigned char c)
{
	/* a table: this runs for every byte of every header name */
	static const bool tchar[256] = {
		['a' ... 'z'] = true, ['A' ... 'Z'] = true, ['0' ... '9'] = true,
		['!'] = true, ['#'] = true, ['$'] = true, ['%'] = true, ['&'] = true,
		['\''] = true, ['*'] = true, ['+'] = true, ['-'] = true, ['.'] = true,
		['^'] = true, ['_'] = true, ['`'] = true, ['|'] = true, ['~'] = true,
	};
	return tchar[c];
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool is_ows(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static bool str_ieq(struct http_str s, const char *lit, size_t litlen)
{
	if (s.len != litlen)
		return false;
	for (size_t i = 0; i < litlen; i++)
		if (ascii_lower(s.p[i]) != ascii_lower(lit[i]))
			return false;
	return true;
}

static struct http_str str_trim_ows(struct http_str s)
{
	while (s.len && is_ows((unsigned char)s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len && is_ows((unsigned char)s.p[s.len - 1]))
		s.len--;
	return s;
}

/* Matches "HTTP/1.0" or "HTTP/1.1" at buf[*pos], advancing *pos.  Returns
 * -EAGAIN when the input ends inside a valid prefix. */
static int parse_version(const char *buf, size_t len, size_t *pos, int *minor)
{
	size_t i = *pos;

	for (size_t k = 0; k < HTTP_VERSION_PREFIX_LEN; k++, i++) {
		if (i >= len)
			return -EAGAIN;
		if (buf[i] != http_version_prefix[k])
			return -EINVAL;
	}
	if (i >= len)
		return -EAGAIN;
	if (buf[i] != '0' && buf[i] != '1')
		return -EINVAL;
	*minor = buf[i] - '0';
	*pos = i + 1;
	return 0;
}

/* Matches the end of a start line (CRLF, or a bare LF as RFC 9112 2.2
 * allows) at buf[*pos], advancing *pos past it. */
static int parse_line_end(const char *buf, size_t len, size_t *pos)
{
	size_t i = *pos;

	if (i >= len)
		return -EAGAIN;
	if (buf[i] == '\r') {
		if (++i >= len)
			return -EAGAIN;
	}
	if (buf[i] != '\n')
		return -EINVAL;
	*pos = i + 1;
	return 0;
}

static int parse_single_sp(const char *buf, size_t len, size_t *pos)
{
	if (*pos >= len)
		return -EAGAIN;
	if (buf[*pos] != ' ')
		return -EINVAL;
	(*pos)++;
	return 0;
}

/* One header line without its line end: "name: value". */
static int parse_header_line(const char *line, size_t n, struct http_header *out)
{
	size_t colon = 0;

	while (colon < n && line[colon] != ':') {
		/* RFC 9112 5.1: no whitespace between name and colon. */
		if (!is_tchar((unsigned char)line[colon]))
			return -EINVAL;
		colon++;
	}
	if (colon == 0 || colon == n)
		return -EINVAL;
	/* RFC 9110 5.5: CR, LF and NUL in a field value must be rejected (or
	 * replaced, which a zero-copy parser cannot do). */
	for (size_t i = colon + 1; i < n; i++)
		if (line[i] == '\0' || line[i] == '\r')
			return -EINVAL;
	out->name = (struct http_str){ line, colon };
	out->value = str_trim_ows((struct http_str){ line + colon + 1, n - colon - 1 });
	return 0;
}

/* Header section starting at buf[pos] (right after the start line).  A
 * capture that ends before the blank line is normal: the complete lines are
 * kept and truncated is set.  A malformed line (no colon, a name that is no
 * token, NUL or a bare CR) is skipped and counted: a peer would reject it
 * (400) or ignore it, and weft observes rather than enforces, so one bad
 * header must not cost the whole span (its method, target and status). */
static int parse_headers(const char *buf, size_t len, size_t pos, struct http_headers *h)
{
	h->n = 0;
	h->truncated = false;
	h->header_len = 0;
	h->malformed = 0;

	for (;;) {
		const char *nl = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
		size_t end, n;

		if (!nl) {
			h->truncated = true;
			return 0;
		}
		end = (size_t)(nl - buf);
		n = end - pos;
		if (n && buf[end - 1] == '\r')
			n--;
		if (n == 0) {
			h->header_len = end + 1;
			return 0;
		}
		/* obs-fold (RFC 9112 5.2): a line starting with blanks continues
		 * the previous value; it is tolerated and its content ignored. */
		if (!is_ows((unsigned char)buf[pos])) {
			if (h->n == HTTP_MAX_HEADERS) {
				h->truncated = true;
				return 0;
			}
			if (parse_header_line(buf + pos, n, &h->h[h->n]) == 0)
				h->n++;
			else
				h->malformed++;
		} else if (memchr(buf + pos, '\0', n)) {
			h->malformed++;
		}
		pos = end + 1;
	}
}

static int parse_method(const char *buf, size_t len, size_t *pos)
{
	size_t i = 0;

	for (;;) {
		if (i >= len)
			return -EAGAIN;
		if (buf[i] == ' ')
			break;
		if (!is_tchar((unsigned char)buf[i]) || i == HTTP_MAX_METHOD_LEN)
			return -EINVAL;
		i++;
	}
	if (i == 0)
		return -EINVAL;
	*pos = i;
	return 0;
}

/* request-target: any visible byte (obs-text tolerated), at least one. */
static int parse_target(const char *buf, size_t len, size_t *pos)
{
	size_t i = *pos;

	for (;;) {
		unsigned char c;

		if (i >= len)
			return -EAGAIN;
		c = (unsigned char)buf[i];
		if (c == ' ')
			break;
		if (c < 0x20 || c == 0x7f)
			return -EINVAL;
		i++;
	}
	if (i == *pos)
		return -EINVAL;
	*pos = i;
	return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
	size_t pos = 0, target_start;
	int err;

	memset(req, 0, sizeof(*req));
	if (!buf)
		len = 0;
	if ((err = parse_method(buf, len, &pos)))
		return err;
	req->method = (struct http_str){ buf, pos };
	pos++;
	target_start = pos;
	if ((err = parse_target(buf, len, &pos)))
		return err;
	req->target = (struct http_str){ buf + target_start, pos - target_start };
	if ((err = parse_single_sp(buf, len, &pos)) ||
	    (err = parse_version(buf, len, &pos, &req->version_minor)) ||
	    (err = parse_line_end(buf, len, &pos)))
		return err;
	return parse_headers(buf, len, pos, &req->headers);
}

static int parse_status_code(const char *buf, size_t len, size_t *pos, int *status)
{
	int code = 0;

	for (int k = 0; k < 3; k++) {
		unsigned char c;

		if (*pos >= len)
			return -EAGAIN;
		c = (unsigned char)buf[*pos];
		/* RFC 9110 15: three digits, 100..999 for a recipient. */
		if (!is_digit(c) || (k == 0 && c == '0'))
			return -EINVAL;
		code = code * 10 + (c - '0');
		(*pos)++;
	}
	*status = code;
	return 0;
}

/* After the status code: either the line end, or SP and a reason phrase of
 * visible bytes, blanks and obs-text (RFC 9112 4). */
static int parse_reason(const char *buf, size_t len, size_t *pos, struct http_str *reason)
{
	size_t i = *pos, start;

	if (i >= len)
		return -EAGAIN;
	if (buf[i] != ' ') {
		*reason = (struct http_str){ buf + i, 0 };
		return parse_line_end(buf, len, pos);
	}
	start = ++i;
	for (;;) {
		unsigned char c;

		if (i >= len)
			return -EAGAIN;
		c = (unsigned char)buf[i];
		if (c == '\r' || c == '\n')
			break;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return -EINVAL;
		i++;
	}
	*reason = (struct http_str){ buf + start, i - start };
	*reason = str_trim_ows(*reason);
	*pos = i;
	return parse_line_end(buf, len, pos);
}

int http_parse_response(const char *buf, size_t len, struct http_response *resp)
{
	size_t pos = 0;
	int err;

	memset(resp, 0, sizeof(*resp));
	if (!buf)
		len = 0;
	if ((err = parse_version(buf, len, &pos, &resp->version_minor)) ||
	    (err = parse_single_sp(buf, len, &pos)) ||
	    (err = parse_status_code(buf, len, &pos, &resp->status)) ||
	    (err = parse_reason(buf, len, &pos, &resp->reason)))
		return err;
	return parse_headers(buf, len, pos, &resp->headers);
}

const struct http_str *http_header_get(const struct http_headers *h, const char *name)
{
	size_t name_len = strlen(name);

	for (size_t i = 0; i < h->n && i < HTTP_MAX_HEADERS; i++)
		if (str_ieq(h->h[i].name, name, name_len))
			return &h->h[i].value;
	return NULL;
}

/* Splits a comma-separated list: returns the next element (OWS trimmed) and
 * advances *rest past it.  False when the list is exhausted. */
static bool list_next(struct http_str *rest, struct http_str *elem)
{
	const char *comma;
	size_t n;

	if (rest->len == 0 && rest->p == NULL)
		return false;
	comma = rest->len ? memchr(rest->p, ',', rest->len) : NULL;
	n = comma ? (size_t)(comma - rest->p) : rest->len;
	*elem = str_trim_ows((struct http_str){ rest->p, n });
	if (comma)
		*rest = (struct http_str){ comma + 1, rest->len - n - 1 };
	else
		*rest = (struct http_str){ NULL, 0 };
	return true;
}

static int parse_decimal_u64(struct http_str s, uint64_t *out)
{
	uint64_t v = 0;

	if (s.len == 0)
		return -EINVAL;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char c = (unsigned char)s.p[i];

		if (!is_digit(c))
			return -EINVAL;
		if (v > (UINT64_MAX - (c - '0')) / 10)
			return -EINVAL;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return 0;
}

/* RFC 9110 8.6: repeated Content-Length fields, or a list of identical
 * values, are accepted when every value agrees; anything else is invalid
 * framing (a request-smuggling vector). */
int http_content_length(const struct http_headers *h, uint64_t *out)
{
	static const char name[] = "content-length";
	bool found = false;
	uint64_t first = 0;

	for (size_t i = 0; i < h->n && i < HTTP_MAX_HEADERS; i++) {
		struct http_str rest, elem;

		if (!str_ieq(h->h[i].name, name, sizeof(name) - 1))
			continue;
		rest = h->h[i].value;
		if (!rest.p)
			rest.p = "";
		while (list_next(&rest, &elem)) {
			uint64_t v;

			if (parse_decimal_u64(elem, &v))
				return -EINVAL;
			if (found && v != first)
				return -EINVAL;
			first = v;
			found = true;
		}
	}
	if (!found)
		return -ENOENT;
	*out = first;
	return 0;
}

bool http_is_chunked(const struct http_headers *h)
{
	static const char name[] = "transfer-encoding";
	struct http_str last = { NULL, 0 };

	for (size_t i = 0; i < h->n && i < HTTP_MAX_HEADERS; i++) {
		struct http_str rest, elem;

		if (!str_ieq(h->h[i].name, name, sizeof(name) - 1))
			continue;
		rest = h->h[i].value;
		if (!rest.p)
			rest.p = "";
		while (list_next(&rest, &elem)) {
			const char *semi;

			if (elem.len == 0)
				continue; /* RFC 9110 5.6.1: empty list elements don't count */
			semi = memchr(elem.p, ';', elem.len);
			if (semi) /* transfer parameters */
				elem = str_trim_ows((struct http_str){ elem.p, (size_t)(semi - elem.p) });
			last = elem;
		}
	}
	return str_ieq(last, "chunked", 7);
}

/* chunk-size line: 1*HEXDIG [BWS] [ ";" chunk-ext ] line-end.  Sets *next to
 * the first byte after the line. */
static int parse_chunk_size_line(const char *buf, size_t len, size_t pos,
				 uint64_t *size, size_t *next)
{
	size_t i = pos;
	uint64_t v = 0;
	int d;

	while (i < len && (d = hex_value((unsigned char)buf[i])) >= 0) {
		if (v > (UINT64_MAX >> 4))
			return -EINVAL;
		v = (v << 4) | (uint64_t)d;
		i++;
	}
	if (i == pos)
		return i < len ? -EINVAL : -EAGAIN;
	while (i < len && is_ows((unsigned char)buf[i]))
		i++;
	if (i < len && buf[i] == ';') {
		/* chunk extensions carry nothing we report; skip to the line end
		 * but refuse bytes no valid extension holds. */
		while (i < len && buf[i] != '\n') {
			if (buf[i] == '\0' || (buf[i] == '\r' && i + 1 < len && buf[i + 1] != '\n'))
				return -EINVAL;
			i++;
		}
		if (i >= len)
			return -EAGAIN;
		*size = v;
		*next = i + 1;
		return 0;
	}
	if ((d = parse_line_end(buf, len, &i)))
		return d;
	*size = v;
	*next = i;
	return 0;
}

/* trailer-section and the final line end after the zero-size chunk. */
static int parse_trailers(const char *buf, size_t len, size_t pos, size_t *next)
{
	for (;;) {
		const char *nl = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;
		struct http_header unused;
		size_t end, n;

		if (!nl) {
			/* Reject garbage early rather than waiting for a newline. */
			if (pos < len && buf[pos] != '\r' && !is_tchar((unsigned char)buf[pos]))
				return -EINVAL;
			return -EAGAIN;
		}
		end = (size_t)(nl - buf);
		n = end - pos;
		if (n && buf[end - 1] == '\r')
			n--;
		if (n == 0) {
			*next = end + 1;
			return 0;
		}
		if (parse_header_line(buf + pos, n, &unused))
			return -EINVAL;
		pos = end + 1;
	}
}

/* Walks whole chunks only: *consumed always ends on a chunk boundary (or
 * after the trailers), so a caller holding more bytes later can resume at
 * buf + *consumed and add up the payloads. */
int http_chunked_scan(const char *buf, size_t len, uint64_t *payload, size_t *consumed)
{
	uint64_t total = 0;
	size_t pos = 0;
	int ret;

	if (!buf)
		len = 0;
	for (;;) {
		uint64_t size;
		size_t data, trailer_end;

		ret = parse_chunk_size_line(buf, len, pos, &size, &data);
		if (ret)
			break;
		if (size == 0) {
			ret = parse_trailers(buf, len, data, &trailer_end);
			if (ret == 0) {
				pos = trailer_end;
				ret = 1;
			}
			break;
		}
		if (size > len - data) {
			ret = -EAGAIN;
			break;
		}
		data += (size_t)size;
		ret = parse_line_end(buf, len, &data);
		if (ret)
			break;
		total += size;
		pos = data;
	}
	if (payload)
		*payload = total;
	if (consumed)
		*consumed = pos;
	return ret == -EAGAIN ? 0 : ret;
}

void http_target_split(struct http_str target, struct http_str *path, struct http_str *query)
{
	const char *end = target.p + target.len, *p = target.p, *q;
	struct http_str out_path, out_query;

	if (!target.p) {
		target.p = "";
		target.len = 0;
		end = p = target.p;
	}
	/* absolute-form: scheme "://" authority path-abempty */
	if (target.len && target.p[0] != '/') {
		const char *sep = NULL;

		for (const char *s = target.p; s + 2 < end; s++) {
			if (s[0] == ':' && s[1] == '/' && s[2] == '/') {
				sep = s;
				break;
			}
			if (s[0] == '/' || s[0] == '?')
				break;
		}
		if (sep) {
			p = sep + 3;
			while (p < end && *p != '/' && *p != '?' && *p != '#')
				p++;
		}
	}
	q = p;
	while (q < end && *q != '?' && *q != '#')
		q++;
	out_path = (struct http_str){ p, (size_t)(q - p) };
	if (out_path.len == 0 && p != target.p)
		out_path = (struct http_str){ "/", 1 };
	out_query = (struct http_str){ q, 0 };
	if (q < end && *q == '?') {
		const char *qe = ++q;

		while (qe < end && *qe != '#')
			qe++;
		out_query = (struct http_str){ q, (size_t)(qe - q) };
	}
	if (path)
		*path = out_path;
	if (query)
		*query = out_query;
}

bool http_looks_like_request(const char *buf, size_t len)
{
	static const char *const methods[] = {
		"GET ", "POST ", "PUT ", "DELETE ", "HEAD ",
		"OPTIONS ", "PATCH ", "CONNECT ", "TRACE ",
	};

	if (!buf)
		return false;
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		size_t n = strlen(methods[i]);

		if (len >= n && memcmp(buf, methods[i], n) == 0)
			return true;
	}
	return false;
}
