/* --output json: one span per line on stdout, for scripts and tests.
 *
 * Written directly into stdout's buffer rather than through a JSON object
 * library: this runs once per span on the agent's hot path, and building
 * then serialising an object tree (an allocation per value) cost more than
 * parsing the exchange itself. The output is flat (strings, integers,
 * booleans, doubles, two nested objects), so a writer with RFC 8259 string
 * escaping is all it needs; every end-to-end test parses it. A resource's
 * JSON is built once per process and reused. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "sinks.h"

/* A JSON string: quotes, backslash and control characters escaped; other
 * bytes (UTF-8) pass through. */
static void put_str(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : ""), *run = p;
	fputc('"', f);
	for (; *p; p++) {
		unsigned char c = *p;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		fwrite(run, 1, p - run, f);
		run = p + 1;
		switch (c) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			fputs("\\u00", f);
			fputc(hex[c >> 4], f);
			fputc(hex[c & 15], f);
		}
	}
	fwrite(run, 1, p - run, f);
	fputc('"', f);
}

static void put_attrs(FILE *f, const struct attr_list *l, bool skip_internal)
{
	bool first = true;
	fputc('{', f);
	for (size_t i = 0; i < l->len; i++) {
		const struct attr *a = &l->items[i];
		if (skip_internal && strncmp(a->key, "weft.", 5) == 0)
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		put_str(f, a->key);
		fputc(':', f);
		switch (a->type) {
		case ATTR_STR: put_str(f, a->str); break;
		case ATTR_INT: fprintf(f, "%lld", (long long)a->i); break;
		case ATTR_BOOL: fputs(a->b ? "true" : "false", f); break;
		case ATTR_DOUBLE:
			if (isfinite(a->d))
				fprintf(f, "%.17g", a->d);
			else
				fputs("null", f); /* JSON has no NaN or infinity */
			break;
		}
	}
	fputc('}', f);
}

/* The resource's JSON object, built on first use and kept with it (a
 * resource's attributes are complete before its first span). */
static const char *resource_json(struct resource *r)
{
	if (r->json)
		return r->json;
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);
	if (!m)
		return NULL;
	put_attrs(m, &r->attrs, true);
	if (fclose(m) != 0) {
		free(buf);
		return NULL;
	}
	r->json = buf;
	return buf;
}

static void json_emit(struct span_sink *sink, const struct span *s)
{
	char trace[33], span[17], parent[17];
	FILE *f = stdout;
	hex_encode(s->trace_id, 16, trace);
	hex_encode(s->span_id, 8, span);
	if (span_has_parent(s))
		hex_encode(s->parent_span_id, 8, parent);
	else
		parent[0] = '\0';

	fprintf(f, "{\"trace_id\":\"%s\",\"span_id\":\"%s\",\"parent_span_id\":\"%s\",\"name\":", trace, span, parent);
	put_str(f, s->name);
	fprintf(f, ",\"kind\":\"%s\",\"start_ns\":%llu,\"end_ns\":%llu,\"status\":\"%s\"", span_kind_name(s->kind),
		(unsigned long long)s->start_ns, (unsigned long long)s->end_ns, span_status_name(s->status));
	if (s->status_message) {
		fputs(",\"status_message\":", f);
		put_str(f, s->status_message);
	}
	if (s->trace_state) {
		fputs(",\"trace_state\":", f);
		put_str(f, s->trace_state);
	}
	fputs(",\"attributes\":", f);
	put_attrs(f, &s->attrs, false);
	fputs(",\"resource\":", f);
	const char *rj = s->resource ? resource_json(s->resource) : NULL;
	if (rj)
		fputs(rj, f);
	else if (s->resource)
		put_attrs(f, &s->resource->attrs, true);
	else
		fputs("{}", f);
	fputs("}\n", f);
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
