/* JSON sink (user/export/sink_json.c, user/export/json_buf.c): the exact bytes of a line,
 * checked through the sink itself (stdout redirected to a file). The
 * expected lines are what the former fprintf-based writer printed. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "json_buf.h"
#include "proc.h"
#include "sinks.h"

/* Everything the sink printed for spans, as one string (caller frees). */
static char *emit_lines(struct span **spans, size_t n)
{
	char path[] = "/tmp/weft-json-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stdout);
	int saved = dup(1);
	assert_true(dup2(fd, 1) >= 0);
	struct span_sink *sink = json_sink_create();
	for (size_t i = 0; i < n; i++)
		sink->emit(sink, spans[i]);
	sink->close(sink); /* flushes */
	assert_true(dup2(saved, 1) >= 0);
	close(saved);
	off_t len = lseek(fd, 0, SEEK_END);
	char *out = calloc(1, len + 1);
	assert_int_equal(pread(fd, out, len, 0), len);
	close(fd);
	return out;
}

static struct resource *make_resource(void)
{
	struct resource *r = calloc(1, sizeof(*r));
	r->refs = 1;
	r->pid = 7;
	attrs_set_str(&r->attrs, "service.name", "svc \"q\"");
	attrs_set_bool(&r->attrs, WEFT_ATTR_SERVICE_FROM_PROCESS, true);
	attrs_set_int(&r->attrs, "process.pid", 7);
	attrs_set_str(&r->attrs, "process.command_line", "a\tb\x01");
	return r;
}

static struct span *make_span(void)
{
	struct span *s = span_new();
	for (int i = 0; i < 16; i++)
		s->trace_id[i] = (uint8_t)(0xf1 + 3 * i);
	for (int i = 0; i < 8; i++)
		s->span_id[i] = (uint8_t)(0x0a * i);
	s->name = strdup("GET /a\"b");
	s->kind = SPAN_KIND_SERVER;
	s->start_ns = 1700000000123456789ull;
	s->end_ns = UINT64_MAX;
	s->status = SPAN_STATUS_ERROR;
	attrs_set_str(&s->attrs, "s", "x\\y\"z\n\r\t\b\f\x01\x1f\x7f\xc3\xa9/");
	attrs_set_str(&s->attrs, "empty", "");
	attrs_set_int(&s->attrs, "min", INT64_MIN);
	attrs_set_int(&s->attrs, "max", INT64_MAX);
	attrs_set_int(&s->attrs, "zero", 0);
	attrs_set_int(&s->attrs, "neg", -1234567);
	attrs_set_bool(&s->attrs, "t", true);
	attrs_set_bool(&s->attrs, "f", false);
	attrs_set_double(&s->attrs, "d", 0.1);
	attrs_set_double(&s->attrs, "d2", -2.5e-310);
	attrs_set_double(&s->attrs, "nan", NAN);
	attrs_set_double(&s->attrs, "inf", -INFINITY);
	attrs_set_str(&s->attrs, "weft.internal.k", "kept on spans");
	return s;
}

static void test_line_bytes(void **state)
{
	struct span *s[2] = { make_span(), make_span() };
	s[0]->resource = make_resource();
	s[1]->parent_span_id[7] = 0xff;
	s[1]->kind = SPAN_KIND_CLIENT;
	s[1]->status = SPAN_STATUS_UNSET;
	s[1]->status_message = strdup("closed\n");
	s[1]->trace_state = strdup("k=v");
	char *out = emit_lines(s, 2);
	const char *attrs =
		"\"attributes\":{\"s\":\"x\\\\y\\\"z\\n\\r\\t\\u0008\\u000c\\u0001\\u001f\x7f\xc3\xa9/\","
		"\"empty\":\"\",\"min\":-9223372036854775808,\"max\":9223372036854775807,\"zero\":0,"
		"\"neg\":-1234567,\"t\":true,\"f\":false,\"d\":0.10000000000000001,"
		"\"d2\":-2.5000000000000171e-310,\"nan\":null,\"inf\":null,"
		"\"weft.internal.k\":\"kept on spans\"}";
	char expected[4096];
	snprintf(expected, sizeof(expected),
		 "{\"trace_id\":\"f1f4f7fafd000306090c0f1215181b1e\",\"span_id\":\"000a141e28323c46\","
		 "\"parent_span_id\":\"\",\"name\":\"GET /a\\\"b\",\"kind\":\"SERVER\","
		 "\"start_ns\":1700000000123456789,\"end_ns\":18446744073709551615,\"status\":\"ERROR\","
		 "%s,\"resource\":{\"service.name\":\"svc \\\"q\\\"\",\"process.pid\":7,"
		 "\"process.command_line\":\"a\\tb\\u0001\"}}\n"
		 "{\"trace_id\":\"f1f4f7fafd000306090c0f1215181b1e\",\"span_id\":\"000a141e28323c46\","
		 "\"parent_span_id\":\"00000000000000ff\",\"name\":\"GET /a\\\"b\",\"kind\":\"CLIENT\","
		 "\"start_ns\":1700000000123456789,\"end_ns\":18446744073709551615,\"status\":\"UNSET\","
		 "\"status_message\":\"closed\\n\",\"trace_state\":\"k=v\",%s,\"resource\":{}}\n",
		 attrs, attrs);
	assert_string_equal(out, expected);
	free(out);
	span_free(s[0]);
	span_free(s[1]);
}

/* The resource's object is built once and reused for its later spans. */
static void test_resource_cached(void **state)
{
	struct resource *r = make_resource();
	struct span *s[2] = { make_span(), make_span() };
	s[0]->resource = resource_get(r);
	s[1]->resource = resource_get(r);
	char *out = emit_lines(s, 2);
	assert_non_null(r->json);
	assert_string_equal(r->json, "{\"service.name\":\"svc \\\"q\\\"\",\"process.pid\":7,"
				     "\"process.command_line\":\"a\\tb\\u0001\"}");
	char *second = strchr(out, '\n') + 1;
	assert_memory_equal(out, second, strlen(second));
	free(out);
	span_free(s[0]);
	span_free(s[1]);
	resource_put(r);
}

static void test_buf_writers(void **state)
{
	struct json_buf b = { 0 };
	json_buf_u64(&b, 0);
	json_buf_char(&b, ' ');
	json_buf_u64(&b, 1234567890123ull);
	json_buf_char(&b, ' ');
	json_buf_i64(&b, -1);
	json_buf_char(&b, ' ');
	json_buf_str(&b, NULL);
	json_buf_hex(&b, (const uint8_t *)"\x00\xab\xff", 3);
	json_buf_double(&b, 1e21);
	json_buf_char(&b, ' ');
	json_buf_double(&b, 3.0);
	json_buf_char(&b, '\0');
	assert_false(b.failed);
	assert_string_equal(b.p, "0 1234567890123 -1 \"\"00abff1e+21 3");
	/* growing past the first allocation keeps the content */
	b.len = 0;
	char big[10000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_buf_str(&b, big);
	assert_int_equal(b.len, sizeof(big) + 1);
	assert_true(b.p[0] == '"' && b.p[b.len - 1] == '"' && b.p[5000] == 'a');
	json_buf_free(&b);
}

/* The former writer's escaping, byte by byte: the reference. */
static size_t reference_escape(const unsigned char *s, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	out[o++] = '"';
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') {
			out[o++] = '\\';
			out[o++] = (char)*s;
		} else if (*s == '\n' || *s == '\r' || *s == '\t') {
			out[o++] = '\\';
			out[o++] = *s == '\n' ? 'n' : *s == '\r' ? 'r' : 't';
		} else if (*s < 0x20) {
			o += sprintf(out + o, "\\u00%c%c", hex[*s >> 4], hex[*s & 15]);
		} else {
			out[o++] = (char)*s;
		}
	}
	out[o++] = '"';
	return o;
}

/* Strings of every length around the 8-byte steps, each byte drawn from
 * the classes the writer tells apart, against the reference. */
static void test_escaping_matches_reference(void **state)
{
	static const unsigned char pool[] = { 'a', 'Z', '0', ' ', '/', '"', '\\', '\n', '\r', '\t', 0x01,
					      0x1f, 0x7f, 0x80, 0xc3, 0xff, '!', '#', '[', ']' };
	unsigned char in[64];
	char want[64 * 6 + 3];
	struct json_buf b = { 0 };
	uint32_t x = 12345;
	for (int round = 0; round < 20000; round++) {
		size_t n = round % 40;
		for (size_t i = 0; i < n; i++) {
			x = x * 1103515245u + 12345u;
			/* mostly plain bytes, so that whole clean words occur */
			in[i] = (x >> 16) % 4 ? 'a' + (x >> 20) % 26 : pool[(x >> 8) % sizeof(pool)];
		}
		in[n] = '\0';
		size_t wn = reference_escape(in, want);
		b.len = 0;
		json_buf_str(&b, (const char *)in);
		assert_int_equal(b.len, wn);
		assert_memory_equal(b.p, want, wn);
	}
	/* integers against printf */
	for (int round = 0; round < 20000; round++) {
		x = x * 1103515245u + 12345u;
		uint64_t v = ((uint64_t)x << 32 | (x * 2654435761u)) >> (round % 64);
		char ref[32];
		b.len = 0;
		json_buf_u64(&b, v);
		assert_int_equal(b.len, sprintf(ref, "%llu", (unsigned long long)v));
		assert_memory_equal(b.p, ref, b.len);
		b.len = 0;
		json_buf_i64(&b, -(int64_t)(v >> 1));
		assert_int_equal(b.len, sprintf(ref, "%lld", -(long long)(v >> 1)));
		assert_memory_equal(b.p, ref, b.len);
	}
	json_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_bytes),
		cmocka_unit_test(test_resource_cached),
		cmocka_unit_test(test_buf_writers),
		cmocka_unit_test(test_escaping_matches_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
