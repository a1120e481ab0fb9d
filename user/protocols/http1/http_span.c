#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "exchange.h"
#include "http_parser.h"
#include "http_span.h"
#include "route.h"

/* Bounded string building without printf (this runs for every span): p
 * holds at most cap - 1 bytes and stays NUL-terminated; what does not fit
 * is cut, as snprintf would. */
struct strbuf {
	char *p;
	size_t len, cap;
};

static void sb_put(struct strbuf *b, const char *s, size_t n)
{
	if (n > b->cap - 1 - b->len)
		n = b->cap - 1 - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_puts(struct strbuf *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

static void sb_uint(struct strbuf *b, unsigned long v)
{
	char tmp[20], *o = tmp + sizeof(tmp);
	do {
		*--o = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	sb_put(b, o, tmp + sizeof(tmp) - o);
}

bool http_method_is_known(const char *p, size_t len)
{
	static const char *const known[] = { "GET", "HEAD", "POST", "PUT", "DELETE",
					     "CONNECT", "OPTIONS", "TRACE", "PATCH" };
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strlen(known[i]) == len && memcmp(known[i], p, len) == 0)
			return true;
	return false;
}

/* Host header "name:port" / "[v6]:port" into host and port (0 if absent). */
static void split_host(struct http_str h, char *host, size_t hostlen, long *port)
{
	const char *p = h.p, *end = h.p + h.len;
	const char *colon = NULL;
	struct strbuf hb = { host, 0, hostlen };
	*port = 0;
	if (h.len && p[0] == '[') {
		const char *rb = memchr(p, ']', h.len);
		if (rb) {
			sb_put(&hb, p + 1, strnlen(p + 1, rb - p - 1));
			if (rb + 1 < end && rb[1] == ':')
				colon = rb + 1;
			goto port;
		}
	}
	colon = memchr(p, ':', h.len);
	sb_put(&hb, p, strnlen(p, (colon ? colon : end) - p));
port:
	if (colon) {
		long v = 0;
		for (const char *c = colon + 1; c < end && *c >= '0' && *c <= '9' && v < 70000; c++)
			v = v * 10 + (*c - '0');
		if (v > 0 && v < 65536)
			*port = v;
	}
}

/* query (len bytes, without '?') into out (cap bytes, NUL-terminated) with
 * the values of parameters known to carry credentials replaced
 * (OpenTelemetry semantic conventions: AWS and Google signed URLs; for
 * url.query and url.full alike). Parameters that do not fit are left out
 * whole. Returns the length written. */
size_t http_redact_query(const char *query, size_t len, char *out, size_t cap)
{
	static const char *const secret[] = { "AWSAccessKeyId", "Signature", "sig", "X-Goog-Signature" };
	static const char redacted[] = "=REDACTED";
	size_t o = 0;
	const char *p = query, *end = query + len;
	if (!cap)
		return 0;
	while (p < end && o + 1 < cap) {
		const char *amp = memchr(p, '&', end - p), *pe = amp ? amp : end;
		const char *eq = memchr(p, '=', pe - p);
		bool hide = false;
		for (size_t i = 0; eq && i < sizeof(secret) / sizeof(secret[0]); i++)
			hide |= strlen(secret[i]) == (size_t)(eq - p) && memcmp(secret[i], p, eq - p) == 0;
		/* a parameter is kept whole or not at all (cut at a NUL, as %.*s) */
		size_t keep = strnlen(p, (hide ? eq : pe) - p);
		size_t n = keep + (hide ? sizeof(redacted) - 1 : 0);
		if (n >= cap - o)
			break;
		memcpy(out + o, p, keep);
		if (hide)
			memcpy(out + o + keep, redacted, sizeof(redacted) - 1);
		o += n;
		if (amp && o + 1 < cap)
			out[o++] = '&';
		p = amp ? amp + 1 : end;
	}
	out[o] = 0;
	return o;
}

/* url.query, redacted (http_redact_query). */
void http_set_url_query(struct attr_list *a, const char *query, size_t len)
{
	char out[2048];
	if (!len)
		return;
	http_redact_query(query, len, out, sizeof(out));
	attrs_add_str(a, "url.query", out);
}

/* url.full's path and query: the request target (its first 1800 bytes) when
 * in origin form, else "/" (nothing for an empty target, as ever); the
 * query redacted as url.query is. */
static void put_target(struct strbuf *b, struct http_str target)
{
	if (!target.len)
		return;
	if (target.p[0] != '/') {
		sb_put(b, "/", 1);
		return;
	}
	size_t len = strnlen(target.p, target.len < 1800 ? target.len : 1800);
	const char *q = memchr(target.p, '?', len);
	if (!q) {
		sb_put(b, target.p, len);
		return;
	}
	char red[2048];
	sb_put(b, target.p, q + 1 - target.p);
	sb_put(b, red, http_redact_query(q + 1, target.p + len - (q + 1), red, sizeof(red)));
}

int http_span_from_txn(const struct txn_event *ev, size_t ev_len, int64_t mono_to_real, struct span *s)
{
	struct http_request req;
	struct http_response resp;
	size_t req_len = ev->req_len, resp_len = ev->resp_len;

	if (ev_len < WEFT_TXN_HDR_SIZE || req_len + resp_len > ev_len - WEFT_TXN_HDR_SIZE)
		return -EINVAL;
	if (http_parse_request((const char *)ev->data, req_len, &req) != 0)
		return -EINVAL;
	bool have_resp = resp_len &&
			 http_parse_response((const char *)ev->data + req_len, resp_len, &resp) == 0;

	bool server = ev->role == WEFT_ROLE_SERVER;
	span_set_exchange(s, ev, server ? SPAN_KIND_SERVER : SPAN_KIND_CLIENT, mono_to_real);

	struct http_str path, query;
	http_target_split(req.target, &path, &query);
	char route[256];
	route_from_path(path.p, path.len, route, sizeof(route));

	char method[32];
	bool known = http_method_is_known(req.method.p, req.method.len);
	struct strbuf mb = { method, 0, sizeof(method) };
	sb_put(&mb, req.method.p, strnlen(req.method.p, req.method.len));
	char name[300];
	struct strbuf nb = { name, 0, sizeof(name) };
	if (known) {
		sb_put(&nb, method, mb.len);
		sb_put(&nb, " ", 1);
		sb_puts(&nb, route);
	} else {
		sb_puts(&nb, "HTTP");
	}
	free(s->name);
	s->name = strdup(name);

	struct attr_list *a = &s->attrs;
	attrs_add_str(a, "http.request.method", known ? method : "_OTHER");
	if (!known)
		attrs_add_str(a, "http.request.method_original", method);
	attrs_add_strn(a, "url.path", path.p, path.len);
	if (server)
		http_set_url_query(a, query.p, query.len);
	/* TLS plaintext (the TLS probes) is https. */
	const char *scheme = ev->tls ? "https" : "http";
	attrs_add_str(a, "url.scheme", scheme);
	attrs_add_str(a, "network.protocol.version", req.version_minor ? "1.1" : "1.0");

	char host[256] = "";
	long host_port = 0;
	const struct http_str *hh = http_header_get(&req.headers, "host");
	if (hh && hh->len)
		split_host(*hh, host, sizeof(host), &host_port);

	if (ev->addr.family == AF_UNIX) {
		/* HTTP over a Unix socket (Docker's API, sidecars): no ports. */
		const char *path = ev->addr.unix_path[0] ? ev->addr.unix_path : "unix";
		attrs_add_str(a, "network.transport", "unix");
		size_t plen = strnlen(path, WEFT_UNIX_PATH_MAX); /* a path of the field's length has no NUL */
		attrs_add_strn(a, "network.peer.address", path, plen);
		attrs_add_strn(a, "server.address", host[0] ? host : path, host[0] ? strlen(host) : plen);
		if (host_port)
			attrs_add_int(a, "server.port", host_port);
		if (!server) {
			char full[2048];
			struct strbuf fb = { full, 0, sizeof(full) };
			sb_puts(&fb, scheme);
			sb_puts(&fb, "://");
			sb_puts(&fb, host[0] ? host : "localhost");
			put_target(&fb, req.target);
			attrs_add_str(a, "url.full", full);
		}
		goto headers;
	}

	char local[INET6_ADDRSTRLEN] = "", remote[INET6_ADDRSTRLEN];
	if (server && !host[0]) /* the only use of the local address */
		conn_addr_format(ev->addr.laddr, ev->addr.family, local, sizeof(local));
	conn_addr_format(ev->addr.raddr, ev->addr.family, remote, sizeof(remote));
	attrs_add_str(a, "network.peer.address", remote);
	attrs_add_int(a, "network.peer.port", ev->addr.rport);
	if (server) {
		attrs_add_str(a, "server.address", host[0] ? host : local);
		attrs_add_int(a, "server.port", host_port ? host_port : ev->addr.lport);
		attrs_add_str(a, "client.address", remote);
		attrs_add_int(a, "client.port", ev->addr.rport);
	} else {
		const char *h = host[0] ? host : remote;
		long port = host[0] ? (host_port ? host_port : ev->tls ? 443 : 80) : ev->addr.rport;
		attrs_add_str(a, "server.address", h);
		attrs_add_int(a, "server.port", port);
		char full[2048];
		bool v6 = strchr(h, ':') != NULL;
		struct strbuf fb = { full, 0, sizeof(full) };
		sb_puts(&fb, scheme);
		sb_puts(&fb, v6 ? "://[" : "://");
		sb_puts(&fb, h);
		sb_puts(&fb, v6 ? "]:" : ":");
		sb_uint(&fb, port);
		put_target(&fb, req.target);
		attrs_add_str(a, "url.full", full);
	}
headers:;
	const struct http_str *ts = http_header_get(&req.headers, "tracestate");
	if (ts && ts->len && ev->ctx_source == WEFT_CTX_HEADER) {
		free(s->trace_state);
		s->trace_state = strndup(ts->p, ts->len);
	}
	const struct http_str *ua = http_header_get(&req.headers, "user-agent");
	if (ua)
		attrs_add_strn(a, "user_agent.original", ua->p, ua->len);

	s->status = SPAN_STATUS_UNSET;
	if (have_resp) {
		attrs_add_int(a, "http.response.status_code", resp.status);
		if (resp.status >= 500 || (!server && resp.status >= 400)) {
			char code[8];
			struct strbuf cb = { code, 0, sizeof(code) };
			sb_uint(&cb, resp.status); /* 100..999 */
			s->status = SPAN_STATUS_ERROR;
			attrs_add_str(a, "error.type", code);
		}
	} else if (ev->end_reason == WEFT_END_CLOSE && resp_len == 0) {
		/* The connection closed with the request unanswered: a server that
		 * failed (a Go handler's panic), a client that gave up. */
		s->status = SPAN_STATUS_ERROR;
		attrs_add_str(a, "error.type", "no_response");
		free(s->status_message);
		s->status_message = strdup("connection closed before a response");
	}
	return s->name ? 0 : -ENOMEM;
}
