/* Bounded LRU statement cache; linear search is fine for 256 entries and
 * keeps memory proportional to what a connection actually prepared. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "db_stmt_cache.h"

static struct db_stmt_entry *find(const struct db_stmt_cache *c, const char *key)
{
	for (size_t i = 0; i < c->len; i++)
		if (strcmp(c->entries[i].key, key) == 0)
			return &c->entries[i];
	return NULL;
}

/* A free slot: a new one while below the bound, else the least recently
 * used entry, emptied. */
static struct db_stmt_entry *slot_for_new(struct db_stmt_cache *c)
{
	if (c->len < DB_STMT_CACHE_MAX) {
		if (c->len == c->cap) {
			size_t cap = c->cap ? c->cap * 2 : 8;
			if (cap > DB_STMT_CACHE_MAX)
				cap = DB_STMT_CACHE_MAX;
			struct db_stmt_entry *n = realloc(c->entries, cap * sizeof(*n));
			if (!n)
				return NULL;
			c->entries = n;
			c->cap = cap;
		}
		struct db_stmt_entry *e = &c->entries[c->len++];
		e->text = NULL;
		return e;
	}
	struct db_stmt_entry *lru = &c->entries[0];
	for (size_t i = 1; i < c->len; i++)
		if (c->entries[i].last_used < lru->last_used)
			lru = &c->entries[i];
	free(lru->text);
	lru->text = NULL;
	return lru;
}

int db_stmt_cache_put(struct db_stmt_cache *c, const char *key, const char *text, size_t len)
{
	if (!c || !key || (!text && len) || strlen(key) >= DB_STMT_KEY_MAX)
		return -EINVAL;
	char *copy = strndup(text ? text : "", len);
	if (!copy)
		return -ENOMEM;
	struct db_stmt_entry *e = find(c, key);
	if (e) {
		free(e->text);
	} else {
		e = slot_for_new(c);
		if (!e) {
			free(copy);
			return -ENOMEM;
		}
		strcpy(e->key, key);
	}
	e->text = copy;
	e->last_used = ++c->clock;
	return 0;
}

const char *db_stmt_cache_get(struct db_stmt_cache *c, const char *key)
{
	struct db_stmt_entry *e = c && key ? find(c, key) : NULL;
	if (!e)
		return NULL;
	e->last_used = ++c->clock;
	return e->text;
}

const char *db_stmt_cache_peek(const struct db_stmt_cache *c, const char *key)
{
	struct db_stmt_entry *e = c && key ? find(c, key) : NULL;
	return e ? e->text : NULL;
}

void db_stmt_cache_del(struct db_stmt_cache *c, const char *key)
{
	struct db_stmt_entry *e = c && key ? find(c, key) : NULL;
	if (!e)
		return;
	free(e->text);
	*e = c->entries[--c->len]; /* order does not matter */
}

void db_stmt_cache_clear(struct db_stmt_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->len; i++)
		free(c->entries[i].text);
	free(c->entries);
	memset(c, 0, sizeof(*c));
}
