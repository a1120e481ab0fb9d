/* OTLP/HTTP and OTLP/gRPC requests with libcurl. A multi handle drives the
 * single easy handle so that a send can be interrupted (shutdown deadline)
 * with curl_multi_wakeup(), and so that connections are reused. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>
#include <zlib.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "otlp_transport.h"

#define MAX_RESPONSE (1u << 20)
/* Longer Retry-After values are cut here (the exporter caps them lower);
 * keeps seconds * 1000 far from overflowing. */
#define RETRY_AFTER_MAX_S (24 * 3600L)

struct buf {
	uint8_t *data;
	size_t len, cap;
};

struct otlp_transport {
	CURLM *multi;
	CURL *easy;
	enum otlp_protocol protocol;
	enum otlp_compression compression;
	unsigned timeout_ms;
	char url[2048];
	char *certificate;
	struct otlp_header *headers; /* copies */
	size_t n_headers;
	_Atomic uint64_t abort_at_ns;
	char errbuf[CURL_ERROR_SIZE];
	/* per request */
	struct buf resp, frame;
	long retry_after_ms;
	int grpc_status;
	char grpc_message[200];
	bool resp_gzip;
};

uint64_t otlp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int buf_reserve(struct buf *b, size_t cap)
{
	uint8_t *n;

	if (cap <= b->cap)
		return 0;
	n = realloc(b->data, cap);
	if (!n)
		return -ENOMEM;
	b->data = n;
	b->cap = cap;
	return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct otlp_transport *t = ud;
	size_t n = size * nmemb;

	/* keep at most MAX_RESPONSE bytes; read (and ignore) the rest */
	if (t->resp.len + n <= MAX_RESPONSE &&
	    !buf_reserve(&t->resp, t->resp.len + n > 4096 ? t->resp.len + n : 4096)) {
		memcpy(t->resp.data + t->resp.len, ptr, n);
		t->resp.len += n;
	}
	return n;
}

/* grpc-message is percent-encoded. */
static void percent_decode(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
			char hex[3] = { s[1], s[2], 0 };
			*o++ = (char)strtol(hex, NULL, 16);
			s += 2;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Called for each header line, trailers included (HTTP/2 trailers too). */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct otlp_transport *t = ud;
	size_t n = size * nmemb, vlen;
	char line[512], *colon, *v;

	if (n >= sizeof(line))
		return n; /* no header of ours is that long */
	memcpy(line, ptr, n);
	line[n] = '\0';
	if (!strncmp(line, "HTTP/", 5)) { /* a new response (after 1xx) */
		t->retry_after_ms = -1;
		return n;
	}
	colon = strchr(line, ':');
	if (!colon)
		return n;
	*colon = '\0';
	v = colon + 1;
	while (*v == ' ' || *v == '\t')
		v++;
	vlen = strlen(v);
	while (vlen && isspace((unsigned char)v[vlen - 1]))
		v[--vlen] = '\0';

	if (!strcasecmp(line, "retry-after")) {
		char *end;
		long secs = strtol(v, &end, 10); /* LONG_MAX on overflow */
		if (end != v && !*end && secs >= 0) {
			t->retry_after_ms = (secs < RETRY_AFTER_MAX_S ? secs : RETRY_AFTER_MAX_S) * 1000;
		} else {
			time_t at = curl_getdate(v, NULL), now = time(NULL);
			if (at != -1)
				t->retry_after_ms = at <= now ? 0
						    : at - now < RETRY_AFTER_MAX_S ? (long)(at - now) * 1000
						    : RETRY_AFTER_MAX_S * 1000;
		}
	} else if (!strcasecmp(line, "grpc-status")) {
		t->grpc_status = atoi(v);
	} else if (!strcasecmp(line, "grpc-message")) {
		snprintf(t->grpc_message, sizeof(t->grpc_message), "%s", v);
		percent_decode(t->grpc_message);
	} else if (!strcasecmp(line, "grpc-encoding")) {
		t->resp_gzip = !strcasecmp(v, "gzip");
	}
	return n;
}

static int xferinfo(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct otlp_transport *t = ud;
	uint64_t at = atomic_load(&t->abort_at_ns);

	return at && otlp_now_ns() >= at; /* non-zero aborts the transfer */
}

static void transport_reset_handle(struct otlp_transport *t)
{
	CURL *e = t->easy;

	curl_easy_setopt(e, CURLOPT_URL, t->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, xferinfo);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "weft/" WEFT_VERSION);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	if (getenv("WEFT_OTLP_CURL_VERBOSE")) /* debugging aid: libcurl's trace on stderr */
		curl_easy_setopt(e, CURLOPT_VERBOSE, 1L);
	if (t->certificate)
		curl_easy_setopt(e, CURLOPT_CAINFO, t->certificate);
	if (t->protocol == OTLP_PROTOCOL_GRPC) {
		bool h2c = strncasecmp(t->url, "https", 5) != 0;
		curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
				 h2c ? (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE
				     : (long)CURL_HTTP_VERSION_2TLS);
		/* libcurl < 8.0 breaks reused prior-knowledge HTTP/2 connections
		 * ("Error in the HTTP2 framing layer", curl issue #10634): one
		 * connection per request there (a batch is hundreds of spans). */
		if (h2c && curl_version_info(CURLVERSION_NOW)->version_num < 0x080000)
			curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	}
}

struct otlp_transport *otlp_transport_new(const struct otlp_config *cfg, char *err, size_t errlen)
{
	struct otlp_transport *t = NULL;

	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "libcurl initialisation failed: %s",
			 curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	if (cfg->protocol == OTLP_PROTOCOL_GRPC &&
	    !(curl_version_info(CURLVERSION_NOW)->features & CURL_VERSION_HTTP2)) {
		snprintf(err, errlen, "OTLP/gRPC needs HTTP/2, which this libcurl lacks");
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		goto nomem;
	if (otlp_config_url(cfg, t->url, sizeof(t->url)) < 0) {
		snprintf(err, errlen, "invalid OTLP endpoint");
		goto cleanup;
	}
	t->protocol = cfg->protocol;
	t->compression = cfg->compression;
	t->timeout_ms = cfg->timeout_ms;
	if (cfg->certificate && !(t->certificate = strdup(cfg->certificate)))
		goto nomem;
	if (cfg->n_headers) {
		t->headers = calloc(cfg->n_headers, sizeof(*t->headers));
		if (!t->headers)
			goto nomem;
		t->n_headers = cfg->n_headers;
		for (size_t i = 0; i < cfg->n_headers; i++) {
			t->headers[i].name = strdup(cfg->headers[i].name);
			t->headers[i].value = strdup(cfg->headers[i].value);
			if (!t->headers[i].name || !t->headers[i].value)
				goto nomem;
		}
	}
	t->multi = curl_multi_init();
	t->easy = curl_easy_init();
	if (!t->multi || !t->easy)
		goto nomem;
	transport_reset_handle(t);
	return t;
nomem:
	snprintf(err, errlen, "out of memory");
cleanup:
	otlp_transport_free(t);
	return NULL;
}

void otlp_transport_free(struct otlp_transport *t)
{
	if (!t)
		return;
	if (t->easy)
		curl_easy_cleanup(t->easy);
	if (t->multi)
		curl_multi_cleanup(t->multi);
	for (size_t i = 0; i < t->n_headers; i++) {
		free(t->headers[i].name);
		free(t->headers[i].value);
	}
	free(t->headers);
	free(t->certificate);
	free(t->resp.data);
	free(t->frame.data);
	free(t);
}

void otlp_transport_abort_at(struct otlp_transport *t, uint64_t at_ns)
{
	atomic_store(&t->abort_at_ns, at_ns);
	curl_multi_wakeup(t->multi);
}

/* gzip (RFC 1952) of in, written to out at offset off. */
static int gzip_into(struct buf *out, size_t off, const uint8_t *in, size_t len)
{
	z_stream z = {0};
	int ret = -ENOMEM;

	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	if (buf_reserve(out, off + deflateBound(&z, len) + 16))
		goto cleanup;
	z.next_in = (Bytef *)in;
	z.avail_in = len;
	z.next_out = out->data + off;
	z.avail_out = out->cap - off;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
		ret = -EIO;
		goto cleanup;
	}
	out->len = off + z.total_out;
	ret = 0;
cleanup:
	deflateEnd(&z);
	return ret;
}

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static struct curl_slist *add_header(struct curl_slist *l, bool *ok, const char *fmt, ...)
{
	char line[1024];
	struct curl_slist *n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = curl_slist_append(l, line);
	if (!n) {
		*ok = false;
		return l;
	}
	return n;
}

static const char *grpc_code_name(int code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL",
		"UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};
	return code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code] : "?";
}

static bool grpc_retryable(int code)
{
	switch (code) {
	case 1:  /* CANCELLED */
	case 4:  /* DEADLINE_EXCEEDED */
	case 8:  /* RESOURCE_EXHAUSTED */
	case 10: /* ABORTED */
	case 11: /* OUT_OF_RANGE */
	case 14: /* UNAVAILABLE */
	case 15: /* DATA_LOSS */
		return true;
	default:
		return false;
	}
}

static bool http_retryable(long status)
{
	return status == 429 || status == 502 || status == 503 || status == 504;
}

/* Returns false if data is not an ExportTraceServiceResponse. */
static bool parse_response(struct otlp_result *res, const uint8_t *data, size_t len)
{
	Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *r;

	if (!len)
		return true;
	r = opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
		NULL, len, data);
	if (!r)
		return false;
	if (r->partial_success) {
		res->rejected = r->partial_success->rejected_spans;
		if (r->partial_success->error_message)
			snprintf(res->partial_msg, sizeof(res->partial_msg), "%s",
				 r->partial_success->error_message);
	}
	opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r, NULL);
	return true;
}

/* A short printable excerpt of an error response body, for logs. */
static void body_excerpt(const struct buf *b, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = 0; i < b->len && n + 1 < outlen && n < 120; i++) {
		unsigned char c = b->data[i];
		if (c == '\n' || c == '\r' || c == '\t')
			c = ' ';
		if (!isprint(c)) {
			n = 0; /* binary (a google.rpc.Status): skip */
			break;
		}
		out[n++] = c;
	}
	out[n] = '\0';
}

static void classify(struct otlp_transport *t, CURLcode cc, bool aborted, struct otlp_result *res)
{
	bool grpc = t->protocol == OTLP_PROTOCOL_GRPC;
	long status = 0;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	res->http_status = status;
	res->grpc_status = t->grpc_status;
	res->curl_code = (int)cc;
	res->retry_after_ms = t->retry_after_ms;

	if (aborted || cc == CURLE_ABORTED_BY_CALLBACK) {
		res->outcome = OTLP_OUTCOME_ABORTED;
		snprintf(res->error, sizeof(res->error), "request abandoned at shutdown deadline");
		return;
	}
	if (cc != CURLE_OK) {
		/* network trouble, timeouts, HTTP/2 stream resets: transient */
		res->outcome = OTLP_OUTCOME_RETRY;
		snprintf(res->error, sizeof(res->error), "%s: %s", t->url,
			 t->errbuf[0] ? t->errbuf : curl_easy_strerror(cc));
		return;
	}
	if (status < 200 || status > 299) {
		char excerpt[128];
		body_excerpt(&t->resp, excerpt, sizeof(excerpt));
		res->outcome = http_retryable(status) ? OTLP_OUTCOME_RETRY : OTLP_OUTCOME_FAIL;
		snprintf(res->error, sizeof(res->error), "%s: HTTP %ld%s%s", t->url, status,
			 excerpt[0] ? ": " : "", excerpt);
		return;
	}
	if (!grpc) {
		const char *ctype = NULL;
		curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
		/* the collector said yes: the spans count as exported, but an
		 * answer that is not OTLP hints at an endpoint that is not a
		 * collector (a web page answering every path) */
		if (t->resp.len && (!ctype || strncasecmp(ctype, "application/x-protobuf", 22) ||
				    !parse_response(res, t->resp.data, t->resp.len))) {
			char shown[64];
			size_t n = 0;
			for (const char *c = ctype ? ctype : "no Content-Type"; *c && n + 1 < sizeof(shown); c++)
				shown[n++] = isprint((unsigned char)*c) ? *c : '?';
			shown[n] = '\0';
			snprintf(res->not_otlp, sizeof(res->not_otlp), "HTTP %ld, %s, %zu bytes", status,
				 shown, t->resp.len);
		}
		res->outcome = OTLP_OUTCOME_OK;
		return;
	}
	if (t->grpc_status < 0) {
		res->outcome = OTLP_OUTCOME_FAIL;
		snprintf(res->error, sizeof(res->error), "%s: response without grpc-status", t->url);
		return;
	}
	if (t->grpc_status != 0) {
		res->outcome = grpc_retryable(t->grpc_status) ? OTLP_OUTCOME_RETRY : OTLP_OUTCOME_FAIL;
		snprintf(res->error, sizeof(res->error), "%s: gRPC status %d %s%s%s", t->url,
			 t->grpc_status, grpc_code_name(t->grpc_status),
			 t->grpc_message[0] ? ": " : "", t->grpc_message);
		return;
	}
	res->outcome = OTLP_OUTCOME_OK;
	/* one length-prefixed message; a compressed one is not worth decoding */
	if (t->resp.len >= 5 && t->resp.data[0] == 0) {
		uint32_t mlen = (uint32_t)t->resp.data[1] << 24 | (uint32_t)t->resp.data[2] << 16 |
				(uint32_t)t->resp.data[3] << 8 | t->resp.data[4];
		if (mlen <= t->resp.len - 5)
			parse_response(res, t->resp.data + 5, mlen);
	}
}

int otlp_transport_send(struct otlp_transport *t, const uint8_t *body, size_t len,
			struct otlp_result *res)
{
	bool grpc = t->protocol == OTLP_PROTOCOL_GRPC, gzip = t->compression == OTLP_COMPRESSION_GZIP;
	struct curl_slist *hdrs = NULL;
	const uint8_t *payload = body;
	size_t plen = len;
	bool ok = true, aborted = false;
	CURLcode cc = CURLE_OK;
	CURLMsg *msg;
	int running, left, ret = 0;

	memset(res, 0, sizeof(*res));
	res->grpc_status = -1;
	res->retry_after_ms = -1;
	t->resp.len = 0;
	t->retry_after_ms = -1;
	t->grpc_status = -1;
	t->grpc_message[0] = '\0';
	t->resp_gzip = false;
	t->errbuf[0] = '\0';

	/* body: optional gzip, and for gRPC the 5-byte message prefix */
	if (grpc || gzip) {
		size_t off = grpc ? 5 : 0;
		if (gzip) {
			ret = gzip_into(&t->frame, off, body, len);
		} else if (!(ret = buf_reserve(&t->frame, off + len))) {
			memcpy(t->frame.data + off, body, len);
			t->frame.len = off + len;
		}
		if (ret)
			return ret;
		if (grpc) {
			uint32_t mlen = t->frame.len - 5;
			t->frame.data[0] = gzip ? 1 : 0;
			t->frame.data[1] = mlen >> 24;
			t->frame.data[2] = mlen >> 16;
			t->frame.data[3] = mlen >> 8;
			t->frame.data[4] = mlen;
		}
		payload = t->frame.data;
		plen = t->frame.len;
	}

	hdrs = add_header(hdrs, &ok, "Expect:");
	if (grpc) {
		hdrs = add_header(hdrs, &ok, "content-type: application/grpc");
		hdrs = add_header(hdrs, &ok, "te: trailers");
		hdrs = add_header(hdrs, &ok, "grpc-timeout: %um", t->timeout_ms);
		hdrs = add_header(hdrs, &ok, "grpc-accept-encoding: identity");
		if (gzip)
			hdrs = add_header(hdrs, &ok, "grpc-encoding: gzip");
	} else {
		hdrs = add_header(hdrs, &ok, "Content-Type: application/x-protobuf");
		if (gzip)
			hdrs = add_header(hdrs, &ok, "Content-Encoding: gzip");
	}
	for (size_t i = 0; i < t->n_headers; i++)
		hdrs = add_header(hdrs, &ok, "%s: %s", t->headers[i].name, t->headers[i].value);
	if (!ok) {
		ret = -ENOMEM;
		goto cleanup;
	}
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, (const char *)payload);
	curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)plen);

	if (curl_multi_add_handle(t->multi, t->easy) != CURLM_OK) {
		ret = -ENOMEM;
		goto cleanup;
	}
	for (;;) {
		uint64_t at, now;
		int timeout = 1000;

		if (curl_multi_perform(t->multi, &running) != CURLM_OK || !running)
			break;
		at = atomic_load(&t->abort_at_ns);
		now = otlp_now_ns();
		if (at && now >= at) {
			aborted = true;
			break;
		}
		if (at && (at - now) / 1000000 + 1 < (uint64_t)timeout)
			timeout = (at - now) / 1000000 + 1;
		curl_multi_poll(t->multi, NULL, 0, timeout, NULL);
	}
	while ((msg = curl_multi_info_read(t->multi, &left)))
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == t->easy)
			cc = msg->data.result;
	curl_multi_remove_handle(t->multi, t->easy);
	classify(t, cc, aborted, res);
cleanup:
	curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	return ret;
}
