/* Replay micro-benchmark of the agent's per-span work: builds the struct
 * txn_event records the kernel sends for typical exchanges and runs them
 * through the code deliver_txn() runs (user/agent.c): proc_language,
 * span_new, protocol_span (HTTP/1 and database spans), proc_resource, the sinks'
 * emit, span_free. Single process, no BPF, deterministic input.
 *
 * Usage: span_path [ITERATIONS [CASE [ROW]]]  ns and allocations per span,
 *        the fastest of 5 rounds of ITERATIONS (default 50000) spans
 *        span_path --dump         the JSON lines and OTLP requests (hex) of
 *                                 every case and of edge-case exchanges, to
 *                                 compare outputs before and after a change
 *        span_path --dump-many N  the same for N generated HTTP exchanges
 *        span_path --dump-db FILE...  the same for database exchanges (the
 *                                 format of tests/fuzz/corpus_db)
 *
 * Rows: "json" = the whole deliver path with the JSON sink (writing to
 * /dev/null), "build" = the span alone (no sink), "otlp-emit" = the path with
 * the OTLP sink's emit (queued, never sent), "otlp-encode" = the export
 * thread's protobuf encoding of 512-span batches. Allocation calls
 * (malloc, calloc, realloc) are counted by wrapping glibc's allocator. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "http_span.h"
#include "log.h"
#include "otlp.h"
#include "otlp_encode.h"
#include "proc.h"
#include "sinks.h"

/* ---- allocation counting ------------------------------------------------ */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static atomic_ulong n_allocs;

void *malloc(size_t n)
{
	atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	atomic_fetch_add_explicit(&n_allocs, 1, memory_order_relaxed);
	return __libc_realloc(p, n);
}

void free(void *p)
{
	__libc_free(p);
}

/* ---- exchanges ------------------------------------------------------------ */

#define MONO_TO_REAL 1700000000000000000ll

struct exchange {
	const char *name;
	uint8_t proto, role, end_reason;
	uint16_t family;
	const char *laddr, *raddr, *unix_path;
	uint16_t lport, rport;
	const void *req, *resp;
	size_t req_len, resp_len; /* 0: strlen */
	bool parent;
};

static const char go_req[] = "GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
static const char go_resp[] = "HTTP/1.1 200 OK\r\nDate: Mon, 02 Jun 2025 10:00:00 GMT\r\n"
			      "Content-Length: 12\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
			      "hello world\n";
static const char client_req[] =
	"GET /api/users/12345/orders?limit=10&Signature=abc HTTP/1.1\r\n"
	"Host: backend.internal:9090\r\n"
	"User-Agent: Go-http-client/1.1\r\n"
	"traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
	"Accept: application/json\r\n"
	"Accept-Encoding: gzip\r\n\r\n";
static const char client_resp[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				  "Date: Mon, 02 Jun 2025 10:00:00 GMT\r\nContent-Length: 27\r\n\r\n"
				  "{\"id\":12345,\"orders\":[1,2]}";

/* PostgreSQL simple query and its answer: RowDescription, DataRow,
 * CommandComplete "SELECT 1", ReadyForQuery. */
static const uint8_t pg_req[] = "Q\0\0\0\x3e" "SELECT abalance FROM pgbench_accounts WHERE aid = 4242;";
static const uint8_t pg_resp[] = {
	'T', 0, 0, 0, 0x21, 0, 1, 'a', 'b', 'a', 'l', 'a', 'n', 'c', 'e', 0, 0, 0, 0x40, 0x06, 0, 3,
	0, 0, 0, 0x17, 0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0,
	'D', 0, 0, 0, 0x0c, 0, 1, 0, 0, 0, 2, '4', '2',
	'C', 0, 0, 0, 0x0d, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0,
	'Z', 0, 0, 0, 5, 'I',
};

static const struct exchange timed[] = {
	{ "go-server", WEFT_PROTO_HTTP1, WEFT_ROLE_SERVER, WEFT_END_COMPLETE, AF_INET, "127.0.0.1",
	  "127.0.0.1", NULL, 8080, 51234, go_req, go_resp },
	{ "http-client", WEFT_PROTO_HTTP1, WEFT_ROLE_CLIENT, WEFT_END_COMPLETE, AF_INET, "10.0.0.5",
	  "10.0.0.7", NULL, 43210, 9090, client_req, client_resp, 0, 0, true },
	{ "pg-query", WEFT_PROTO_PGSQL, WEFT_ROLE_CLIENT, WEFT_END_COMPLETE, AF_INET, "127.0.0.1",
	  "127.0.0.1", NULL, 40000, 5432, pg_req, pg_resp, sizeof(pg_req) - 1, sizeof(pg_resp), true },
};

/* Only dumped: what the timed cases do not exercise. */
static const struct exchange edges[] = {
	{ "escapes", WEFT_PROTO_HTTP1, WEFT_ROLE_SERVER, WEFT_END_COMPLETE, AF_INET6, "::1", "::1", NULL,
	  8080, 5555,
	  "POST /a\"b\\c/%E2%82%AC/\xe2\x82\xac/x?q=1&sig=s&AWSAccessKeyId=k HTTP/1.0\r\n"
	  "Host: [::1]:8080\r\nUser-Agent: a\"b\\c\td\x01\x1f\x7f\xc3\xa9\r\n"
	  "tracestate: k=v,\"x\"\r\n\r\n",
	  "HTTP/1.0 503 Service Unavailable\r\n\r\n" },
	{ "unknown-method", WEFT_PROTO_HTTP1, WEFT_ROLE_CLIENT, WEFT_END_COMPLETE, AF_INET6,
	  "2001:db8::1", "2001:db8::2", NULL, 1234, 80, "BREW /pot HTTP/1.1\r\n\r\n",
	  "HTTP/1.1 418 I'm a teapot\r\n\r\n" },
	{ "v6-host-client", WEFT_PROTO_HTTP1, WEFT_ROLE_CLIENT, WEFT_END_COMPLETE, AF_INET6,
	  "2001:db8::1", "2001:db8::2", NULL, 1234, 8443,
	  "GET / HTTP/1.1\r\nHost: [2001:db8::2]:8443\r\n\r\n", "HTTP/1.1 404 Not Found\r\n\r\n" },
	{ "no-response", WEFT_PROTO_HTTP1, WEFT_ROLE_SERVER, WEFT_END_CLOSE, AF_INET, "192.168.1.1",
	  "192.168.1.2", NULL, 80, 65535, "DELETE /items/550e8400-e29b-41d4-a716-446655440000 HTTP/1.1\r\n\r\n",
	  "" },
	{ "unix-client", WEFT_PROTO_HTTP1, WEFT_ROLE_CLIENT, WEFT_END_COMPLETE, AF_UNIX, NULL, NULL,
	  "/var/run/docker.sock", 0, 0, "GET /v1.43/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n",
	  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]" },
	{ "unix-server", WEFT_PROTO_HTTP1, WEFT_ROLE_SERVER, WEFT_END_COMPLETE, AF_UNIX, NULL, NULL,
	  "", 0, 0, "PUT /x HTTP/1.1\r\n\r\n", "HTTP/1.1 500 Internal Server Error\r\n\r\n" },
	{ "long-path", WEFT_PROTO_HTTP1, WEFT_ROLE_CLIENT, WEFT_END_COMPLETE, AF_INET, "10.1.1.1",
	  "10.1.1.2", NULL, 5000, 80,
	  "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/"
	  "12/abc/0x1f/v2 HTTP/1.1\r\nHost: example.com\r\n\r\n",
	  "HTTP/1.1 301 Moved\r\n\r\n" },
};

static size_t make_event(const struct exchange *x, uint64_t i, struct txn_event *ev)
{
	size_t req_len = x->req_len ? x->req_len : strlen(x->req);
	size_t resp_len = x->resp_len ? x->resp_len : strlen(x->resp);

	memset(ev, 0, WEFT_TXN_HDR_SIZE);
	ev->type = WEFT_EV_TXN;
	ev->pid = getpid();
	ev->tid = ev->pid;
	ev->fd = 7;
	ev->start_ns = 5000000000ull + i * 1000;
	ev->end_ns = ev->start_ns + 123456;
	ev->req_bytes = req_len;
	ev->resp_bytes = resp_len;
	ev->addr.family = x->family;
	if (x->family == AF_UNIX) {
		snprintf(ev->addr.unix_path, sizeof(ev->addr.unix_path), "%s", x->unix_path);
	} else {
		inet_pton(x->family, x->laddr, ev->addr.laddr);
		inet_pton(x->family, x->raddr, ev->addr.raddr);
		ev->addr.lport = x->lport;
		ev->addr.rport = x->rport;
	}
	ev->role = x->role;
	ev->proto = x->proto;
	ev->end_reason = x->end_reason;
	ev->trace_flags = 1;
	ev->ctx_source = WEFT_CTX_HEADER;
	for (int b = 0; b < 16; b++)
		ev->trace_id[b] = (uint8_t)(0x11 * b + i);
	for (int b = 0; b < 8; b++) {
		ev->span_id[b] = (uint8_t)(0x21 * b + (i >> 8));
		ev->parent_span_id[b] = x->parent ? (uint8_t)(0x31 + b) : 0;
	}
	ev->req_len = req_len;
	ev->resp_len = resp_len;
	memcpy(ev->data, x->req, req_len);
	memcpy(ev->data + req_len, x->resp, resp_len);
	return WEFT_TXN_HDR_SIZE + req_len + resp_len;
}

/* ---- the agent's per-event path (deliver_txn without the BPF calls) ---- */

static struct span *build_span(const struct txn_event *ev, size_t len)
{
	proc_vet_first(ev->pid);
	struct span *s = span_new();
	if (!s)
		return NULL;
	struct protocol_ctx pc = { .mono_to_real = MONO_TO_REAL, .db_statement = DB_STATEMENT_REDACTED };
	int rc = protocol_span(ev, len, &pc, s);
	if (rc != 0) {
		fprintf(stderr, "span_path: exchange not parsed (%d)\n", rc);
		exit(1);
	}
	s->resource = proc_resource(ev->pid, s->start_ns);
	return s;
}

static void deliver(const struct txn_event *ev, size_t len, struct span_sink *sink)
{
	struct span *s = build_span(ev, len);
	if (sink)
		sink->emit(sink, s);
	span_free(s);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* An OTLP sink that queues every span of a run and never sends one: the
 * batch and the queue hold them all, the delay never expires, and close()
 * drops them at once (port 9 on loopback; nothing is ever sent). */
static struct span_sink *otlp_null_sink(unsigned spans)
{
	struct otlp_config cfg;
	otlp_config_init(&cfg);
	cfg.endpoint = strdup("http://127.0.0.1:9");
	cfg.max_queue_size = spans + 1;
	cfg.max_export_batch_size = spans + 1;
	cfg.schedule_delay_ms = 3600 * 1000;
	cfg.export_timeout_ms = 1;
	struct span_sink *s = otlp_sink_create(&cfg, NULL);
	otlp_config_free(&cfg);
	return s;
}

enum mode { MODE_BUILD, MODE_JSON, MODE_OTLP_EMIT };
static const char *const mode_names[] = { "build", "json", "otlp-emit" };

/* Each row is timed ROUNDS times; the fastest round is shown (the machine
 * may be busy with other work; the minimum is the least disturbed). */
#define ROUNDS 5

static void report(FILE *out, const struct exchange *x, const char *row, uint64_t best_ns,
		   unsigned long allocs, unsigned spans)
{
	fprintf(out, "%-12s %-12s %8.0f ns/span %6.2f allocs/span\n", x->name, row,
		(double)best_ns / spans, (double)allocs / spans);
}

static void run_case(FILE *out, const struct exchange *x, enum mode mode, unsigned iters)
{
	static struct txn_event ev;
	size_t len = make_event(x, 0, &ev);
	uint64_t best = UINT64_MAX;
	unsigned long allocs = 0;
	for (unsigned r = 0; r < ROUNDS; r++) {
		struct span_sink *sink = mode == MODE_JSON ? json_sink_create()
					 : mode == MODE_OTLP_EMIT ? otlp_null_sink(iters)
								  : NULL;
		for (unsigned i = 0; i < 1000; i++) /* warm caches, the resource, db state */
			deliver(&ev, len, mode == MODE_OTLP_EMIT ? NULL : sink);
		unsigned long a0 = atomic_load(&n_allocs);
		uint64_t t0 = now_ns();
		for (unsigned i = 0; i < iters; i++)
			deliver(&ev, len, sink);
		uint64_t t = now_ns() - t0;
		allocs = atomic_load(&n_allocs) - a0;
		best = t < best ? t : best;
		if (sink)
			sink->close(sink);
	}
	report(out, x, mode_names[mode], best, allocs, iters);
}

/* The export thread's encoding, in batches of 512 spans of one case. */
static void run_encode(FILE *out, const struct exchange *x, unsigned iters)
{
	enum { BATCH = 512 };
	static struct txn_event ev;
	struct span *spans[BATCH];
	for (unsigned i = 0; i < BATCH; i++) {
		size_t len = make_event(x, i, &ev);
		spans[i] = build_span(&ev, len);
	}
	unsigned batches = iters / BATCH ? iters / BATCH : 1;
	uint64_t best = UINT64_MAX;
	unsigned long allocs = 0;
	for (unsigned r = 0; r < ROUNDS; r++) {
		unsigned long a0 = atomic_load(&n_allocs);
		uint64_t t0 = now_ns();
		for (unsigned b = 0; b < batches; b++) {
			uint8_t *buf;
			size_t n;
			if (otlp_encode_spans((const struct span *const *)spans, BATCH, &buf, &n) != 0)
				exit(1);
			free(buf);
		}
		uint64_t t = now_ns() - t0;
		allocs = atomic_load(&n_allocs) - a0;
		best = t < best ? t : best;
	}
	report(out, x, "otlp-encode", best, allocs, batches * BATCH);
	for (unsigned i = 0; i < BATCH; i++)
		span_free(spans[i]);
}

/* A resource that does not depend on the process running the dump. */
static struct resource *dump_resource(void)
{
	struct resource *r = calloc(1, sizeof(*r));
	r->refs = 1;
	r->pid = 4242;
	attrs_set_str(&r->attrs, "process.executable.path", "/usr/local/bin/my \"app\"");
	attrs_set_str(&r->attrs, "service.name", "my-app");
	attrs_set_bool(&r->attrs, WEFT_ATTR_SERVICE_FROM_PROCESS, false);
	attrs_set_int(&r->attrs, "process.pid", 4242);
	attrs_set_str(&r->attrs, "process.command_line", "my-app --flag=\x01\t\xff");
	attrs_set_str(&r->attrs, "host.name", "host");
	return r;
}

/* Every attribute type and value shape the writers format. */
static void add_odd_attrs(struct span *s)
{
	attrs_set_bool(&s->attrs, "b.true", true);
	attrs_set_bool(&s->attrs, "b.false", false);
	attrs_set_int(&s->attrs, "i.min", INT64_MIN);
	attrs_set_int(&s->attrs, "i.max", INT64_MAX);
	attrs_set_int(&s->attrs, "i.zero", 0);
	attrs_set_int(&s->attrs, "i.neg", -42);
	attrs_set_double(&s->attrs, "d.half", 1.5);
	attrs_set_double(&s->attrs, "d.tenth", 0.1);
	attrs_set_double(&s->attrs, "d.big", 1e300);
	attrs_set_double(&s->attrs, "d.negzero", -0.0);
	attrs_set_double(&s->attrs, "d.nan", __builtin_nan(""));
	attrs_set_double(&s->attrs, "d.inf", __builtin_inf());
	attrs_set_str(&s->attrs, "s.empty", "");
	attrs_set_str(&s->attrs, "s.ctl", "\x01\x02\b\f\n\r\t\x1f \x7f\"\\/\xc3\xa9");
	attrs_set_str(&s->attrs, "k\"ey\n", "v");
	attrs_set_str(&s->attrs, "weft.internal.x", "shown in JSON");
	attrs_set_str(&s->attrs, "s.empty", "replaced");
	attrs_set_int(&s->attrs, "i.zero", 7);
	attrs_remove(&s->attrs, "i.neg");
	free(s->status_message);
	s->status_message = strdup("bad \"thing\"\n");
	free(s->trace_state);
	s->trace_state = strdup("a=b");
}

/* JSON lines and the OTLP encoding of one span per exchange, on stdout. */
static void dump(const struct exchange *x, bool odd)
{
	static struct txn_event ev;
	size_t len = make_event(x, 3, &ev);
	struct span_sink *json = json_sink_create();
	struct span *s = build_span(&ev, len);
	resource_put(s->resource);
	s->resource = dump_resource();
	if (odd)
		add_odd_attrs(s);
	json->emit(json, s);
	struct span *c = span_clone(s);
	json->emit(json, c);
	span_free(c);
	json->tick(json, 0);
	uint8_t *buf;
	size_t n;
	if (otlp_encode_spans((const struct span *const *)&s, 1, &buf, &n) != 0)
		exit(1);
	printf("%s otlp ", x->name);
	for (size_t i = 0; i < n; i++)
		printf("%02x", buf[i]);
	printf("\n");
	free(buf);
	span_free(s);
	json->close(json);
}

/* ---- many generated exchanges (--dump-many) ------------------------------ */

static uint64_t rnd_state = 88172645463325252ull;

static unsigned rnd(unsigned n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned)(rnd_state % n);
}

#define PICK(a) (a)[rnd(sizeof(a) / sizeof((a)[0]))]

/* Combinations of request parts, peers and answers: every branch of
 * http_span_from_txn and of the writers, including cuts at buffer sizes. */
static void dump_many(unsigned n)
{
	static const char *const methods[] = { "GET", "POST", "HEAD", "DELETE", "PATCH", "OPTIONS",
					       "BREW", "PROPFIND", "CONNECT",
					       "AVERYLONGMETHODNAMEOFMORETHANTHIRTYTWOCHARS" };
	static const char *const targets[] = {
		"/", "/hello", "/api/v1/users/42", "/api/users/12345/orders?limit=10",
		"/a/b?x=1&sig=2&Signature=3&AWSAccessKeyId=4&y", "/x?", "/x?=", "/x?&&a=&=b",
		"/dl?X-Goog-Signature=abc&sig", "*", "http://h:8/a?q", "/%E2%82%AC/x\xc3\xa9",
		"/items/550e8400-e29b-41d4-a716-446655440000", "/a//b/", "/2024-01-31/report",
		"/q\"uote\\/back", "/user@example.com/x", "/deadbeef1234/abc", "/v2/oauth2_callback_url",
	};
	static const char *const hosts[] = { NULL, "h", "h:8080", "h:", "h:99999", "h:0", "[::1]",
					     "[::1]:443", "[::1", "[]:5", "127.0.0.1:80", "", "a:b:c",
					     "example.com:65535", "\"q\":1" };
	static const char *const agents[] = { NULL, "curl/8.1", "weft/0.1.0", "a\"b\\c\td\x01",
					      "Mozilla/5.0 (X11; Linux x86_64) \xe2\x82\xac" };
	static const char *const answers[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.0 301 Moved\r\n\r\n", "HTTP/1.1 404 Not Found\r\n\r\n",
		"HTTP/1.1 418 Teapot\r\n\r\n", "HTTP/1.1 500 Oops\r\n\r\n", "HTTP/1.1 503 Busy\r\n\r\n",
		"", "garbage", "HTTP/1.1 999 X\r\n\r\n", "HTTP/1.1 20",
	};
	static const char *const v4[] = { "0.0.0.0", "127.0.0.1", "10.20.30.40", "255.255.255.255",
					  "192.168.1.9", "1.2.3.4" };
	static const char *const v6[] = { "::1", "2001:db8::1", "::ffff:10.0.0.1", "::ffff:255.1.0.99",
					  "fe80::1:2:3:4", "::" };
	static const char *const paths[] = { "/run/docker.sock", "", "/very/long/path/of/a/unix/"
					     "socket/that/goes/on/and/on/past/sixty/four/bytes.sock" };
	static char req[8192], big[4096];
	static struct txn_event ev;
	struct exchange x = { "many", WEFT_PROTO_HTTP1 };
	struct span_sink *json = json_sink_create();
	/* batches of spans of a few resources (NULL too), also encoded together */
	enum { BATCH = 9 };
	struct resource *res[3] = { dump_resource(), dump_resource(), NULL };
	attrs_set_str(&res[1]->attrs, "service.name", "other");
	struct span *batch[BATCH];
	size_t nbatch = 0;

	for (unsigned i = 0; i < n; i++) {
		const char *target = PICK(targets);
		if (rnd(12) == 0) { /* long paths and queries: route and url.* cuts */
			size_t len = 1500 + rnd(2000), k = 0;
			big[k++] = '/';
			while (k < len) {
				big[k++] = rnd(8) ? "abc123/x-?&="[rnd(12)] : '/';
			}
			big[k] = '\0';
			target = big;
		}
		size_t o = (size_t)snprintf(req, sizeof(req), "%s %s HTTP/1.%d\r\n", PICK(methods), target,
					    rnd(4) ? 1 : 0);
		const char *host = PICK(hosts), *ua = PICK(agents);
		if (host)
			o += snprintf(req + o, sizeof(req) - o, "Host: %s\r\n", host);
		if (ua)
			o += snprintf(req + o, sizeof(req) - o, "user-agent: %s\r\n", ua);
		if (rnd(4) == 0)
			o += snprintf(req + o, sizeof(req) - o, "TraceState: k=v%u\r\n", i);
		snprintf(req + o, sizeof(req) - o, "\r\n");
		x.req = req;
		x.resp = PICK(answers);
		x.req_len = x.resp_len = 0;
		x.role = rnd(2) ? WEFT_ROLE_SERVER : WEFT_ROLE_CLIENT;
		x.end_reason = rnd(2) ? WEFT_END_COMPLETE : WEFT_END_CLOSE;
		x.parent = rnd(2);
		switch (rnd(3)) {
		case 0: x.family = AF_INET, x.laddr = PICK(v4), x.raddr = PICK(v4); break;
		case 1: x.family = AF_INET6, x.laddr = PICK(v6), x.raddr = PICK(v6); break;
		default: x.family = AF_UNIX, x.unix_path = PICK(paths); break;
		}
		x.lport = (uint16_t)rnd(65536);
		x.rport = (uint16_t)rnd(65536);
		size_t len = make_event(&x, i, &ev);
		ev.ctx_source = rnd(2) ? WEFT_CTX_HEADER : WEFT_CTX_NEW;
		struct span *s = span_new();
		int rc = http_span_from_txn(&ev, len, MONO_TO_REAL, s);
		printf("%u rc %d\n", i, rc);
		if (rc == 0) {
			s->resource = dump_resource();
			json->emit(json, s);
			json->tick(json, 0);
			uint8_t *buf;
			size_t bn;
			if (otlp_encode_spans((const struct span *const *)&s, 1, &buf, &bn) != 0)
				exit(1);
			for (size_t k = 0; k < bn; k++)
				printf("%02x", buf[k]);
			printf("\n");
			free(buf);
			resource_put(s->resource);
			s->resource = resource_get(res[rnd(3)]);
			batch[nbatch++] = s;
			s = NULL;
		}
		span_free(s);
		if (nbatch == BATCH || (i == n - 1 && nbatch)) {
			uint8_t *buf;
			size_t bn;
			if (otlp_encode_spans((const struct span *const *)batch, nbatch, &buf, &bn) != 0)
				exit(1);
			printf("batch ");
			for (size_t k = 0; k < bn; k++)
				printf("%02x", buf[k]);
			printf("\n");
			free(buf);
			while (nbatch)
				span_free(batch[--nbatch]);
		}
	}
	json->close(json);
	resource_put(res[0]);
	resource_put(res[1]);
}

/* The database exchanges of tests/fuzz/corpus_db (byte 0: protocol, bytes
 * 1-2: request length, then request and response), each twice on one
 * connection, in every db.query.text mode (--dump-db FILE...). */
static void dump_db(int nfiles, char **files)
{
	static const uint8_t protos[] = { WEFT_PROTO_PGSQL, WEFT_PROTO_MYSQL, WEFT_PROTO_REDIS };
	static uint8_t data[65536];
	static struct txn_event ev;
	struct span_sink *json = json_sink_create();
	for (int f = 0; f < nfiles; f++) {
		FILE *in = fopen(files[f], "rb");
		size_t n = in ? fread(data, 1, sizeof(data), in) : 0;
		if (in)
			fclose(in);
		if (n < 3 || data[0] % 4 == 3)
			continue;
		size_t req_len = (size_t)data[1] << 8 | data[2];
		if (req_len > n - 3)
			req_len = n - 3;
		size_t resp_len = n - 3 - req_len;
		if (req_len > WEFT_REQ_CAP_MAX || resp_len > WEFT_RESP_CAP_MAX)
			continue;
		struct exchange x = { "db", protos[data[0] % 4], WEFT_ROLE_CLIENT, WEFT_END_COMPLETE, AF_INET,
				      "127.0.0.1", "10.9.8.7", NULL, 4000, 5432, data + 3, data + 3 + req_len,
				      req_len, resp_len, true };
		for (int mode = DB_STATEMENT_REDACTED; mode <= DB_STATEMENT_OFF; mode++) {
			protocol_conns_clear();
			for (int twice = 0; twice < 2; twice++) {
				size_t len = make_event(&x, f, &ev);
				ev.req_len = (uint16_t)req_len; /* make_event measured with strlen when 0 */
				ev.resp_len = (uint16_t)resp_len;
				len = WEFT_TXN_HDR_SIZE + req_len + resp_len;
				struct span *s = span_new();
				struct protocol_ctx pc = { .mono_to_real = MONO_TO_REAL,
							   .db_statement = (enum db_statement_mode)mode };
				int rc = protocol_span(&ev, len, &pc, s);
				printf("%s mode %d rc %d\n", files[f], mode, rc);
				if (rc == 0) {
					s->resource = dump_resource();
					json->emit(json, s);
					json->tick(json, 0);
				}
				span_free(s);
			}
		}
	}
	json->close(json);
}

int main(int argc, char **argv)
{
	log_threshold = LOG_WARN;
	if (argc > 2 && !strcmp(argv[1], "--dump-many")) {
		dump_many((unsigned)strtoul(argv[2], NULL, 10));
		fflush(stdout);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--dump-db")) {
		dump_db(argc - 2, argv + 2);
		fflush(stdout);
		return 0;
	}
	if (argc > 1 && !strcmp(argv[1], "--dump")) {
		for (size_t i = 0; i < sizeof(timed) / sizeof(timed[0]); i++)
			dump(&timed[i], false);
		for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
			dump(&edges[i], false);
		dump(&timed[1], true);
		fflush(stdout);
		return 0;
	}
	unsigned iters = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 50000;

	/* the JSON sink writes to stdout: send it to /dev/null, report on the
	 * original stdout */
	FILE *out = fdopen(dup(1), "w");
	int null = open("/dev/null", O_WRONLY);
	if (!out || null < 0 || dup2(null, 1) < 0)
		return 1;
	setvbuf(out, NULL, _IOLBF, 0);
	const char *only_case = argc > 2 ? argv[2] : NULL, *only_row = argc > 3 ? argv[3] : NULL;
	for (size_t i = 0; i < sizeof(timed) / sizeof(timed[0]); i++) {
		if (only_case && strcmp(only_case, timed[i].name))
			continue;
		for (enum mode m = MODE_BUILD; m <= MODE_OTLP_EMIT; m++)
			if (!only_row || !strcmp(only_row, mode_names[m]))
				run_case(out, &timed[i], m, iters);
		if (!only_row || !strcmp(only_row, "otlp-encode"))
			run_encode(out, &timed[i], iters);
	}
	proc_cache_clear();
	protocol_conns_clear();
	return 0;
}
