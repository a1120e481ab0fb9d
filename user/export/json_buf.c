/* JSON output buffer (see json_buf.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "json_buf.h"
#include "span.h"

bool json_buf_reserve(struct json_buf *b, size_t n)
{
	if (b->failed)
		return false;
	if (b->cap - b->len >= n)
		return true;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->failed = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void json_buf_free(struct json_buf *b)
{
	free(b->p);
	*b = (struct json_buf){ 0 };
}

/* 0: the byte passes through; else the character after the backslash, or
 * 'u' for \u00XX. */
static const char escape[256] = {
	['\0'] = 'u', ['\x01'] = 'u', ['\x02'] = 'u', ['\x03'] = 'u', ['\x04'] = 'u',
	['\x05'] = 'u', ['\x06'] = 'u', ['\x07'] = 'u', ['\b'] = 'u', ['\t'] = 't',
	['\n'] = 'n', ['\x0b'] = 'u', ['\f'] = 'u', ['\r'] = 'r', ['\x0e'] = 'u',
	['\x0f'] = 'u', ['\x10'] = 'u', ['\x11'] = 'u', ['\x12'] = 'u', ['\x13'] = 'u',
	['\x14'] = 'u', ['\x15'] = 'u', ['\x16'] = 'u', ['\x17'] = 'u', ['\x18'] = 'u',
	['\x19'] = 'u', ['\x1a'] = 'u', ['\x1b'] = 'u', ['\x1c'] = 'u', ['\x1d'] = 'u',
	['\x1e'] = 'u', ['\x1f'] = 'u', ['"'] = '"', ['\\'] = '\\',
};

/* Whether any of the 8 bytes in x must be escaped: below 0x20, '"' or
 * '\\' (the classic "has a zero byte" and "has a byte less than" tricks:
 * exact as a yes/no answer). */
static bool word_needs_escape(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
	uint64_t quote = x ^ (ones * '"'), bslash = x ^ (ones * '\\');
	uint64_t below = (x - ones * 0x20) & ~x;
	uint64_t zero_q = (quote - ones) & ~quote, zero_b = (bslash - ones) & ~bslash;
	return ((below | zero_q | zero_b) & highs) != 0;
}

void json_buf_str(struct json_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	/* the worst case (every byte \u00XX) reserved once: no check per byte */
	if (!json_buf_reserve(b, 6 * n + 2))
		return;
	const unsigned char *end = p + n;
	char *o = b->p + b->len;
	*o++ = '"';
	while (p < end) {
		/* most strings need no escaping: 8 bytes at a time */
		uint64_t w;
		if (end - p >= 8 && (memcpy(&w, p, 8), !word_needs_escape(w))) {
			memcpy(o, p, 8);
			o += 8;
			p += 8;
			continue;
		}
		const unsigned char *stop = end - p >= 8 ? p + 8 : end;
		for (; p < stop; p++) {
			unsigned char c = *p;
			char e = escape[c];
			if (!e) {
				*o++ = (char)c;
				continue;
			}
			*o++ = '\\';
			*o++ = e;
			if (e == 'u') {
				*o++ = '0';
				*o++ = '0';
				*o++ = hex[c >> 4];
				*o++ = hex[c & 15];
			}
		}
	}
	*o++ = '"';
	b->len = o - b->p;
}

void json_buf_u64(struct json_buf *b, uint64_t v)
{
	/* two digits per division: timestamps have 19 */
	static const char pairs[] = "00010203040506070809101112131415161718192021222324"
				    "25262728293031323334353637383940414243444546474849"
				    "50515253545556575859606162636465666768697071727374"
				    "75767778798081828384858687888990919293949596979899";
	char tmp[20], *o = tmp + sizeof(tmp);
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		*--o = pairs[d + 1];
		*--o = pairs[d];
	}
	if (v >= 10) {
		*--o = pairs[v * 2 + 1];
		*--o = pairs[v * 2];
	} else {
		*--o = (char)('0' + v);
	}
	json_buf_put(b, o, tmp + sizeof(tmp) - o);
}

void json_buf_i64(struct json_buf *b, int64_t v)
{
	if (v < 0) {
		json_buf_char(b, '-');
		json_buf_u64(b, -(uint64_t)v); /* also right for INT64_MIN */
		return;
	}
	json_buf_u64(b, (uint64_t)v);
}

void json_buf_double(struct json_buf *b, double d)
{
	/* rare (no attribute weft sets is a double): stdio's exact %.17g */
	char tmp[32];
	if (!isfinite(d)) {
		json_buf_lit(b, "null");
		return;
	}
	int n = snprintf(tmp, sizeof(tmp), "%.17g", d);
	if (n > 0)
		json_buf_put(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

void json_buf_hex(struct json_buf *b, const uint8_t *in, size_t n)
{
	if (!json_buf_reserve(b, 2 * n + 1))
		return;
	hex_encode(in, n, b->p + b->len); /* its NUL is not part of the content */
	b->len += 2 * n;
}
