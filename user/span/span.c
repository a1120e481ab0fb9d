/* Span, attribute list and resource lifetime helpers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "span.h"

/* Enough for an HTTP span's attributes: no realloc while building one. */
#define ATTRS_MIN_CAP 16
#define STRS_MIN_CAP 256

static struct attr *attrs_append(struct attr_list *l)
{
	if (l->len == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : ATTRS_MIN_CAP;
		struct attr *n = realloc(l->items, cap * sizeof(*n));
		if (!n)
			return NULL;
		l->items = n;
		l->cap = cap;
	}
	l->version++;
	struct attr *a = &l->items[l->len++];
	a->key_owned = false;
	a->type = ATTR_INT; /* no string until the caller sets one */
	return a;
}

/* The attribute for key: its existing one (the caller replaces its type
 * and value), else a new one with a copy of key. */
static struct attr *attrs_slot(struct attr_list *l, const char *key)
{
	for (size_t i = 0; i < l->len; i++) {
		if (strcmp(l->items[i].key, key) == 0) {
			l->version++;
			return &l->items[i];
		}
	}
	char *copy = strdup(key);
	if (!copy)
		return NULL;
	struct attr *a = attrs_append(l);
	if (!a) {
		free(copy);
		return NULL;
	}
	a->key = copy;
	a->key_owned = true;
	return a;
}

/* A copy of val[0..n) with a NUL in l's arena, or NULL. When the arena must
 * grow, the live values move to a new one (replaced values are left
 * behind); the old one is freed only after val was copied, since val may
 * be one of l's own values. */
static char *strs_store(struct attr_list *l, const char *val, size_t n)
{
	char *old = NULL;
	if (l->strs_cap - l->strs_len < n + 1) {
		size_t live = 0;
		for (size_t i = 0; i < l->len; i++)
			if (l->items[i].type == ATTR_STR)
				live += strlen(l->items[i].str) + 1;
		size_t cap = l->strs_cap > STRS_MIN_CAP ? l->strs_cap : STRS_MIN_CAP;
		while (cap < live + n + 1)
			cap *= 2;
		char *strs = malloc(cap);
		if (!strs)
			return NULL;
		size_t off = 0;
		for (size_t i = 0; i < l->len; i++) {
			struct attr *a = &l->items[i];
			if (a->type != ATTR_STR)
				continue;
			size_t len = strlen(a->str) + 1;
			memcpy(strs + off, a->str, len);
			a->str = strs + off;
			off += len;
		}
		old = l->strs;
		l->strs = strs;
		l->strs_len = off;
		l->strs_cap = cap;
	}
	char *s = l->strs + l->strs_len;
	memcpy(s, val, n);
	s[n] = '\0';
	l->strs_len += n + 1;
	free(old);
	return s;
}

/* The value is stored before its attribute is looked up or added, so that
 * a failure leaves the list as it was (the stored copy is left behind). */
int attrs_set_strn(struct attr_list *l, const char *key, const char *val, size_t n)
{
	char *copy = strs_store(l, val, strnlen(val, n));
	if (!copy)
		return -ENOMEM;
	struct attr *a = attrs_slot(l, key);
	if (!a)
		return -ENOMEM;
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

int attrs_add_strn(struct attr_list *l, const char *key, const char *val, size_t n)
{
	char *copy = strs_store(l, val, strnlen(val, n));
	struct attr *a = copy ? attrs_append(l) : NULL;
	if (!a)
		return -ENOMEM;
	a->key = key;
	a->type = ATTR_STR;
	a->str = copy;
	return 0;
}

int attrs_add_str(struct attr_list *l, const char *key, const char *val)
{
	return attrs_add_strn(l, key, val, strlen(val));
}

int attrs_add_int(struct attr_list *l, const char *key, int64_t val)
{
	struct attr *a = attrs_append(l);
	if (!a)
		return -ENOMEM;
	a->key = key;
	a->type = ATTR_INT;
	a->i = val;
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
			if (l->items[i].key_owned)
				free((char *)l->items[i].key);
			l->items[i] = l->items[--l->len];
			l->version++;
			return;
		}
	}
}

int attrs_copy(struct attr_list *dst, const struct attr_list *src)
{
	for (size_t i = 0; i < src->len; i++) {
		const struct attr *a = &src->items[i];
		char *copy = NULL;
		if (a->type == ATTR_STR && !(copy = strs_store(dst, a->str, strlen(a->str))))
			return -ENOMEM;
		struct attr *d;
		if (a->key_owned) {
			d = attrs_slot(dst, a->key);
		} else {
			/* a static key: shared, not copied, but still replacing dst's */
			d = (struct attr *)attrs_get(dst, a->key);
			if (d)
				dst->version++;
			else if ((d = attrs_append(dst)))
				d->key = a->key;
		}
		if (!d)
			return -ENOMEM;
		d->type = a->type;
		switch (a->type) {
		case ATTR_STR: d->str = copy; break;
		case ATTR_INT: d->i = a->i; break;
		case ATTR_BOOL: d->b = a->b; break;
		case ATTR_DOUBLE: d->d = a->d; break;
		}
	}
	return 0;
}

static void attrs_free_keys(struct attr_list *l)
{
	for (size_t i = 0; i < l->len; i++)
		if (l->items[i].key_owned)
			free((char *)l->items[i].key);
}

void attrs_free(struct attr_list *l)
{
	attrs_free_keys(l);
	free(l->items);
	free(l->strs);
	*l = (struct attr_list){ .version = l->version + 1 };
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

/* The agent builds, emits and frees one span per event: the span freed
 * last is kept, with its attribute and string buffers, for the next
 * span_new (three allocations fewer per span). One per thread; buffers
 * that grew large are not kept. */
#define SPARE_ATTRS_MAX 64
#define SPARE_STRS_MAX 4096
static _Thread_local struct span *spare;

struct span *span_new(void)
{
	struct span *s = spare;
	if (!s)
		return calloc(1, sizeof(struct span));
	spare = NULL;
	struct attr_list keep = s->attrs;
	memset(s, 0, sizeof(*s));
	s->attrs = (struct attr_list){ .items = keep.items, .cap = keep.cap, .strs = keep.strs,
				       .strs_cap = keep.strs_cap, .version = keep.version + 1 };
	return s;
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
	resource_put(s->resource);
	if (!spare && s->attrs.cap <= SPARE_ATTRS_MAX && s->attrs.strs_cap <= SPARE_STRS_MAX) {
		attrs_free_keys(&s->attrs);
		spare = s;
		return;
	}
	attrs_free(&s->attrs);
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
