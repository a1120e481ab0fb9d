/* --output console: each trace drawn as a waterfall once it is quiet for
 * CONSOLE_QUIET_NS (its spans arrive from several processes and in any
 * order). Fits a 100-column terminal. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "sinks.h"
#include "text_escape.h"

#define CONSOLE_QUIET_NS 1000000000ull
#define CONSOLE_MAX_TRACES 1024
#define CONSOLE_MAX_SPANS 256

static uint64_t omitted; /* spans left out of a waterfall (weft.dropped) */
#define BAR_CELLS 28
#define LABEL_W 18
#define NAME_W 32
#define MAX_DEPTH 12

struct pending_trace {
	uint8_t trace_id[16];
	struct span *spans[CONSOLE_MAX_SPANS];
	size_t n;
	uint64_t last_arrival;
	size_t dropped;
};

struct console_sink {
	struct span_sink base;
	FILE *out;
	struct pending_trace *traces[CONSOLE_MAX_TRACES];
	size_t n;
};

static const char *service_of(const struct span *s)
{
	const struct attr *a = s->resource ? attrs_get(&s->resource->attrs, "service.name") : NULL;
	return a && a->type == ATTR_STR ? a->str : "?";
}

/* Copies at most w display columns of src (ASCII assumed), "~" when cut.
 * src is already escaped (text_escape_terminal): cutting it cannot make a
 * control sequence. */
static void fit(char *dst, const char *src, size_t w)
{
	size_t n = strlen(src);
	if (n <= w) {
		memcpy(dst, src, n + 1);
		return;
	}
	memcpy(dst, src, w - 1);
	dst[w - 1] = '~';
	dst[w] = '\0';
}

static void draw_span(struct console_sink *c, struct pending_trace *t, const struct span *s, int depth,
		      uint64_t t0, uint64_t span_total)
{
	char label[128], lab[LABEL_W + 1], name[NAME_W + 1], bar[BAR_CELLS * 3 + 1], safe[64];
	/* Names come from the traced processes: never raw to the terminal. */
	const char *svc = service_of(s);
	text_escape_terminal(svc, strlen(svc), safe, sizeof(safe));
	snprintf(label, sizeof(label), "%*s%s%s", depth > 0 ? (depth - 1) * 2 : 0, "", depth ? "`-" : "", safe);
	fit(lab, label, LABEL_W);

	char kind_name[64];
	text_escape_terminal(s->name ? s->name : "", s->name ? strlen(s->name) : 0, safe, sizeof(safe));
	snprintf(kind_name, sizeof(kind_name), "%s %s", span_kind_name(s->kind), safe);
	fit(name, kind_name, NAME_W);

	const struct attr *st = attrs_get(&s->attrs, "http.response.status_code");
	char status[8] = "";
	if (st && st->type == ATTR_INT)
		snprintf(status, sizeof(status), "%lld", (long long)st->i);
	else if (s->status == SPAN_STATUS_ERROR)
		snprintf(status, sizeof(status), "ERR");

	double ms = (s->end_ns - s->start_ns) / 1e6;
	size_t from = span_total ? (size_t)((s->start_ns - t0) * BAR_CELLS / span_total) : 0;
	size_t to = span_total ? (size_t)((s->end_ns - t0) * BAR_CELLS / span_total) : BAR_CELLS;
	if (from >= BAR_CELLS)
		from = BAR_CELLS - 1;
	if (to <= from)
		to = from + 1;
	if (to > BAR_CELLS)
		to = BAR_CELLS;
	size_t p = 0;
	for (size_t i = 0; i < BAR_CELLS; i++) {
		const char *cell = (i >= from && i < to) ? (s->status == SPAN_STATUS_ERROR ? "▓" : "█") : " ";
		size_t l = strlen(cell);
		memcpy(bar + p, cell, l);
		p += l;
	}
	bar[p] = '\0';
	fprintf(c->out, " %-*s %-*s %3s %9.2fms |%s|\n", LABEL_W, lab, NAME_W, name, status, ms, bar);

	if (depth >= MAX_DEPTH)
		return;
	/* Children in start order (the array is sorted by start). */
	for (size_t i = 0; i < t->n; i++)
		if (t->spans[i] != s && memcmp(t->spans[i]->parent_span_id, s->span_id, 8) == 0)
			draw_span(c, t, t->spans[i], depth + 1, t0, span_total);
}

static int by_start(const void *a, const void *b)
{
	const struct span *x = *(const struct span *const *)a, *y = *(const struct span *const *)b;
	return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

static bool has_parent_in(const struct pending_trace *t, const struct span *s)
{
	if (!span_has_parent(s))
		return false;
	for (size_t i = 0; i < t->n; i++)
		if (memcmp(t->spans[i]->span_id, s->parent_span_id, 8) == 0)
			return true;
	return false;
}

static void draw_trace(struct console_sink *c, struct pending_trace *t)
{
	qsort(t->spans, t->n, sizeof(t->spans[0]), by_start);
	uint64_t t0 = UINT64_MAX, t1 = 0;
	for (size_t i = 0; i < t->n; i++) {
		if (t->spans[i]->start_ns < t0)
			t0 = t->spans[i]->start_ns;
		if (t->spans[i]->end_ns > t1)
			t1 = t->spans[i]->end_ns;
	}
	char id[33];
	hex_encode(t->trace_id, 16, id);
	fprintf(c->out, "trace %s  %zu span%s  %.2f ms%s\n", id, t->n, t->n == 1 ? "" : "s", (t1 - t0) / 1e6,
		t->dropped ? "  (spans omitted)" : "");
	for (size_t i = 0; i < t->n; i++)
		if (!has_parent_in(t, t->spans[i]))
			draw_span(c, t, t->spans[i], 0, t0, t1 - t0);
	fputc('\n', c->out);
	fflush(c->out);
}

static void release_trace(struct pending_trace *t)
{
	for (size_t i = 0; i < t->n; i++)
		span_free(t->spans[i]);
	free(t);
}

static void flush_index(struct console_sink *c, size_t i)
{
	draw_trace(c, c->traces[i]);
	release_trace(c->traces[i]);
	c->traces[i] = c->traces[--c->n];
}

static void console_emit(struct span_sink *sink, const struct span *s)
{
	struct console_sink *c = (struct console_sink *)sink;
	struct pending_trace *t = NULL;
	for (size_t i = 0; i < c->n; i++)
		if (memcmp(c->traces[i]->trace_id, s->trace_id, 16) == 0)
			t = c->traces[i];
	if (!t) {
		if (c->n == CONSOLE_MAX_TRACES) {
			/* Too many open traces: draw the oldest now. */
			size_t oldest = 0;
			for (size_t i = 1; i < c->n; i++)
				if (c->traces[i]->last_arrival < c->traces[oldest]->last_arrival)
					oldest = i;
			flush_index(c, oldest);
		}
		t = calloc(1, sizeof(*t));
		if (!t)
			return;
		memcpy(t->trace_id, s->trace_id, 16);
		c->traces[c->n++] = t;
	}
	t->last_arrival = clock_ns(CLOCK_MONOTONIC);
	struct span *copy = t->n < CONSOLE_MAX_SPANS ? span_clone(s) : NULL;
	if (copy)
		t->spans[t->n++] = copy;
	else {
		t->dropped++;
		omitted++;
	}
}

uint64_t console_sink_omitted(void)
{
	return omitted;
}

static void console_tick(struct span_sink *sink, uint64_t now)
{
	struct console_sink *c = (struct console_sink *)sink;
	for (size_t i = 0; i < c->n;) {
		if (now - c->traces[i]->last_arrival >= CONSOLE_QUIET_NS)
			flush_index(c, i);
		else
			i++;
	}
}

static void console_close(struct span_sink *sink)
{
	struct console_sink *c = (struct console_sink *)sink;
	while (c->n)
		flush_index(c, 0);
	free(c);
}

struct span_sink *console_sink_create(FILE *out)
{
	struct console_sink *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->base.name = "console";
	c->base.emit = console_emit;
	c->base.tick = console_tick;
	c->base.close = console_close;
	c->out = out;
	return &c->base;
}
