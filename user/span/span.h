/* Spans as the agent assembles them, independent of any output format.
 * Every sink (console, JSON, OTLP) consumes struct span. */
#ifndef WEFT_SPAN_H
#define WEFT_SPAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum attr_type { ATTR_STR, ATTR_INT, ATTR_BOOL, ATTR_DOUBLE };

struct attr {
	const char *key; /* a copy the list frees when key_owned, else static */
	enum attr_type type;
	bool key_owned;
	union {
		char *str; /* in the list's string arena (strs) */
		int64_t i;
		bool b;
		double d;
	};
};

/* A span is built, read by the sinks and freed on the agent's hot path:
 * keys are mostly string literals, shared rather than copied, and string
 * values live back to back in one arena per list, so that a span's
 * attributes cost two allocations, not two per attribute. */
struct attr_list {
	struct attr *items;
	size_t len, cap;
	char *strs; /* string values, NUL-terminated; moved (and compacted) as it grows */
	size_t strs_len, strs_cap;
	unsigned long version; /* changes with every change of the list, attrs_free included */
};

/* Setting a key that is present replaces its value. The key is copied.
 * Return 0 or -ENOMEM. */
int attrs_set_str(struct attr_list *l, const char *key, const char *val);
int attrs_set_strn(struct attr_list *l, const char *key, const char *val, size_t n);
int attrs_set_int(struct attr_list *l, const char *key, int64_t val);
int attrs_set_bool(struct attr_list *l, const char *key, bool val);
int attrs_set_double(struct attr_list *l, const char *key, double val);
/* Appends, for callers that build a list from scratch: key must not be in
 * l yet (not checked: it would be there twice), and is not copied (a string
 * literal, or anything else that outlives l). Return 0 or -ENOMEM. */
int attrs_add_str(struct attr_list *l, const char *key, const char *val);
int attrs_add_strn(struct attr_list *l, const char *key, const char *val, size_t n);
int attrs_add_int(struct attr_list *l, const char *key, int64_t val);
/* A string value stays valid until its attribute is replaced or removed,
 * or another string is stored in the list (which may move the arena). */
const struct attr *attrs_get(const struct attr_list *l, const char *key);
void attrs_remove(struct attr_list *l, const char *key);
/* Appends src's attributes to dst (replacing those dst has). Keys src does
 * not own are shared, not copied. */
int attrs_copy(struct attr_list *dst, const struct attr_list *src);
void attrs_free(struct attr_list *l);

/* The process that produced spans (OpenTelemetry Resource). Shared by the
 * spans of one process, reference counted. */
struct resource {
	int refs;
	uint32_t pid;
	struct attr_list attrs; /* service.name, process.pid, ... */
	char *json;		/* the JSON sink's rendering of attrs, built once (owned) */
	size_t json_len;
};

struct resource *resource_get(struct resource *r);
void resource_put(struct resource *r);

enum span_kind {
	SPAN_KIND_INTERNAL = 1,
	SPAN_KIND_SERVER = 2,
	SPAN_KIND_CLIENT = 3,
	SPAN_KIND_PRODUCER = 4,
	SPAN_KIND_CONSUMER = 5,
}; /* values as in OTLP's Span.SpanKind */

enum span_status { SPAN_STATUS_UNSET = 0, SPAN_STATUS_OK = 1, SPAN_STATUS_ERROR = 2 };

struct span {
	uint8_t trace_id[16];
	uint8_t span_id[8];
	uint8_t parent_span_id[8]; /* all zero: root span */
	uint8_t trace_flags;       /* W3C flags, bit 0 = sampled */
	char *trace_state;         /* owned, W3C tracestate or NULL */
	char *name;                /* owned */
	enum span_kind kind;
	uint64_t start_ns, end_ns; /* unix epoch nanoseconds */
	enum span_status status;
	char *status_message; /* owned or NULL */
	struct attr_list attrs;
	struct resource *resource; /* counted reference */
};

struct span *span_new(void);
struct span *span_clone(const struct span *s);
void span_free(struct span *s);
bool span_has_parent(const struct span *s);
const char *span_kind_name(enum span_kind k);     /* "SERVER", ... */
const char *span_status_name(enum span_status s); /* "UNSET", ... */
/* Lowercase hex; out must hold 2*n+1 bytes. */
void hex_encode(const uint8_t *in, size_t n, char *out);

#endif
