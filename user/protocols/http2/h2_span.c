/* A finished HTTP/2 stream as a span, with the OpenTelemetry semantic
 * conventions: gRPC (rpc.*) when the content-type is application/grpc,
 * else the HTTP ones, as HTTP/1 exchanges get (http1/http_span.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "exchange.h"
#include "h2_span.h"
#include "http_span.h"
#include "route.h"
#include "sampler.h"
#include "tls_attrs.h"

/* Span and trace ids: xorshift64* seeded from the kernel's random pool. */
static uint64_t rng_next(void)
{
	static uint64_t x;
	while (!x && getrandom(&x, sizeof(x), 0) != sizeof(x))
		;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	return x * 0x2545F4914F6CDD1Dull;
}

static void random_id(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i += 8) {
		uint64_t r = rng_next();
		memcpy(p + i, &r, n - i < 8 ? n - i : 8);
	}
	p[0] |= 1; /* an all-zero id is invalid */
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static bool hex_decode(const char *s, uint8_t *out, size_t n)
{
	bool nonzero = false;
	for (size_t i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		out[i] = (uint8_t)(hi << 4 | lo);
		nonzero |= out[i] != 0;
	}
	return nonzero;
}

/* W3C traceparent, version 00 (and later versions' first fields). */
static bool traceparent_parse(const char *tp, uint8_t trace_id[16], uint8_t span_id[8], uint8_t *flags)
{
	if (strlen(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' || (tp[0] == 'f' && tp[1] == 'f'))
		return false;
	uint8_t f;
	if (!hex_decode(tp + 3, trace_id, 16) || !hex_decode(tp + 36, span_id, 8))
		return false;
	if (hexval(tp[53]) < 0 || hexval(tp[54]) < 0)
		return false;
	f = (uint8_t)(hexval(tp[53]) << 4 | hexval(tp[54]));
	*flags = f;
	return true;
}

bool grpc_status_is_error(int code, bool client)
{
	if (client)
		return code != 0;
	switch (code) {
	case 2:	 /* UNKNOWN */
	case 4:	 /* DEADLINE_EXCEEDED */
	case 12: /* UNIMPLEMENTED */
	case 13: /* INTERNAL */
	case 14: /* UNAVAILABLE */
	case 15: /* DATA_LOSS */
		return true;
	}
	return false;
}

static void set_ids(const struct h2_conn_info *ci, const struct h2_stream *st, const struct protocol_ctx *ctx,
		    struct span *s)
{
	uint8_t tid[16], sid[8], flags = 1;
	random_id(s->span_id, 8);
	if (ci->client && st->injected) {
		/* The ids sk_msg put on the wire: the server's span is our child. */
		memcpy(s->trace_id, st->inj_trace_id, 16);
		memcpy(s->span_id, st->inj_span_id, 8);
		memcpy(s->parent_span_id, st->inj_parent, 8);
		s->trace_flags = st->inj_flags;
		return;
	}
	if (st->traceparent[0] && traceparent_parse(st->traceparent, tid, sid, &flags)) {
		/* Server: the caller's context. Client: the app's own SDK's. */
		memcpy(s->trace_id, tid, 16);
		memcpy(s->parent_span_id, sid, 8);
		s->trace_flags = sampler_flags(ctx->sampler_word, tid, flags, true);
		if (st->tracestate[0])
			s->trace_state = strdup(st->tracestate);
		return;
	}
	if (ci->client && st->has_parent) {
		/* The request the calling goroutine serves (a Go uprobe), when
		 * the app sent no traceparent of its own. */
		memcpy(s->trace_id, st->parent.trace_id, 16);
		memcpy(s->parent_span_id, st->parent.span_id, 8);
		s->trace_flags = st->parent.trace_flags;
		return;
	}
	random_id(s->trace_id, 16);
	s->trace_flags = sampler_flags(ctx->sampler_word, s->trace_id, 1, false);
}

/* host[:port] of an :authority; port 0 when absent. */
static void split_authority(const char *a, char *host, size_t hostlen, long *port)
{
	const char *colon = strrchr(a, ':');
	const char *end = a + strlen(a);
	*port = 0;
	if (a[0] == '[') {
		const char *close = strchr(a, ']');
		if (close) {
			snprintf(host, hostlen, "%.*s", (int)(close - a - 1), a + 1);
			if (close[1] == ':')
				*port = strtol(close + 2, NULL, 10);
			return;
		}
	}
	if (colon && strchr(a, ':') == colon) {
		*port = strtol(colon + 1, NULL, 10);
		end = colon;
	}
	snprintf(host, hostlen, "%.*s", (int)(end - a), a);
}

static void set_addresses(const struct h2_conn_info *ci, const struct h2_stream *st, struct attr_list *a)
{
	char host[256] = "";
	long port = 0;
	if (st->authority[0])
		split_authority(st->authority, host, sizeof(host), &port);
	if (ci->addr.family == AF_UNIX) {
		const char *path = ci->addr.unix_path[0] ? ci->addr.unix_path : "unix";
		attrs_add_str(a, "network.transport", "unix");
		size_t plen = strnlen(path, WEFT_UNIX_PATH_MAX); /* a path of the field's length has no NUL */
		attrs_add_strn(a, "network.peer.address", path, plen);
		attrs_add_strn(a, "server.address", host[0] ? host : path, host[0] ? strlen(host) : plen);
		if (port)
			attrs_add_int(a, "server.port", port);
		return;
	}
	char local[INET6_ADDRSTRLEN] = "", remote[INET6_ADDRSTRLEN];
	conn_addr_format(ci->addr.laddr, ci->addr.family, local, sizeof(local));
	conn_addr_format(ci->addr.raddr, ci->addr.family, remote, sizeof(remote));
	attrs_add_str(a, "network.peer.address", remote);
	attrs_add_int(a, "network.peer.port", ci->addr.rport);
	if (ci->client) {
		attrs_add_str(a, "server.address", host[0] ? host : remote);
		attrs_add_int(a, "server.port", port ? port : ci->addr.rport);
	} else {
		attrs_add_str(a, "server.address", host[0] ? host : local);
		attrs_add_int(a, "server.port", port ? port : ci->addr.lport);
		attrs_add_str(a, "client.address", remote);
		attrs_add_int(a, "client.port", ci->addr.rport);
	}
}

static int grpc_span(const struct h2_conn_info *ci, const struct h2_stream *st, struct span *s)
{
	struct attr_list *a = &s->attrs;
	const char *full = st->path[0] == '/' ? st->path + 1 : st->path;
	const char *slash = strchr(full, '/');
	s->name = strdup(full[0] ? full : "grpc");
	attrs_add_str(a, "rpc.system", "grpc");
	if (slash) {
		attrs_add_strn(a, "rpc.service", full, (size_t)(slash - full));
		attrs_add_str(a, "rpc.method", slash + 1);
	}
	int code = st->grpc_status;
	if (code < 0 && st->reset) {
		/* A stream reset without a status: CANCELLED, or DEADLINE_EXCEEDED
		 * when the client gave up once its grpc-timeout had passed (what
		 * the client app is told; grpc-go resets with CANCEL then). The
		 * header says what was left when it was made, a little before the
		 * HEADERS went out: 1% of slack. */
		uint64_t took = st->end_ns > st->start_ns ? st->end_ns - st->start_ns : 0;
		bool deadline = st->reset_by_client && st->grpc_timeout_ns &&
				took >= st->grpc_timeout_ns - st->grpc_timeout_ns / 100;
		code = deadline ? 4 : 1;
	}
	if (code >= 0)
		attrs_add_int(a, "rpc.grpc.status_code", code);
	if (code < 0 && !st->reset && st->status && st->status != 200) {
		s->status = SPAN_STATUS_ERROR; /* an HTTP error instead of a gRPC status */
		char t[16];
		snprintf(t, sizeof(t), "%d", st->status);
		attrs_add_str(a, "error.type", t);
	} else if (code >= 0 && grpc_status_is_error(code, ci->client)) {
		s->status = SPAN_STATUS_ERROR;
		char t[16];
		snprintf(t, sizeof(t), "%d", code);
		attrs_add_str(a, "error.type", t);
		if (st->grpc_message[0])
			s->status_message = strdup(st->grpc_message);
	}
	return 0;
}

static int http_span(const struct h2_conn_info *ci, const struct h2_stream *st, struct span *s)
{
	struct attr_list *a = &s->attrs;
	const char *path = st->path[0] ? st->path : "/";
	size_t plen = strcspn(path, "?#");
	char route[256], name[300];
	route_from_path(path, plen, route, sizeof(route));
	bool known = http_method_is_known(st->method, strlen(st->method));
	if (known)
		snprintf(name, sizeof(name), "%s %s", st->method, route);
	else
		snprintf(name, sizeof(name), "HTTP");
	s->name = strdup(name);
	attrs_add_str(a, "http.request.method", known ? st->method : "_OTHER");
	if (!known && st->method[0])
		attrs_add_str(a, "http.request.method_original", st->method);
	attrs_add_strn(a, "url.path", path, plen);
	const char *scheme = st->scheme[0] ? st->scheme : "http";
	if (!ci->client && path[plen] == '?')
		http_set_url_query(a, path + plen + 1, strcspn(path + plen + 1, "#"));
	attrs_add_str(a, "url.scheme", scheme);
	if (ci->client) {
		/* url.full: scheme://authority/path?query, the authority as sent
		 * (else the peer's address and port). */
		char full[2 * H2_PATH_MAX + 320], remote[INET6_ADDRSTRLEN] = "";
		/* The query redacted as url.query is (http_redact_query). */
		char target[2 * H2_PATH_MAX + 16];
		size_t tl = plen < H2_PATH_MAX ? plen : H2_PATH_MAX;
		memcpy(target, path, tl);
		target[tl] = 0;
		if (path[plen] == '?') {
			target[tl++] = '?';
			http_redact_query(path + plen + 1, strcspn(path + plen + 1, "#"), target + tl, sizeof(target) - tl);
		}
		if (!st->authority[0] && ci->addr.family != AF_UNIX)
			conn_addr_format(ci->addr.raddr, ci->addr.family, remote, sizeof(remote));
		if (st->authority[0])
			snprintf(full, sizeof(full), "%s://%s%s", scheme, st->authority, path[0] == '/' ? target : "/");
		else if (strchr(remote, ':'))
			snprintf(full, sizeof(full), "%s://[%s]:%u%s", scheme, remote, ci->addr.rport, target);
		else
			snprintf(full, sizeof(full), "%s://%s:%u%s", scheme, remote[0] ? remote : "localhost",
				 ci->addr.rport, target);
		attrs_add_str(a, "url.full", full);
	}
	if (st->status > 0) {
		attrs_add_int(a, "http.response.status_code", st->status);
		if (st->status >= 500 || (ci->client && st->status >= 400)) {
			char t[16];
			snprintf(t, sizeof(t), "%d", st->status);
			s->status = SPAN_STATUS_ERROR;
			attrs_add_str(a, "error.type", t);
		}
	}
	return 0;
}

int h2_span_build(const struct h2_conn_info *ci, const struct h2_stream *st, const struct protocol_ctx *ctx,
		  struct span *s)
{
	set_ids(ci, st, ctx, s);
	s->kind = ci->client ? SPAN_KIND_CLIENT : SPAN_KIND_SERVER;
	s->start_ns = st->start_ns + ctx->mono_to_real;
	s->end_ns = (st->end_ns > st->start_ns ? st->end_ns : st->start_ns) + ctx->mono_to_real;
	s->status = SPAN_STATUS_UNSET;
	bool grpc = strncmp(st->content_type, "application/grpc", 16) == 0;
	int err = grpc ? grpc_span(ci, st, s) : http_span(ci, st, s);
	if (err)
		return err;
	struct attr_list *a = &s->attrs;
	attrs_add_str(a, "network.protocol.name", "http");
	attrs_add_str(a, "network.protocol.version", "2");
	set_addresses(ci, st, a);
	if (st->user_agent[0])
		attrs_add_str(a, "user_agent.original", st->user_agent);
	if (span_add_tls(a, ci->tls_version, ci->tls_cipher))
		return -ENOMEM;
	if (st->closed && s->status != SPAN_STATUS_ERROR) {
		/* As HTTP/1's request left unanswered by a closed connection. */
		s->status = SPAN_STATUS_ERROR;
		attrs_add_str(a, "error.type", "no_response");
		free(s->status_message);
		s->status_message = strdup("connection closed before the response ended");
	}
	if (st->reset) {
		if (s->status != SPAN_STATUS_ERROR) {
			s->status = SPAN_STATUS_ERROR;
			attrs_add_str(a, "error.type", "stream_reset");
		}
		attrs_add_int(a, "http2.rst_stream.error_code", st->rst_code);
	}
	return s->name ? 0 : -ENOMEM;
}
