/* OTLP metrics configuration (user/metrics/otlp_metrics.c): the OTEL_*
 * variables, the endpoint (signal-specific as is, generic + /v1/metrics),
 * errors naming the variable; and the encoder's delta state (a second
 * request with nothing new carries zero counts). Decoding by a real
 * receiver is tests/e2e/test_metrics.py's. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_metrics.h"

static void clear_env(void)
{
	unsetenv("OTEL_METRICS_EXPORTER");
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL");
	unsetenv("OTEL_METRIC_EXPORT_INTERVAL");
	unsetenv("OTEL_METRIC_EXPORT_TIMEOUT");
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
}

static void test_config(void **state)
{
	struct otlp_config t;
	struct otlp_metrics_config c;
	char err[256];
	clear_env();
	otlp_config_init(&t);
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), 0);
	assert_false(c.enabled);
	assert_string_equal(c.url, "http://localhost:4318/v1/metrics");
	assert_int_equal(c.interval_ms, 60000);
	assert_false(c.delta);

	setenv("OTEL_METRICS_EXPORTER", "otlp", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "Delta", 1);
	setenv("OTEL_METRIC_EXPORT_INTERVAL", "1500", 1);
	t.endpoint = strdup("http://collector:4318/base/");
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), 0);
	assert_true(c.enabled && c.delta);
	assert_int_equal(c.interval_ms, 1500);
	assert_string_equal(c.url, "http://collector:4318/base/v1/metrics");
	assert_non_null(c.headers);
	otlp_metrics_config_free(&c);
	setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:9/x", 1);
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), 0);
	assert_string_equal(c.url, "http://m:9/x");
	otlp_metrics_config_free(&c);
	/* a metrics endpoint alone turns the exporter on; none wins */
	unsetenv("OTEL_METRICS_EXPORTER");
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), 0);
	assert_true(c.enabled);
	otlp_metrics_config_free(&c);
	setenv("OTEL_METRICS_EXPORTER", "none", 1);
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), 0);
	assert_false(c.enabled);
	setenv("OTEL_METRICS_EXPORTER", "otlp", 1);

	setenv("OTEL_METRIC_EXPORT_INTERVAL", "soon", 1);
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_METRIC_EXPORT_INTERVAL: 'soon'"));
	unsetenv("OTEL_METRIC_EXPORT_INTERVAL");
	setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "sometimes", 1);
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "TEMPORALITY_PREFERENCE: 'sometimes'"));
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
	setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json", 1);
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'http/json'"));
	/* gRPC: scheme://host:port of the endpoint and the service's path */
	setenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc", 1);
	setenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:4317/ignored", 1);
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), 0);
	assert_true(c.grpc);
	assert_string_equal(c.url, "http://m:4317/opentelemetry.proto.collector.metrics.v1.MetricsService/Export");
	otlp_metrics_config_free(&c);
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
	unsetenv("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL");
	setenv("OTEL_METRICS_EXPORTER", "otlp,bogus", 1);
	assert_int_equal(otlp_metrics_config(&t, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_METRICS_EXPORTER: 'bogus'"));
	clear_env();
	otlp_config_free(&t);
}

static void test_delta_state(void **state)
{
	struct metrics *m = metrics_create(1);
	const char *v[INSTR_MAX_LABELS] = { "svc", "GET", "200", "/x" };
	struct otlp_metrics_state *d = otlp_metrics_state_new(true, 1), *c = otlp_metrics_state_new(false, 1);
	uint8_t *b1, *b2, *b3, *b4;
	size_t l1, l2, l3, l4;
	instrument_record(&m->in[METRIC_HTTP_SERVER], v, 1000, NULL, NULL, 0);
	assert_int_equal(otlp_metrics_encode(m, d, 10, &b1, &l1), 0);
	assert_int_equal(otlp_metrics_encode(m, d, 20, &b2, &l2), 0);
	assert_int_equal(otlp_metrics_encode(m, c, 10, &b3, &l3), 0);
	assert_int_equal(otlp_metrics_encode(m, c, 20, &b4, &l4), 0);
	/* the same shape; delta's second request counts 0 where cumulative repeats 1 */
	assert_int_equal(l1, l2);
	assert_int_equal(l3, l4);
	assert_memory_not_equal(b1, b2, l1);
	uint8_t one[9] = { 0x21, 1, 0, 0, 0, 0, 0, 0, 0 }, zero[9] = { 0x21 }; /* count = 4, fixed64 */
	assert_non_null(memmem(b1, l1, one, 9));
	assert_non_null(memmem(b2, l2, zero, 9));
	assert_null(memmem(b2, l2, one, 9));
	assert_non_null(memmem(b4, l4, one, 9));
	free(b1), free(b2), free(b3), free(b4);
	otlp_metrics_state_free(d);
	otlp_metrics_state_free(c);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_delta_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
