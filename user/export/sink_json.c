/* --output json: one span per line on stdout, for scripts and tests.
 *
 * Formatted by hand rather than through a JSON object library or stdio:
 * this runs once per span on the agent's hot path, and building then
 * serialising an object tree (an allocation per value) cost more than
 * parsing the exchange itself, and printf's format parsing about as much
 * again. The output is flat (strings, integers, booleans, doubles, two
 * nested objects), so json_buf.h's writers are all it needs: each line is
 * built in a reused buffer and handed to stdout in one fwrite. Every
 * end-to-end test parses it. A resource's JSON is built once per process
 * and reused. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json_buf.h"
#include "proc.h"
#include "sinks.h"

struct json_sink {
	struct span_sink base;
	struct json_buf line; /* reused for every span: no allocation per line */
};

/* stdout's buffer. glibc sizes a buffer it allocates itself by the file's
 * block size whatever setvbuf asked (4 KiB for a pipe: a write() every
 * four spans or so, each waking the reader), so weft gives its own. */
#define JSON_OUT_BUF (256 << 10)
static char json_out_buf[JSON_OUT_BUF]; /* stdout keeps it until exit */
/* A pipe on stdout is grown to hold several of those writes (best effort:
 * fs.pipe-max-size bounds it), so a reader a little behind does not make
 * every write wait. */
#define JSON_PIPE_SIZE (1 << 20)

static void put_attrs(struct json_buf *b, const struct attr_list *l, bool skip_internal)
{
	bool first = true;
	json_buf_char(b, '{');
	for (size_t i = 0; i < l->len; i++) {
		const struct attr *a = &l->items[i];
		if (skip_internal && strncmp(a->key, "weft.", 5) == 0)
			continue;
		if (!first)
			json_buf_char(b, ',');
		first = false;
		json_buf_str(b, a->key);
		json_buf_char(b, ':');
		switch (a->type) {
		case ATTR_STR: json_buf_str(b, a->str); break;
		case ATTR_INT: json_buf_i64(b, a->i); break;
		case ATTR_BOOL:
			if (a->b)
				json_buf_lit(b, "true");
			else
				json_buf_lit(b, "false");
			break;
		case ATTR_DOUBLE: json_buf_double(b, a->d); break;
		}
	}
	json_buf_char(b, '}');
}

/* The resource's JSON object, built on first use and kept with it (a
 * resource's attributes are complete before its first span). */
static const char *resource_json(struct resource *r)
{
	if (r->json)
		return r->json;
	struct json_buf b = { 0 };
	put_attrs(&b, &r->attrs, true);
	json_buf_char(&b, '\0');
	if (b.failed) {
		json_buf_free(&b);
		return NULL;
	}
	r->json = b.p;
	r->json_len = b.len - 1;
	return r->json;
}

static void put_quoted_hex(struct json_buf *b, const uint8_t *in, size_t n)
{
	json_buf_char(b, '"');
	json_buf_hex(b, in, n);
	json_buf_char(b, '"');
}

void json_span_format(struct json_buf *b, const struct span *s)
{
	json_buf_lit(b, "{\"trace_id\":");
	put_quoted_hex(b, s->trace_id, 16);
	json_buf_lit(b, ",\"span_id\":");
	put_quoted_hex(b, s->span_id, 8);
	json_buf_lit(b, ",\"parent_span_id\":");
	if (span_has_parent(s))
		put_quoted_hex(b, s->parent_span_id, 8);
	else
		json_buf_lit(b, "\"\"");
	json_buf_lit(b, ",\"name\":");
	json_buf_str(b, s->name);
	json_buf_lit(b, ",\"kind\":\"");
	const char *kind = span_kind_name(s->kind), *status = span_status_name(s->status);
	json_buf_put(b, kind, strlen(kind));
	json_buf_lit(b, "\",\"start_ns\":");
	json_buf_u64(b, s->start_ns);
	json_buf_lit(b, ",\"end_ns\":");
	json_buf_u64(b, s->end_ns);
	json_buf_lit(b, ",\"status\":\"");
	json_buf_put(b, status, strlen(status));
	json_buf_char(b, '"');
	if (s->status_message) {
		json_buf_lit(b, ",\"status_message\":");
		json_buf_str(b, s->status_message);
	}
	if (s->trace_state) {
		json_buf_lit(b, ",\"trace_state\":");
		json_buf_str(b, s->trace_state);
	}
	json_buf_lit(b, ",\"attributes\":");
	put_attrs(b, &s->attrs, false);
	json_buf_lit(b, ",\"resource\":");
	const char *rj = s->resource ? resource_json(s->resource) : NULL;
	if (rj)
		json_buf_put(b, rj, s->resource->json_len);
	else if (s->resource)
		put_attrs(b, &s->resource->attrs, true);
	else
		json_buf_lit(b, "{}");
	json_buf_lit(b, "}\n");
}

/* One fwrite per line into stdout's buffer. */
static void json_emit(struct span_sink *sink, const struct span *s)
{
	struct json_sink *j = (struct json_sink *)sink;
	j->line.len = 0;
	json_span_format(&j->line, s);
	if (!j->line.failed)
		fwrite(j->line.p, 1, j->line.len, stdout);
	j->line.failed = false; /* out of memory: that span is lost, try the next */
}

/* Lines are flushed every tick (100 ms), not one write() per span. */
static void json_tick(struct span_sink *sink, uint64_t now_ns)
{
	fflush(stdout);
}

static void json_close(struct span_sink *sink)
{
	struct json_sink *j = (struct json_sink *)sink;
	fflush(stdout);
	json_buf_free(&j->line);
	free(j);
}

struct span_sink *json_sink_create(void)
{
	struct json_sink *j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->base.name = "json";
	setvbuf(stdout, json_out_buf, _IOFBF, sizeof(json_out_buf));
	struct stat st;
	if (fstat(fileno(stdout), &st) == 0 && S_ISFIFO(st.st_mode))
		(void)fcntl(fileno(stdout), F_SETPIPE_SZ, JSON_PIPE_SIZE);
	j->base.emit = json_emit;
	j->base.tick = json_tick;
	j->base.close = json_close;
	return &j->base;
}
