/* Attribute lists (user/span/span.c): key ownership (copied by attrs_set_*,
 * shared by attrs_add_* and attrs_copy of static keys), the string arena
 * (values move and are compacted as it grows), replacing and removing. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "span.h"

static const char *str_of(const struct attr_list *l, const char *key)
{
	const struct attr *a = attrs_get(l, key);
	assert_non_null(a);
	assert_int_equal(a->type, ATTR_STR);
	return a->str;
}

static void test_set_copies_key(void **state)
{
	struct attr_list l = { 0 };
	char key[16] = "k1";
	assert_int_equal(attrs_set_str(&l, key, "v1"), 0);
	assert_int_equal(attrs_set_int(&l, "k2", 5), 0);
	strcpy(key, "XX"); /* the caller's buffer is not the list's key */
	assert_string_equal(str_of(&l, "k1"), "v1");
	assert_true(l.items[0].key_owned && l.items[0].key != key);
	/* replacing keeps one attribute per key, of the new type */
	assert_int_equal(attrs_set_str(&l, "k2", "now a string"), 0);
	assert_int_equal(attrs_set_double(&l, "k1", 2.5), 0);
	assert_int_equal(l.len, 2);
	assert_int_equal(attrs_get(&l, "k1")->type, ATTR_DOUBLE);
	assert_string_equal(str_of(&l, "k2"), "now a string");
	/* strn stops at n or at a NUL */
	assert_int_equal(attrs_set_strn(&l, "k3", "abcdef", 3), 0);
	assert_int_equal(attrs_set_strn(&l, "k4", "ab\0cd", 5), 0);
	assert_string_equal(str_of(&l, "k3"), "abc");
	assert_string_equal(str_of(&l, "k4"), "ab");
	attrs_free(&l);
	assert_int_equal(l.len, 0);
	assert_null(l.items);
	assert_null(l.strs);
}

static void test_add_shares_key(void **state)
{
	static const char key[] = "url.path";
	struct attr_list l = { 0 };
	assert_int_equal(attrs_add_str(&l, key, "/a"), 0);
	assert_int_equal(attrs_add_strn(&l, "url.query", "x=1&y", 3), 0);
	assert_int_equal(attrs_add_int(&l, "server.port", 8080), 0);
	assert_ptr_equal(l.items[0].key, key);
	assert_false(l.items[0].key_owned);
	assert_string_equal(str_of(&l, "url.query"), "x=1");
	assert_int_equal(attrs_get(&l, "server.port")->i, 8080);
	/* attrs_set_* finds an added key */
	assert_int_equal(attrs_set_str(&l, "url.path", "/b"), 0);
	assert_int_equal(l.len, 3);
	assert_string_equal(str_of(&l, "url.path"), "/b");
	attrs_free(&l);
}

/* Many values, some long, some replaced over and over: every value stays
 * right as the arena moves, and replaced ones do not pile up. */
static void test_arena_grows_and_compacts(void **state)
{
	struct attr_list l = { 0 };
	char key[32], val[600];
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "key.%d", i);
		memset(val, 'a' + i % 26, sizeof(val));
		val[i * 13 % sizeof(val)] = '\0';
		assert_int_equal(attrs_set_str(&l, key, val), 0);
	}
	for (int round = 0; round < 1000; round++) {
		snprintf(val, sizeof(val), "value %d of a replaced attribute", round);
		assert_int_equal(attrs_set_str(&l, "key.7", val), 0);
	}
	size_t live = 0;
	for (int i = 0; i < 40; i++) {
		snprintf(key, sizeof(key), "key.%d", i);
		const char *v = str_of(&l, key);
		live += strlen(v) + 1;
		if (i == 7) {
			assert_string_equal(v, "value 999 of a replaced attribute");
			continue;
		}
		size_t n = i * 13 % sizeof(val);
		assert_int_equal(strlen(v), n);
		for (size_t k = 0; k < n; k++)
			assert_int_equal(v[k], 'a' + i % 26);
	}
	assert_true(l.strs_cap <= 4 * live);
	attrs_free(&l);
}

/* A value taken from the list itself, stored while the arena moves. */
static void test_value_from_own_arena(void **state)
{
	struct attr_list l = { 0 };
	char big[1000];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(attrs_add_str(&l, "a", "first value"), 0);
	size_t cap = l.strs_cap;
	assert_int_equal(attrs_set_str(&l, "b", big), 0);
	assert_true(l.strs_cap > cap);
	for (int i = 0; i < 5; i++) {
		/* each copy of b outgrows the arena again */
		char key[8];
		snprintf(key, sizeof(key), "c%d", i);
		assert_int_equal(attrs_set_str(&l, key, str_of(&l, "b")), 0);
		assert_string_equal(str_of(&l, key), big);
	}
	assert_int_equal(attrs_set_str(&l, "a", str_of(&l, "a")), 0);
	assert_string_equal(str_of(&l, "a"), "first value");
	attrs_free(&l);
}

static void test_copy_and_remove(void **state)
{
	struct attr_list src = { 0 }, dst = { 0 };
	char owned_key[] = "from.config";
	assert_int_equal(attrs_add_str(&src, "service.name", "svc"), 0);
	assert_int_equal(attrs_set_str(&src, owned_key, "x"), 0);
	assert_int_equal(attrs_set_bool(&src, "flag", true), 0);
	assert_int_equal(attrs_add_int(&dst, "process.pid", 1), 0);
	assert_int_equal(attrs_set_str(&dst, "service.name", "old"), 0);
	assert_int_equal(attrs_copy(&dst, &src), 0);
	assert_int_equal(dst.len, 4);
	assert_string_equal(str_of(&dst, "service.name"), "svc"); /* replaced */
	assert_string_equal(str_of(&dst, "from.config"), "x");
	assert_true(attrs_get(&dst, "flag")->b);
	/* the static key is shared, the owned one copied */
	const struct attr *a = attrs_get(&dst, "from.config");
	assert_true(a->key_owned);
	assert_ptr_not_equal(a->key, src.items[1].key);
	assert_ptr_not_equal(str_of(&dst, "service.name"), str_of(&src, "service.name"));
	attrs_free(&src); /* dst owns everything it needs */
	assert_string_equal(str_of(&dst, "from.config"), "x");

	attrs_remove(&dst, "from.config");
	attrs_remove(&dst, "process.pid");
	attrs_remove(&dst, "absent");
	assert_int_equal(dst.len, 2);
	assert_null(attrs_get(&dst, "from.config"));
	assert_string_equal(str_of(&dst, "service.name"), "svc");
	attrs_free(&dst);
}

/* Every change moves the version (the OTLP sink's resource cache relies on
 * it); reading does not. */
static void test_version(void **state)
{
	struct attr_list l = { 0 }, other = { 0 };
	unsigned long v = l.version;
#define CHANGED(expr)                         \
	do {                                  \
		expr;                         \
		assert_true(l.version != v);  \
		v = l.version;                \
	} while (0)
	CHANGED(attrs_add_str(&l, "a", "1"));
	CHANGED(attrs_add_int(&l, "b", 1));
	CHANGED(attrs_set_str(&l, "a", "2"));
	CHANGED(attrs_set_int(&l, "b", 1)); /* same value: still counted */
	CHANGED(attrs_set_bool(&l, "c", true));
	CHANGED(attrs_remove(&l, "c"));
	attrs_remove(&l, "absent");
	assert_true(l.version == v);
	attrs_get(&l, "a");
	assert_true(l.version == v);
	attrs_add_str(&other, "a", "3");
	CHANGED(attrs_copy(&l, &other)); /* replaces a static key's value */
	assert_string_equal(attrs_get(&l, "a")->str, "3");
	CHANGED(attrs_free(&l));
	CHANGED(attrs_add_str(&l, "a", "1"));
#undef CHANGED
	attrs_free(&l);
	attrs_free(&other);
}

static void test_span_clone(void **state)
{
	struct span *s = span_new();
	s->name = strdup("GET /");
	s->status_message = strdup("boom");
	assert_int_equal(attrs_add_str(&s->attrs, "url.path", "/"), 0);
	assert_int_equal(attrs_set_str(&s->attrs, "owned", "o"), 0);
	struct span *c = span_clone(s);
	span_free(s);
	assert_string_equal(c->name, "GET /");
	assert_string_equal(c->status_message, "boom");
	assert_string_equal(str_of(&c->attrs, "url.path"), "/");
	assert_string_equal(str_of(&c->attrs, "owned"), "o");
	span_free(c);
}

/* A freed span's buffers are reused by the next span_new: it must be as
 * clean as a new one. */
static void test_span_reuse(void **state)
{
	struct resource *r = calloc(1, sizeof(*r));
	r->refs = 1;
	struct span *s = span_new();
	s->name = strdup("a");
	s->trace_state = strdup("k=v");
	s->status = SPAN_STATUS_ERROR;
	s->span_id[3] = 7;
	s->resource = resource_get(r);
	for (int i = 0; i < 20; i++) {
		char key[16];
		snprintf(key, sizeof(key), "owned.%d", i);
		assert_int_equal(attrs_set_str(&s->attrs, key, "some value"), 0);
	}
	span_free(s);
	assert_int_equal(r->refs, 1); /* the span's reference was dropped */
	struct span *t = span_new();
	assert_null(t->name);
	assert_null(t->trace_state);
	assert_null(t->resource);
	assert_int_equal(t->status, SPAN_STATUS_UNSET);
	assert_int_equal(t->span_id[3], 0);
	assert_int_equal(t->attrs.len, 0);
	assert_int_equal(t->attrs.strs_len, 0);
	assert_null(attrs_get(&t->attrs, "owned.3"));
	assert_int_equal(attrs_add_str(&t->attrs, "k", "v"), 0);
	assert_string_equal(attrs_get(&t->attrs, "k")->str, "v");
	struct span *u = span_new(); /* a second live span: a fresh one */
	assert_ptr_not_equal(u, t);
	span_free(t);
	span_free(u);
	resource_put(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_copies_key),
		cmocka_unit_test(test_add_shares_key),
		cmocka_unit_test(test_arena_grows_and_compacts),
		cmocka_unit_test(test_value_from_own_arena),
		cmocka_unit_test(test_copy_and_remove),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_span_clone),
		cmocka_unit_test(test_span_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
