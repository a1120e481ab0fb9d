#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "log.h"
#include "prometheus.h"

struct prometheus {
	struct MHD_Daemon *d;
	const struct metrics *m;
	int port;
};

static void put_name(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == ':'
			      ? *s
			      : '_',
		      f);
}

/* The metric's Prometheus base name (without _total, _bucket...). */
static void put_metric_name(FILE *f, const struct instrument *in)
{
	put_name(f, in->name);
	if (strcmp(in->unit, "s") == 0)
		fputs("_seconds", f);
}

static void put_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

/* {k="v",...[,le="x"]} */
static void put_labels(FILE *f, const struct instrument *in, const struct series *s, const char *le)
{
	bool first = true;
	fputc('{', f);
	if (s->overflow) {
		fputs("otel_metric_overflow=\"true\"", f);
		first = false;
	}
	for (size_t k = 0; k < in->n_keys; k++) {
		if (!s->values[k])
			continue;
		if (!first)
			fputc(',', f);
		first = false;
		put_name(f, in->keys[k]);
		fputs("=\"", f);
		put_value(f, s->values[k]);
		fputc('"', f);
	}
	if (le)
		fprintf(f, "%sle=\"%s\"", first ? "" : ",", le);
	fputc('}', f);
}

static void put_exemplar(FILE *f, const struct series *s, size_t b)
{
	struct exemplar e;
	char tid[33], sid[17];
	if (!series_exemplar(s, b, &e))
		return;
	hex_encode(e.trace_id, 16, tid);
	hex_encode(e.span_id, 8, sid);
	fprintf(f, " # {trace_id=\"%s\",span_id=\"%s\"} %.9g %" PRIu64 ".%03" PRIu64, tid, sid, e.value_ns / 1e9,
		e.time_ns / 1000000000, e.time_ns / 1000000 % 1000);
}

static void render_instrument(FILE *f, const struct instrument *in, bool om)
{
	size_t n = instrument_nseries(in);
	if (!n)
		return;
	bool counter = in->kind == INSTR_COUNTER;
	fputs("# HELP ", f);
	put_metric_name(f, in);
	fprintf(f, "%s %s\n# TYPE ", counter && !om ? "_total" : "", in->description);
	put_metric_name(f, in);
	fprintf(f, "%s %s\n", counter && !om ? "_total" : "", counter ? "counter" : "histogram");
	for (size_t i = 0; i < n; i++) {
		const struct series *s = instrument_get(in, i);
		uint64_t buckets[INSTR_MAX_BOUNDS + 1], cum = 0;
		double sum;
		uint64_t total = series_snapshot(in, s, buckets, &sum);
		if (counter) {
			put_metric_name(f, in);
			fputs("_total", f);
			put_labels(f, in, s, NULL);
			fprintf(f, " %" PRIu64 "\n", total);
			continue;
		}
		for (size_t b = 0; b <= in->n_bounds; b++) {
			char le[32];
			cum += buckets[b];
			if (b < in->n_bounds)
				snprintf(le, sizeof(le), "%g", in->bounds[b]);
			else
				snprintf(le, sizeof(le), "+Inf");
			put_metric_name(f, in);
			fputs("_bucket", f);
			put_labels(f, in, s, le);
			fprintf(f, " %" PRIu64, cum);
			if (om)
				put_exemplar(f, s, b);
			fputc('\n', f);
		}
		put_metric_name(f, in);
		fputs("_sum", f);
		put_labels(f, in, s, NULL);
		fprintf(f, " %.9g\n", sum);
		put_metric_name(f, in);
		fputs("_count", f);
		put_labels(f, in, s, NULL);
		fprintf(f, " %" PRIu64 "\n", total);
	}
}

int prometheus_render(const struct metrics *m, bool openmetrics, char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	FILE *f = open_memstream(out, len);
	if (!f)
		return -errno;
	for (int i = 0; i < METRIC_COUNT; i++)
		render_instrument(f, &m->in[i], openmetrics);
	if (openmetrics)
		fputs("# EOF\n", f);
	if (fclose(f)) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

static enum MHD_Result queue_text(struct MHD_Connection *c, unsigned int code, const char *text)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	struct prometheus *p = cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return queue_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET /metrics\n");
	if (strcmp(url, "/metrics"))
		return queue_text(c, MHD_HTTP_NOT_FOUND, "weft serves /metrics\n");
	const char *accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
	bool om = accept && strstr(accept, "application/openmetrics-text");
	char *body;
	size_t len;
	if (prometheus_render(p->m, om, &body, &len))
		return queue_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
				   : "text/plain; version=0.0.4; charset=utf-8");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static int resolve(const char *listen, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	if (!colon || !colon[1])
		return -EINVAL;
	size_t hl = colon - listen;
	const char *h = listen;
	if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end || port < 0 || port > 65535)
		return -EINVAL;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
	if (getaddrinfo(hl ? host : NULL, colon + 1, &hints, &res) || !res)
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sl = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int prometheus_check_listen(const char *listen)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	return resolve(listen, &ss, &sl);
}

int prometheus_start(const char *listen, const struct metrics *m, struct prometheus **out)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int err = resolve(listen, &ss, &sl);
	if (err) {
		log_error("--prometheus: '%s' is not ADDR:PORT (e.g. 127.0.0.1:9400, :9400, [::1]:9400)", listen);
		return err;
	}
	struct prometheus *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->m = m;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	p->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, p, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)32, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned int)10, MHD_OPTION_END);
	if (!p->d) {
		err = -EADDRNOTAVAIL;
		log_error("--prometheus: cannot serve on %s (address in use or not local?)", listen);
		free(p);
		return err;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(p->d, MHD_DAEMON_INFO_BIND_PORT);
	p->port = info ? info->port : 0;
	log_info("prometheus: serving /metrics on %s (port %d)", listen, p->port);
	*out = p;
	return 0;
}

int prometheus_port(const struct prometheus *p)
{
	return p ? p->port : 0;
}

void prometheus_stop(struct prometheus *p)
{
	if (!p)
		return;
	MHD_stop_daemon(p->d);
	free(p);
}
