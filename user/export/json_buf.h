/* A growable byte buffer with the few JSON writers the JSON sink needs:
 * strings with RFC 8259 escaping, decimal integers, lowercase hex. It runs
 * once per value of every span, so it formats by hand instead of through
 * stdio (printf's format parsing cost more than the rest of a span's line).
 * Output is byte-for-byte what the former fprintf-based writer produced. */
#ifndef WEFT_JSON_BUF_H
#define WEFT_JSON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct json_buf {
	char *p;
	size_t len, cap;
	bool failed; /* out of memory: the content is incomplete */
};

/* Room for n more bytes; false (and failed set) when out of memory. */
bool json_buf_reserve(struct json_buf *b, size_t n);
void json_buf_free(struct json_buf *b);

static inline void json_buf_put(struct json_buf *b, const char *s, size_t n)
{
	if (b->cap - b->len < n && !json_buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

/* A string literal, its length known at compile time. */
#define json_buf_lit(b, lit) json_buf_put((b), "" lit, sizeof(lit) - 1)

static inline void json_buf_char(struct json_buf *b, char c)
{
	json_buf_put(b, &c, 1);
}

/* A JSON string: quotes, backslash and control characters escaped (\" \\
 * \n \r \t, others \u00XX); other bytes (UTF-8, DEL) pass through. NULL is
 * written as "". */
void json_buf_str(struct json_buf *b, const char *s);
/* Decimal, as printf's %llu / %lld. */
void json_buf_u64(struct json_buf *b, uint64_t v);
void json_buf_i64(struct json_buf *b, int64_t v);
/* A double as printf's %.17g, or null when not finite (JSON has neither
 * NaN nor infinity). */
void json_buf_double(struct json_buf *b, double d);
/* n bytes as 2n lowercase hex digits. */
void json_buf_hex(struct json_buf *b, const uint8_t *in, size_t n);

#endif
