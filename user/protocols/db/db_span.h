/* Turns a decoded database operation into span name, attributes and status
 * (OpenTelemetry database semantic conventions, stable names). */
#ifndef WEFT_DB_SPAN_H
#define WEFT_DB_SPAN_H

#include "db.h"
#include "span.h"

/* Sets s->name ("SELECT users", "GET", "BATCH SET", or the system name when
 * nothing better is known), the db.* attributes, error.type and status
 * ERROR on database errors. db.query.text follows mode: REDACTED replaces
 * literals/values with '?', RAW keeps the text, OFF leaves it out; error
 * messages (status message) are redacted unless RAW. Leaves ids, kind,
 * timestamps and server.* alone. s is new (span_new): its attributes are
 * appended, not looked up. Returns 0, -EINVAL or -ENOMEM. */
int db_span_fill(const struct db_op *op, enum db_statement_mode mode, struct span *s);

#endif
