/* The built-in sinks. */
#ifndef WEFT_SINKS_H
#define WEFT_SINKS_H

#include <stdio.h>
#include <string.h>

#include "sink.h"

struct span_sink *json_sink_create(void);
/* Waterfall of each finished trace on out (a terminal: 100 columns). */
struct span_sink *console_sink_create(FILE *out);

#endif
