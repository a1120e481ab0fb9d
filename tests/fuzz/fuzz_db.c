/* libFuzzer harness for the database parsers and SQL helpers.
 *
 * Input: byte 0 selects the target (mod 4: PostgreSQL, MySQL, Redis, SQL),
 * bytes 1-2 (big-endian) say where the request ends and the response
 * begins; the rest is the data. Every exchange runs twice on one connection
 * state so that statement caches and database names carry over, and every
 * decoded operation goes through db_span_fill in all three modes. Buffers
 * are copied to exact-size allocations so ASan sees any overread. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "db_span.h"
#include "mysql_proto.h"
#include "pg_proto.h"
#include "redis_proto.h"
#include "sql.h"

static void fill_spans(const struct db_op *op)
{
	for (int mode = DB_STATEMENT_REDACTED; mode <= DB_STATEMENT_OFF; mode++) {
		struct span *s = span_new();
		if (!s)
			return;
		db_span_fill(op, (enum db_statement_mode)mode, s);
		span_free(s);
	}
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

static void fuzz_pg(const uint8_t *req, size_t rl, const uint8_t *resp, size_t sl)
{
	struct pg_conn_state *st = pg_conn_state_new();
	struct db_op *op = malloc(sizeof(*op));
	if (st && op) {
		(void)pg_looks_like_client_message(req, rl);
		(void)pg_looks_like_server_message(resp, sl);
		for (int k = 0; k < 2; k++)
			if (pg_parse_exchange(st, req, rl, resp, sl, op) == 0)
				fill_spans(op);
	}
	free(op);
	pg_conn_state_free(st);
}

static void fuzz_mysql(const uint8_t *req, size_t rl, const uint8_t *resp, size_t sl)
{
	struct mysql_conn_state *st = mysql_conn_state_new();
	struct db_op *op = malloc(sizeof(*op));
	if (st && op) {
		(void)mysql_looks_like_client_message(req, rl);
		(void)mysql_looks_like_server_message(resp, sl);
		mysql_parse_exchange(st, NULL, 0, resp, sl, op); /* as a greeting */
		for (int k = 0; k < 2; k++)
			if (mysql_parse_exchange(st, req, rl, resp, sl, op) == 0)
				fill_spans(op);
	}
	free(op);
	mysql_conn_state_free(st);
}

static void fuzz_redis(const uint8_t *req, size_t rl, const uint8_t *resp, size_t sl)
{
	struct redis_conn_state *st = redis_conn_state_new(rl & 1);
	struct db_op *op = malloc(sizeof(*op));
	if (st && op) {
		(void)redis_looks_like_client_message(req, rl);
		(void)redis_looks_like_server_message(resp, sl);
		for (int k = 0; k < 2; k++)
			if (redis_parse_exchange(st, req, rl, resp, sl, op) == 0)
				fill_spans(op);
	}
	free(op);
	redis_conn_state_free(st);
}

static void fuzz_sql(const uint8_t *data, size_t n)
{
	char *out = malloc(n + 1);
	if (!out)
		return;
	sql_redact((const char *)data, n, out, n + 1);
	sql_redact_dialect((const char *)data, n, out, n / 2 + 1, SQL_DIALECT_MYSQL);
	struct sql_summary s;
	sql_summarize((const char *)data, n, &s);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	unsigned target = data[0] % 4;
	size_t split = (size_t)data[1] << 8 | data[2];
	const uint8_t *body = data + 3;
	size_t n = size - 3;
	if (split > n)
		split = n;
	uint8_t *req = dup_exact(body, split), *resp = dup_exact(body + split, n - split);
	if (req && resp) {
		switch (target) {
		case 0: fuzz_pg(req, split, resp, n - split); break;
		case 1: fuzz_mysql(req, split, resp, n - split); break;
		case 2: fuzz_redis(req, split, resp, n - split); break;
		default: fuzz_sql(req, split); break;
		}
	}
	free(req);
	free(resp);
	return 0;
}
