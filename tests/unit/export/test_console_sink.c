/* Console sink (user/export/sink_console.c) and its escaping
 * (user/export/text_escape.c): what a traced process controls never reaches
 * the terminal as a control sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sinks.h"
#include "text_escape.h"

static const char *esc(const char *in, size_t n, size_t cap)
{
	static char out[256];
	assert_true(cap <= sizeof(out));
	text_escape_terminal(in, n, out, cap);
	return out;
}

static void test_escape(void **state)
{
	assert_string_equal(esc("GET /a", 6, 256), "GET /a");
	assert_string_equal(esc("\x1b[2Jevil", 8, 256), "\\x1b[2Jevil");
	assert_string_equal(esc("a\x07\x7f\n\t\r", 6, 256), "a\\x07\\x7f\\x0a\\x09\\x0d");
	assert_string_equal(esc("a\\x1b", 5, 256), "a\\\\x1b"); /* a literal backslash stays visible as one */
	assert_string_equal(esc("caf\xc3\xa9", 5, 256), "caf\xc3\xa9");		 /* UTF-8 kept */
	assert_string_equal(esc("\xc2\x9b" "31m", 5, 256), "\\u{009b}31m");	 /* C1 CSI */
	assert_string_equal(esc("\x9b" "31m", 4, 256), "\\x9b31m");		 /* raw 8-bit CSI */
	assert_string_equal(esc("\xe2\x80\xae" "abc", 6, 256), "\\u{202e}abc"); /* RTL override */
	assert_string_equal(esc("\xc0\x9b", 2, 256), "\\xc0\\x9b");		 /* overlong */
	assert_string_equal(esc("\xed\xa0\x80", 3, 256), "\\xed\\xa0\\x80");	 /* surrogate */
	assert_string_equal(esc("\xe2\x82", 2, 256), "\\xe2\\x82");		 /* cut short */
	assert_string_equal(esc("a\0b", 3, 256), "a\\x00b");
	/* never half an escape: stops before one that does not fit */
	assert_string_equal(esc("ab\x1b", 3, 6), "ab");
	assert_string_equal(esc("ab\x1b", 3, 7), "ab\\x1b");
	assert_string_equal(esc("x", 1, 1), "");
}

static struct span *hostile_span(const char *name, const char *service, uint8_t id)
{
	struct span *s = span_new();
	assert_non_null(s);
	memset(s->trace_id, 0x11, 16);
	memset(s->span_id, id, 8);
	s->name = strdup(name);
	s->kind = SPAN_KIND_CLIENT;
	s->start_ns = 1000000;
	s->end_ns = 2000000;
	struct resource *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->refs = 1;
	attrs_set_str(&r->attrs, "service.name", service);
	s->resource = r;
	return s;
}

static void test_console_output_has_no_control_sequences(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	struct span_sink *sink = console_sink_create(f);
	struct span *spans[] = {
		hostile_span("SELECT \"\x1b[2Jevil\"", "svc", 1),			/* a quoted SQL identifier */
		hostile_span("GET /", "\x1b]0;pwned\x07\x1b[31mred\xc2\x9b" "0m", 2), /* OTEL_SERVICE_NAME */
		hostile_span("\r\n\x1b[1A\x1b[K fake line", "s\xe2\x80\xae" "drawkcab", 3),
	};
	for (size_t i = 0; i < 3; i++) {
		sink->emit(sink, spans[i]);
		span_free(spans[i]);
	}
	sink->close(sink);
	fclose(f);
	for (size_t i = 0; i < len; i++) {
		uint8_t b = (uint8_t)buf[i];
		if ((b < 0x20 && b != '\n') || b == 0x7f)
			fail_msg("control byte 0x%02x at %zu in:\n%s", b, i, buf);
		if (b == 0xc2 && i + 1 < len && (uint8_t)buf[i + 1] >= 0x80 && (uint8_t)buf[i + 1] <= 0x9f)
			fail_msg("C1 control at %zu in:\n%s", i, buf);
	}
	assert_null(strstr(buf, "\xe2\x80\xae"));
	/* three spans, three lines after the trace header: no line forged */
	size_t lines = 0;
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\n';
	assert_int_equal(lines, 1 + 3 + 1);
	assert_non_null(strstr(buf, "\\x1b[2Jevil"));
	assert_non_null(strstr(buf, "\\x1b]0;pwned\\x"));
	assert_non_null(strstr(buf, "\\x0d\\x0a\\x1b[1A"));
	free(buf);
}

/* A trace of 300 spans: 256 drawn, 44 counted omitted (weft.dropped). */
static void test_spans_omitted_counted(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	struct span_sink *sink = console_sink_create(f);
	uint64_t before = console_sink_omitted();
	for (int i = 0; i < 300; i++) {
		struct span *s = hostile_span("GET /", "svc", (uint8_t)i);
		sink->emit(sink, s);
		span_free(s);
	}
	sink->close(sink);
	fclose(f);
	assert_int_equal(console_sink_omitted() - before, 44);
	assert_non_null(strstr(buf, "(spans omitted)"));
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_console_output_has_no_control_sequences),
		cmocka_unit_test(test_spans_omitted_counted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
