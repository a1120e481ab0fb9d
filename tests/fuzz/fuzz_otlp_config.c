/* libFuzzer harness for the OTLP exporter's configuration: OTEL_* variables
 * (whoever starts weft sets them, or they come from a unit file) and
 * --otlp-* flags. The input is lines "<selector byte><value>": the selector
 * picks a variable or a flag; variables are set, then read, then flags
 * applied, then the whole checked and its URL built. Checked: no crash, no
 * leak, the URL fits its buffer, and a header value that is refused never
 * appears in the error. Built and run by tests/fuzz/run_otlp_config. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static const char *const vars[] = {
	"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL",
	"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_TIMEOUT",
	"OTEL_EXPORTER_OTLP_COMPRESSION", "OTEL_EXPORTER_OTLP_INSECURE", "OTEL_BSP_MAX_QUEUE_SIZE",
	"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_BSP_SCHEDULE_DELAY", "OTEL_RESOURCE_ATTRIBUTES",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

static const char *const flags[] = {
	"--otlp-endpoint", "--otlp-protocol", "--otlp-headers", "--otlp-timeout", "--otlp-compression",
	"--otlp-insecure",
};
#define NFLAGS (sizeof(flags) / sizeof(flags[0]))

/* A refused header value (after its '=') never shows in the error: checked
 * for values of 8 bytes or more without '%' (decoded text could differ). */
static void check_not_echoed(const char *value, const char *err)
{
	const char *eq = strchr(value, '=');
	if (!eq || strchr(value, ',') || strchr(value, '%'))
		return;
	const char *v = eq + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	const char *msg = strstr(err, ": "); /* after the flag's name */
	if (msg && strlen(v) >= 8 && !strpbrk(v, " \t\r\n\"'"))
		CHECK(!strstr(msg, v));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *lines[8], err[512], url[2048];
	size_t n = 0;
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = 0;
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l && n < 8; l = strtok_r(NULL, "\n", &save))
		if (l[0])
			lines[n++] = l;
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(vars[i]);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)lines[i][0] % 2 == 0)
			setenv(vars[(unsigned char)lines[i][0] / 2 % NVARS], lines[i] + 1, 1);
	struct otlp_config cfg;
	err[0] = 0;
	if (otlp_config_from_env(&cfg, err, sizeof(err)) == 0) {
		for (size_t i = 0; i < n; i++) {
			if ((unsigned char)lines[i][0] % 2 == 0)
				continue;
			const char *flag = flags[(unsigned char)lines[i][0] / 2 % NFLAGS];
			err[0] = 0;
			if (otlp_config_set_flag(&cfg, flag, lines[i] + 1, err, sizeof(err)) && !strcmp(flag, "--otlp-headers"))
				check_not_echoed(lines[i] + 1, err);
		}
		if (otlp_config_check(&cfg, err, sizeof(err)) == 0) {
			int len = otlp_config_url(&cfg, url, sizeof(url));
			CHECK(len < 0 || ((size_t)len < sizeof(url) && strlen(url) == (size_t)len));
		}
	}
	otlp_config_free(&cfg);
	struct attr_list attrs = {0};
	(void)otlp_resource_from_env(&attrs, err, sizeof(err));
	attrs_free(&attrs);
	for (size_t i = 0; i < NVARS; i++)
		unsetenv(vars[i]);
	free(buf);
	return 0;
}
