/* Terminal escaping. See text_escape.h. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "text_escape.h"

/* Length of the valid UTF-8 sequence at s (of n bytes) and its code point;
 * 0 if it is not valid (overlong, surrogate, past U+10FFFF, cut short). */
static size_t utf8_decode(const uint8_t *s, size_t n, uint32_t *cp)
{
	size_t len;
	uint32_t c, min;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2, c = s[0] & 0x1f, min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3, c = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4, c = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static bool unsafe_code_point(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

/* Appends piece (len bytes) if it fits with the NUL; false when full. */
static bool put(char *dst, size_t dstlen, size_t *o, const char *piece, size_t len)
{
	if (len >= dstlen - *o)
		return false;
	memcpy(dst + *o, piece, len);
	*o += len;
	return true;
}

size_t text_escape_terminal(const char *src, size_t n, char *dst, size_t dstlen)
{
	const uint8_t *s = (const uint8_t *)src;
	size_t o = 0;
	char esc[16];
	if (!dstlen)
		return 0;
	for (size_t i = 0; i < n;) {
		uint8_t b = s[i];
		uint32_t cp;
		size_t len = 1;
		bool ok;
		if (b == '\\') {
			ok = put(dst, dstlen, &o, "\\\\", 2);
		} else if (b >= 0x20 && b < 0x7f) {
			ok = put(dst, dstlen, &o, (const char *)s + i, 1);
		} else if (b < 0x80 || !(len = utf8_decode(s + i, n - i, &cp))) {
			len = 1;
			snprintf(esc, sizeof(esc), "\\x%02x", b);
			ok = put(dst, dstlen, &o, esc, 4);
		} else if (unsafe_code_point(cp)) {
			snprintf(esc, sizeof(esc), "\\u{%04x}", (unsigned)cp);
			ok = put(dst, dstlen, &o, esc, strlen(esc));
		} else {
			ok = put(dst, dstlen, &o, (const char *)s + i, len);
		}
		if (!ok)
			break;
		i += len;
	}
	dst[o] = '\0';
	return o;
}
