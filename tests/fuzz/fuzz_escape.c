/* libFuzzer harness for the output escaping of text traced processes
 * control: the console's (text_escape_terminal: no control character, C1
 * control or bidi override reaches the terminal, output always valid
 * UTF-8, never past its buffer) and the JSON sink's (json_buf_str: a valid
 * JSON string). The first byte picks the console buffer size. Built and run
 * by tests/fuzz/run_escape. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_buf.h"
#include "text_escape.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

/* Length of the valid UTF-8 sequence at s, 0 if invalid. */
static size_t utf8_len(const uint8_t *s, size_t n, uint32_t *cp)
{
	size_t len = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		   : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	uint32_t c = len == 1 ? s[0] : s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
	if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

static void console(const uint8_t *d, size_t n, size_t cap)
{
	char *out = malloc(cap);
	if (!out)
		return;
	size_t w = text_escape_terminal((const char *)d, n, out, cap);
	CHECK(w < cap && out[w] == 0 && strlen(out) == w);
	const uint8_t *o = (const uint8_t *)out;
	for (size_t i = 0; i < w;) {
		uint32_t cp;
		size_t l = utf8_len(o + i, w - i, &cp);
		CHECK(l);
		CHECK(cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp <= 0x9f));
		CHECK(!(cp >= 0x202a && cp <= 0x202e) && !(cp >= 0x2066 && cp <= 0x2069));
		i += l;
	}
	/* with room for the worst case (10 bytes per input byte), nothing is
	 * cut: every input byte gives at least one output byte */
	if (cap > 10 * n)
		CHECK(w >= n);
	free(out);
}

static void json(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		return;
	memcpy(s, d, n);
	s[n] = 0;
	struct json_buf b = {0};
	json_buf_str(&b, s);
	CHECK(!b.failed && b.len >= 2 && b.p[0] == '"' && b.p[b.len - 1] == '"');
	for (size_t i = 1; i < b.len - 1; i++) {
		unsigned char c = (unsigned char)b.p[i];
		CHECK(c >= 0x20 && c != '"');
		if (c == '\\') {
			CHECK(i + 1 < b.len - 1 && strchr("\"\\/bfnrtu", b.p[i + 1]));
			if (b.p[i + 1] == 'u') {
				CHECK(i + 5 < b.len - 1);
				for (int k = 2; k < 6; k++)
					CHECK(strchr("0123456789abcdefABCDEF", b.p[i + k]));
				i += 5;
			} else {
				i++;
			}
		}
	}
	json_buf_free(&b);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t cap = data[0] == 0xff ? 10 * size + 16 : (size_t)data[0] + 1;
	console(data + 1, size - 1, cap);
	json(data + 1, size - 1);
	return 0;
}
