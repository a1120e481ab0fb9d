/* OTLP exporter configuration: environment, flags, endpoint resolution and
 * clear errors for malformed values. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp.h"

extern char **environ;

static int clear_env(void **state)
{
	char name[256];

	/* unset every OTEL_* variable (restart the scan after each unsetenv) */
	for (bool again = true; again;) {
		again = false;
		for (char **e = environ; *e; e++) {
			const char *eq = strchr(*e, '=');
			if (strncmp(*e, "OTEL_", 5) || !eq || (size_t)(eq - *e) >= sizeof(name))
				continue;
			memcpy(name, *e, eq - *e);
			name[eq - *e] = '\0';
			unsetenv(name);
			again = true;
			break;
		}
	}
	return 0;
}

static void url_is(const struct otlp_config *cfg, const char *want)
{
	char url[1024];

	assert_true(otlp_config_url(cfg, url, sizeof(url)) > 0);
	assert_string_equal(url, want);
}

/* env parse expected to fail, with err naming var */
static void env_fails(const char *var, const char *value, const char *name_in_err)
{
	struct otlp_config cfg;
	char err[256];

	clear_env(NULL);
	setenv(var, value, 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), -EINVAL);
	if (!strstr(err, name_in_err))
		fail_msg("error for %s=%s does not name %s: '%s'", var, value, name_in_err, err);
	otlp_config_free(&cfg);
	unsetenv(var);
}

static void test_defaults(void **state)
{
	struct otlp_config cfg;
	char err[256];

	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_false(otlp_config_endpoint_set(&cfg));
	assert_int_equal(cfg.protocol, OTLP_PROTOCOL_HTTP_PROTOBUF);
	assert_int_equal(cfg.timeout_ms, 10000);
	assert_int_equal(cfg.compression, OTLP_COMPRESSION_NONE);
	assert_int_equal(cfg.schedule_delay_ms, 5000);
	assert_int_equal(cfg.max_queue_size, 2048);
	assert_int_equal(cfg.max_export_batch_size, 512);
	assert_int_equal(cfg.export_timeout_ms, 30000);
	assert_false(cfg.insecure);
	assert_int_equal(cfg.n_headers, 0);
	url_is(&cfg, "http://localhost:4318/v1/traces");
	cfg.protocol = OTLP_PROTOCOL_GRPC;
	url_is(&cfg, "http://localhost:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export");
	assert_int_equal(otlp_config_check(&cfg, err, sizeof(err)), 0);
	otlp_config_free(&cfg);
}

static void test_endpoints(void **state)
{
	struct otlp_config cfg;
	char err[256];

	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_true(otlp_config_endpoint_set(&cfg));
	url_is(&cfg, "http://collector:4318/v1/traces");
	otlp_config_free(&cfg);

	/* generic: appended to the base path, trailing slash or not */
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318/otlp/", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	url_is(&cfg, "https://collector:4318/otlp/v1/traces");
	otlp_config_free(&cfg);

	/* signal-specific: as is, and wins over the generic one */
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://other:9999/custom/path", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	url_is(&cfg, "http://other:9999/custom/path");
	otlp_config_free(&cfg);

	/* empty means unset */
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", 1);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_false(otlp_config_endpoint_set(&cfg));
	otlp_config_free(&cfg);
}

static void test_grpc_endpoints(void **state)
{
	struct otlp_config cfg;
	char err[256];

	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317/ignored", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.protocol, OTLP_PROTOCOL_GRPC);
	url_is(&cfg, "http://collector:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export");
	otlp_config_free(&cfg);

	/* no scheme: TLS unless insecure */
	setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4317", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	url_is(&cfg, "https://collector:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export");
	assert_int_equal(otlp_config_check(&cfg, err, sizeof(err)), 0);
	otlp_config_free(&cfg);
	setenv("OTEL_EXPORTER_OTLP_INSECURE", "true", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	url_is(&cfg, "http://collector:4317/opentelemetry.proto.collector.trace.v1.TraceService/Export");
	/* the same endpoint is invalid for http/protobuf, named in the error */
	cfg.protocol = OTLP_PROTOCOL_HTTP_PROTOBUF;
	assert_int_equal(otlp_config_check(&cfg, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_EXPORTER_OTLP_ENDPOINT"));
	otlp_config_free(&cfg);

	/* TRACES_ protocol overrides the generic one */
	setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.protocol, OTLP_PROTOCOL_HTTP_PROTOBUF);
	otlp_config_free(&cfg);
}

static void test_headers_and_values(void **state)
{
	struct otlp_config cfg;
	char err[256];

	setenv("OTEL_EXPORTER_OTLP_HEADERS", " Api-Key = s3cr%3Dt ,x-tenant=a%20b,, ", 1);
	setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2500", 1);
	setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip", 1);
	setenv("OTEL_BSP_SCHEDULE_DELAY", "200", 1);
	setenv("OTEL_BSP_MAX_QUEUE_SIZE", "100", 1);
	setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500", 1);
	setenv("OTEL_BSP_EXPORT_TIMEOUT", "3000", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_headers, 2);
	assert_string_equal(cfg.headers[0].name, "api-key");
	assert_string_equal(cfg.headers[0].value, "s3cr=t");
	assert_string_equal(cfg.headers[1].name, "x-tenant");
	assert_string_equal(cfg.headers[1].value, "a b");
	assert_int_equal(cfg.timeout_ms, 2500);
	assert_int_equal(cfg.compression, OTLP_COMPRESSION_GZIP);
	assert_int_equal(cfg.schedule_delay_ms, 200);
	assert_int_equal(cfg.max_queue_size, 100);
	assert_int_equal(cfg.max_export_batch_size, 100); /* clamped to the queue */
	assert_int_equal(cfg.export_timeout_ms, 3000);
	otlp_config_free(&cfg);

	/* TRACES_ variants replace the generic ones */
	setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "only=this", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "7000", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_headers, 1);
	assert_string_equal(cfg.headers[0].name, "only");
	assert_int_equal(cfg.timeout_ms, 7000);
	assert_int_equal(cfg.compression, OTLP_COMPRESSION_NONE);
	otlp_config_free(&cfg);
}

static void test_malformed_env(void **state)
{
	env_fails("OTEL_EXPORTER_OTLP_TIMEOUT", "abc", "OTEL_EXPORTER_OTLP_TIMEOUT");
	env_fails("OTEL_EXPORTER_OTLP_TIMEOUT", "-5", "OTEL_EXPORTER_OTLP_TIMEOUT");
	env_fails("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "OTEL_EXPORTER_OTLP_TIMEOUT");
	env_fails("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10x", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT");
	env_fails("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "OTEL_EXPORTER_OTLP_PROTOCOL");
	env_fails("OTEL_EXPORTER_OTLP_PROTOCOL", "udp", "OTEL_EXPORTER_OTLP_PROTOCOL");
	env_fails("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "GRPC!", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
	env_fails("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "OTEL_EXPORTER_OTLP_COMPRESSION");
	env_fails("OTEL_EXPORTER_OTLP_INSECURE", "maybe", "OTEL_EXPORTER_OTLP_INSECURE");
	env_fails("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "OTEL_EXPORTER_OTLP_HEADERS");
	env_fails("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz", "OTEL_EXPORTER_OTLP_HEADERS");
	env_fails("OTEL_EXPORTER_OTLP_HEADERS", "=v", "OTEL_EXPORTER_OTLP_HEADERS");
	env_fails("OTEL_EXPORTER_OTLP_HEADERS", "bad name=v", "OTEL_EXPORTER_OTLP_HEADERS");
	env_fails("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "x", "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
	env_fails("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector", "OTEL_EXPORTER_OTLP_ENDPOINT");
	env_fails("OTEL_EXPORTER_OTLP_ENDPOINT", "http://", "OTEL_EXPORTER_OTLP_ENDPOINT");
	env_fails("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http:// x", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	env_fails("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem", "OTEL_EXPORTER_OTLP_CERTIFICATE");
	env_fails("OTEL_BSP_MAX_QUEUE_SIZE", "0", "OTEL_BSP_MAX_QUEUE_SIZE");
	env_fails("OTEL_BSP_MAX_QUEUE_SIZE", "lots", "OTEL_BSP_MAX_QUEUE_SIZE");
	env_fails("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1.5", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE");
	env_fails("OTEL_BSP_SCHEDULE_DELAY", "soon", "OTEL_BSP_SCHEDULE_DELAY");
	env_fails("OTEL_BSP_EXPORT_TIMEOUT", "99999999999999999999", "OTEL_BSP_EXPORT_TIMEOUT");
}

static void test_flags(void **state)
{
	struct otlp_config cfg;
	char err[256];

	setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", 1);
	setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env:1/v1/traces", 1);
	setenv("OTEL_EXPORTER_OTLP_HEADERS", "from=env", 1);
	assert_int_equal(otlp_config_from_env(&cfg, err, sizeof(err)), 0);

	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-protocol", "http/protobuf", err,
					      sizeof(err)), 0);
	assert_int_equal(cfg.protocol, OTLP_PROTOCOL_HTTP_PROTOBUF);
	/* a base URL gets /v1/traces, and replaces the env's TRACES_ endpoint */
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-endpoint", "http://flag:4318", err,
					      sizeof(err)), 0);
	url_is(&cfg, "http://flag:4318/v1/traces");
	/* a full traces URL is used as is */
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-endpoint", "http://flag:4318/v1/traces",
					      err, sizeof(err)), 0);
	url_is(&cfg, "http://flag:4318/v1/traces");
	/* first --otlp-headers replaces env headers, later ones add */
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-headers", "a=1", err, sizeof(err)), 0);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-headers", "b=2,c=3", err, sizeof(err)), 0);
	assert_int_equal(cfg.n_headers, 3);
	assert_string_equal(cfg.headers[0].name, "a");
	assert_string_equal(cfg.headers[2].value, "3");
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-timeout", "3s", err, sizeof(err)), 0);
	assert_int_equal(cfg.timeout_ms, 3000);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-compression", "gzip", err, sizeof(err)), 0);
	assert_int_equal(cfg.compression, OTLP_COMPRESSION_GZIP);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-insecure", NULL, err, sizeof(err)), 0);
	assert_true(cfg.insecure);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-insecure", "false", err, sizeof(err)), 0);
	assert_false(cfg.insecure);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-certificate", "/dev/null", err,
					      sizeof(err)), 0);
	assert_string_equal(cfg.certificate, "/dev/null");

	/* errors name the flag; bad values leave the config as it was */
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-timeout", "never", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "--otlp-timeout"));
	assert_int_equal(cfg.timeout_ms, 3000);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-headers", "x", err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--otlp-headers"));
	assert_int_equal(cfg.n_headers, 3);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-protocol", "thrift", err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "--otlp-protocol"));
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-endpoint", NULL, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(otlp_config_set_flag(&cfg, "--otlp-nope", "1", err, sizeof(err)), -ENOENT);
	otlp_config_free(&cfg);
}

static void test_resource_env(void **state)
{
	struct attr_list l = {0};
	char err[256];
	const struct attr *a;

	setenv("OTEL_RESOURCE_ATTRIBUTES",
	       "deployment.environment=prod, team = a%2Cb ,service.name=from-attrs", 1);
	assert_int_equal(otlp_resource_from_env(&l, err, sizeof(err)), 0);
	a = attrs_get(&l, "deployment.environment");
	assert_non_null(a);
	assert_string_equal(a->str, "prod");
	assert_string_equal(attrs_get(&l, "team")->str, "a,b");
	assert_string_equal(attrs_get(&l, "service.name")->str, "from-attrs");
	attrs_free(&l);

	/* OTEL_SERVICE_NAME wins over service.name in the attributes */
	setenv("OTEL_SERVICE_NAME", "checkout", 1);
	assert_int_equal(otlp_resource_from_env(&l, err, sizeof(err)), 0);
	assert_string_equal(attrs_get(&l, "service.name")->str, "checkout");
	attrs_free(&l);

	setenv("OTEL_RESOURCE_ATTRIBUTES", "a=1,broken", 1);
	assert_int_equal(otlp_resource_from_env(&l, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_RESOURCE_ATTRIBUTES"));
	attrs_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_defaults, clear_env),
		cmocka_unit_test_setup(test_endpoints, clear_env),
		cmocka_unit_test_setup(test_grpc_endpoints, clear_env),
		cmocka_unit_test_setup(test_headers_and_values, clear_env),
		cmocka_unit_test_setup(test_malformed_env, clear_env),
		cmocka_unit_test_setup(test_flags, clear_env),
		cmocka_unit_test_setup(test_resource_env, clear_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
