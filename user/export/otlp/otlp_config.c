/* OTLP exporter configuration: OTEL_* environment variables, then --otlp-*
 * flags. Every parse error names the variable or flag and the bad value. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "otlp.h"

#define GRPC_EXPORT_PATH "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define HTTP_TRACES_PATH "/v1/traces"

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void otlp_config_init(struct otlp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->protocol = OTLP_PROTOCOL_HTTP_PROTOBUF;
	cfg->timeout_ms = 10000;
	cfg->compression = OTLP_COMPRESSION_NONE;
	cfg->schedule_delay_ms = 5000;
	cfg->max_queue_size = 2048;
	cfg->max_export_batch_size = 512;
	cfg->export_timeout_ms = 30000;
}

static void headers_free(struct otlp_config *cfg)
{
	for (size_t i = 0; i < cfg->n_headers; i++) {
		free(cfg->headers[i].name);
		free(cfg->headers[i].value);
	}
	free(cfg->headers);
	cfg->headers = NULL;
	cfg->n_headers = 0;
}

void otlp_config_free(struct otlp_config *cfg)
{
	free(cfg->endpoint);
	free(cfg->traces_endpoint);
	free(cfg->certificate);
	headers_free(cfg);
	cfg->endpoint = cfg->traces_endpoint = cfg->certificate = NULL;
}

const char *otlp_protocol_name(enum otlp_protocol p)
{
	return p == OTLP_PROTOCOL_GRPC ? "grpc" : "http/protobuf";
}

/* ---- value parsers ---------------------------------------------------- */

/* Milliseconds: a non-negative integer, optionally suffixed "ms" or "s". */
static int parse_ms(const char *name, const char *v, unsigned min, unsigned *out,
		    char *err, size_t errlen)
{
	char *end;
	unsigned long long n;

	while (isspace((unsigned char)*v))
		v++;
	if (!isdigit((unsigned char)*v))
		goto bad;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		goto bad;
	if (strcmp(end, "s") == 0)
		n *= 1000;
	else if (*end && strcmp(end, "ms") != 0)
		goto bad;
	if (n < min || n > 24ULL * 3600 * 1000)
		goto bad;
	*out = (unsigned)n;
	return 0;
bad:
	return fail(err, errlen,
		    "%s: invalid value '%s': expected milliseconds, an integer from %u to 86400000",
		    name, v, min);
}

static int parse_count(const char *name, const char *v, unsigned *out, char *err, size_t errlen)
{
	char *end;
	unsigned long n;

	while (isspace((unsigned char)*v))
		v++;
	if (!isdigit((unsigned char)*v))
		goto bad;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < 1 || n > 10000000)
		goto bad;
	*out = (unsigned)n;
	return 0;
bad:
	return fail(err, errlen, "%s: invalid value '%s': expected an integer from 1 to 10000000",
		    name, v);
}

static int parse_bool(const char *name, const char *v, bool *out, char *err, size_t errlen)
{
	if (!strcasecmp(v, "true") || !strcmp(v, "1")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(v, "false") || !strcmp(v, "0")) {
		*out = false;
		return 0;
	}
	return fail(err, errlen, "%s: invalid value '%s': expected true or false", name, v);
}

static int parse_protocol(const char *name, const char *v, enum otlp_protocol *out,
			  char *err, size_t errlen)
{
	if (!strcmp(v, "grpc")) {
		*out = OTLP_PROTOCOL_GRPC;
		return 0;
	}
	if (!strcmp(v, "http/protobuf")) {
		*out = OTLP_PROTOCOL_HTTP_PROTOBUF;
		return 0;
	}
	if (!strcmp(v, "http/json"))
		return fail(err, errlen, "%s: protocol 'http/json' is not supported "
			    "(use grpc or http/protobuf)", name);
	return fail(err, errlen, "%s: invalid value '%s': expected grpc or http/protobuf", name, v);
}

static int parse_compression(const char *name, const char *v, enum otlp_compression *out,
			     char *err, size_t errlen)
{
	if (!strcmp(v, "gzip")) {
		*out = OTLP_COMPRESSION_GZIP;
		return 0;
	}
	if (!strcmp(v, "none")) {
		*out = OTLP_COMPRESSION_NONE;
		return 0;
	}
	return fail(err, errlen, "%s: invalid value '%s': expected gzip or none", name, v);
}

/* What is wrong with the authority (host[:port]) at the start of s (up to
 * '/', '?' or '#'), or NULL: an unclosed '[', a port that is not a number
 * from 1 to 65535, an empty host, a character no host has. */
static const char *authority_error(const char *s)
{
	size_t n = strcspn(s, "/?#");
	const char *at = memchr(s, '@', n);
	if (at) { /* userinfo@ */
		n -= (size_t)(at + 1 - s);
		s = at + 1;
	}
	const char *end = s + n, *port = NULL;
	if (n == 0)
		return "no host";
	if (*s == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return "'[' of an IPv6 address is not closed by ']'";
		if (close == s + 1)
			return "empty IPv6 address";
		for (const char *c = s + 1; c < close; c++)
			if (!isxdigit((unsigned char)*c) && *c != ':' && *c != '.' && *c != '%')
				return "invalid character in the IPv6 address";
		if (close + 1 < end && close[1] != ':')
			return "unexpected characters after ']'";
		port = close + 1 < end ? close + 2 : NULL;
	} else {
		const char *colon = memchr(s, ':', n);
		if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
			return "an IPv6 address must be in brackets, e.g. http://[::1]:4318";
		if (colon == s)
			return "no host";
		for (const char *c = s; c < (colon ? colon : end); c++)
			if (!isalnum((unsigned char)*c) && !strchr("-._~%", *c))
				return "invalid character in the host name";
		port = colon ? colon + 1 : NULL;
	}
	if (port) {
		unsigned long v = 0;
		if (port == end)
			return "empty port";
		for (const char *c = port; c < end; c++) {
			if (!isdigit((unsigned char)*c))
				return "the port is not a number";
			v = v * 10 + (unsigned long)(*c - '0');
			if (v > 65535)
				return "the port is over 65535";
		}
		if (v == 0)
			return "port 0";
	}
	return NULL;
}

/* An endpoint is "http://host[:port][/path]", "https://...", or (gRPC only,
 * checked later) "host:port". */
static int parse_endpoint(const char *name, const char *v, char **out, char *err, size_t errlen)
{
	const char *sep = strstr(v, "://");
	const char *host = v;

	if (sep) {
		size_t sl = sep - v;
		if (!((sl == 4 && !strncasecmp(v, "http", 4)) ||
		      (sl == 5 && !strncasecmp(v, "https", 5))))
			return fail(err, errlen,
				    "%s: invalid value '%s': scheme must be http:// or https://",
				    name, v);
		host = sep + 3;
	}
	if (!*host || *host == '/' || *host == ':' || strpbrk(v, " \t\r\n"))
		return fail(err, errlen, "%s: invalid value '%s': expected a URL such as "
			    "http://localhost:4318", name, v);
	const char *why = authority_error(host);
	if (why)
		return fail(err, errlen, "%s: invalid value '%s': %s", name, v, why);
	char *copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	free(*out);
	*out = copy;
	return 0;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Trimmed, percent-decoded copy of [s, s+n). NULL on bad escape (a
 * malformed one, or %00: it would cut the value silently) or ENOMEM. */
static char *decode_trim(const char *s, size_t n, bool *bad)
{
	while (n && isspace((unsigned char)*s))
		s++, n--;
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int h, l;
			if (i + 2 >= n) {
				*bad = true;
				goto err;
			}
			h = hexval((unsigned char)s[i + 1]);
			l = hexval((unsigned char)s[i + 2]);
			if (h < 0 || l < 0 || (h == 0 && l == 0)) {
				*bad = true;
				goto err;
			}
			*o++ = (char)(h * 16 + l);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
err:
	free(out);
	return NULL;
}

typedef int (*kv_cb)(void *ctx, char *key, char *value); /* takes ownership */

/* "k1=v1,k2=v2" (W3C baggage-like, percent-encoded). Empty members are
 * skipped; a member without '=' or with an empty key is an error. With
 * secret (headers: tokens), no error message shows any of the value: a
 * member is named by its position and key only. */
static int parse_kv_list(const char *name, const char *v, kv_cb cb, void *ctx, bool secret,
			 char *err, size_t errlen)
{
	const char *p = v;
	unsigned member = 0;

	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		bool bad = false;
		char *key = NULL, *val = NULL;
		int ret;

		/* skip empty members ("a=b,,c=d", trailing comma) */
		size_t k;
		for (k = 0; k < n && isspace((unsigned char)p[k]); k++)
			;
		if (k == n)
			goto next;
		member++;
		if (!eq && secret)
			return fail(err, errlen, "%s: member %u (%zu bytes, not shown) has no '=': expected "
				    "key=value", name, member, n);
		if (!eq)
			return fail(err, errlen, "%s: invalid member '%.*s' in '%s': expected key=value",
				    name, (int)n, p, v);
		key = decode_trim(p, eq - p, &bad);
		if (key)
			val = decode_trim(eq + 1, n - (eq + 1 - p), &bad);
		if (!key || !val) {
			free(key);
			free(val);
			if (bad && secret)
				return fail(err, errlen, "%s: member %u: invalid percent-encoding (%%XX with "
					    "two hex digits; %%00 is not allowed); its text is not shown", name,
					    member);
			if (bad)
				return fail(err, errlen, "%s: invalid percent-encoding in '%.*s' (%%XX with "
					    "two hex digits; %%00 is not allowed)", name, (int)n, p);
			return -ENOMEM;
		}
		if (!*key) {
			free(key);
			free(val);
			if (secret)
				return fail(err, errlen, "%s: member %u has an empty key (its value is not shown)",
					    name, member);
			return fail(err, errlen, "%s: empty key in '%.*s'", name, (int)n, p);
		}
		ret = cb(ctx, key, val);
		if (ret)
			return ret;
next:
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

struct header_ctx {
	struct otlp_config *cfg;
	const char *name;
	char *err;
	size_t errlen;
};

static bool header_name_ok(const char *k)
{
	/* RFC 9110 token */
	for (const char *c = k; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("!#$%&'*+-.^_`|~", *c))
			return false;
	return *k != '\0';
}

static int header_add(void *vctx, char *key, char *value)
{
	struct header_ctx *ctx = vctx;
	struct otlp_config *cfg = ctx->cfg;
	struct otlp_header *n;

	bool ctl = false;
	for (const unsigned char *c = (const unsigned char *)value; *c; c++)
		ctl |= (*c < 0x20 && *c != '\t') || *c == 0x7f;
	if (!header_name_ok(key) || ctl) {
		/* a name is shown only if it is a token: else it may be a mistyped value */
		int ret = ctl && header_name_ok(key) ? fail(ctx->err, ctx->errlen, "%s: the value of header '%s' has a control "
				     "character (not shown)", ctx->name, key)
			      : fail(ctx->err, ctx->errlen, "%s: a header name (%zu bytes, not shown: it may "
				     "be a mistyped value) is not an HTTP token (letters, digits, !#$%%&'*+-.^_`|~)",
				     ctx->name, strlen(key));
		free(key);
		free(value);
		return ret;
	}
	for (char *c = key; *c; c++) /* HTTP/2 wants lowercase names */
		*c = tolower((unsigned char)*c);
	n = realloc(cfg->headers, (cfg->n_headers + 1) * sizeof(*n));
	if (!n) {
		free(key);
		free(value);
		return -ENOMEM;
	}
	cfg->headers = n;
	n[cfg->n_headers].name = key;
	n[cfg->n_headers].value = value;
	cfg->n_headers++;
	return 0;
}

static int parse_headers(struct otlp_config *cfg, const char *name, const char *v, bool append,
			 char *err, size_t errlen)
{
	struct otlp_config tmp = {0};
	struct header_ctx ctx = { .cfg = &tmp, .name = name, .err = err, .errlen = errlen };
	int ret;

	/* parse into tmp first: a bad value leaves cfg untouched */
	ret = parse_kv_list(name, v, header_add, &ctx, true, err, errlen);
	if (ret) {
		headers_free(&tmp);
		return ret;
	}
	if (!append) {
		headers_free(cfg);
		cfg->headers = tmp.headers;
		cfg->n_headers = tmp.n_headers;
		return 0;
	}
	for (size_t i = 0; i < tmp.n_headers; i++) {
		ctx.cfg = cfg;
		ret = header_add(&ctx, tmp.headers[i].name, tmp.headers[i].value);
		tmp.headers[i].name = tmp.headers[i].value = NULL;
		if (ret)
			break;
	}
	headers_free(&tmp);
	return ret;
}

static int parse_certificate(const char *name, const char *v, char **out, char *err, size_t errlen)
{
	char *copy;

	if (access(v, R_OK) != 0)
		return fail(err, errlen, "%s: cannot read certificate file '%s': %s", name, v,
			    strerror(errno));
	copy = strdup(v);
	if (!copy)
		return -ENOMEM;
	free(*out);
	*out = copy;
	return 0;
}

/* ---- environment -------------------------------------------------------- */

/* Value of the TRACES_ variable if set and non-empty, else of the generic
 * one; *name is set to the variable used. */
static const char *env2(const char *generic, const char *traces, const char **name)
{
	const char *v = getenv(traces);

	if (v && *v) {
		*name = traces;
		return v;
	}
	v = getenv(generic);
	if (v && *v) {
		*name = generic;
		return v;
	}
	return NULL;
}

static const char *env1(const char *var)
{
	const char *v = getenv(var);
	return v && *v ? v : NULL;
}

#define G(x) "OTEL_EXPORTER_OTLP_" x
#define T(x) "OTEL_EXPORTER_OTLP_TRACES_" x

int otlp_config_from_env(struct otlp_config *cfg, char *err, size_t errlen)
{
	const char *v, *name;
	int ret;

	otlp_config_init(cfg);
	if (err && errlen)
		err[0] = '\0';

	if ((v = env1(G("ENDPOINT")))) {
		ret = parse_endpoint(G("ENDPOINT"), v, &cfg->endpoint, err, errlen);
		if (ret)
			return ret;
		cfg->endpoint_src = G("ENDPOINT");
	}
	if ((v = env1(T("ENDPOINT")))) {
		ret = parse_endpoint(T("ENDPOINT"), v, &cfg->traces_endpoint, err, errlen);
		if (ret)
			return ret;
		cfg->endpoint_src = T("ENDPOINT");
	}
	if ((v = env2(G("PROTOCOL"), T("PROTOCOL"), &name)) &&
	    (ret = parse_protocol(name, v, &cfg->protocol, err, errlen)))
		return ret;
	if ((v = env2(G("HEADERS"), T("HEADERS"), &name)) &&
	    (ret = parse_headers(cfg, name, v, false, err, errlen)))
		return ret;
	if ((v = env2(G("TIMEOUT"), T("TIMEOUT"), &name)) &&
	    (ret = parse_ms(name, v, 1, &cfg->timeout_ms, err, errlen)))
		return ret;
	if ((v = env2(G("COMPRESSION"), T("COMPRESSION"), &name)) &&
	    (ret = parse_compression(name, v, &cfg->compression, err, errlen)))
		return ret;
	if ((v = env2(G("CERTIFICATE"), T("CERTIFICATE"), &name)) &&
	    (ret = parse_certificate(name, v, &cfg->certificate, err, errlen)))
		return ret;
	if ((v = env2(G("INSECURE"), T("INSECURE"), &name)) &&
	    (ret = parse_bool(name, v, &cfg->insecure, err, errlen)))
		return ret;
	if ((v = env1("OTEL_BSP_SCHEDULE_DELAY")) &&
	    (ret = parse_ms("OTEL_BSP_SCHEDULE_DELAY", v, 0, &cfg->schedule_delay_ms, err, errlen)))
		return ret;
	if ((v = env1("OTEL_BSP_EXPORT_TIMEOUT")) &&
	    (ret = parse_ms("OTEL_BSP_EXPORT_TIMEOUT", v, 0, &cfg->export_timeout_ms, err, errlen)))
		return ret;
	if ((v = env1("OTEL_BSP_MAX_QUEUE_SIZE")) &&
	    (ret = parse_count("OTEL_BSP_MAX_QUEUE_SIZE", v, &cfg->max_queue_size, err, errlen)))
		return ret;
	if ((v = env1("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")) &&
	    (ret = parse_count("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", v, &cfg->max_export_batch_size,
			       err, errlen)))
		return ret;
	/* The spec: a batch size above the queue size is clamped to it. */
	if (cfg->max_export_batch_size > cfg->max_queue_size)
		cfg->max_export_batch_size = cfg->max_queue_size;
	return 0;
}

/* ---- flags -------------------------------------------------------------- */

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

int otlp_config_set_flag(struct otlp_config *cfg, const char *flag, const char *value,
			 char *err, size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!strcmp(flag, "--otlp-insecure"))
		return value ? parse_bool(flag, value, &cfg->insecure, err, errlen)
			     : (cfg->insecure = true, 0);
	if (!strncmp(flag, "--otlp-", 7) && !value)
		return fail(err, errlen, "%s: missing value", flag);

	if (!strcmp(flag, "--otlp-endpoint")) {
		char *url = NULL;
		int ret = parse_endpoint(flag, value, &url, err, errlen);
		if (ret)
			return ret;
		free(cfg->endpoint);
		free(cfg->traces_endpoint);
		cfg->endpoint = cfg->traces_endpoint = NULL;
		/* a full traces URL is used as is, anything else is a base */
		if (ends_with(url, HTTP_TRACES_PATH))
			cfg->traces_endpoint = url;
		else
			cfg->endpoint = url;
		cfg->endpoint_src = "--otlp-endpoint";
		return 0;
	}
	if (!strcmp(flag, "--otlp-protocol"))
		return parse_protocol(flag, value, &cfg->protocol, err, errlen);
	if (!strcmp(flag, "--otlp-headers")) {
		int ret = parse_headers(cfg, flag, value, cfg->headers_from_flag, err, errlen);
		if (!ret)
			cfg->headers_from_flag = true;
		return ret;
	}
	if (!strcmp(flag, "--otlp-timeout"))
		return parse_ms(flag, value, 1, &cfg->timeout_ms, err, errlen);
	if (!strcmp(flag, "--otlp-compression"))
		return parse_compression(flag, value, &cfg->compression, err, errlen);
	if (!strcmp(flag, "--otlp-certificate"))
		return parse_certificate(flag, value, &cfg->certificate, err, errlen);
	fail(err, errlen, "%s: unknown option", flag);
	return -ENOENT;
}

bool otlp_config_endpoint_set(const struct otlp_config *cfg)
{
	return cfg->endpoint || cfg->traces_endpoint;
}

/* ---- resolution --------------------------------------------------------- */

static bool has_scheme(const char *url)
{
	return strstr(url, "://") != NULL;
}

int otlp_config_url(const struct otlp_config *cfg, char *buf, size_t len)
{
	const char *ep = cfg->traces_endpoint ? cfg->traces_endpoint : cfg->endpoint;
	int n;

	if (cfg->protocol == OTLP_PROTOCOL_HTTP_PROTOBUF) {
		if (!ep)
			n = snprintf(buf, len, "http://localhost:4318" HTTP_TRACES_PATH);
		else if (!has_scheme(ep))
			return -EINVAL;
		else if (cfg->traces_endpoint)
			n = snprintf(buf, len, "%s", ep);
		else {
			/* generic endpoint: base path + "/v1/traces" */
			size_t l = strlen(ep);
			while (l && ep[l - 1] == '/')
				l--;
			n = snprintf(buf, len, "%.*s" HTTP_TRACES_PATH, (int)l, ep);
		}
	} else {
		const char *scheme = cfg->insecure ? "http://" : "https://";
		const char *host;
		size_t hl;

		if (!ep)
			ep = "http://localhost:4317";
		host = ep;
		if (has_scheme(ep)) {
			scheme = !strncasecmp(ep, "https", 5) ? "https://" : "http://";
			host = strstr(ep, "://") + 3;
		}
		/* gRPC uses only scheme://host:port; a path is ignored */
		hl = strcspn(host, "/?#");
		n = snprintf(buf, len, "%s%.*s" GRPC_EXPORT_PATH, scheme, (int)hl, host);
	}
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	return n;
}

int otlp_config_check(const struct otlp_config *cfg, char *err, size_t errlen)
{
	const char *ep = cfg->traces_endpoint ? cfg->traces_endpoint : cfg->endpoint;
	char url[2048];

	if (ep && cfg->protocol == OTLP_PROTOCOL_HTTP_PROTOBUF && !has_scheme(ep))
		return fail(err, errlen, "%s: '%s' has no scheme: http/protobuf needs a URL "
			    "such as http://%s", cfg->endpoint_src ? cfg->endpoint_src : "endpoint",
			    ep, ep);
	if (otlp_config_url(cfg, url, sizeof(url)) < 0)
		return fail(err, errlen, "%s: invalid endpoint '%s'",
			    cfg->endpoint_src ? cfg->endpoint_src : "endpoint", ep ? ep : "");
	if (cfg->max_export_batch_size > cfg->max_queue_size)
		return fail(err, errlen, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE (%u) exceeds "
			    "OTEL_BSP_MAX_QUEUE_SIZE (%u)", cfg->max_export_batch_size,
			    cfg->max_queue_size);
	return 0;
}

/* ---- resource from weft's own environment ------------------------------- */

static int resource_add(void *ctx, char *key, char *value)
{
	int ret = attrs_set_str(ctx, key, value);
	free(key);
	free(value);
	return ret;
}

int otlp_resource_from_env(struct attr_list *out, char *err, size_t errlen)
{
	const char *v;
	int ret;

	if (err && errlen)
		err[0] = '\0';
	if ((v = env1("OTEL_RESOURCE_ATTRIBUTES"))) {
		ret = parse_kv_list("OTEL_RESOURCE_ATTRIBUTES", v, resource_add, out, false, err, errlen);
		if (ret)
			return ret;
	}
	if ((v = env1("OTEL_SERVICE_NAME"))) {
		ret = attrs_set_str(out, "service.name", v);
		if (ret)
			return ret;
	}
	return 0;
}
