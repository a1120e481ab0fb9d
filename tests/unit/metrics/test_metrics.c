/* Metrics (user/metrics/): instruments (buckets, cardinality limit with the
 * otel.metric.overflow series), RED measurements from spans (attributes
 * kept and dropped), the service graph's joins (client first, server
 * first, databases, uninstrumented peers, untraced callers) and the
 * Prometheus exposition (names, labels, cumulative buckets, OpenMetrics
 * exemplars). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"
#include "prometheus.h"

static struct resource *service(const char *name)
{
	struct resource *r = calloc(1, sizeof(*r));
	assert_non_null(r);
	r->refs = 1;
	assert_int_equal(attrs_set_str(&r->attrs, "service.name", name), 0);
	return r;
}

/* An HTTP span of svc: kind, "GET /route", status, ids. */
static struct span *http_span(const char *svc, enum span_kind kind, int status, uint8_t id, uint8_t parent,
			      uint64_t dur_ns, bool sampled)
{
	struct span *s = span_new();
	assert_non_null(s);
	s->resource = service(svc);
	s->kind = kind;
	s->name = strdup("GET /users/{id}");
	s->start_ns = 1000000000000ull;
	s->end_ns = s->start_ns + dur_ns;
	s->trace_id[15] = 7;
	s->span_id[0] = id;
	s->parent_span_id[0] = parent;
	s->trace_flags = sampled;
	attrs_add_str(&s->attrs, "http.request.method", "GET");
	attrs_add_str(&s->attrs, "url.path", "/users/12345");
	attrs_add_int(&s->attrs, "http.response.status_code", status);
	attrs_add_str(&s->attrs, "server.address", "10.0.0.2");
	attrs_add_int(&s->attrs, "server.port", 8080);
	attrs_add_str(&s->attrs, "client.address", "10.0.0.9");
	if (status >= 500) {
		s->status = SPAN_STATUS_ERROR;
		attrs_add_str(&s->attrs, "error.type", "500");
	}
	return s;
}

static char *render(struct metrics *m, bool om)
{
	char *text;
	size_t len;
	assert_int_equal(prometheus_render(m, om, &text, &len), 0);
	assert_int_equal(strlen(text), len);
	return text;
}

static void assert_has(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("missing: %s\nin:\n%s", line, text);
}

static void test_buckets_and_exposition(void **state)
{
	struct metrics *m = metrics_create(1);
	assert_non_null(m);
	struct span *s = http_span("shop", SPAN_KIND_SERVER, 200, 1, 0, 5000000, true); /* 0.005 s: le="0.005" */
	metrics_record(m, s, 0);
	span_free(s);
	s = http_span("shop", SPAN_KIND_SERVER, 200, 2, 0, 300000000, false);
	metrics_record(m, s, 0);
	span_free(s);
	char *t = render(m, false);
	assert_has(t, "# TYPE http_server_request_duration_seconds histogram\n");
	const char *labels = "http_server_request_duration_seconds_bucket{service_name=\"shop\",http_request_method="
			     "\"GET\",http_response_status_code=\"200\",http_route=\"/users/{id}\",le=";
	char line[512];
	snprintf(line, sizeof(line), "%s\"0.005\"} 1\n", labels);
	assert_has(t, line);
	snprintf(line, sizeof(line), "%s\"0.25\"} 1\n", labels);
	assert_has(t, line);
	snprintf(line, sizeof(line), "%s\"0.5\"} 2\n", labels);
	assert_has(t, line);
	snprintf(line, sizeof(line), "%s\"+Inf\"} 2\n", labels);
	assert_has(t, line);
	assert_has(t, "http_server_request_duration_seconds_count{service_name=\"shop\",http_request_method=\"GET\","
		      "http_response_status_code=\"200\",http_route=\"/users/{id}\"} 2\n");
	assert_has(t, "_sum{service_name=\"shop\",http_request_method=\"GET\",http_response_status_code=\"200\","
		      "http_route=\"/users/{id}\"} 0.305\n");
	assert_null(strstr(t, "url_path"));
	assert_null(strstr(t, "client_address"));
	assert_null(strstr(t, "# {")); /* exemplars only in OpenMetrics */
	/* the root server spans came from untraced callers */
	assert_has(t, "# TYPE traces_service_graph_request_total counter\n");
	assert_has(t, "traces_service_graph_request_total{client=\"user\",server=\"shop\",connection_type=\"virtual_node\"} 2\n");
	free(t);

	t = render(m, true);
	assert_has(t, "# TYPE traces_service_graph_request counter\n");
	/* the sampled span is the first bucket's exemplar; the other was not exported */
	snprintf(line, sizeof(line), "%s\"0.005\"} 1 # {trace_id=\"00000000000000000000000000000007\","
		 "span_id=\"0100000000000000\"} 0.005 1000.005\n", labels);
	assert_has(t, line);
	snprintf(line, sizeof(line), "%s\"0.5\"} 2\n", labels);
	assert_has(t, line);
	assert_int_equal(strcmp(t + strlen(t) - 6, "# EOF\n"), 0);
	free(t);
	metrics_free(m);
}

static void test_cardinality_limit(void **state)
{
	static const char *const keys[] = { "http.route" };
	static const double bounds[] = { 1 };
	struct instrument in;
	char route[32];
	assert_int_equal(instrument_init(&in, "x", "s", "x", INSTR_HISTOGRAM, bounds, 1, keys, 1), 0);
	for (int i = 0; i < 100000; i++) { /* 100k distinct routes */
		snprintf(route, sizeof(route), "/r%d", i);
		const char *v[] = { route };
		instrument_record(&in, v, 1000, NULL, NULL, 0);
	}
	assert_int_equal(instrument_nseries(&in), INSTR_CARDINALITY_LIMIT);
	const struct series *last = instrument_get(&in, INSTR_CARDINALITY_LIMIT - 1);
	assert_true(last->overflow);
	uint64_t sum = 0;
	for (size_t i = 0; i < instrument_nseries(&in); i++)
		sum += series_snapshot(&in, instrument_get(&in, i), NULL, NULL);
	assert_int_equal(sum, 100000); /* nothing lost */
	/* a known series still gets its own measurements */
	const char *v[] = { "/r1" };
	uint64_t before = series_snapshot(&in, instrument_get(&in, 1), NULL, NULL);
	instrument_record(&in, v, 1000, NULL, NULL, 0);
	assert_int_equal(series_snapshot(&in, instrument_get(&in, 1), NULL, NULL), before + 1);
	instrument_free(&in);

	struct metrics *m = metrics_create(1);
	for (int i = 0; i < 2100; i++) {
		struct span *s = http_span("svc", SPAN_KIND_SERVER, 200, 1, 0, 1000, false);
		free(s->name);
		assert_true(asprintf(&s->name, "GET /p%d", i) > 0);
		metrics_record(m, s, 0);
		span_free(s);
	}
	char *t = render(m, false);
	assert_has(t, "http_server_request_duration_seconds_count{otel_metric_overflow=\"true\"} 101\n");
	free(t);
	metrics_free(m);
}

static void test_red_attributes(void **state)
{
	struct metrics *m = metrics_create(1);
	struct span *s = http_span("front", SPAN_KIND_CLIENT, 503, 1, 0, 1000, false);
	metrics_record(m, s, 0);
	span_free(s);
	s = span_new();
	s->resource = service("front");
	s->kind = SPAN_KIND_CLIENT;
	s->name = strdup("SELECT users");
	s->end_ns = 2000000; /* 2 ms */
	attrs_add_str(&s->attrs, "db.system.name", "postgresql");
	attrs_add_str(&s->attrs, "db.operation.name", "SELECT");
	attrs_add_str(&s->attrs, "db.query.text", "SELECT * FROM users WHERE id = ?");
	attrs_add_str(&s->attrs, "server.address", "127.0.0.1");
	attrs_add_int(&s->attrs, "server.port", 5432);
	metrics_record(m, s, 0);
	span_free(s);
	char *t = render(m, false);
	assert_has(t, "http_client_request_duration_seconds_count{service_name=\"front\",http_request_method=\"GET\","
		      "http_response_status_code=\"503\",server_address=\"10.0.0.2\",server_port=\"8080\","
		      "error_type=\"500\"} 1\n");
	assert_has(t, "db_client_operation_duration_seconds_bucket{service_name=\"front\",db_system_name="
		      "\"postgresql\",db_operation_name=\"SELECT\",server_address=\"127.0.0.1\",server_port=\"5432\","
		      "le=\"0.005\"} 1\n");
	assert_has(t, "db_client_operation_duration_seconds_bucket{service_name=\"front\",db_system_name="
		      "\"postgresql\",db_operation_name=\"SELECT\",server_address=\"127.0.0.1\",server_port=\"5432\","
		      "le=\"0.001\"} 0\n");
	assert_null(strstr(t, "db_query_text"));
	/* a database is a node of the graph, by its address */
	assert_has(t, "traces_service_graph_request_total{client=\"front\",server=\"127.0.0.1\","
		      "connection_type=\"database\"} 1\n");
	free(t);
	metrics_free(m);
}

static void test_service_graph_joins(void **state)
{
	struct metrics *m = metrics_create(1);
	/* client first, then its server (parent = the client's span id) */
	struct span *c = http_span("a", SPAN_KIND_CLIENT, 200, 10, 1, 300000000, false);
	metrics_record(m, c, 0);
	struct span *srv = http_span("b", SPAN_KIND_SERVER, 200, 11, 10, 100000000, false);
	metrics_record(m, srv, 1);
	span_free(c);
	span_free(srv);
	/* server first (the usual order: it answers before the client reads) */
	srv = http_span("b", SPAN_KIND_SERVER, 500, 21, 20, 100000000, false);
	metrics_record(m, srv, 2);
	c = http_span("a", SPAN_KIND_CLIENT, 500, 20, 1, 300000000, false);
	metrics_record(m, c, 3);
	span_free(c);
	span_free(srv);
	/* a client whose server is not traced: an edge once it waited */
	c = http_span("a", SPAN_KIND_CLIENT, 200, 30, 1, 1000, false);
	metrics_record(m, c, 4);
	span_free(c);
	metrics_tick(m, 5);
	char *t = render(m, false);
	assert_null(strstr(t, "virtual_node"));
	free(t);
	metrics_tick(m, 4 + SG_WAIT_NS);
	t = render(m, false);
	assert_has(t, "traces_service_graph_request_total{client=\"a\",server=\"b\"} 2\n");
	assert_has(t, "traces_service_graph_request_failed_total{client=\"a\",server=\"b\"} 1\n");
	assert_has(t, "traces_service_graph_request_server_seconds_bucket{client=\"a\",server=\"b\",le=\"0.1\"} 2\n");
	assert_has(t, "traces_service_graph_request_client_seconds_bucket{client=\"a\",server=\"b\",le=\"0.2\"} 0\n");
	assert_has(t, "traces_service_graph_request_client_seconds_bucket{client=\"a\",server=\"b\",le=\"0.4\"} 2\n");
	assert_has(t, "traces_service_graph_request_total{client=\"a\",server=\"10.0.0.2\","
		      "connection_type=\"virtual_node\"} 1\n");
	/* a server whose caller is not seen waits and is forgotten, no edge */
	free(t);
	srv = http_span("c", SPAN_KIND_SERVER, 200, 41, 40, 1000, false);
	metrics_record(m, srv, 10 + SG_WAIT_NS);
	span_free(srv);
	metrics_tick(m, 20 + 3 * SG_WAIT_NS);
	t = render(m, false);
	assert_null(strstr(t, "server=\"c\""));
	free(t);
	metrics_free(m);
}

/* weft.dropped: every cause is a series at 0 from the start; cumulative
 * totals from the counters become increments; a total that goes back (a
 * counter read from a component that is gone) changes nothing. */
static void test_dropped_per_cause(void **state)
{
	struct metrics *m = metrics_create(1000);
	assert_non_null(m);
	char *text = render(m, false);
	assert_has(text, "# TYPE weft_dropped_total counter\n");
	for (int c = 0; c < DROP_CAUSE_COUNT; c++) {
		char line[96];
		snprintf(line, sizeof(line), "weft_dropped_total{cause=\"%s\"} 0\n", drop_cause_name(c));
		assert_has(text, line);
	}
	free(text);
	uint64_t t[DROP_CAUSE_COUNT] = {};
	t[DROP_RINGBUF_FULL] = 5;
	t[DROP_OTLP_QUEUE_FULL] = 2;
	metrics_drops(m, t);
	t[DROP_RINGBUF_FULL] = 12;
	metrics_drops(m, t);
	t[DROP_OTLP_QUEUE_FULL] = 0; /* went back: ignored */
	t[DROP_HTTP2_CONN_LOST] = 1;
	metrics_drops(m, t);
	text = render(m, false);
	assert_has(text, "weft_dropped_total{cause=\"ringbuf_full\"} 12\n");
	assert_has(text, "weft_dropped_total{cause=\"otlp_queue_full\"} 2\n");
	assert_has(text, "weft_dropped_total{cause=\"http2_conn_lost\"} 1\n");
	assert_has(text, "weft_dropped_total{cause=\"txn_table_full\"} 0\n");
	free(text);
	metrics_free(m);
}

static void test_listen_addresses(void **state)
{
	assert_int_equal(prometheus_check_listen("127.0.0.1:9400"), 0);
	assert_int_equal(prometheus_check_listen(":9400"), 0);
	assert_int_equal(prometheus_check_listen("[::1]:9400"), 0);
	assert_int_equal(prometheus_check_listen("localhost:9400"), 0);
	assert_int_equal(prometheus_check_listen("9400"), -EINVAL);
	assert_int_equal(prometheus_check_listen("127.0.0.1:"), -EINVAL);
	assert_int_equal(prometheus_check_listen("127.0.0.1:70000"), -EINVAL);
	assert_int_equal(prometheus_check_listen("127.0.0.1:x"), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_and_exposition),
		cmocka_unit_test(test_cardinality_limit),
		cmocka_unit_test(test_red_attributes),
		cmocka_unit_test(test_service_graph_joins),
		cmocka_unit_test(test_listen_addresses),
		cmocka_unit_test(test_dropped_per_cause),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
