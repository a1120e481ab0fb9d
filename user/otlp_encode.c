/* Span -> ExportTraceServiceRequest. All protobuf-c messages of one request
 * are laid out in a few arrays sized up front, so that encoding a batch is a
 * handful of allocations whatever its size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "otlp.h"
#include "otlp_encode.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Request;

bool otlp_attr_internal(const char *key, bool resource)
{
	if (strncmp(key, "weft.", 5) != 0)
		return false;
	if (resource)
		return true;
	return !strcmp(key, OTLP_ATTR_SERVICE_FROM_PROCESS) || !strncmp(key, "weft.internal.", 14);
}

int otlp_resource_merge(struct attr_list *dst, const struct attr_list *process,
			const struct attr_list *extra)
{
	const struct attr *own = NULL;
	int ret;

	if (process) {
		const struct attr *a = attrs_get(process, OTLP_ATTR_SERVICE_FROM_PROCESS);
		ret = attrs_copy(dst, process);
		if (ret)
			return ret;
		if (a && a->type == ATTR_BOOL && a->b)
			own = attrs_get(process, "service.name");
	}
	if (!extra)
		return 0;
	for (size_t i = 0; i < extra->len; i++) {
		const struct attr *e = &extra->items[i];
		struct attr_list one = { .items = (struct attr *)e, .len = 1, .cap = 1 };

		if (!strcmp(e->key, "service.name") ? own != NULL : attrs_get(dst, e->key) != NULL)
			continue;
		ret = attrs_copy(dst, &one);
		if (ret)
			return ret;
	}
	return 0;
}

/* Arena of KeyValue/AnyValue slots and KeyValue pointers for a request. */
struct kv_arena {
	KeyValue *kv;
	AnyValue *av;
	KeyValue **ptr;
	size_t used, cap;
};

static size_t count_attrs(const struct attr_list *l, bool resource)
{
	size_t n = 0;

	for (size_t i = 0; l && i < l->len; i++)
		n += !otlp_attr_internal(l->items[i].key, resource);
	return n;
}

/* Fills kv slots for l; returns the pointer array and its length in *n. */
static KeyValue **encode_attrs(struct kv_arena *ar, const struct attr_list *l, bool resource,
			       size_t *n)
{
	KeyValue **first = ar->ptr + ar->used;

	*n = 0;
	for (size_t i = 0; l && i < l->len; i++) {
		const struct attr *a = &l->items[i];
		KeyValue *kv;
		AnyValue *av;

		if (otlp_attr_internal(a->key, resource) || ar->used >= ar->cap)
			continue;
		kv = &ar->kv[ar->used];
		av = &ar->av[ar->used];
		opentelemetry__proto__common__v1__key_value__init(kv);
		opentelemetry__proto__common__v1__any_value__init(av);
		kv->key = (char *)a->key; /* protobuf-c only reads it */
		kv->value = av;
		switch (a->type) {
		case ATTR_STR:
			av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
			av->string_value = a->str ? a->str : "";
			break;
		case ATTR_INT:
			av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
			av->int_value = a->i;
			break;
		case ATTR_BOOL:
			av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
			av->bool_value = a->b;
			break;
		case ATTR_DOUBLE:
			av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
			av->double_value = a->d;
			break;
		}
		ar->ptr[ar->used++] = kv;
		(*n)++;
	}
	return first;
}

int otlp_encode_spans(const struct span *const *spans, size_t n, uint8_t **out, size_t *outlen)
{
	Request req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
	Scope scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	struct kv_arena ar = {0};
	size_t *group = NULL, *count = NULL, *fill = NULL, ngroups = 0;
	const struct resource **gres = NULL;
	ResourceSpans *rs = NULL, **rsp = NULL;
	ScopeSpans *ss = NULL, **ssp = NULL;
	Resource *res = NULL;
	Span *sp = NULL, **spp = NULL;
	Status *st = NULL;
	uint8_t *buf = NULL;
	size_t len;
	int ret = -ENOMEM;

	*out = NULL;
	*outlen = 0;
	if (!n)
		return -EINVAL;

	/* group spans by resource (usually few distinct ones per batch) */
	group = calloc(n, sizeof(*group));
	gres = calloc(n, sizeof(*gres));
	count = calloc(n, sizeof(*count));
	fill = calloc(n, sizeof(*fill));
	if (!group || !gres || !count || !fill)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		const struct resource *r = spans[i]->resource;
		size_t g = ngroups;

		if (i && spans[i - 1]->resource == r)
			g = group[i - 1];
		else
			for (size_t j = 0; j < ngroups; j++)
				if (gres[j] == r) {
					g = j;
					break;
				}
		if (g == ngroups)
			gres[ngroups++] = r;
		group[i] = g;
		count[g]++;
	}

	/* attribute slots for all spans and resources */
	for (size_t i = 0; i < n; i++)
		ar.cap += count_attrs(&spans[i]->attrs, false);
	for (size_t g = 0; g < ngroups; g++)
		ar.cap += count_attrs(gres[g] ? &gres[g]->attrs : NULL, true);
	if (ar.cap) {
		ar.kv = malloc(ar.cap * sizeof(*ar.kv));
		ar.av = malloc(ar.cap * sizeof(*ar.av));
		ar.ptr = malloc(ar.cap * sizeof(*ar.ptr));
		if (!ar.kv || !ar.av || !ar.ptr)
			goto cleanup;
	}
	rs = calloc(ngroups, sizeof(*rs));
	rsp = calloc(ngroups, sizeof(*rsp));
	ss = calloc(ngroups, sizeof(*ss));
	ssp = calloc(ngroups, sizeof(*ssp));
	res = calloc(ngroups, sizeof(*res));
	sp = calloc(n, sizeof(*sp));
	spp = calloc(n, sizeof(*spp));
	st = calloc(n, sizeof(*st));
	if (!rs || !rsp || !ss || !ssp || !res || !sp || !spp || !st)
		goto cleanup;

	scope.name = "weft";
	scope.version = WEFT_VERSION;

	/* one ResourceSpans + ScopeSpans per group; spans laid out by group */
	for (size_t g = 0, off = 0; g < ngroups; g++) {
		opentelemetry__proto__trace__v1__resource_spans__init(&rs[g]);
		opentelemetry__proto__trace__v1__scope_spans__init(&ss[g]);
		opentelemetry__proto__resource__v1__resource__init(&res[g]);
		res[g].attributes = encode_attrs(&ar, gres[g] ? &gres[g]->attrs : NULL, true,
						 &res[g].n_attributes);
		rs[g].resource = &res[g];
		rs[g].n_scope_spans = 1;
		rs[g].scope_spans = &ssp[g];
		ssp[g] = &ss[g];
		ss[g].scope = &scope;
		ss[g].spans = &spp[off];
		ss[g].n_spans = count[g];
		fill[g] = off;
		off += count[g];
		rsp[g] = &rs[g];
	}
	for (size_t i = 0; i < n; i++) {
		const struct span *s = spans[i];
		Span *p = &sp[i];

		opentelemetry__proto__trace__v1__span__init(p);
		p->trace_id.data = (uint8_t *)s->trace_id;
		p->trace_id.len = sizeof(s->trace_id);
		p->span_id.data = (uint8_t *)s->span_id;
		p->span_id.len = sizeof(s->span_id);
		if (span_has_parent(s)) {
			p->parent_span_id.data = (uint8_t *)s->parent_span_id;
			p->parent_span_id.len = sizeof(s->parent_span_id);
		}
		p->trace_state = s->trace_state ? s->trace_state : "";
		p->flags = s->trace_flags;
		p->name = s->name ? s->name : "";
		p->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)s->kind;
		p->start_time_unix_nano = s->start_ns;
		p->end_time_unix_nano = s->end_ns;
		p->attributes = encode_attrs(&ar, &s->attrs, false, &p->n_attributes);
		if (s->status != SPAN_STATUS_UNSET || s->status_message) {
			opentelemetry__proto__trace__v1__status__init(&st[i]);
			st[i].code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)s->status;
			st[i].message = s->status_message ? s->status_message : "";
			p->status = &st[i];
		}
		spp[fill[group[i]]++] = p;
	}
	req.n_resource_spans = ngroups;
	req.resource_spans = rsp;

	len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
	buf = malloc(len ? len : 1);
	if (!buf)
		goto cleanup;
	*outlen = opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
	*out = buf;
	ret = 0;
cleanup:
	free(group);
	free(gres);
	free(count);
	free(fill);
	free(ar.kv);
	free(ar.av);
	free(ar.ptr);
	free(rs);
	free(rsp);
	free(ss);
	free(ssp);
	free(res);
	free(sp);
	free(spp);
	free(st);
	return ret;
}
