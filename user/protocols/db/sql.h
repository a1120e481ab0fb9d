/* SQL text helpers for database spans: literal redaction and a cheap
 * summary (operation + single collection) following the OpenTelemetry
 * database semantic conventions. Pure functions over bounded buffers: the
 * statements come from truncated captures, so unterminated literals,
 * comments and identifiers are expected and handled. */
#ifndef WEFT_SQL_H
#define WEFT_SQL_H

#include <stdbool.h>
#include <stddef.h>

#define SQL_OPERATION_MAX 32  /* including the NUL */
#define SQL_COLLECTION_MAX 128 /* including the NUL */

/* How double-quoted text is read. ANSI (PostgreSQL): "x" is an identifier and
 * is kept. MySQL (default sql_mode): "x" is a string literal and is redacted. */
enum sql_dialect {
	SQL_DIALECT_ANSI = 0,
	SQL_DIALECT_MYSQL = 1,
};

/* Replaces literals in in[0..len) with '?' and writes the NUL-terminated
 * result to out. Replaced: string literals ('..', E'..', X'..', B'..', N'..',
 * with '' and backslash escapes), PostgreSQL dollar-quoted strings, numbers
 * (decimal, float, hex 0x..). Kept: keywords, identifiers (quoted too),
 * placeholders ($1, ?, :name), comments, TRUE/FALSE/NULL. Lists of only
 * literals/placeholders after IN collapse to "IN (?)". Unterminated literals
 * (truncated capture) are redacted to the end. The result is never longer
 * than the input, so outlen >= len + 1 never truncates. Returns the length
 * written (without the NUL) or -EINVAL. Same as sql_redact_dialect(ANSI). */
int sql_redact(const char *in, size_t len, char *out, size_t outlen);
int sql_redact_dialect(const char *in, size_t len, char *out, size_t outlen,
		       enum sql_dialect dialect);

struct sql_summary {
	char operation[SQL_OPERATION_MAX];   /* "SELECT", "INSERT", ...; "" if none */
	char collection[SQL_COLLECTION_MAX]; /* "users", "public.users"; "" unless unambiguous */
};

/* Fills out with the statement's operation (first keyword after leading
 * comments/parentheses, uppercased; for WITH, the main statement's keyword)
 * and collection: the table named after FROM/JOIN/INTO/UPDATE/TABLE/USING,
 * only when the statement names exactly one (subqueries included, function
 * arguments like EXTRACT(x FROM y) excluded). Quotes are removed from quoted
 * identifiers; schema qualification is kept. Only the first statement of a
 * multi-statement string is summarised. Returns 0, or -EINVAL when no
 * keyword was found. */
int sql_summarize(const char *stmt, size_t len, struct sql_summary *out);

#endif
