/* JSON output buffer (see json_buf.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "json_buf.h"

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

void json_buf_str(struct json_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n = strlen((const char *)p);
	/* the worst case (every byte \u00XX) reserved once: no check per byte */
	if (!json_buf_reserve(b, 6 * n + 2))
		return;
	char *o = b->p + b->len;
	*o++ = '"';
	for (; *p; p++) {
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
	*o++ = '"';
	b->len = o - b->p;
}

void json_buf_u64(struct json_buf *b, uint64_t v)
{
	char tmp[20], *o = tmp + sizeof(tmp);
	do {
		*--o = (char)('0' + v % 10);
		v /= 10;
	} while (v);
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
	static const char digits[] = "0123456789abcdef";
	if (!json_buf_reserve(b, 2 * n))
		return;
	char *o = b->p + b->len;
	for (size_t i = 0; i < n; i++) {
		*o++ = digits[in[i] >> 4];
		*o++ = digits[in[i] & 15];
	}
	b->len += 2 * n;
}
