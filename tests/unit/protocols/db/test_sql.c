/* SQL redaction and summary. Statements marked "captured" are the texts
 * that real clients sent in the PostgreSQL/MariaDB captures used by
 * test_pg_proto.c and test_mysql_proto.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "db_span.h"
#include "sql.h"

struct redact_case {
	enum sql_dialect d;
	const char *in, *out;
};

static const struct redact_case redact_cases[] = {
	/* captured */
	{SQL_DIALECT_ANSI, "SELECT id, name FROM users WHERE id IN (1, 2, 3) ORDER BY id",
	 "SELECT id, name FROM users WHERE id IN (?) ORDER BY id"},
	{SQL_DIALECT_ANSI, "INSERT INTO users (id, name) VALUES (1, 'O''Brien'), (2, 'bob')",
	 "INSERT INTO users (id, name) VALUES (?, ?), (?, ?)"},
	{SQL_DIALECT_ANSI, "SELECT $$it's a secret$$ AS s, $tag$x$tag$, E'esc\\'aped', 0x1F, 3.14e2",
	 "SELECT ? AS s, ?, ?, ?, ?"},
	{SQL_DIALECT_ANSI, "UPDATE users SET name = $1 WHERE id = $2", "UPDATE users SET name = $1 WHERE id = $2"},
	{SQL_DIALECT_MYSQL, "INSERT INTO users (id, name) VALUES (1, 'O\\'Brien'), (2, \"bob\")",
	 "INSERT INTO users (id, name) VALUES (?, ?), (?, ?)"},
	{SQL_DIALECT_MYSQL, "SELECT id, name FROM `users` WHERE id IN (1, 2, 3) AND name <> X'00ff'",
	 "SELECT id, name FROM `users` WHERE id IN (?) AND name <> ?"},
	{SQL_DIALECT_MYSQL, "SELECT name FROM users WHERE id = ?", "SELECT name FROM users WHERE id = ?"},
	/* more shapes */
	{SQL_DIALECT_ANSI, "SELECT * FROM \"Users\" WHERE \"Name\" = 'x'", "SELECT * FROM \"Users\" WHERE \"Name\" = ?"},
	{SQL_DIALECT_ANSI, "SELECT a FROM t WHERE b IN ('a', 'b', $1, -4, NULL) AND c = TRUE",
	 "SELECT a FROM t WHERE b IN (?) AND c = TRUE"},
	{SQL_DIALECT_ANSI, "SELECT a FROM t WHERE b IN (SELECT c FROM u WHERE d = 5)",
	 "SELECT a FROM t WHERE b IN (SELECT c FROM u WHERE d = ?)"},
	{SQL_DIALECT_ANSI, "SELECT x1, t2.y FROM t2 WHERE z = .5 AND w = 1e-3", "SELECT x1, t2.y FROM t2 WHERE z = ? AND w = ?"},
	{SQL_DIALECT_ANSI, "SELECT B'0101', N'nat', x'ff', a::int FROM t", "SELECT ?, ?, ?, a::int FROM t"},
	{SQL_DIALECT_ANSI, "SELECT 1 -- trailing 'comment'\n, /* block 'c' */ 2", "SELECT ? -- trailing 'comment'\n, /* block 'c' */ ?"},
	{SQL_DIALECT_ANSI, "SELECT 'unterminated secret", "SELECT ?"},
	{SQL_DIALECT_ANSI, "SELECT $q$ never closed", "SELECT ?"},
	{SQL_DIALECT_ANSI, "SELECT x FROM t WHERE y IN ('a', 'b'", "SELECT x FROM t WHERE y IN (?"},
	{SQL_DIALECT_ANSI, "SELECT 'a\\'; DROP TABLE x; --'", "SELECT ?"},
	{SQL_DIALECT_ANSI, "", ""},
};

static void test_redact(void **state)
{
	for (size_t i = 0; i < sizeof(redact_cases) / sizeof(redact_cases[0]); i++) {
		const struct redact_case *c = &redact_cases[i];
		char out[512];
		int n = sql_redact_dialect(c->in, strlen(c->in), out, sizeof(out), c->d);
		if (strcmp(out, c->out))
			fail_msg("case %zu: \"%s\" -> \"%s\", want \"%s\"", i, c->in, out, c->out);
		assert_int_equal(n, (int)strlen(c->out));
		assert_true(strlen(out) <= strlen(c->in));
	}
}

static void test_redact_bounds(void **state)
{
	const char *q = "SELECT name FROM users WHERE id = 12345";
	char out[10];
	assert_int_equal(sql_redact(q, strlen(q), out, sizeof(out)), 9);
	assert_string_equal(out, "SELECT na");
	assert_int_equal(sql_redact(q, strlen(q), out, 0), -EINVAL);
	assert_int_equal(sql_redact(q, strlen(q), NULL, 10), -EINVAL);
	/* len is honoured: no reading past it, no NUL needed */
	char raw[6] = {'S', 'E', 'L', ' ', '4', '2'};
	char big[16];
	assert_int_equal(sql_redact(raw, 5, big, sizeof(big)), 5);
	assert_string_equal(big, "SEL ?");
}

struct summary_case {
	const char *in, *op, *coll;
};

static const struct summary_case summary_cases[] = {
	{"SELECT id, name FROM users WHERE id IN (1, 2, 3) ORDER BY id", "SELECT", "users"},
	{"INSERT INTO users (id, name) VALUES (1, 'O''Brien'), (2, 'bob')", "INSERT", "users"},
	{"DELETE FROM users", "DELETE", "users"},
	{"UPDATE users SET name = $1 WHERE id = $2", "UPDATE", "users"},
	{"SELECT id, name FROM `users` WHERE id IN (1, 2, 3)", "SELECT", "users"},
	{"SELECT * FROM nosuch_table", "SELECT", "nosuch_table"},
	{"BEGIN", "BEGIN", ""},
	{"commit", "COMMIT", ""},
	{"SELECT DATABASE()", "SELECT", ""},
	{"SELECT 1", "SELECT", ""},
	{"  /* app=shop */ -- hint\n select * from public.\"Users\" u where u.id = 1", "SELECT", "public.Users"},
	{"SELECT * FROM \"we\"\"ird\"", "SELECT", "we\"ird"},
	{"WITH recent AS (SELECT * FROM orders) SELECT * FROM recent", "SELECT", ""},
	{"WITH x AS (SELECT 1) UPDATE users SET a = 1", "UPDATE", "users"},
	{"WITH RECURSIVE t(n) AS (VALUES (1)) SELECT n FROM t", "SELECT", "t"},
	{"SELECT extract(year FROM created), count(*) FROM orders", "SELECT", "orders"},
	{"SELECT substring(name FROM 2) FROM users", "SELECT", "users"},
	{"SELECT * FROM users u, orders o WHERE u.id = o.user_id", "SELECT", ""},
	{"SELECT * FROM users u JOIN orders o ON u.id = o.user_id", "SELECT", ""},
	{"SELECT * FROM users WHERE id IN (SELECT user_id FROM orders)", "SELECT", ""},
	{"SELECT * FROM (SELECT 1) AS sub", "SELECT", ""},
	{"SELECT * FROM generate_series(1, 10)", "SELECT", ""},
	{"SELECT * FROM users FOR UPDATE", "SELECT", "users"},
	{"INSERT INTO orders SELECT * FROM users", "INSERT", ""},
	{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", "INSERT", "t"},
	{"INSERT IGNORE INTO shop.users VALUES (1)", "INSERT", "shop.users"},
	{"REPLACE INTO users VALUES (1)", "REPLACE", "users"},
	{"UPDATE ONLY users SET a = 1", "UPDATE", "users"},
	{"UPDATE a, b SET a.x = b.x", "UPDATE", ""},
	{"DELETE FROM users USING orders WHERE users.id = orders.uid", "DELETE", ""},
	{"CREATE TABLE IF NOT EXISTS audit (id int, at timestamptz DEFAULT now())", "CREATE", "audit"},
	{"CREATE TEMPORARY TABLE tmp (a int)", "CREATE", "tmp"},
	{"CREATE INDEX idx ON users (name)", "CREATE", ""},
	{"DROP TABLE IF EXISTS audit", "DROP", "audit"},
	{"ALTER TABLE users ADD COLUMN b int", "ALTER", "users"},
	{"TRUNCATE TABLE users", "TRUNCATE", "users"},
	{"TABLE users", "TABLE", "users"},
	{"COPY users FROM STDIN", "COPY", "users"},
	{"(SELECT a FROM t) UNION (SELECT a FROM t)", "SELECT", "t"},
	{"SELECT 1; DROP TABLE users", "SELECT", ""},
	{"SELECT * FROM users WHERE name = 'x FROM other'", "SELECT", "users"},
	{"SELEC 1", "SELEC", ""},
	{"SELECT * FROM us", "SELECT", "us"}, /* truncated capture */
	{"SELECT * FROM", "SELECT", ""},
	{"WITH x AS (SELECT", "WITH", ""},
};

static void test_summarize(void **state)
{
	for (size_t i = 0; i < sizeof(summary_cases) / sizeof(summary_cases[0]); i++) {
		const struct summary_case *c = &summary_cases[i];
		struct sql_summary s;
		assert_int_equal(sql_summarize(c->in, strlen(c->in), &s), 0);
		if (strcmp(s.operation, c->op) || strcmp(s.collection, c->coll))
			fail_msg("case %zu: \"%s\" -> op \"%s\" coll \"%s\"", i, c->in, s.operation, s.collection);
	}
	struct sql_summary s;
	assert_int_equal(sql_summarize("", 0, &s), -EINVAL);
	assert_int_equal(sql_summarize("  -- only a comment", 19, &s), -EINVAL);
	assert_int_equal(sql_summarize("'x'", 3, &s), -EINVAL);
	assert_int_equal(sql_summarize("x", 1, NULL), -EINVAL);
}

static void test_every_prefix(void **state)
{
	const struct summary_case *c = &summary_cases[10];
	size_t len = strlen(c->in);
	for (size_t n = 0; n <= len; n++) {
		char *in = malloc(n ? n : 1); /* exact size: ASan catches overreads */
		memcpy(in, c->in, n);
		char out[256];
		struct sql_summary s;
		assert_true(sql_redact(in, n, out, sizeof(out)) >= 0);
		(void)sql_summarize(in, n, &s);
		free(in);
	}
}

static void test_span_fill_sanitizes_and_validates(void **state)
{
	struct db_op op;
	db_op_init(&op, DB_SYSTEM_POSTGRESQL, "shop");
	const char q[] = "SELECT 'caf\xc3\xa9' FROM menu WHERE name = 'caf\xc3";
	db_op_set_sql(&op, q, sizeof(q) - 1, true);
	struct span *s = span_new();
	assert_int_equal(db_span_fill(&op, DB_STATEMENT_RAW, s), 0);
	const struct attr *a = attrs_get(&s->attrs, "db.query.text");
	assert_non_null(a);
	assert_string_equal(a->str, "SELECT 'caf\xc3\xa9' FROM menu WHERE name = 'caf?");
	assert_string_equal(s->name, "SELECT menu");
	span_free(s);

	op.system = DB_SYSTEM_UNKNOWN;
	s = span_new();
	assert_int_equal(db_span_fill(&op, DB_STATEMENT_RAW, s), -EINVAL);
	assert_int_equal(db_span_fill(NULL, DB_STATEMENT_RAW, s), -EINVAL);
	span_free(s);

	db_op_init(&op, DB_SYSTEM_MYSQL, NULL);
	s = span_new();
	assert_int_equal(db_span_fill(&op, DB_STATEMENT_REDACTED, s), 0);
	assert_string_equal(s->name, "mysql");
	assert_null(attrs_get(&s->attrs, "db.namespace"));
	span_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact),
		cmocka_unit_test(test_redact_bounds),
		cmocka_unit_test(test_summarize),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_span_fill_sanitizes_and_validates),
	};
	return cmocka_run_group_tests_name("sql", tests, NULL, NULL);
}
