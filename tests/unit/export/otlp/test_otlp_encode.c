/* OTLP encoder: spans -> ExportTraceServiceRequest, checked by decoding the
 * bytes back with protobuf-c; resource merging rules. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "otlp.h"
#include "otlp_encode.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

static struct resource *make_resource(uint32_t pid, const char *service)
{
	struct resource *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->refs = 1;
	r->pid = pid;
	assert_int_equal(attrs_set_str(&r->attrs, "service.name", service), 0);
	assert_int_equal(attrs_set_int(&r->attrs, "process.pid", pid), 0);
	assert_int_equal(attrs_set_str(&r->attrs, "telemetry.sdk.name", "weft"), 0);
	assert_int_equal(attrs_set_bool(&r->attrs, OTLP_ATTR_SERVICE_FROM_PROCESS, false), 0);
	return r;
}

static struct span *make_span(struct resource *r, uint8_t seed, bool root)
{
	struct span *s = span_new();

	assert_non_null(s);
	for (int i = 0; i < 16; i++)
		s->trace_id[i] = seed + i;
	for (int i = 0; i < 8; i++) {
		s->span_id[i] = 0xa0 + seed + i;
		s->parent_span_id[i] = root ? 0 : 0x50 + i;
	}
	s->trace_flags = 1;
	s->name = strdup("GET /users/*");
	s->kind = SPAN_KIND_SERVER;
	s->start_ns = 1700000000000000000ull + seed;
	s->end_ns = s->start_ns + 1234567;
	s->status = seed % 2 ? SPAN_STATUS_ERROR : SPAN_STATUS_UNSET;
	if (seed % 2)
		s->status_message = strdup("boom");
	s->resource = resource_get(r);
	assert_int_equal(attrs_set_str(&s->attrs, "http.request.method", "GET"), 0);
	assert_int_equal(attrs_set_str(&s->attrs, "url.path", "/users/42"), 0);
	assert_int_equal(attrs_set_int(&s->attrs, "http.response.status_code", 200 + seed), 0);
	assert_int_equal(attrs_set_bool(&s->attrs, "weft.internal.debug", true), 0);
	assert_int_equal(attrs_set_double(&s->attrs, "test.ratio", 0.5), 0);
	assert_int_equal(attrs_set_bool(&s->attrs, "test.flag", true), 0);
	return s;
}

static const KeyValue *kv_find(KeyValue **kvs, size_t n, const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(kvs[i]->key, key))
			return kvs[i];
	return NULL;
}

static Request *roundtrip(const struct span *const *spans, size_t n)
{
	uint8_t *buf;
	size_t len;
	Request *req;

	assert_int_equal(otlp_encode_spans(spans, n, &buf, &len), 0);
	assert_true(len > 0);
	req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
		NULL, len, buf);
	assert_non_null(req);
	/* the hand-written encoder writes exactly what protobuf-c would */
	size_t plen = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(req);
	uint8_t *packed = malloc(plen);
	assert_int_equal(opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, packed), plen);
	assert_int_equal(plen, len);
	assert_memory_equal(packed, buf, len);
	free(packed);
	free(buf);
	return req;
}

static void check_span(const Span *p, const struct span *s)
{
	const KeyValue *kv;

	assert_int_equal(p->trace_id.len, 16);
	assert_memory_equal(p->trace_id.data, s->trace_id, 16);
	assert_int_equal(p->span_id.len, 8);
	assert_memory_equal(p->span_id.data, s->span_id, 8);
	if (span_has_parent(s)) {
		assert_int_equal(p->parent_span_id.len, 8);
		assert_memory_equal(p->parent_span_id.data, s->parent_span_id, 8);
	} else {
		assert_int_equal(p->parent_span_id.len, 0);
	}
	assert_int_equal(p->flags, 1);
	assert_string_equal(p->name, s->name);
	assert_int_equal(p->kind, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER);
	assert_true(p->start_time_unix_nano == s->start_ns);
	assert_true(p->end_time_unix_nano == s->end_ns);
	if (s->status == SPAN_STATUS_ERROR) {
		assert_non_null(p->status);
		assert_int_equal(p->status->code,
				 OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR);
		assert_string_equal(p->status->message, "boom");
	} else {
		assert_true(!p->status || p->status->code == 0);
	}
	/* all attributes but the internal one, with their types */
	assert_int_equal(p->n_attributes, 5);
	assert_null(kv_find(p->attributes, p->n_attributes, "weft.internal.debug"));
	kv = kv_find(p->attributes, p->n_attributes, "http.request.method");
	assert_non_null(kv);
	assert_int_equal(kv->value->value_case,
			 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
	assert_string_equal(kv->value->string_value, "GET");
	kv = kv_find(p->attributes, p->n_attributes, "http.response.status_code");
	assert_non_null(kv);
	assert_int_equal(kv->value->value_case,
			 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
	assert_int_equal(kv->value->int_value, attrs_get(&s->attrs, "http.response.status_code")->i);
	kv = kv_find(p->attributes, p->n_attributes, "test.ratio");
	assert_int_equal(kv->value->value_case,
			 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
	assert_true(kv->value->double_value == 0.5);
	kv = kv_find(p->attributes, p->n_attributes, "test.flag");
	assert_int_equal(kv->value->value_case,
			 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
	assert_true(kv->value->bool_value);
}

static void test_roundtrip(void **state)
{
	struct resource *r1 = make_resource(100, "api"), *r2 = make_resource(200, "worker");
	struct span *s[5] = {
		make_span(r1, 0, true), make_span(r2, 1, false), make_span(r1, 2, false),
		make_span(r1, 3, true), make_span(r2, 4, true),
	};
	Request *req = roundtrip((const struct span *const *)s, 5);

	/* grouped by process, in order of first appearance */
	assert_int_equal(req->n_resource_spans, 2);
	for (int g = 0; g < 2; g++) {
		const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[g];
		const Opentelemetry__Proto__Resource__V1__Resource *res = rs->resource;
		const KeyValue *kv;

		assert_non_null(res);
		assert_int_equal(res->n_attributes, 3); /* weft.* dropped */
		assert_null(kv_find(res->attributes, res->n_attributes, OTLP_ATTR_SERVICE_FROM_PROCESS));
		kv = kv_find(res->attributes, res->n_attributes, "service.name");
		assert_string_equal(kv->value->string_value, g ? "worker" : "api");
		kv = kv_find(res->attributes, res->n_attributes, "process.pid");
		assert_int_equal(kv->value->value_case,
				 OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
		assert_int_equal(kv->value->int_value, g ? 200 : 100);
		assert_int_equal(rs->n_scope_spans, 1);
		assert_string_equal(rs->scope_spans[0]->scope->name, "weft");
		assert_string_equal(rs->scope_spans[0]->scope->version, WEFT_VERSION);
	}
	assert_int_equal(req->resource_spans[0]->scope_spans[0]->n_spans, 3);
	assert_int_equal(req->resource_spans[1]->scope_spans[0]->n_spans, 2);
	check_span(req->resource_spans[0]->scope_spans[0]->spans[0], s[0]);
	check_span(req->resource_spans[0]->scope_spans[0]->spans[1], s[2]);
	check_span(req->resource_spans[0]->scope_spans[0]->spans[2], s[3]);
	check_span(req->resource_spans[1]->scope_spans[0]->spans[0], s[1]);
	check_span(req->resource_spans[1]->scope_spans[0]->spans[1], s[4]);

	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	for (int i = 0; i < 5; i++)
		span_free(s[i]);
	resource_put(r1);
	resource_put(r2);
}

/* Values at the edges of the wire format (zero, negative, empty, large):
 * roundtrip() checks the bytes against protobuf-c's. */
static void test_wire_edge_values(void **state)
{
	struct resource *r = make_resource(0, "");
	struct span *s[4];
	for (int i = 0; i < 4; i++)
		s[i] = make_span(r, (uint8_t)(i * 77), i % 2);
	assert_int_equal(attrs_set_int(&s[0]->attrs, "neg", -1), 0);
	assert_int_equal(attrs_set_int(&s[0]->attrs, "min", INT64_MIN), 0);
	assert_int_equal(attrs_set_int(&s[0]->attrs, "zero", 0), 0);
	assert_int_equal(attrs_set_int(&s[0]->attrs, "big", 1ll << 62), 0);
	assert_int_equal(attrs_set_bool(&s[0]->attrs, "no", false), 0);
	assert_int_equal(attrs_set_str(&s[0]->attrs, "empty", ""), 0);
	assert_int_equal(attrs_set_str(&s[0]->attrs, "", "empty key"), 0);
	assert_int_equal(attrs_set_double(&s[0]->attrs, "negzero", -0.0), 0);
	assert_int_equal(attrs_set_double(&s[0]->attrs, "nan", __builtin_nan("")), 0);
	char longval[300];
	memset(longval, 'x', sizeof(longval) - 1); /* lengths past one varint byte */
	longval[sizeof(longval) - 1] = '\0';
	assert_int_equal(attrs_set_str(&s[1]->attrs, "long", longval), 0);
	s[1]->trace_state = strdup("a=b");
	s[1]->trace_flags = 0;
	s[1]->kind = SPAN_KIND_INTERNAL;
	s[2]->status = SPAN_STATUS_OK;
	s[2]->start_ns = 0;
	s[2]->end_ns = UINT64_MAX;
	free(s[2]->name);
	s[2]->name = strdup("");
	free(s[3]->status_message);
	s[3]->status_message = strdup("");
	s[3]->trace_flags = 0xff;
	resource_put(s[3]->resource);
	s[3]->resource = NULL;
	Request *req = roundtrip((const struct span *const *)s, 4);
	assert_int_equal(req->n_resource_spans, 2);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	for (int i = 0; i < 4; i++)
		span_free(s[i]);
	resource_put(r);
}

/* A collector rejects a whole request for one string that is not UTF-8
 * (Go's protobuf does): each byte that begins no valid sequence is sent
 * as '?', valid multi-byte text as it is. */
static void test_invalid_utf8_replaced(void **state)
{
	struct resource *r = make_resource(7, "svc\xff\xfe");
	struct span *s = make_span(r, 1, true);
	free(s->name);
	s->name = strdup("GET /caf\xc3\xa9|\xc3(|\xed\xa0\x80|\xf0\x9f\x98\x80|\xc0\xaf|\xe2\x82");
	free(s->status_message);
	s->status_message = strdup("bad \x80 byte");
	s->trace_state = strdup("k=\xf5v");
	assert_int_equal(attrs_set_str(&s->attrs, "url.path", "/\xf4\x90\x80\x80|ok"), 0);
	assert_int_equal(attrs_set_str(&s->attrs, "key\xff", "v"), 0);
	Request *req = roundtrip((const struct span *const *)&s, 1);
	const Span *p = req->resource_spans[0]->scope_spans[0]->spans[0];
	/* é and the emoji stay; a lone lead, a surrogate, an overlong form and
	 * a cut sequence do not */
	assert_string_equal(p->name, "GET /caf\xc3\xa9|?(|???|\xf0\x9f\x98\x80|??|??");
	assert_string_equal(p->status->message, "bad ? byte");
	assert_string_equal(p->trace_state, "k=?v");
	const KeyValue *kv = kv_find(p->attributes, p->n_attributes, "url.path");
	assert_non_null(kv);
	assert_string_equal(kv->value->string_value, "/????|ok");
	assert_non_null(kv_find(p->attributes, p->n_attributes, "key?"));
	kv = kv_find(req->resource_spans[0]->resource->attributes, req->resource_spans[0]->resource->n_attributes,
		     "service.name");
	assert_non_null(kv);
	assert_string_equal(kv->value->string_value, "svc??");
	/* the span itself is left as it was (other sinks escape on their own) */
	assert_int_equal((unsigned char)s->status_message[4], 0x80);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	span_free(s);
	resource_put(r);
}

static void test_large_batch_and_edge_cases(void **state)
{
	enum { N = 2000, PROCS = 7 };
	struct resource *r[PROCS];
	struct span **s = calloc(N, sizeof(*s));
	struct span *bare = span_new();
	size_t total = 0;
	uint8_t *buf;
	size_t len;
	Request *req;

	for (int i = 0; i < PROCS; i++)
		r[i] = make_resource(1000 + i, "svc");
	for (int i = 0; i < N; i++)
		s[i] = make_span(r[(i * 31) % PROCS], (uint8_t)i, i % 3 == 0);
	req = roundtrip((const struct span *const *)s, N);
	assert_int_equal(req->n_resource_spans, PROCS);
	for (size_t g = 0; g < req->n_resource_spans; g++)
		total += req->resource_spans[g]->scope_spans[0]->n_spans;
	assert_int_equal(total, N);
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);

	/* a span with no name, attributes or resource still encodes */
	req = roundtrip((const struct span *const *)&bare, 1);
	assert_int_equal(req->n_resource_spans, 1);
	assert_int_equal(req->resource_spans[0]->resource->n_attributes, 0);
	assert_string_equal(req->resource_spans[0]->scope_spans[0]->spans[0]->name, "");
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);

	assert_int_equal(otlp_encode_spans(NULL, 0, &buf, &len), -EINVAL);

	span_free(bare);
	for (int i = 0; i < N; i++)
		span_free(s[i]);
	free(s);
	for (int i = 0; i < PROCS; i++)
		resource_put(r[i]);
}

static void test_resource_merge(void **state)
{
	struct attr_list proc = {0}, extra = {0}, out = {0};

	attrs_set_str(&proc, "service.name", "python3");
	attrs_set_int(&proc, "process.pid", 42);
	attrs_set_str(&proc, "host.name", "box");
	attrs_set_str(&extra, "service.name", "shop");
	attrs_set_str(&extra, "deployment.environment", "prod");
	attrs_set_str(&extra, "host.name", "ignored");

	/* weft's service.name wins over a derived one; others only fill gaps */
	assert_int_equal(otlp_resource_merge(&out, &proc, &extra), 0);
	assert_string_equal(attrs_get(&out, "service.name")->str, "shop");
	assert_string_equal(attrs_get(&out, "deployment.environment")->str, "prod");
	assert_string_equal(attrs_get(&out, "host.name")->str, "box");
	assert_int_equal(attrs_get(&out, "process.pid")->i, 42);
	attrs_free(&out);

	/* the process set OTEL_SERVICE_NAME itself: its name is kept */
	attrs_set_str(&proc, "service.name", "own-name");
	attrs_set_bool(&proc, OTLP_ATTR_SERVICE_FROM_PROCESS, true);
	assert_int_equal(otlp_resource_merge(&out, &proc, &extra), 0);
	assert_string_equal(attrs_get(&out, "service.name")->str, "own-name");
	assert_string_equal(attrs_get(&out, "deployment.environment")->str, "prod");
	attrs_free(&out);

	/* no extra, no process */
	assert_int_equal(otlp_resource_merge(&out, &proc, NULL), 0);
	assert_int_equal(out.len, proc.len);
	attrs_free(&out);
	assert_int_equal(otlp_resource_merge(&out, NULL, &extra), 0);
	assert_int_equal(out.len, extra.len);
	attrs_free(&out);

	assert_true(otlp_attr_internal(OTLP_ATTR_SERVICE_FROM_PROCESS, false));
	assert_true(otlp_attr_internal("weft.anything", true));
	assert_false(otlp_attr_internal("weft.anything", false));
	assert_false(otlp_attr_internal("service.name", true));

	attrs_free(&proc);
	attrs_free(&extra);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_wire_edge_values),
		cmocka_unit_test(test_large_batch_and_edge_cases),
		cmocka_unit_test(test_invalid_utf8_replaced),
		cmocka_unit_test(test_resource_merge),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
