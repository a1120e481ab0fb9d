/* Low-cardinality route from a URL path, for span names: path segments
 * that look like identifiers (numbers, UUIDs, hex hashes, long random
 * tokens, emails, dates) become "*".  Pure function.  Example (a line
 * comment, since the route holds the comment terminator):
 */
// "/users/42/orders/9f86d081" -> "/users/*/orders/*"
#ifndef WEFT_ROUTE_H
#define WEFT_ROUTE_H

#include <stddef.h>

/* Writes a NUL-terminated route of at most outlen-1 bytes (cut at a segment
 * boundary and ending in "/..." when too long). path need not be
 * NUL-terminated and may contain a query, which is dropped. Returns the
 * length written, or -EINVAL for an empty or non-absolute path (out gets "/"). */
int route_from_path(const char *path, size_t len, char *out, size_t outlen);

#endif
