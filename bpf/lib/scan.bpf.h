/* The per-CPU buffer in which a message header is scanned: the scan's
 * state, then the bytes. */
#ifndef WEFT_LIB_SCAN_BPF_H
#define WEFT_LIB_SCAN_BPF_H

#include "lib/common.bpf.h"

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

/* A W3C trace context from a traceparent header value. */
struct w3c_context {
	__u8 trace_id[16];
	__u8 span_id[8];
	__u8 flags;
};

/* A per-CPU scratch map value: a header's bytes, the scan over them, and
 * the traceparent found (here, not on the stack of the capture's deepest
 * chain of calls). */
struct scan_buf {
	struct hdr_scan s;
	__u8 b[SCAN_BUF];
	struct w3c_context tp;
};

_Static_assert(__builtin_offsetof(struct scan_buf, b) == sizeof(struct hdr_scan),
	       "the scanned bytes follow the scan state");

/* Byte i of the header s scans (s is the state in a struct scan_buf). */
#define AT(s, i) (((const __u8 *)((s) + 1))[(i) & SCAN_MASK])

#endif
