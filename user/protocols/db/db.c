/* Small helpers shared by the database parsers. */
#include <string.h>

#include "db.h"
#include "sql.h"

const char *db_system_name(enum db_system s)
{
	switch (s) {
	case DB_SYSTEM_POSTGRESQL: return "postgresql";
	case DB_SYSTEM_MYSQL: return "mysql";
	case DB_SYSTEM_MARIADB: return "mariadb";
	case DB_SYSTEM_REDIS: return "redis";
	case DB_SYSTEM_MEMCACHED: return "memcached";
	default: return NULL;
	}
}

void db_copy_str(char *dst, size_t cap, const char *src, size_t n)
{
	if (!cap)
		return;
	const char *nul = src ? memchr(src, '\0', n) : NULL;
	if (nul)
		n = (size_t)(nul - src);
	if (!src)
		n = 0;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src ? src : "", n);
	dst[n] = '\0';
}

void db_op_init(struct db_op *op, enum db_system system, const char *db_namespace)
{
	memset(op, 0, sizeof(*op));
	op->system = system;
	if (db_namespace)
		db_copy_str(op->db_namespace, sizeof(op->db_namespace), db_namespace, strlen(db_namespace));
}

void db_op_set_sql(struct db_op *op, const char *text, size_t len, bool truncated)
{
	const char *nul = memchr(text, '\0', len);
	if (nul)
		len = (size_t)(nul - text);
	if (len >= sizeof(op->query)) {
		len = sizeof(op->query) - 1;
		truncated = true;
	}
	memcpy(op->query, text, len);
	op->query[len] = '\0';
	op->query_truncated = truncated;
	struct sql_summary sum;
	if (sql_summarize(op->query, len, &sum) == 0) {
		db_copy_str(op->operation, sizeof(op->operation), sum.operation, sizeof(sum.operation));
		db_copy_str(op->collection, sizeof(op->collection), sum.collection, sizeof(sum.collection));
	}
}
