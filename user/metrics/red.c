/* RED metrics: one histogram measurement per HTTP server, HTTP client, RPC
 * server, RPC client and database client span, with the semantic conventions' low-cardinality
 * attributes only (http.route, never the path). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "metrics.h"

static const char *str_attr(const struct span *s, const char *key)
{
	const struct attr *a = attrs_get(&s->attrs, key);
	return a && a->type == ATTR_STR ? a->str : NULL;
}

static const char *int_attr(const struct span *s, const char *key, char *buf, size_t len)
{
	const struct attr *a = attrs_get(&s->attrs, key);
	if (!a || a->type != ATTR_INT)
		return NULL;
	snprintf(buf, len, "%" PRId64, a->i);
	return buf;
}

const char *span_service_name(const struct span *s)
{
	const struct attr *a = s->resource ? attrs_get(&s->resource->attrs, "service.name") : NULL;
	return a && a->type == ATTR_STR ? a->str : "unknown_service";
}

void red_record(struct metrics *m, const struct span *s)
{
	char status[24], port[24], route[256];
	const char *v[INSTR_MAX_LABELS] = { span_service_name(s) };
	uint64_t dur = s->end_ns > s->start_ns ? s->end_ns - s->start_ns : 0;
	bool sampled = s->trace_flags & 1;
	const uint8_t *tid = sampled ? s->trace_id : NULL, *sid = sampled ? s->span_id : NULL;
	struct instrument *in;

	if (str_attr(s, "db.system.name")) {
		if (s->kind != SPAN_KIND_CLIENT)
			return;
		in = &m->in[METRIC_DB_CLIENT];
		v[1] = str_attr(s, "db.system.name");
		v[2] = str_attr(s, "db.operation.name");
		v[3] = str_attr(s, "server.address");
		v[4] = int_attr(s, "server.port", port, sizeof(port));
		v[5] = str_attr(s, "error.type");
	} else if (str_attr(s, "rpc.system")) {
		if (s->kind != SPAN_KIND_SERVER && s->kind != SPAN_KIND_CLIENT)
			return;
		in = &m->in[s->kind == SPAN_KIND_SERVER ? METRIC_RPC_SERVER : METRIC_RPC_CLIENT];
		v[1] = str_attr(s, "rpc.system");
		v[2] = str_attr(s, "rpc.service");
		v[3] = str_attr(s, "rpc.method");
		v[4] = int_attr(s, "rpc.grpc.status_code", status, sizeof(status));
		if (s->kind == SPAN_KIND_CLIENT) {
			v[5] = str_attr(s, "server.address");
			v[6] = int_attr(s, "server.port", port, sizeof(port));
		}
	} else if (str_attr(s, "http.request.method")) {
		v[1] = str_attr(s, "http.request.method");
		v[2] = int_attr(s, "http.response.status_code", status, sizeof(status));
		if (s->kind == SPAN_KIND_SERVER) {
			in = &m->in[METRIC_HTTP_SERVER];
			/* The span is named "METHOD route" (route.c: low cardinality). */
			const char *sp = s->name ? strchr(s->name, ' ') : NULL;
			if (sp && sp[1] == '/') {
				snprintf(route, sizeof(route), "%s", sp + 1);
				v[3] = route;
			}
			v[4] = str_attr(s, "error.type");
		} else if (s->kind == SPAN_KIND_CLIENT) {
			in = &m->in[METRIC_HTTP_CLIENT];
			v[3] = str_attr(s, "server.address");
			v[4] = int_attr(s, "server.port", port, sizeof(port));
			v[5] = str_attr(s, "error.type");
		} else {
			return;
		}
	} else {
		return;
	}
	instrument_record(in, v, dur, tid, sid, s->end_ns);
}
