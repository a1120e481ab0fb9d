/* HTTP/1.x recognition in the kernel: just enough to delimit exchanges.
 * Full parsing happens in userspace (user/http_parser.c) on captured bytes. */
#ifndef WEFT_HTTP_BPF_H
#define WEFT_HTTP_BPF_H

#include "common.bpf.h"

/* Little-endian 4-byte constants for the first bytes of a message. */
#define W4(a, b, c, d) ((__u32)(a) | (__u32)(b) << 8 | (__u32)(c) << 16 | (__u32)(d) << 24)

/* First 8 bytes of a message, zero-padded when shorter. */
static __always_inline bool http_is_request_start(const __u8 *b, __u32 n)
{
	if (n < 4)
		return false;
	__u32 w = W4(b[0], b[1], b[2], b[3]);
	switch (w) {
	case W4('G', 'E', 'T', ' '):
	case W4('P', 'U', 'T', ' '):
		return true;
	case W4('P', 'O', 'S', 'T'):
	case W4('H', 'E', 'A', 'D'):
		return n >= 5 && b[4] == ' ';
	case W4('P', 'A', 'T', 'C'):
		return n >= 6 && b[4] == 'H' && b[5] == ' ';
	case W4('T', 'R', 'A', 'C'):
		return n >= 6 && b[4] == 'E' && b[5] == ' ';
	case W4('D', 'E', 'L', 'E'):
		return n >= 7 && b[4] == 'T' && b[5] == 'E' && b[6] == ' ';
	case W4('O', 'P', 'T', 'I'):
	case W4('C', 'O', 'N', 'N'):
		return n >= 8 && (b[7] == ' ');
	}
	return false;
}

static __always_inline bool http_is_response_start(const __u8 *b, __u32 n)
{
	return n >= 8 && W4(b[0], b[1], b[2], b[3]) == W4('H', 'T', 'T', 'P') &&
	       W4(b[4], b[5], b[6], b[7]) == W4('/', '1', '.', b[7]);
}

static __always_inline bool http_is_head_request(const __u8 *b)
{
	return W4(b[0], b[1], b[2], b[3]) == W4('H', 'E', 'A', 'D');
}

#define SCAN_BUF 1024 /* power of two: indexes are masked, never out of bounds */

struct resp_scan_buf {
	__u8 b[SCAN_BUF];
};

/* State of the byte loop over a response header (bpf_loop callback). */
struct resp_scan {
	struct resp_scan_buf *buf;
	__u32 n;          /* valid bytes in buf */
	__u32 line_start; /* index of the current line's first byte */
	__u32 header_len; /* bytes through the blank line, 0 until seen */
	__u64 content_length;
	__u8 has_length;
	__u8 chunked;
};

static __always_inline __u8 lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

#define AT(s, i) ((s)->buf->b[(i) & (SCAN_BUF - 1)])

static __always_inline bool line_has_prefix_ci(struct resp_scan *s, __u32 at, const char *p, __u32 len)
{
#pragma unroll
	for (__u32 k = 0; k < 18; k++) {
		if (k >= len)
			return true;
		if (lower(AT(s, at + k)) != (__u8)p[k])
			return false;
	}
	return true;
}

static __always_inline void parse_content_length(struct resp_scan *s, __u32 at)
{
	__u64 v = 0;
	bool digits = false;
#pragma unroll
	for (__u32 k = 0; k < 24; k++) {
		__u8 c = AT(s, at + k);
		if (c == ' ' || c == '\t') {
			if (digits)
				break;
			continue;
		}
		if (c < '0' || c > '9')
			break;
		v = v * 10 + (c - '0');
		digits = true;
	}
	if (digits) {
		s->content_length = v;
		s->has_length = 1;
	}
}

/* One byte per call: at each line feed, look at the line that follows. */
static long resp_scan_step(__u64 i, void *ctx)
{
	struct resp_scan *s = ctx;
	if (i >= s->n)
		return 1;
	if (AT(s, i) != '\n')
		return 0;
	if (i - s->line_start <= 1 && i > 0 && s->line_start > 0) {
		s->header_len = i + 1; /* "\r\n" or "\n" alone: end of header */
		return 1;
	}
	__u32 next = i + 1;
	s->line_start = next;
	__u8 c = lower(AT(s, next));
	if (c == 'c' && line_has_prefix_ci(s, next, "content-length:", 15))
		parse_content_length(s, next + 15);
	else if (c == 't' && line_has_prefix_ci(s, next, "transfer-encoding:", 18))
		s->chunked = 1; /* only "chunked" may end a transfer-coding list */
	return 0;
}

/* Three-digit status of a response starting at b[0], 0 if malformed. */
static __always_inline __u32 http_status(const struct resp_scan_buf *buf)
{
	__u8 a = buf->b[9], b = buf->b[10], c = buf->b[11];
	if (a < '1' || a > '9' || b < '0' || b > '9' || c < '0' || c > '9')
		return 0;
	return (a - '0') * 100 + (b - '0') * 10 + (c - '0');
}

#endif
