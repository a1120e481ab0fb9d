/* Text for a terminal: bytes a traced process controls (span names from its
 * requests, SQL identifiers, its OTEL_SERVICE_NAME) must never reach the
 * terminal as control sequences. */
#ifndef WEFT_TEXT_ESCAPE_H
#define WEFT_TEXT_ESCAPE_H

#include <stddef.h>

/* Copies src (n bytes) into dst (dstlen > 0 bytes, always NUL-terminated)
 * with every control character escaped: C0 controls and DEL as \xHH, C1
 * controls (U+0080-U+009F) and bidirectional overrides (U+202A-U+202E,
 * U+2066-U+2069) as \u{HHHH}, a backslash as \\, and each byte of invalid
 * UTF-8 as \xHH. Other UTF-8 is copied. An escape never is cut in half:
 * the output stops before one that does not fit. Returns the bytes written. */
size_t text_escape_terminal(const char *src, size_t n, char *dst, size_t dstlen);

#endif
