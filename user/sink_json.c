/* --output json: one span per line on stdout, for scripts and tests. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "proc.h"
#include "sinks.h"

static json_object *attrs_to_json(const struct attr_list *l, bool skip_internal)
{
	json_object *o = json_object_new_object();
	for (size_t i = 0; i < l->len; i++) {
		const struct attr *a = &l->items[i];
		if (skip_internal && strncmp(a->key, "weft.", 5) == 0)
			continue;
		json_object *v = NULL;
		switch (a->type) {
		case ATTR_STR: v = json_object_new_string(a->str); break;
		case ATTR_INT: v = json_object_new_int64(a->i); break;
		case ATTR_BOOL: v = json_object_new_boolean(a->b); break;
		case ATTR_DOUBLE: v = json_object_new_double(a->d); break;
		}
		json_object_object_add(o, a->key, v);
	}
	return o;
}

static void json_emit(struct span_sink *sink, const struct span *s)
{
	char trace[33], span[17], parent[17];
	hex_encode(s->trace_id, 16, trace);
	hex_encode(s->span_id, 8, span);
	if (span_has_parent(s))
		hex_encode(s->parent_span_id, 8, parent);
	else
		parent[0] = '\0';

	json_object *o = json_object_new_object();
	json_object_object_add(o, "trace_id", json_object_new_string(trace));
	json_object_object_add(o, "span_id", json_object_new_string(span));
	json_object_object_add(o, "parent_span_id", json_object_new_string(parent));
	json_object_object_add(o, "name", json_object_new_string(s->name ? s->name : ""));
	json_object_object_add(o, "kind", json_object_new_string(span_kind_name(s->kind)));
	json_object_object_add(o, "start_ns", json_object_new_uint64(s->start_ns));
	json_object_object_add(o, "end_ns", json_object_new_uint64(s->end_ns));
	json_object_object_add(o, "status", json_object_new_string(span_status_name(s->status)));
	if (s->trace_state)
		json_object_object_add(o, "trace_state", json_object_new_string(s->trace_state));
	json_object_object_add(o, "attributes", attrs_to_json(&s->attrs, false));
	json_object_object_add(o, "resource",
			       s->resource ? attrs_to_json(&s->resource->attrs, true) : json_object_new_object());
	fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE), stdout);
	fputc('\n', stdout);
	json_object_put(o);
}

/* Lines are flushed every tick (100 ms), not one write() per span. */
static void json_tick(struct span_sink *sink, uint64_t now_ns)
{
	fflush(stdout);
}

static void json_close(struct span_sink *sink)
{
	fflush(stdout);
	free(sink);
}

struct span_sink *json_sink_create(void)
{
	struct span_sink *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->name = "json";
	setvbuf(stdout, NULL, _IOFBF, 1 << 16); /* whole lines in few writes */
	s->emit = json_emit;
	s->tick = json_tick;
	s->close = json_close;
	return s;
}
