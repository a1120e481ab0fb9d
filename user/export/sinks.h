/* The built-in sinks. */
#ifndef WEFT_SINKS_H
#define WEFT_SINKS_H

#include <stdio.h>
#include <string.h>

#include "json_buf.h"
#include "sink.h"

struct span_sink *json_sink_create(void);
/* Appends s's JSON line (with its newline), as the JSON sink writes it. */
void json_span_format(struct json_buf *b, const struct span *s);
/* Waterfall of each finished trace on out (a terminal: 100 columns). */
struct span_sink *console_sink_create(FILE *out);
/* Spans the console left out of their trace's waterfall (over 256 in one
 * trace), all console sinks together. Event thread. */
uint64_t console_sink_omitted(void);

#endif
