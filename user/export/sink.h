/* A sink receives finished spans: console waterfall, JSON lines, OTLP.
 * The agent calls emit() from its event thread; a sink that does slow work
 * (network) must queue and return at once. */
#ifndef WEFT_SINK_H
#define WEFT_SINK_H

#include "span.h"

struct span_sink {
	const char *name;
	/* Takes ownership of nothing: copy what must outlive the call. */
	void (*emit)(struct span_sink *sink, const struct span *span);
	/* Called about every 100 ms from the event thread (time-based work). */
	void (*tick)(struct span_sink *sink, uint64_t now_ns);
	/* Flush everything buffered, then release the sink. */
	void (*close)(struct span_sink *sink);
};

#endif
