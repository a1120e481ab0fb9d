/* Database span naming and attributes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_span.h"
#include "sql.h"

/* Captures end anywhere, also inside a UTF-8 sequence, and OTLP strings
 * must be valid UTF-8: invalid bytes become '?'. */
static void utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;
	while (*p) {
		size_t n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3
			 : (*p & 0xf8) == 0xf0 ? 4 : 0;
		bool ok = n > 0 && !(n == 2 && *p < 0xc2) && !(n == 4 && *p > 0xf4);
		for (size_t k = 1; ok && k < n; k++)
			ok = (p[k] & 0xc0) == 0x80;
		if (!ok) {
			*p++ = '?';
			continue;
		}
		p += n;
	}
}

static enum sql_dialect dialect_of(enum db_system sys)
{
	return sys == DB_SYSTEM_MYSQL || sys == DB_SYSTEM_MARIADB ? SQL_DIALECT_MYSQL : SQL_DIALECT_ANSI;
}

/* db.query.text for mode into buf; false when it is to be left out. */
static bool query_text(const struct db_op *op, enum db_statement_mode mode, char *buf, size_t cap)
{
	if (mode == DB_STATEMENT_OFF || !op->query[0])
		return false;
	if (mode == DB_STATEMENT_RAW)
		db_copy_str(buf, cap, op->query, sizeof(op->query));
	else if (op->system == DB_SYSTEM_REDIS || op->system == DB_SYSTEM_MEMCACHED)
		db_copy_str(buf, cap, op->query_redacted, sizeof(op->query_redacted));
	else if (sql_redact_dialect(op->query, strlen(op->query), buf, cap, dialect_of(op->system)) < 0)
		return false;
	utf8_sanitize(buf);
	return buf[0] != '\0';
}

static int set_name(const struct db_op *op, struct span *s)
{
	const char *sys = db_system_name(op->system);
	char name[DB_OPERATION_MAX + DB_COLLECTION_MAX + 2];
	/* bounded copies, not snprintf: this runs for every span */
	if (op->operation[0] && op->collection[0]) {
		size_t n = strnlen(op->operation, sizeof(op->operation));
		db_copy_str(name, sizeof(name), op->operation, n);
		name[n] = ' ';
		db_copy_str(name + n + 1, sizeof(name) - n - 1, op->collection, sizeof(op->collection));
	} else if (op->operation[0]) {
		db_copy_str(name, sizeof(name), op->operation, sizeof(op->operation));
	} else {
		const char *what = sys ? sys : "db";
		db_copy_str(name, sizeof(name), what, strlen(what));
	}
	utf8_sanitize(name);
	char *dup = strdup(name);
	if (!dup)
		return -ENOMEM;
	free(s->name);
	s->name = dup;
	return 0;
}

static int set_str_if(struct attr_list *l, const char *key, const char *val)
{
	if (!val || !val[0])
		return 0;
	char buf[DB_COLLECTION_MAX + DB_ERROR_MAX];
	db_copy_str(buf, sizeof(buf), val, strlen(val));
	utf8_sanitize(buf);
	return attrs_add_str(l, key, buf);
}

static int set_status(const struct db_op *op, enum db_statement_mode mode, struct span *s)
{
	if (!op->error)
		return 0;
	s->status = SPAN_STATUS_ERROR;
	int rc = set_str_if(&s->attrs, "error.type", op->status_code[0] ? op->status_code : "_OTHER");
	if (rc || !op->error_message[0])
		return rc;
	/* Server messages quote values ("Duplicate entry '1' for key ..."):
	 * they get the same treatment as the query text. Both quote styles are
	 * redacted since messages quote identifiers and values alike. */
	char msg[DB_ERROR_MAX];
	if (mode == DB_STATEMENT_RAW)
		db_copy_str(msg, sizeof(msg), op->error_message, sizeof(op->error_message));
	else
		sql_redact_dialect(op->error_message, strlen(op->error_message), msg, sizeof(msg),
				   SQL_DIALECT_MYSQL);
	utf8_sanitize(msg);
	char *dup = strdup(msg);
	if (!dup)
		return -ENOMEM;
	free(s->status_message);
	s->status_message = dup;
	return 0;
}

int db_span_fill(const struct db_op *op, enum db_statement_mode mode, struct span *s)
{
	const char *sys = op ? db_system_name(op->system) : NULL;
	if (!op || !s || !sys)
		return -EINVAL;
	int rc = set_name(op, s);
	rc = rc ?: attrs_add_str(&s->attrs, "db.system.name", sys);
	rc = rc ?: set_str_if(&s->attrs, "db.namespace", op->db_namespace);
	rc = rc ?: set_str_if(&s->attrs, "db.operation.name", op->operation);
	rc = rc ?: set_str_if(&s->attrs, "db.collection.name", op->collection);
	rc = rc ?: set_str_if(&s->attrs, "db.response.status_code", op->status_code);
	if (!rc && op->batch_size >= 2)
		rc = attrs_add_int(&s->attrs, "db.operation.batch.size", op->batch_size);
	if (!rc) {
		char *q = malloc(DB_QUERY_MAX);
		if (!q)
			return -ENOMEM;
		if (query_text(op, mode, q, DB_QUERY_MAX))
			rc = attrs_add_str(&s->attrs, "db.query.text", q);
		free(q);
	}
	return rc ?: set_status(op, mode, s);
}
