/* Per-connection map of prepared statement handle -> statement text, for
 * the PostgreSQL (statement name) and MySQL (statement id) parsers. Bounded:
 * at most DB_STMT_CACHE_MAX entries, the least recently used one evicted. */
#ifndef WEFT_DB_STMT_CACHE_H
#define WEFT_DB_STMT_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define DB_STMT_CACHE_MAX 256
#define DB_STMT_KEY_MAX 64 /* PostgreSQL names are at most 63 bytes */

struct db_stmt_entry {
	char key[DB_STMT_KEY_MAX];
	char *text; /* owned, NUL-terminated */
	uint64_t last_used;
};

struct db_stmt_cache {
	struct db_stmt_entry *entries; /* grown on demand up to DB_STMT_CACHE_MAX */
	size_t len, cap;
	uint64_t clock;
};

/* Stores a copy of text[0..len) under key (replacing an entry with that key).
 * Keys longer than DB_STMT_KEY_MAX - 1 are refused. 0, -EINVAL or -ENOMEM. */
int db_stmt_cache_put(struct db_stmt_cache *c, const char *key, const char *text, size_t len);
/* The text stored under key or NULL; marks the entry as recently used. */
const char *db_stmt_cache_get(struct db_stmt_cache *c, const char *key);
const char *db_stmt_cache_peek(const struct db_stmt_cache *c, const char *key);
void db_stmt_cache_del(struct db_stmt_cache *c, const char *key);
void db_stmt_cache_clear(struct db_stmt_cache *c);

#endif
