/* Span -> ExportTraceServiceRequest, written directly in protobuf's wire
 * format (see below), in two allocations whatever the batch size. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "otlp_encode.h"

bool otlp_attr_internal(const char *key, bool resource)
{
	if (key[0] != 'w' || strncmp(key, "weft.", 5) != 0) /* per attribute: cheap test first */
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

/* ---- protobuf wire format --------------------------------------------------
 *
 * The request is written by hand rather than through protobuf-c's generic
 * packer, which walked field descriptors for every value and needed an
 * object tree (two structs per attribute) built first: it cost more than
 * the rest of the export. The bytes are exactly protobuf-c's (unit-tested
 * against it): fields in field-number order, proto3 fields left out when
 * zero or empty, except AnyValue's oneof member, which is always written.
 * Two passes over the same functions: sizes, then bytes. */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

/* Field numbers (opentelemetry-proto, collector/trace/v1 and below). */
enum {
	F_REQUEST_RESOURCE_SPANS = 1,
	F_RS_RESOURCE = 1, F_RS_SCOPE_SPANS = 2,
	F_RESOURCE_ATTRIBUTES = 1,
	F_SS_SCOPE = 1, F_SS_SPANS = 2,
	F_SCOPE_NAME = 1, F_SCOPE_VERSION = 2,
	F_SPAN_TRACE_ID = 1, F_SPAN_SPAN_ID = 2, F_SPAN_TRACE_STATE = 3, F_SPAN_PARENT_SPAN_ID = 4,
	F_SPAN_NAME = 5, F_SPAN_KIND = 6, F_SPAN_START = 7, F_SPAN_END = 8, F_SPAN_ATTRIBUTES = 9,
	F_SPAN_STATUS = 15, F_SPAN_FLAGS = 16,
	F_STATUS_MESSAGE = 2, F_STATUS_CODE = 3,
	F_KV_KEY = 1, F_KV_VALUE = 2,
	F_ANY_STRING = 1, F_ANY_BOOL = 2, F_ANY_INT = 3, F_ANY_DOUBLE = 4,
};

static size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v)
{
	while (v >= 0x80) {
		*o++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*o++ = (uint8_t)v;
	return o;
}

static size_t tag_len(unsigned field)
{
	return varint_len(field << 3);
}

static uint8_t *put_tag(uint8_t *o, unsigned field, unsigned wire_type)
{
	return put_varint(o, field << 3 | wire_type);
}

/* A length-delimited field holding n bytes: tag, length, bytes. */
static size_t len_field(unsigned field, size_t n)
{
	return tag_len(field) + varint_len(n) + n;
}

static uint8_t *put_len_prefix(uint8_t *o, unsigned field, size_t n)
{
	return put_varint(put_tag(o, field, WT_LEN), n);
}

static uint8_t *put_bytes(uint8_t *o, unsigned field, const void *p, size_t n)
{
	o = put_len_prefix(o, field, n);
	memcpy(o, p, n);
	return o + n;
}

static uint8_t *put_fixed(uint8_t *o, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		*o++ = (uint8_t)(v >> (8 * i)); /* little-endian */
	return o;
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlong forms,
 * surrogates or code points above U+10FFFF), 0 if there is none. */
static size_t utf8_seq_len(const uint8_t *p, size_t n)
{
	uint8_t c = p[0];
	size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (!len || len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((p[i] & 0xc0) != 0x80)
			return 0;
	if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] > 0x9f) || (c == 0xf0 && p[1] < 0x90) ||
	    (c == 0xf4 && p[1] > 0x8f))
		return 0;
	return len;
}

/* A protobuf string holds UTF-8, and a collector rejects the whole request
 * (every span of the batch) over one invalid byte; traced processes put
 * any bytes in URLs, headers, SQL or their service name. Each byte that
 * does not begin a valid sequence becomes '?' (the length stays). */
static uint8_t *put_text(uint8_t *o, unsigned field, const char *s, size_t n)
{
	o = put_bytes(o, field, s, n);
	uint8_t *p = o - n;
	for (size_t i = 0; i < n;) {
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = utf8_seq_len(p + i, n - i);
		if (!k) {
			p[i++] = '?';
			continue;
		}
		i += k;
	}
	return o;
}

/* A proto3 string field: absent when NULL or empty. */
static size_t str_field_len(unsigned field, const char *s)
{
	return s && *s ? len_field(field, strlen(s)) : 0;
}

static uint8_t *put_str_field(uint8_t *o, unsigned field, const char *s)
{
	return s && *s ? put_text(o, field, s, strlen(s)) : o;
}

/* ---- AnyValue, KeyValue ------------------------------------------------------ */

/* Lengths of an attribute's key and string value, measured once per pass. */
struct kv_lens {
	size_t key, str, any, kv;
};

static struct kv_lens kv_measure(const struct attr *a)
{
	struct kv_lens n = { .key = strlen(a->key) };
	switch (a->type) {
	case ATTR_STR:
		n.str = a->str ? strlen(a->str) : 0;
		n.any = len_field(F_ANY_STRING, n.str);
		break;
	case ATTR_BOOL: n.any = tag_len(F_ANY_BOOL) + 1; break;
	case ATTR_INT: n.any = tag_len(F_ANY_INT) + varint_len((uint64_t)a->i); break;
	case ATTR_DOUBLE: n.any = tag_len(F_ANY_DOUBLE) + 8; break;
	}
	n.kv = (n.key ? len_field(F_KV_KEY, n.key) : 0) + len_field(F_KV_VALUE, n.any);
	return n;
}

static uint8_t *put_any_value(uint8_t *o, const struct attr *a, size_t str_len)
{
	uint64_t bits;
	switch (a->type) {
	case ATTR_STR: /* a oneof member: written even when empty */
		return put_text(o, F_ANY_STRING, a->str ? a->str : "", str_len);
	case ATTR_BOOL:
		o = put_tag(o, F_ANY_BOOL, WT_VARINT);
		*o++ = a->b ? 1 : 0;
		return o;
	case ATTR_INT:
		return put_varint(put_tag(o, F_ANY_INT, WT_VARINT), (uint64_t)a->i);
	case ATTR_DOUBLE:
		memcpy(&bits, &a->d, sizeof(bits));
		return put_fixed(put_tag(o, F_ANY_DOUBLE, WT_I64), bits, 8);
	}
	return o;
}

/* Repeated KeyValue field of l's exported attributes. */
static size_t attrs_len(const struct attr_list *l, bool resource, unsigned field)
{
	size_t n = 0;
	for (size_t i = 0; l && i < l->len; i++)
		if (!otlp_attr_internal(l->items[i].key, resource))
			n += len_field(field, kv_measure(&l->items[i]).kv);
	return n;
}

static uint8_t *put_attrs(uint8_t *o, const struct attr_list *l, bool resource, unsigned field)
{
	for (size_t i = 0; l && i < l->len; i++) {
		const struct attr *a = &l->items[i];
		if (otlp_attr_internal(a->key, resource))
			continue;
		struct kv_lens n = kv_measure(a);
		o = put_len_prefix(o, field, n.kv);
		if (n.key) /* proto3: an empty key is left out */
			o = put_text(o, F_KV_KEY, a->key, n.key);
		o = put_len_prefix(o, F_KV_VALUE, n.any);
		o = put_any_value(o, a, n.str);
	}
	return o;
}

/* ---- Span, Status, InstrumentationScope --------------------------------------- */

static bool has_status(const struct span *s)
{
	return s->status != SPAN_STATUS_UNSET || s->status_message;
}

static size_t status_len(const struct span *s)
{
	return str_field_len(F_STATUS_MESSAGE, s->status_message) +
	       (s->status ? tag_len(F_STATUS_CODE) + varint_len(s->status) : 0);
}

static size_t span_len(const struct span *s)
{
	size_t n = len_field(F_SPAN_TRACE_ID, sizeof(s->trace_id)) +
		   len_field(F_SPAN_SPAN_ID, sizeof(s->span_id)) +
		   str_field_len(F_SPAN_TRACE_STATE, s->trace_state) +
		   (span_has_parent(s) ? len_field(F_SPAN_PARENT_SPAN_ID, sizeof(s->parent_span_id)) : 0) +
		   str_field_len(F_SPAN_NAME, s->name) +
		   (s->kind ? tag_len(F_SPAN_KIND) + varint_len((uint64_t)(int64_t)s->kind) : 0) +
		   (s->start_ns ? tag_len(F_SPAN_START) + 8 : 0) +
		   (s->end_ns ? tag_len(F_SPAN_END) + 8 : 0) +
		   attrs_len(&s->attrs, false, F_SPAN_ATTRIBUTES) +
		   (has_status(s) ? len_field(F_SPAN_STATUS, status_len(s)) : 0) +
		   (s->trace_flags ? tag_len(F_SPAN_FLAGS) + 4 : 0);
	return n;
}

static uint8_t *put_span(uint8_t *o, const struct span *s)
{
	o = put_bytes(o, F_SPAN_TRACE_ID, s->trace_id, sizeof(s->trace_id));
	o = put_bytes(o, F_SPAN_SPAN_ID, s->span_id, sizeof(s->span_id));
	o = put_str_field(o, F_SPAN_TRACE_STATE, s->trace_state);
	if (span_has_parent(s))
		o = put_bytes(o, F_SPAN_PARENT_SPAN_ID, s->parent_span_id, sizeof(s->parent_span_id));
	o = put_str_field(o, F_SPAN_NAME, s->name);
	if (s->kind) /* an enum: int32, sign-extended on the wire */
		o = put_varint(put_tag(o, F_SPAN_KIND, WT_VARINT), (uint64_t)(int64_t)s->kind);
	if (s->start_ns)
		o = put_fixed(put_tag(o, F_SPAN_START, WT_I64), s->start_ns, 8);
	if (s->end_ns)
		o = put_fixed(put_tag(o, F_SPAN_END, WT_I64), s->end_ns, 8);
	o = put_attrs(o, &s->attrs, false, F_SPAN_ATTRIBUTES);
	if (has_status(s)) {
		o = put_len_prefix(o, F_SPAN_STATUS, status_len(s));
		o = put_str_field(o, F_STATUS_MESSAGE, s->status_message);
		if (s->status)
			o = put_varint(put_tag(o, F_STATUS_CODE, WT_VARINT), s->status);
	}
	if (s->trace_flags)
		o = put_fixed(put_tag(o, F_SPAN_FLAGS, WT_I32), s->trace_flags, 4);
	return o;
}

static const char scope_name[] = "weft", scope_version[] = WEFT_VERSION;

static size_t scope_len(void)
{
	return str_field_len(F_SCOPE_NAME, scope_name) + str_field_len(F_SCOPE_VERSION, scope_version);
}

/* ---- the request -------------------------------------------------------------- */

/* Spans grouped by resource, and every message's size (first pass). */
struct layout {
	size_t *group;                /* per span; the block of all size_t arrays */
	size_t ngroups;
	const struct resource **gres; /* per group */
	size_t *first, *count;        /* per group: its spans in order[] */
	size_t *order;                /* span indexes, group by group */
	size_t *span_size;            /* per span */
	size_t *ss_size, *rs_size;    /* per group: ScopeSpans, ResourceSpans */
};

static int layout_build(struct layout *l, const struct span *const *spans, size_t n, size_t *total)
{
	/* one block for every array: n of each (at most n groups) */
	size_t *block = calloc(7 * n, sizeof(size_t));
	const struct resource **gres = calloc(n, sizeof(*gres));
	if (!block || !gres) {
		free(block);
		free(gres);
		return -ENOMEM;
	}
	size_t *group = block;
	*l = (struct layout){ .group = block, .gres = gres, .first = block + n, .count = block + 2 * n,
			      .order = block + 3 * n, .span_size = block + 4 * n,
			      .ss_size = block + 5 * n, .rs_size = block + 6 * n };

	/* group spans by resource (usually few distinct ones per batch), in
	 * order of first appearance */
	for (size_t i = 0; i < n; i++) {
		const struct resource *r = spans[i]->resource;
		size_t g = l->ngroups;

		if (i && spans[i - 1]->resource == r)
			g = group[i - 1];
		else
			for (size_t j = 0; j < l->ngroups; j++)
				if (gres[j] == r) {
					g = j;
					break;
				}
		if (g == l->ngroups)
			gres[l->ngroups++] = r;
		group[i] = g;
		l->count[g]++;
	}
	size_t *fill = l->ss_size; /* scratch until the sizes below */
	for (size_t g = 0, off = 0; g < l->ngroups; g++) {
		l->first[g] = fill[g] = off;
		off += l->count[g];
	}
	for (size_t i = 0; i < n; i++)
		l->order[fill[group[i]]++] = i;

	*total = 0;
	for (size_t g = 0; g < l->ngroups; g++) {
		size_t ss = len_field(F_SS_SCOPE, scope_len());
		for (size_t k = 0; k < l->count[g]; k++) {
			size_t i = l->order[l->first[g] + k];
			l->span_size[i] = span_len(spans[i]);
			ss += len_field(F_SS_SPANS, l->span_size[i]);
		}
		l->ss_size[g] = ss;
		size_t res = attrs_len(gres[g] ? &gres[g]->attrs : NULL, true, F_RESOURCE_ATTRIBUTES);
		l->rs_size[g] = len_field(F_RS_RESOURCE, res) + len_field(F_RS_SCOPE_SPANS, ss);
		*total += len_field(F_REQUEST_RESOURCE_SPANS, l->rs_size[g]);
	}
	return 0;
}

static uint8_t *put_request(uint8_t *o, const struct layout *l, const struct span *const *spans)
{
	for (size_t g = 0; g < l->ngroups; g++) {
		const struct attr_list *res = l->gres[g] ? &l->gres[g]->attrs : NULL;
		o = put_len_prefix(o, F_REQUEST_RESOURCE_SPANS, l->rs_size[g]);
		o = put_len_prefix(o, F_RS_RESOURCE, attrs_len(res, true, F_RESOURCE_ATTRIBUTES));
		o = put_attrs(o, res, true, F_RESOURCE_ATTRIBUTES);
		o = put_len_prefix(o, F_RS_SCOPE_SPANS, l->ss_size[g]);
		o = put_len_prefix(o, F_SS_SCOPE, scope_len());
		o = put_str_field(o, F_SCOPE_NAME, scope_name);
		o = put_str_field(o, F_SCOPE_VERSION, scope_version);
		for (size_t k = 0; k < l->count[g]; k++) {
			size_t i = l->order[l->first[g] + k];
			o = put_len_prefix(o, F_SS_SPANS, l->span_size[i]);
			o = put_span(o, spans[i]);
		}
	}
	return o;
}

int otlp_encode_spans(const struct span *const *spans, size_t n, uint8_t **out, size_t *outlen)
{
	struct layout l;
	size_t len;

	*out = NULL;
	*outlen = 0;
	if (!n)
		return -EINVAL;
	if (layout_build(&l, spans, n, &len))
		return -ENOMEM;
	uint8_t *buf = malloc(len ? len : 1);
	if (buf) {
		*outlen = put_request(buf, &l, spans) - buf;
		*out = buf;
	}
	free(l.group);
	free((void *)l.gres);
	return buf ? 0 : -ENOMEM;
}
