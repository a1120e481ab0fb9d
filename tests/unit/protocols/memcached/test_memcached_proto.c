/* memcached text protocol parser (user/protocols/memcached/), exchanges as
 * memcached 1.6 answers them, and the span db_span_fill makes of them. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "db_span.h"
#include "memcached_proto.h"

static struct db_op op;

static int parse(const char *req, const char *resp)
{
	return memcached_parse_exchange(NULL, (const uint8_t *)req, strlen(req), (const uint8_t *)resp,
					strlen(resp), &op);
}

static void test_storage_and_retrieval(void **st)
{
	assert_int_equal(parse("set user:42 0 0 6\r\nsecret\r\n", "STORED\r\n"), 0);
	assert_int_equal(op.system, DB_SYSTEM_MEMCACHED);
	assert_string_equal(op.operation, "set");
	assert_string_equal(op.query, "set user:42 0 0 6");
	assert_string_equal(op.query_redacted, "set ? ? ? ?");
	assert_false(op.error);

	assert_int_equal(parse("get user:42 user:43\r\n", "VALUE user:42 0 6\r\nsecret\r\nEND\r\n"), 0);
	assert_string_equal(op.operation, "get");
	assert_string_equal(op.query_redacted, "get ? ?");
	assert_false(op.error);

	assert_int_equal(parse("get missing\r\n", "END\r\n"), 0); /* a miss is no error */
	assert_false(op.error);
	assert_int_equal(parse("delete missing\r\n", "NOT_FOUND\r\n"), 0);
	assert_false(op.error);
}

static void test_errors(void **st)
{
	assert_int_equal(parse("incr user:42 1\r\n", "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
			 0);
	assert_true(op.error);
	assert_string_equal(op.status_code, "CLIENT_ERROR");
	assert_string_equal(op.error_message, "cannot increment or decrement non-numeric value");
	assert_int_equal(parse("touch k\r\n", "ERROR\r\n"), 0);
	assert_true(op.error);
	assert_string_equal(op.status_code, "ERROR");
	assert_string_equal(op.error_message, "");
	/* "ERRORS" is not ERROR */
	assert_int_equal(parse("get k\r\n", "ERRORS\r\n"), 0);
	assert_false(op.error);
}

static void test_not_memcached(void **st)
{
	assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", ""), -EINVAL);
	assert_int_equal(parse("stats\r\n", "STAT pid 1\r\nEND\r\n"), -EINVAL);
	assert_int_equal(parse("", ""), -EINVAL);
	assert_int_equal(parse("\r\n", ""), -EINVAL);
	assert_int_equal(parse("getx k\r\n", ""), -EINVAL);
}

static void test_truncated(void **st)
{
	assert_int_equal(parse("set a_key_cut_by_the_capt", ""), 0);
	assert_true(op.query_truncated);
	assert_string_equal(op.query_redacted, "set ?");
}

static const char *attr_str(const struct span *s, const char *key)
{
	const struct attr *a = attrs_get(&s->attrs, key);
	return a && a->type == ATTR_STR ? a->str : NULL;
}

static void test_span(void **st)
{
	struct span *s = span_new();
	assert_int_equal(parse("set user:42 0 0 6\r\nsecret\r\n", "SERVER_ERROR out of memory storing object\r\n"), 0);
	assert_int_equal(db_span_fill(&op, DB_STATEMENT_REDACTED, s), 0);
	assert_string_equal(s->name, "set");
	assert_string_equal(attr_str(s, "db.system.name"), "memcached");
	assert_string_equal(attr_str(s, "db.operation.name"), "set");
	assert_string_equal(attr_str(s, "db.query.text"), "set ? ? ? ?");
	assert_string_equal(attr_str(s, "db.response.status_code"), "SERVER_ERROR");
	assert_int_equal(s->status, SPAN_STATUS_ERROR);
	span_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_storage_and_retrieval), cmocka_unit_test(test_errors),
		cmocka_unit_test(test_not_memcached), cmocka_unit_test(test_truncated), cmocka_unit_test(test_span),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
