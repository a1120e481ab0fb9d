/* One database operation as decoded from a captured exchange (the client's
 * request bytes and the server's response bytes) by pg_proto.c,
 * mysql_proto.c or redis_proto.c, turned into a span by db_span.c. */
#ifndef WEFT_DB_H
#define WEFT_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DB_NAMESPACE_MAX 64
#define DB_OPERATION_MAX 32
#define DB_COLLECTION_MAX 128
#define DB_QUERY_MAX 2048 /* the request capture is at most 2048 bytes */
#define DB_STATUS_MAX 16
#define DB_ERROR_MAX 256

/* Besides 0 (out filled: report a span) and negative errno values, the
 * *_parse_exchange functions return this when the bytes were understood and
 * only updated the connection's state (startup, authentication, a statement
 * prepared without error, SSL negotiation): there is nothing to report. */
#define DB_PARSE_NO_SPAN 1

enum db_system {
	DB_SYSTEM_UNKNOWN = 0,
	DB_SYSTEM_POSTGRESQL,
	DB_SYSTEM_MYSQL,
	DB_SYSTEM_MARIADB,
	DB_SYSTEM_REDIS,
	DB_SYSTEM_MEMCACHED,
};

/* What db.query.text carries. REDACTED (the default) replaces literals and
 * values with '?'. */
enum db_statement_mode {
	DB_STATEMENT_REDACTED = 0,
	DB_STATEMENT_RAW = 1,
	DB_STATEMENT_OFF = 2,
};

struct db_op {
	enum db_system system;
	char db_namespace[DB_NAMESPACE_MAX]; /* database name / redis db index; "" unknown */
	char operation[DB_OPERATION_MAX];    /* "SELECT", "GET", "BATCH SET"; "" unknown */
	char collection[DB_COLLECTION_MAX];  /* "" unless unambiguous */
	/* Raw statement text as the client sent it (NUL-terminated). SQL is
	 * redacted by db_span_fill per mode; query_truncated tells that the
	 * capture ended inside it. */
	char query[DB_QUERY_MAX];
	bool query_truncated;
	/* Redis, memcached: the command with values already replaced by '?'.
	 * Only the parser knows argument boundaries, so it redacts; "" for SQL. */
	char query_redacted[DB_QUERY_MAX];
	char status_code[DB_STATUS_MAX]; /* SQLSTATE, MySQL error number, Redis error prefix */
	bool error;
	char error_message[DB_ERROR_MAX]; /* raw server message; db_span_fill redacts it */
	uint32_t batch_size;               /* Redis pipeline: commands in it (>= 2); else 0 */
};

const char *db_system_name(enum db_system s); /* "postgresql", ...; NULL for unknown */

/* Helpers for the parsers (db.c). */
void db_op_init(struct db_op *op, enum db_system system, const char *db_namespace);
/* Copies SQL text into op->query (cut at DB_QUERY_MAX - 1 bytes and at a NUL)
 * and fills operation and collection from it with sql_summarize. */
void db_op_set_sql(struct db_op *op, const char *text, size_t len, bool truncated);
/* Copies src[0..n) into dst of size cap, stopping at a NUL; always terminates. */
void db_copy_str(char *dst, size_t cap, const char *src, size_t n);

#endif
