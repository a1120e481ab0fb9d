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

/* Could these n < 8 bytes be the beginning of a request line? (Some
 * servers read a request's first byte alone: Go's net/http does.) */
static __always_inline bool http_may_start_request(const __u8 *b, __u32 n)
{
	if (n == 0 || n >= 8)
		return false;
	switch (b[0]) {
	case 'G': case 'P': case 'H': case 'D': case 'O': case 'C': case 'T':
		break;
	default:
		return false;
	}
#pragma unroll
	for (__u32 k = 1; k < 8; k++)
		if (k < n && (b[k] < 'A' || b[k] > 'Z') && b[k] != ' ')
			return false;
	return true;
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

#define SCAN_BUF 2048 /* power of two: indexes are masked, never out of bounds */
#define SCAN_MASK (SCAN_BUF - 1)

/* State of the byte loop over a message header (bpf_loop callback). It
 * lives in map memory, right before the bytes it scans (struct scan_buf):
 * the verifier does not track what map memory holds, so it checks the
 * callback in a few rounds; with the state on the caller's stack it
 * followed every field's value from round to round (about 1M instructions
 * processed for sys_exit_io on 6.18, at the verifier's limit). */
struct hdr_scan {
	__u32 n;          /* valid bytes in the buffer */
	__u32 line_start; /* index of the current line's first byte */
	__u32 header_len; /* bytes through the blank line, 0 until seen */
	__u32 traceparent; /* index of the traceparent value, 0 if none */
	__u32 first_line_end; /* index after the first line feed */
	__u64 content_length;
	__u8 has_length;
	__u8 chunked;
};

/* A per-CPU scratch map value: a header's bytes and the scan over them. */
struct resp_scan_buf {
	struct hdr_scan s;
	__u8 b[SCAN_BUF];
};

_Static_assert(__builtin_offsetof(struct resp_scan_buf, b) == sizeof(struct hdr_scan),
	       "the scanned bytes follow the scan state");

static __always_inline __u8 lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}

/* Byte i of the header s scans (s is the state in a struct resp_scan_buf). */
#define AT(s, i) (((const __u8 *)((s) + 1))[(i) & SCAN_MASK])

static __always_inline bool line_has_prefix_ci(struct hdr_scan *s, __u32 at, const char *p, __u32 len)
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

static __always_inline void parse_content_length(struct hdr_scan *s, __u32 at)
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

/* A line feed at i: end of header, or a header line that follows. Returns
 * 1 to stop the scan. A global function: its unrolled prefix tests are
 * verified once, not in every state of the scan loop's callback. */
__attribute__((noinline)) int hdr_line(struct resp_scan_buf *sb, __u32 i)
{
	if (!sb)
		return 1;
	struct hdr_scan *s = &sb->s;
	if (!s->first_line_end)
		s->first_line_end = i + 1;
	if (i - s->line_start <= 1 && i > 0 && s->line_start > 0) {
		s->header_len = i + 1; /* "\r\n" or "\n" alone: end of header */
		return 1;
	}
	__u32 next = i + 1;
	s->line_start = next;
	__u8 c = lower(AT(s, next));
	if (c == 'c' && line_has_prefix_ci(s, next, "content-length:", 15)) {
		parse_content_length(s, next + 15);
	} else if (c == 't') {
		if (line_has_prefix_ci(s, next, "transfer-encoding:", 18))
			s->chunked = 1; /* only "chunked" may end a transfer-coding list */
		else if (!s->traceparent && line_has_prefix_ci(s, next, "traceparent:", 12))
			s->traceparent = next + 12;
	}
	return 0;
}

#define ONES 0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

/* Index (0..7) of the lowest byte flagged in m (bits 7, 15, .. 63):
 * (1 << 8k) times bytes 7,6,..,0 puts k in the top byte. */
static __always_inline __u32 lowest_flagged_byte(__u64 m)
{
	__u64 low = m & -m;
	return ((low >> 7) * 0x0001020304050607ull) >> 56;
}

/* The next flagged byte of word w: -1 to go on, 0 when the word is done,
 * 1 to stop the scan. */
static __always_inline int word_next_lf(struct resp_scan_buf *sb, __u64 w, __u64 *m, __u32 base)
{
	if (!*m)
		return 0;
	__u32 k = lowest_flagged_byte(*m) & 7;
	*m &= *m - 1;
	if (base + k >= sb->s.n)
		return 1;
	/* The word test can flag a byte above a real match: check it. */
	if (((w >> (8 * k)) & 0xff) == '\n' && hdr_line(sb, base + k))
		return 1;
	return -1;
}

/* Eight bytes per call: most words of a header hold no line feed, and a
 * word-wide test skips them (no byte is '\n' iff x = w ^ "\n"*8 has no zero
 * byte). A word holds at most two line feeds in a well-formed header
 * ("\r\n\r\n"); a third (bare "\n\n\n") is not looked at. */
static long hdr_scan_step(__u64 i, void *ctx)
{
	struct resp_scan_buf *sb = *(struct resp_scan_buf **)ctx;
	if (!sb)
		return 1;
	struct hdr_scan *s = &sb->s;
	__u32 base = (i * 8) & (SCAN_MASK & ~7u);
	if (i * 8 >= s->n)
		return 1;
	__u64 w;
	__builtin_memcpy(&w, &sb->b[base], 8);
	__u64 x = w ^ (ONES * '\n');
	__u64 m = (x - ONES) & ~x & HIGHS;
	int r = word_next_lf(sb, w, &m, base);
	if (r >= 0)
		return r;
	r = word_next_lf(sb, w, &m, base);
	return r > 0 ? 1 : 0;
}

/* Scans the first n bytes of sb->b; the result is in sb->s. bpf_loop
 * passes the callback a stack pointer: it holds only sb. A global function:
 * the verifier checks it (and the loop's callback) once, not once per call
 * site and state its callers arrive in (that was half a million
 * instructions of sys_exit_io). */
__attribute__((noinline)) int hdr_scan_run(struct resp_scan_buf *sb, __u32 n)
{
	if (!sb)
		return 0;
	__builtin_memset(&sb->s, 0, sizeof(sb->s));
	sb->s.n = n;
	struct resp_scan_buf *ctx = sb;
	bpf_loop(SCAN_BUF / 8, hdr_scan_step, &ctx, 0);
	return 0;
}

/* Value of a lowercase hex digit (W3C: lowercase only), else -1: a table
 * (holding value + 1, so that 0 means "not hex"), so that parsing a
 * 32-digit id is straight-line code for the verifier. */
#define HX(c) [c] = (c) - '0' + 1
#define HA(c) [c] = (c) - 'a' + 11
static const __u8 hex_value[256] = {
	HX('0'), HX('1'), HX('2'), HX('3'), HX('4'), HX('5'), HX('6'), HX('7'), HX('8'), HX('9'),
	HA('a'), HA('b'), HA('c'), HA('d'), HA('e'), HA('f'),
};
#undef HX
#undef HA

static __always_inline int hexval(__u8 c)
{
	return (int)hex_value[c] - 1;
}

/* A W3C trace context from a traceparent header value. */
struct w3c_context {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;
};

/* n bytes from 2n lowercase hex digits at index at of the scanned header.
 * Returns the OR of the bytes (zero: an all-zero id), or -1 if a digit is
 * not hex. One test per byte after the loop, not a branch per byte: the
 * verifier walks every iteration. */
static __always_inline int parse_hex_bytes(struct hdr_scan *s, __u32 at, __u8 *out, __u32 n)
{
	int bad = 0, any = 0;
#pragma clang loop unroll(disable)
	for (__u32 k = 0; k < n; k++) {
		int hi = hexval(AT(s, at + 2 * k)), lo = hexval(AT(s, at + 2 * k + 1));
		bad |= hi | lo;
		out[k] = hi << 4 | lo;
		any |= out[k];
	}
	return bad < 0 ? -1 : any;
}

/* Parses "VV-<32 hex>-<16 hex>-FF" at sb->s.traceparent per the W3C rules:
 * version ff is invalid; version 00 is exactly 55 characters; a later
 * version may carry more after a '-'. Invalid values are ignored. Returns
 * 1 with *out filled, else 0. A global function, verified once. */
__attribute__((noinline)) int traceparent_parse(struct resp_scan_buf *sb, struct w3c_context *out)
{
	if (!sb || !out)
		return 0;
	struct hdr_scan *s = &sb->s;
	__u32 v = s->traceparent;
	if (!v)
		return 0;
#pragma unroll
	for (int k = 0; k < 4; k++) { /* optional whitespace */
		__u8 c = AT(s, v);
		if (c == ' ' || c == '\t')
			v++;
	}
	if (v + 55 > s->n)
		return 0;
	int v1 = hexval(AT(s, v)), v2 = hexval(AT(s, v + 1));
	if (v1 < 0 || v2 < 0 || (v1 == 15 && v2 == 15))
		return 0;
	if (AT(s, v + 2) != '-' || AT(s, v + 35) != '-' || AT(s, v + 52) != '-')
		return 0;
	__u8 end = AT(s, v + 55);
	bool ended = end == '\r' || end == '\n' || end == ' ' || end == '\t' || v + 55 == s->n;
	if (v1 == 0 && v2 == 0 ? !ended : !(ended || end == '-'))
		return 0;
	__u8 flags;
	int tid = parse_hex_bytes(s, v + 3, out->trace_id, 16);
	int sid = parse_hex_bytes(s, v + 36, out->span_id, 8);
	if (tid <= 0 || sid <= 0 || parse_hex_bytes(s, v + 53, &flags, 1) < 0)
		return 0; /* not hex, or an all-zero id (invalid) */
	out->flags = flags;
	return 1;
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
