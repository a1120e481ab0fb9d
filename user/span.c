/* Span, attribute list and resource lifetime helpers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "span.h"

static struct attr *attrs_slot(struct attr_list *l, const char *key)
{
	for (size_t i = 0; i < l->len; i++) {
		if (strcmp(l->items[i].key, key) == 0) {
			if (l->items[i].type == ATTR_STR)
				free(l->items[i].str);
			l->items[i].str = NULL;
			return &l->items[i];
		}
	}
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct attr *n = realloc(l->items, cap * sizeof(*n));
		if (!n)
			return NULL;
		l->items = n;
		l->cap = cap;
	}
	struct attr *a = &l->items[l->len];
	a->key = strdup(key);
	if (!a->key)
		return NULL;
	a->str = NULL;
	l->len++;
	return a;
}

int attrs_set_strn(struct attr_list *l, const char *key, const char *val, size_t n)
{
	char *copy = strndup(val, n);
	if (!copy)
		return -ENOMEM;
	struct attr *a = attrs_slot(l, key);
	if (!a) {
		free(copy);
		return -ENOMEM;
	}
	a->type = ATTR_STR;
	a->str = copy;
	return 0;
}

int attrs_set_str(struct attr_list *l, const char *key, const char *val)
{
	return attrs_set_strn(l, key, val, strlen(val));
}

int attrs_set_int(struct attr_list *l, const char *key, int64_t val)
{
	struct attr *a = attrs_slot(l, key);
	if (!a)
		return -ENOMEM;
	a->type = ATTR_INT;
	a->i = val;
	return 0;
}

int attrs_set_bool(struct attr_list *l, const char *key, bool val)
{
	struct attr *a = attrs_slot(l, key);
	if (!a)
		return -ENOMEM;
	a->type = ATTR_BOOL;
	a->b = val;
	return 0;
}

int attrs_set_double(struct attr_list *l, const char *key, double val)
{
	struct attr *a = attrs_slot(l, key);
	if (!a)
		return -ENOMEM;
	a->type = ATTR_DOUBLE;
	a->d = val;
	return 0;
}

const struct attr *attrs_get(const struct attr_list *l, const char *key)
{
	for (size_t i = 0; i < l->len; i++)
		if (strcmp(l->items[i].key, key) == 0)
			return &l->items[i];
	return NULL;
}

void attrs_remove(struct attr_list *l, const char *key)
{
	for (size_t i = 0; i < l->len; i++) {
		if (strcmp(l->items[i].key, key) == 0) {
			free(l->items[i].key);
			if (l->items[i].type == ATTR_STR)
				free(l->items[i].str);
			l->items[i] = l->items[--l->len];
			return;
		}
	}
}

int attrs_copy(struct attr_list *dst, const struct attr_list *src)
{
	for (size_t i = 0; i < src->len; i++) {
		const struct attr *a = &src->items[i];
		int err = 0;
		switch (a->type) {
		case ATTR_STR: err = attrs_set_str(dst, a->key, a->str); break;
		case ATTR_INT: err = attrs_set_int(dst, a->key, a->i); break;
		case ATTR_BOOL: err = attrs_set_bool(dst, a->key, a->b); break;
		case ATTR_DOUBLE: err = attrs_set_double(dst, a->key, a->d); break;
		}
		if (err)
			return err;
	}
	return 0;
}

void attrs_free(struct attr_list *l)
{
	for (size_t i = 0; i < l->len; i++) {
		free(l->items[i].key);
		if (l->items[i].type == ATTR_STR)
			free(l->items[i].str);
	}
	free(l->items);
	l->items = NULL;
	l->len = l->cap = 0;
}

struct resource *resource_get(struct resource *r)
{
	if (r)
		r->refs++;
	return r;
}

void resource_put(struct resource *r)
{
	if (!r || --r->refs > 0)
		return;
	attrs_free(&r->attrs);
	free(r->json);
	free(r);
}

struct span *span_new(void)
{
	return calloc(1, sizeof(struct span));
}

struct span *span_clone(const struct span *s)
{
	struct span *c = span_new();
	if (!c)
		return NULL;
	memcpy(c->trace_id, s->trace_id, sizeof(c->trace_id));
	memcpy(c->span_id, s->span_id, sizeof(c->span_id));
	memcpy(c->parent_span_id, s->parent_span_id, sizeof(c->parent_span_id));
	c->trace_flags = s->trace_flags;
	c->kind = s->kind;
	c->start_ns = s->start_ns;
	c->end_ns = s->end_ns;
	c->status = s->status;
	c->name = strdup(s->name ? s->name : "");
	c->trace_state = s->trace_state ? strdup(s->trace_state) : NULL;
	c->status_message = s->status_message ? strdup(s->status_message) : NULL;
	c->resource = resource_get(s->resource);
	if (!c->name || (s->trace_state && !c->trace_state) ||
	    (s->status_message && !c->status_message) || attrs_copy(&c->attrs, &s->attrs)) {
		span_free(c);
		return NULL;
	}
	return c;
}

void span_free(struct span *s)
{
	if (!s)
		return;
	free(s->name);
	free(s->trace_state);
	free(s->status_message);
	attrs_free(&s->attrs);
	resource_put(s->resource);
	free(s);
}

bool span_has_parent(const struct span *s)
{
	for (size_t i = 0; i < sizeof(s->parent_span_id); i++)
		if (s->parent_span_id[i])
			return true;
	return false;
}

const char *span_kind_name(enum span_kind k)
{
	switch (k) {
	case SPAN_KIND_SERVER: return "SERVER";
	case SPAN_KIND_CLIENT: return "CLIENT";
	case SPAN_KIND_PRODUCER: return "PRODUCER";
	case SPAN_KIND_CONSUMER: return "CONSUMER";
	default: return "INTERNAL";
	}
}

const char *span_status_name(enum span_status s)
{
	switch (s) {
	case SPAN_STATUS_OK: return "OK";
	case SPAN_STATUS_ERROR: return "ERROR";
	default: return "UNSET";
	}
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}
