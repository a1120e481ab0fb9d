/* OTLP sink end to end in-process: a tiny HTTP/1.1 collector thread on
 * loopback, and a dead collector (bounded queue, drops counted, close()
 * honours the flush budget). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "otlp.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/* ---- a minimal collector: answers each request with a fixed status ---- */

struct collector {
	int fd, port;
	int status;            /* HTTP status to answer */
	int fail_first;        /* answer 503 to this many requests first */
	size_t requests, spans;
	char last_api_key[64];
	pthread_t thread;
	int stop;
};

/* service.name of the last resource received (collector thread) */
static char last_service[64];

static size_t count_spans(const uint8_t *body, size_t len)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r;
	size_t n = 0;

	r = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len, body);
	if (!r)
		return 0;
	for (size_t i = 0; i < r->n_resource_spans; i++) {
		Opentelemetry__Proto__Resource__V1__Resource *res = r->resource_spans[i]->resource;
		for (size_t k = 0; res && k < res->n_attributes; k++)
			if (!strcmp(res->attributes[k]->key, "service.name"))
				snprintf(last_service, sizeof(last_service), "%s",
					 res->attributes[k]->value->string_value);
	}
	for (size_t i = 0; i < r->n_resource_spans; i++)
		for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
			n += r->resource_spans[i]->scope_spans[j]->n_spans;
	opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
	return n;
}

static void serve(struct collector *c, int cfd)
{
	static char buf[1 << 22];
	size_t have = 0;

	for (;;) { /* keep-alive: several requests per connection */
		char *hend, *cl;
		size_t hlen, blen;
		ssize_t r;

		while (!(hend = memmem(buf, have, "\r\n\r\n", 4))) {
			r = read(cfd, buf + have, sizeof(buf) - have);
			if (r <= 0)
				return;
			have += r;
		}
		hlen = hend + 4 - buf;
		buf[hlen - 1] = '\0';
		cl = strcasestr(buf, "content-length:");
		blen = cl ? strtoul(cl + 15, NULL, 10) : 0;
		char *key = strcasestr(buf, "api-key:");
		if (key)
			sscanf(key + 8, " %63[^\r]", c->last_api_key);
		while (have < hlen + blen) {
			r = read(cfd, buf + have, sizeof(buf) - have);
			if (r <= 0)
				return;
			have += r;
		}
		int status = c->status;
		if (c->fail_first > 0) {
			c->fail_first--;
			status = 503;
		} else if (status == 200) {
			__atomic_add_fetch(&c->spans, count_spans((uint8_t *)buf + hlen, blen), __ATOMIC_SEQ_CST);
		}
		__atomic_add_fetch(&c->requests, 1, __ATOMIC_SEQ_CST);
		char resp[256];
		int n = snprintf(resp, sizeof(resp),
				 "HTTP/1.1 %d X\r\nContent-Length: 0\r\n%s\r\n", status,
				 status == 503 ? "Retry-After: 0\r\n" : "");
		if (write(cfd, resp, n) != n)
			return;
		memmove(buf, buf + hlen + blen, have - hlen - blen);
		have -= hlen + blen;
	}
}

static void *collector_main(void *arg)
{
	struct collector *c = arg;

	while (!__atomic_load_n(&c->stop, __ATOMIC_SEQ_CST)) {
		int cfd = accept(c->fd, NULL, NULL);
		if (cfd < 0)
			continue;
		serve(c, cfd);
		close(cfd);
	}
	return NULL;
}

static void collector_start(struct collector *c, int status)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	memset(c, 0, sizeof(*c));
	c->status = status;
	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(bind(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(c->fd, 8), 0);
	getsockname(c->fd, (struct sockaddr *)&a, &al);
	c->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&c->thread, NULL, collector_main, c), 0);
}

static void collector_stop(struct collector *c)
{
	__atomic_store_n(&c->stop, 1, __ATOMIC_SEQ_CST);
	shutdown(c->fd, SHUT_RDWR);
	close(c->fd);
	pthread_join(c->thread, NULL);
}

/* ---- spans ---------------------------------------------------------------- */

static struct resource *res;

static void emit_spans(struct span_sink *sink, int n)
{
	for (int i = 0; i < n; i++) {
		struct span *s = span_new();
		s->trace_id[0] = 1;
		s->span_id[0] = (uint8_t)i + 1;
		s->name = strdup("GET /");
		s->kind = SPAN_KIND_SERVER;
		s->start_ns = 1;
		s->end_ns = 2;
		s->resource = resource_get(res);
		attrs_set_int(&s->attrs, "http.response.status_code", 200);
		sink->emit(sink, s);
		span_free(s);
	}
}

static void base_config(struct otlp_config *cfg, int port)
{
	char url[64];
	char err[256];

	otlp_config_init(cfg);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
	assert_int_equal(otlp_config_set_flag(cfg, "--otlp-endpoint", url, err, sizeof(err)), 0);
	cfg->schedule_delay_ms = 20;
	cfg->max_queue_size = 100;
	cfg->max_export_batch_size = 10;
	cfg->export_timeout_ms = 2000;
	cfg->timeout_ms = 1000;
}

static int setup(void **state)
{
	res = calloc(1, sizeof(*res));
	res->refs = 1;
	attrs_set_str(&res->attrs, "service.name", "unit");
	return 0;
}

static int teardown(void **state)
{
	resource_put(res);
	return 0;
}

static void test_delivers_all(void **state)
{
	struct otlp_counters before, after;
	struct otlp_config cfg;
	struct collector c;
	struct span_sink *sink;
	char err[256];

	collector_start(&c, 200);
	base_config(&cfg, c.port);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-headers", "api-key=k1", err, sizeof(err)), 0);
	otlp_counters_get(&before);
	sink = otlp_sink_create(&cfg, NULL);
	assert_non_null(sink);
	otlp_config_free(&cfg);
	for (int round = 0; round < 10; round++) { /* below the queue size */
		emit_spans(sink, 50);
		for (uint64_t t0 = now_ms(); __atomic_load_n(&c.spans, __ATOMIC_SEQ_CST) < (size_t)(round + 1) * 50 && now_ms() - t0 < 3000;)
			usleep(1000);
	}
	sink->close(sink);
	otlp_counters_get(&after);
	collector_stop(&c);
	assert_int_equal(c.spans, 500);
	assert_string_equal(c.last_api_key, "k1");
	assert_int_equal(after.spans_received - before.spans_received, 500);
	assert_int_equal(after.spans_exported - before.spans_exported, 500);
	assert_int_equal(otlp_counters_dropped(&after) - otlp_counters_dropped(&before), 0);
}

/* A resource whose attributes change after its first spans: later spans
 * carry the new ones (the sink's resource cache notices). */
static void test_resource_change_noticed(void **state)
{
	struct otlp_config cfg;
	struct collector c;
	struct span_sink *sink;

	collector_start(&c, 200);
	base_config(&cfg, c.port);
	sink = otlp_sink_create(&cfg, NULL);
	otlp_config_free(&cfg);
	emit_spans(sink, 5);
	for (uint64_t t0 = now_ms(); __atomic_load_n(&c.spans, __ATOMIC_SEQ_CST) < 5 && now_ms() - t0 < 3000;)
		usleep(1000);
	assert_string_equal(last_service, "unit");
	attrs_set_str(&res->attrs, "service.name", "renamed");
	emit_spans(sink, 5);
	for (uint64_t t0 = now_ms(); __atomic_load_n(&c.spans, __ATOMIC_SEQ_CST) < 10 && now_ms() - t0 < 3000;)
		usleep(1000);
	sink->close(sink);
	collector_stop(&c);
	assert_int_equal(c.spans, 10);
	assert_string_equal(last_service, "renamed");
	attrs_set_str(&res->attrs, "service.name", "unit");
}

static void test_retry_then_success(void **state)
{
	struct otlp_counters before, after;
	struct otlp_config cfg;
	struct collector c;
	struct span_sink *sink;

	collector_start(&c, 200);
	c.fail_first = 2;
	base_config(&cfg, c.port);
	otlp_counters_get(&before);
	sink = otlp_sink_create(&cfg, NULL);
	otlp_config_free(&cfg);
	emit_spans(sink, 10);
	for (uint64_t t0 = now_ms(); __atomic_load_n(&c.spans, __ATOMIC_SEQ_CST) < 10 && now_ms() - t0 < 5000;)
		usleep(1000);
	sink->close(sink);
	otlp_counters_get(&after);
	collector_stop(&c);
	assert_int_equal(c.spans, 10); /* once, no duplicates */
	assert_int_equal(c.requests, 3);
	assert_int_equal(after.export_retries - before.export_retries, 2);
	assert_int_equal(after.spans_exported - before.spans_exported, 10);
}

static void test_permanent_error(void **state)
{
	struct otlp_counters before, after;
	struct otlp_config cfg;
	struct collector c;
	struct span_sink *sink;

	collector_start(&c, 400);
	base_config(&cfg, c.port);
	otlp_counters_get(&before);
	sink = otlp_sink_create(&cfg, NULL);
	otlp_config_free(&cfg);
	emit_spans(sink, 30);
	sink->close(sink);
	otlp_counters_get(&after);
	collector_stop(&c);
	assert_int_equal(c.requests, 3); /* 3 batches, no retries */
	assert_int_equal(after.dropped_rejected - before.dropped_rejected, 30);
	assert_int_equal(after.export_retries - before.export_retries, 0);
}

static void test_dead_collector(void **state)
{
	struct otlp_counters before, after;
	struct otlp_config cfg;
	struct span_sink *sink;
	struct collector c;
	uint64_t t0;

	/* a port that refuses connections */
	collector_start(&c, 200);
	collector_stop(&c);
	base_config(&cfg, c.port);
	cfg.export_timeout_ms = 300;
	otlp_counters_get(&before);
	sink = otlp_sink_create(&cfg, NULL);
	assert_non_null(sink); /* not an error at start */
	otlp_config_free(&cfg);
	t0 = now_ms();
	emit_spans(sink, 1000);
	assert_true(now_ms() - t0 < 1000); /* emit never waits for the network */
	usleep(100 * 1000);
	t0 = now_ms();
	sink->close(sink);
	assert_true(now_ms() - t0 < 1500); /* flush budget (300 ms) honoured */
	otlp_counters_get(&after);
	assert_int_equal(after.spans_received - before.spans_received, 1000);
	assert_int_equal(after.spans_exported - before.spans_exported, 0);
	/* the queue (100) and a batch or two in flight (10 each) are not queue drops */
	assert_true(after.dropped_queue_full - before.dropped_queue_full >= 1000 - 100 - 20);
	assert_int_equal(otlp_counters_dropped(&after) - otlp_counters_dropped(&before), 1000);
	assert_true(after.export_errors > before.export_errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delivers_all),
		cmocka_unit_test(test_resource_change_noticed),
		cmocka_unit_test(test_retry_then_success),
		cmocka_unit_test(test_permanent_error),
		cmocka_unit_test(test_dead_collector),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
