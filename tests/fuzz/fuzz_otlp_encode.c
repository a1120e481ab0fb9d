/* libFuzzer harness for the OTLP encoder (user/export/otlp/otlp_encode.c, a
 * hand-written protobuf writer): spans built from the input (ids, kinds,
 * times, names, attributes of every type with any bytes, up to 4 resources,
 * internal weft.* keys included) are encoded, decoded with protobuf-c (code
 * generated from opentelemetry-proto), and compared field by field. Built and
 * run by tests/fuzz/run_otlp_encode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "otlp_encode.h"
#include "span.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;

struct in {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static uint64_t u64(struct in *in)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | u8(in);
	return v;
}

/* A string of up to 31 input bytes (stops at a NUL); some keys are weft's. */
static char *str(struct in *in, char *buf, size_t len)
{
	static const char *const keys[] = { "weft.service.name.from_process", "weft.internal.x",
					     "weft.other", "service.name", "" };
	uint8_t l = u8(in);
	if (l >= 0xf0)
		return (char *)keys[l % 5];
	l %= 32;
	size_t i = 0;
	for (; i < l && i + 1 < len && in->n && *in->p; i++)
		buf[i] = (char)u8(in);
	buf[i] = '\0';
	return buf;
}

static void fill_attrs(struct in *in, struct attr_list *l)
{
	char k[32], v[32];
	int n = u8(in) % 6;
	for (int i = 0; i < n; i++) {
		const char *key = str(in, k, sizeof(k));
		switch (u8(in) % 4) {
		case 0: attrs_add_str(l, key, str(in, v, sizeof(v))); break;
		case 1: attrs_add_int(l, key, (int64_t)u64(in)); break;
		case 2: attrs_set_bool(l, key, u8(in) & 1); break;
		default: {
			uint64_t b = u64(in);
			double d;
			memcpy(&d, &b, sizeof(d));
			attrs_set_double(l, key, d);
		}
		}
	}
}

/* The exported attributes of l equal kvs. */
static void check_attrs(const struct attr_list *l, bool resource, KV **kvs, size_t n)
{
	size_t j = 0;
	for (size_t i = 0; i < l->len; i++) {
		const struct attr *a = &l->items[i];
		if (otlp_attr_internal(a->key, resource))
			continue;
		CHECK(j < n);
		KV *kv = kvs[j++];
		CHECK(!strcmp(kv->key, a->key) && kv->value);
		switch (a->type) {
		case ATTR_STR: CHECK(kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE &&
				     !strcmp(kv->value->string_value, a->str)); break;
		case ATTR_INT: CHECK(kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE &&
				     kv->value->int_value == a->i); break;
		case ATTR_BOOL: CHECK(kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE &&
				      kv->value->bool_value == a->b); break;
		case ATTR_DOUBLE: CHECK(kv->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE &&
					!memcmp(&kv->value->double_value, &a->d, sizeof(a->d))); break;
		}
	}
	CHECK(j == n);
}

static bool zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct resource res[4] = {0};
	struct span *spans[8] = {0};
	const struct span *ptrs[8];
	char b1[32], b2[32];
	int nres = u8(&in) % 4 + 1, nspans = u8(&in) % 8 + 1;
	uint8_t *out = NULL;
	size_t outlen = 0;

	for (int r = 0; r < nres; r++) {
		res[r].refs = 1;
		fill_attrs(&in, &res[r].attrs);
	}
	for (int i = 0; i < nspans; i++) {
		struct span *s = span_new();
		CHECK(s);
		for (size_t j = 0; j < sizeof(s->trace_id); j++)
			s->trace_id[j] = u8(&in);
		for (size_t j = 0; j < sizeof(s->span_id); j++)
			s->span_id[j] = u8(&in);
		uint8_t sel = u8(&in);
		if (sel & 1)
			for (size_t j = 0; j < sizeof(s->parent_span_id); j++)
				s->parent_span_id[j] = u8(&in);
		s->kind = sel >> 5 < 6 ? (enum span_kind)(sel >> 5) : SPAN_KIND_SERVER;
		s->status = (enum span_status)((sel >> 1) % 3);
		s->trace_flags = u8(&in);
		s->name = strdup(str(&in, b1, sizeof(b1)));
		if (sel & 8)
			s->status_message = strdup(str(&in, b2, sizeof(b2)));
		if (sel & 16)
			s->trace_state = strdup(str(&in, b2, sizeof(b2)));
		s->start_ns = u64(&in);
		s->end_ns = u64(&in);
		fill_attrs(&in, &s->attrs);
		uint8_t r = u8(&in) % (nres + 1);
		s->resource = r == (uint8_t)nres ? NULL : &res[r];
		spans[i] = s;
		ptrs[i] = s;
	}

	CHECK(otlp_encode_spans(ptrs, nspans, &out, &outlen) == 0);
	Req *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, outlen, out);
	CHECK(req);

	/* one ResourceSpans per resource, in order of first appearance */
	struct resource *order[5];
	size_t norder = 0, seen = 0;
	for (int i = 0; i < nspans; i++) {
		size_t k = 0;
		while (k < norder && order[k] != spans[i]->resource)
			k++;
		if (k == norder)
			order[norder++] = spans[i]->resource;
	}
	CHECK(req->n_resource_spans == norder);
	for (size_t k = 0; k < norder; k++) {
		Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = req->resource_spans[k];
		if (order[k])
			check_attrs(&order[k]->attrs, true, rs->resource ? rs->resource->attributes : NULL,
				    rs->resource ? rs->resource->n_attributes : 0);
		CHECK(rs->n_scope_spans == 1);
		Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[0];
		CHECK(ss->scope && !strcmp(ss->scope->name, "weft"));
		size_t j = 0;
		for (int i = 0; i < nspans; i++) {
			const struct span *s = spans[i];
			if (s->resource != order[k])
				continue;
			CHECK(j < ss->n_spans);
			Opentelemetry__Proto__Trace__V1__Span *p = ss->spans[j++];
			CHECK(p->trace_id.len == 16 && !memcmp(p->trace_id.data, s->trace_id, 16));
			CHECK(p->span_id.len == 8 && !memcmp(p->span_id.data, s->span_id, 8));
			if (zero(s->parent_span_id, 8))
				CHECK(p->parent_span_id.len == 0);
			else
				CHECK(p->parent_span_id.len == 8 && !memcmp(p->parent_span_id.data, s->parent_span_id, 8));
			CHECK(!strcmp(p->name, s->name));
			CHECK((int)p->kind == (int)s->kind);
			CHECK(p->start_time_unix_nano == s->start_ns && p->end_time_unix_nano == s->end_ns);
			CHECK(p->flags == s->trace_flags);
			CHECK(!strcmp(p->trace_state, s->trace_state ? s->trace_state : ""));
			if (s->status || s->status_message) {
				CHECK(p->status && (int)p->status->code == (int)s->status);
				CHECK(!strcmp(p->status->message, s->status_message ? s->status_message : ""));
			} else {
				CHECK(!p->status);
			}
			check_attrs(&s->attrs, false, p->attributes, p->n_attributes);
			seen++;
		}
		CHECK(j == ss->n_spans);
	}
	CHECK(seen == (size_t)nspans);

	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
	free(out);
	for (int i = 0; i < nspans; i++) {
		spans[i]->resource = NULL;
		span_free(spans[i]);
	}
	for (int r = 0; r < nres; r++)
		attrs_free(&res[r].attrs);
	return 0;
}
