/* HTTP/1.x recognition in the kernel: just enough to delimit exchanges,
 * and the header scan (status, lengths, traceparent) that sk_msg shares.
 * Full parsing happens in the agent (user/protocols/http1/) on captured
 * bytes. */
#ifndef WEFT_PROTOCOLS_HTTP1_BPF_H
#define WEFT_PROTOCOLS_HTTP1_BPF_H

#include "protocols/protocol.bpf.h"
#include "lib/scan.bpf.h"


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

static __always_inline __u8 lower(__u8 c)
{
	return (c >= 'A' && c <= 'Z') ? c + 32 : c;
}


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
__attribute__((noinline)) int hdr_line(struct scan_buf *sb, __u32 i)
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
static __always_inline int word_next_lf(struct scan_buf *sb, __u64 w, __u64 *m, __u32 base)
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

/* The line feeds of the 8-byte word at base (most words of a header hold
 * none, and a word-wide test skips them: no byte is '\n' iff x = w ^
 * "\n"*8 has no zero byte). A word holds at most two line feeds in a
 * well-formed header ("\r\n\r\n"); a third (bare "\n\n\n") is not looked
 * at. 1 to stop the scan. */
static __always_inline int scan_word(struct scan_buf *sb, __u32 base)
{
	if (base >= sb->s.n)
		return 1;
	__u64 w;
	__builtin_memcpy(&w, &sb->b[base & (SCAN_MASK & ~7u)], 8);
	__u64 x = w ^ (ONES * '\n');
	__u64 m = (x - ONES) & ~x & HIGHS;
	int r = word_next_lf(sb, w, &m, base);
	if (r >= 0)
		return r;
	r = word_next_lf(sb, w, &m, base);
	return r > 0 ? 1 : 0;
}

/* Sixteen bytes per call: each call of a bpf_loop callback costs about as
 * much as testing a word, and header lines are longer than 16 bytes. */
static long hdr_scan_step(__u64 i, void *ctx)
{
	struct scan_buf *sb = *(struct scan_buf **)ctx;
	if (!sb)
		return 1;
	__u32 base = (i * 16) & (SCAN_MASK & ~15u);
	if (scan_word(sb, base))
		return 1;
	return scan_word(sb, base + 8);
}

/* Scans the first n bytes of sb->b; the result is in sb->s. bpf_loop
 * passes the callback a stack pointer: it holds only sb. A global function:
 * the verifier checks it (and the loop's callback) once, not once per call
 * site and state its callers arrive in (that was half a million
 * instructions of sys_exit_io). */
__attribute__((noinline)) int hdr_scan_run(struct scan_buf *sb, __u32 n)
{
	if (!sb)
		return 0;
	__builtin_memset(&sb->s, 0, sizeof(sb->s));
	sb->s.n = n;
	struct scan_buf *ctx = sb;
	bpf_loop(SCAN_BUF / 16, hdr_scan_step, &ctx, 0);
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
__attribute__((noinline)) int traceparent_parse(struct scan_buf *sb, struct w3c_context *out)
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
static __always_inline __u32 http_status(const struct scan_buf *buf)
{
	__u8 a = buf->b[9], b = buf->b[10], c = buf->b[11];
	if (a < '1' || a > '9' || b < '0' || b > '9' || c < '0' || c > '9')
		return 0;
	return (a - '0') * 100 + (b - '0') * 10 + (c - '0');
}

/* --- hooks (protocols/protocol.bpf.h) --- */

/* Total response size from the header in sb (n bytes): sets
 * t->resp_expected or t->chunked. Returns the status. Global: verified once. */
__attribute__((noinline)) int txn_response_lengths(struct txn_event *t, struct scan_buf *sb, __u32 n, __u32 status)
{
	if (!t || !sb)
		return 0;
	hdr_scan_run(sb, n);
	struct hdr_scan *s = &sb->s;
	if (!s->header_len)
		return status; /* header longer than the capture: ends at next read/request/close */
	bool head = t->req_len >= 4 && http_is_head_request(t->data);
	if (status == 101)
		t->resp_expected = 1;
	else if ((status >= 100 && status < 200) || status == 204 || status == 304 || head)
		t->resp_expected = s->header_len;
	else if (s->has_length)
		t->resp_expected = s->header_len + s->content_length;
	else if (s->chunked)
		t->chunked = 1;
	return status;
}

static __always_inline int http1_detect(const struct detect_ctx *d)
{
	if (http_is_request_start(d->head, d->hn))
		return DETECT_REQUEST;
	/* Some servers read a request's first byte alone (Go's net/http). */
	if (d->dir == DIR_READ && d->avail == d->ret && http_may_start_request(d->head, d->hn))
		return DETECT_PARTIAL;
	if (http_is_response_start(d->head, d->hn))
		return DETECT_OTHER; /* a response: the connection predates weft */
	return DETECT_NONE;
}

/* The status line and header: the response's total size (Content-Length,
 * chunked, no-body statuses, HEAD); an interim 100 Continue keeps the
 * exchange in its request phase; 101 hands the connection to another
 * protocol. */
static __always_inline int http1_response_first(struct txn_event *t, struct scan_buf *sb, __u32 n)
{
	if (!http_is_response_start(sb->b, n))
		return 1;
	__u32 status = http_status(sb);
	if (status == 100)
		return 0;
	/* A protocol switch (WebSocket, h2c): the rest is not HTTP/1. */
	int r = txn_response_lengths(t, sb, n, status) == 101 ? -1 : 1;
	/* The agent reads the status line alone: the rest of the header would
	 * cost the ring buffer's cache lines, not give a span anything. */
	__u32 keep = sb->s.first_line_end;
	txn_copy_response(t, sb, keep && keep < n ? keep : n);
	return r;
}

/* Without a known length, a chunked response ends with its last chunk. */
static __always_inline bool http1_response_ends(struct txn_event *t, struct io_args *io, long ret)
{
	__u8 tail[6] = {};
	if (!t->chunked || !io_tail6(io, ret, tail))
		return false;
	return tail[1] == '0' && tail[2] == '\r' && tail[3] == '\n' && tail[4] == '\r' && tail[5] == '\n';
}

#endif
