#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "otlp_metrics.h"

/* ---- configuration ------------------------------------------------------ */

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static int env_ms(const char *name, unsigned def, unsigned *out, char *err, size_t errlen)
{
	const char *v = env(name);
	char *end;
	*out = def;
	if (!v)
		return 0;
	errno = 0;
	unsigned long ms = strtoul(v, &end, 10);
	if (errno || end == v || *end || ms == 0 || ms > 86400000) {
		snprintf(err, errlen, "%s: '%s' is not a number of milliseconds from 1 to 86400000", name, v);
		return -EINVAL;
	}
	*out = ms;
	return 0;
}

int otlp_metrics_config(const struct otlp_config *traces, struct otlp_metrics_config *out, char *err,
			size_t errlen)
{
	memset(out, 0, sizeof(*out));
	const char *exp = env("OTEL_METRICS_EXPORTER");
	/* A metrics endpoint of its own says where metrics go, unless told none. */
	out->enabled = env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") != NULL;
	if (exp) {
		out->enabled = false;
		char copy[128], *save = NULL;
		snprintf(copy, sizeof(copy), "%s", exp);
		for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			if (!strcmp(t, "otlp"))
				out->enabled = true;
			else if (strcmp(t, "none") && strcmp(t, "prometheus") && strcmp(t, "console")) {
				snprintf(err, errlen, "OTEL_METRICS_EXPORTER: '%s' is not one of: otlp, none", t);
				return -EINVAL;
			}
		}
	}
	const char *proto = env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL");
	if (proto) {
		if (!strcmp(proto, "grpc")) {
			out->grpc = true;
		} else if (strcmp(proto, "http/protobuf")) {
			snprintf(err, errlen, "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: '%s' is not one of: http/protobuf, grpc",
				 proto);
			return -EINVAL;
		}
	} else {
		out->grpc = traces->protocol == OTLP_PROTOCOL_GRPC;
	}
	const char *ep = env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");
	int n;
	if (out->grpc) {
		/* gRPC: scheme://host:port of the endpoint, its path ignored. */
		const char *e = ep ? ep : traces->endpoint ? traces->endpoint : "http://localhost:4317";
		const char *scheme = traces->insecure ? "http://" : "https://", *host = e;
		if (strstr(e, "://")) {
			scheme = !strncasecmp(e, "https", 5) ? "https://" : "http://";
			host = strstr(e, "://") + 3;
		}
		n = snprintf(out->url, sizeof(out->url), "%s%.*s/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
			     scheme, (int)strcspn(host, "/?#"), host);
	} else if (ep) {
		n = snprintf(out->url, sizeof(out->url), "%s", ep);
	} else if (traces->endpoint) {
		size_t l = strlen(traces->endpoint);
		while (l && traces->endpoint[l - 1] == '/')
			l--;
		n = snprintf(out->url, sizeof(out->url), "%.*s/v1/metrics", (int)l, traces->endpoint);
	} else {
		n = snprintf(out->url, sizeof(out->url), "http://localhost:4318/v1/metrics");
	}
	if (n < 0 || (size_t)n >= sizeof(out->url) || !strstr(out->url, "://")) {
		snprintf(err, errlen, "%s: '%s' is not an http(s) URL",
			 ep ? "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT" : "OTEL_EXPORTER_OTLP_ENDPOINT", out->url);
		return -EINVAL;
	}
	int rc = env_ms("OTEL_METRIC_EXPORT_INTERVAL", 60000, &out->interval_ms, err, errlen);
	rc = rc ?: env_ms("OTEL_METRIC_EXPORT_TIMEOUT", 30000, &out->timeout_ms, err, errlen);
	if (rc)
		return rc;
	const char *t = env("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE");
	if (t) {
		if (!strcasecmp(t, "delta") || !strcasecmp(t, "lowmemory")) {
			out->delta = true; /* counters and histograms: delta in both */
		} else if (strcasecmp(t, "cumulative")) {
			snprintf(err, errlen,
				 "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: '%s' is not one of: cumulative, "
				 "delta, lowmemory",
				 t);
			return -EINVAL;
		}
	}
	if (traces->certificate)
		snprintf(out->certificate, sizeof(out->certificate), "%s", traces->certificate);
	if (!out->enabled)
		return 0;
	out->headers = curl_slist_append(NULL, out->grpc ? "Content-Type: application/grpc"
							 : "Content-Type: application/x-protobuf");
	if (out->grpc)
		out->headers = curl_slist_append(out->headers, "TE: trailers");
	out->headers = curl_slist_append(out->headers, "User-Agent: weft/" WEFT_VERSION);
	for (size_t i = 0; out->headers && i < traces->n_headers; i++) {
		char h[1024];
		snprintf(h, sizeof(h), "%s: %s", traces->headers[i].name, traces->headers[i].value);
		struct curl_slist *l = curl_slist_append(out->headers, h);
		if (!l) {
			curl_slist_free_all(out->headers);
			out->headers = NULL;
		}
		out->headers = l;
	}
	if (!out->headers) {
		snprintf(err, errlen, "otlp metrics: out of memory");
		return -ENOMEM;
	}
	return 0;
}

void otlp_metrics_config_free(struct otlp_metrics_config *cfg)
{
	curl_slist_free_all(cfg->headers);
	cfg->headers = NULL;
}

/* ---- protobuf wire format ----------------------------------------------- */

struct pb {
	uint8_t *p;
	size_t len, cap;
	bool oom;
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

static void pb_raw(struct pb *b, const void *d, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 256;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, d, n);
	b->len += n;
}

static void pb_varint(struct pb *b, uint64_t v)
{
	uint8_t t[10];
	size_t n = 0;
	do {
		t[n++] = (v & 0x7f) | (v > 0x7f ? 0x80 : 0);
		v >>= 7;
	} while (v);
	pb_raw(b, t, n);
}

static void pb_tag(struct pb *b, unsigned field, unsigned wt)
{
	pb_varint(b, (uint64_t)field << 3 | wt);
}

static void pb_bytes(struct pb *b, unsigned field, const void *d, size_t n)
{
	pb_tag(b, field, WT_LEN);
	pb_varint(b, n);
	pb_raw(b, d, n);
}

static void pb_str(struct pb *b, unsigned field, const char *s)
{
	pb_bytes(b, field, s, strlen(s));
}

static void pb_fixed64(struct pb *b, unsigned field, uint64_t v)
{
	uint8_t t[8];
	for (int i = 0; i < 8; i++)
		t[i] = v >> (8 * i);
	pb_tag(b, field, WT_I64);
	pb_raw(b, t, 8);
}

static void pb_double(struct pb *b, unsigned field, double d)
{
	uint64_t v;
	memcpy(&v, &d, 8);
	pb_fixed64(b, field, v);
}

/* Appends sub as field of b and empties sub for reuse. */
static void pb_msg(struct pb *b, unsigned field, struct pb *sub)
{
	b->oom |= sub->oom;
	pb_bytes(b, field, sub->p, sub->len);
	sub->len = 0;
	sub->oom = false;
}

static void pb_free(struct pb *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

/* KeyValue { key = 1; AnyValue value = 2 { string_value = 1 } } */
static void pb_kv(struct pb *b, unsigned field, const char *key, const char *val)
{
	struct pb kv = {}, any = {};
	pb_str(&kv, 1, key);
	pb_str(&any, 1, val);
	pb_msg(&kv, 2, &any);
	pb_msg(b, field, &kv);
	pb_free(&any);
	pb_free(&kv);
}

/* ---- request ------------------------------------------------------------ */

struct otlp_metrics_state {
	bool delta;
	uint64_t last_ns; /* start of the current delta interval (cumulative: of every series) */
	uint64_t *prev[METRIC_COUNT]; /* per series: bucket counts then the sum in ns */
};

struct otlp_metrics_state *otlp_metrics_state_new(bool delta, uint64_t start_ns)
{
	struct otlp_metrics_state *st = calloc(1, sizeof(*st));
	if (st) {
		st->delta = delta;
		st->last_ns = start_ns;
	}
	return st;
}

void otlp_metrics_state_free(struct otlp_metrics_state *st)
{
	if (!st)
		return;
	for (int i = 0; i < METRIC_COUNT; i++)
		free(st->prev[i]);
	free(st);
}

#define SLOTS (INSTR_MAX_BOUNDS + 2)

static bool series_of_service(const struct instrument *in, const struct series *s, const char *svc)
{
	bool red = in->n_keys && !strcmp(in->keys[0], "service.name");
	if (!red || s->overflow)
		return svc == NULL;
	return svc && s->values[0] && !strcmp(s->values[0], svc);
}

/* One Metric with the data points of in's series of service svc (NULL: the
 * series without one). Returns whether it had any. */
static bool encode_metric(struct pb *out, const struct instrument *in, uint64_t *prev, const char *svc,
			  uint64_t start_ns, uint64_t now_ns, bool delta)
{
	struct pb data = {}, dp = {}, ex = {};
	bool any = false, counter = in->kind == INSTR_COUNTER;
	size_t n = instrument_nseries(in);
	for (size_t i = 0; i < n; i++) {
		const struct series *s = instrument_get(in, i);
		if (!series_of_service(in, s, svc))
			continue;
		uint64_t b[INSTR_MAX_BOUNDS + 1], sum_ns = atomic_load(&s->sum_ns), *pv = prev ? prev + i * SLOTS : NULL;
		double sum;
		uint64_t count = series_snapshot(in, s, b, &sum);
		size_t nb = counter ? 1 : in->n_bounds + 1;
		if (pv) {
			for (size_t k = 0; k < nb; k++) {
				uint64_t c = b[k];
				b[k] -= pv[k];
				pv[k] = c;
			}
			count = 0;
			for (size_t k = 0; k < nb; k++)
				count += b[k];
			sum = (sum_ns - pv[SLOTS - 1]) / 1e9;
			pv[SLOTS - 1] = sum_ns;
		}
		for (size_t k = 0; k < in->n_keys; k++) {
			if (k == 0 && svc && !strcmp(in->keys[0], "service.name"))
				continue; /* in the resource */
			if (s->values[k])
				pb_kv(&dp, counter ? 7 : 9, in->keys[k], s->values[k]);
		}
		if (s->overflow) {
			struct pb kv = {}, v = {};
			pb_str(&kv, 1, "otel.metric.overflow");
			pb_tag(&v, 2, WT_VARINT);
			pb_varint(&v, 1);
			pb_msg(&kv, 2, &v);
			pb_msg(&dp, counter ? 7 : 9, &kv);
			pb_free(&v);
			pb_free(&kv);
		}
		pb_fixed64(&dp, 2, start_ns);
		pb_fixed64(&dp, 3, now_ns);
		if (counter) {
			pb_tag(&dp, 6, WT_I64); /* as_int, sfixed64 */
			uint8_t t[8];
			for (int k = 0; k < 8; k++)
				t[k] = count >> (8 * k);
			pb_raw(&dp, t, 8);
		} else {
			pb_fixed64(&dp, 4, count);
			pb_double(&dp, 5, sum);
			struct pb packed = {};
			for (size_t k = 0; k < nb; k++) {
				uint8_t t[8];
				for (int j = 0; j < 8; j++)
					t[j] = b[k] >> (8 * j);
				pb_raw(&packed, t, 8);
			}
			pb_bytes(&dp, 6, packed.p, packed.len);
			packed.len = 0;
			for (size_t k = 0; k < in->n_bounds; k++) {
				uint64_t v;
				memcpy(&v, &in->bounds[k], 8);
				uint8_t t[8];
				for (int j = 0; j < 8; j++)
					t[j] = v >> (8 * j);
				pb_raw(&packed, t, 8);
			}
			pb_bytes(&dp, 7, packed.p, packed.len);
			dp.oom |= packed.oom;
			pb_free(&packed);
			for (size_t k = 0; k < nb; k++) {
				struct exemplar e;
				if (!series_exemplar(s, k, &e) || e.time_ns < (delta ? start_ns : 0))
					continue;
				pb_fixed64(&ex, 2, e.time_ns);
				pb_double(&ex, 3, e.value_ns / 1e9);
				pb_bytes(&ex, 4, e.span_id, 8);
				pb_bytes(&ex, 5, e.trace_id, 16);
				pb_msg(&dp, 8, &ex);
			}
		}
		pb_msg(&data, 1, &dp);
		any = true;
	}
	if (any) {
		struct pb metric = {};
		pb_tag(&data, 2, WT_VARINT);
		pb_varint(&data, delta ? 1 : 2); /* AGGREGATION_TEMPORALITY_DELTA, _CUMULATIVE */
		if (counter) {
			pb_tag(&data, 3, WT_VARINT); /* is_monotonic */
			pb_varint(&data, 1);
		}
		pb_str(&metric, 1, in->name);
		pb_str(&metric, 2, in->description);
		pb_str(&metric, 3, in->unit);
		pb_msg(&metric, counter ? 7 : 9, &data);
		pb_msg(out, 2, &metric);
		pb_free(&metric);
	}
	out->oom |= data.oom || dp.oom || ex.oom;
	pb_free(&data);
	pb_free(&dp);
	pb_free(&ex);
	return any;
}

/* One ResourceMetrics: service svc's RED metrics, or (NULL) weft's own
 * series: the service graph and overflow series. */
static void encode_resource(struct pb *req, const struct metrics *m, struct otlp_metrics_state *st,
			    const char *svc, uint64_t now_ns)
{
	struct pb rm = {}, res = {}, sm = {}, scope = {};
	bool any = false;
	uint64_t start = st->delta ? st->last_ns : m->start_ns;
	pb_str(&scope, 1, "weft");
	pb_str(&scope, 2, WEFT_VERSION);
	pb_msg(&sm, 1, &scope);
	for (int i = 0; i < METRIC_COUNT; i++)
		any |= encode_metric(&sm, &m->in[i], st->delta ? st->prev[i] : NULL, svc, start, now_ns, st->delta);
	if (any) {
		pb_kv(&res, 1, "service.name", svc ? svc : "weft");
		pb_kv(&res, 1, "telemetry.sdk.name", "weft");
		pb_msg(&rm, 1, &res);
		pb_msg(&rm, 2, &sm);
		pb_msg(req, 1, &rm);
	}
	req->oom |= rm.oom || res.oom || sm.oom || scope.oom;
	pb_free(&rm);
	pb_free(&res);
	pb_free(&sm);
	pb_free(&scope);
}

int otlp_metrics_encode(const struct metrics *m, struct otlp_metrics_state *st, uint64_t now_ns, uint8_t **out,
			size_t *len)
{
	struct pb req = {};
	size_t n_seen = 0;
	/* at most one service per series */
	const char **seen = malloc(METRIC_COUNT * INSTR_CARDINALITY_LIMIT * sizeof(*seen));
	if (!seen)
		return -ENOMEM;
	for (int i = 0; st->delta && i < METRIC_COUNT; i++) {
		if (!st->prev[i] && !(st->prev[i] = calloc(INSTR_CARDINALITY_LIMIT * SLOTS, sizeof(uint64_t)))) {
			free(seen);
			return -ENOMEM;
		}
	}
	/* The services of the RED series, each its own resource. */
	for (int i = 0; i < METRIC_COUNT; i++) {
		const struct instrument *in = &m->in[i];
		if (!in->n_keys || strcmp(in->keys[0], "service.name"))
			continue;
		size_t n = instrument_nseries(in);
		for (size_t j = 0; j < n; j++) {
			const char *svc = instrument_get(in, j)->values[0];
			size_t k = 0;
			if (!svc)
				continue;
			while (k < n_seen && strcmp(seen[k], svc))
				k++;
			if (k == n_seen)
				seen[n_seen++] = svc;
		}
	}
	for (size_t k = 0; k < n_seen; k++)
		encode_resource(&req, m, st, seen[k], now_ns);
	encode_resource(&req, m, st, NULL, now_ns);
	free(seen);
	st->last_ns = now_ns;
	if (req.oom) {
		pb_free(&req);
		return -ENOMEM;
	}
	*out = req.p;
	*len = req.len;
	return 0;
}

/* ---- export thread ------------------------------------------------------ */

struct otlp_metrics_exporter {
	struct otlp_metrics_config cfg;
	const struct metrics *m;
	struct otlp_metrics_state *st;
	CURL *curl;
	struct curl_slist *hdrs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool failing;
	int grpc_status; /* -1: none in the answer */
	uint64_t exports, errors;
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	return size * n;
}

/* gRPC's status comes in the trailers, which libcurl hands over as headers. */
static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct otlp_metrics_exporter *e = ud;
	size_t len = size * n;
	if (len > 12 && !strncasecmp(p, "grpc-status:", 12))
		e->grpc_status = atoi(p + 12);
	return len;
}

static void export_once(struct otlp_metrics_exporter *e)
{
	uint8_t *body;
	size_t len;
	if (otlp_metrics_encode(e->m, e->st, clock_ns(CLOCK_REALTIME), &body, &len)) {
		log_warn("otlp metrics: out of memory encoding a request");
		return;
	}
	if (e->cfg.grpc) {
		/* A length-prefixed message: no compression flag, big-endian length. */
		uint8_t *framed = malloc(len + 5);
		if (!framed) {
			free(body);
			return;
		}
		framed[0] = 0;
		for (int i = 0; i < 4; i++)
			framed[1 + i] = len >> (24 - 8 * i);
		memcpy(framed + 5, body, len);
		free(body);
		body = framed;
		len += 5;
	}
	e->grpc_status = -1;
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	CURLcode rc = curl_easy_perform(e->curl);
	long status = 0;
	curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
	free(body);
	e->exports++;
	bool ok = rc == CURLE_OK && status >= 200 && status <= 299 && (!e->cfg.grpc || e->grpc_status == 0);
	if (!ok) {
		e->errors++;
		if (!e->failing)
			log_warn("otlp metrics: export to %s failed (%s%ld%s%d); will try again at the next interval",
				 e->cfg.url, rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP ",
				 rc != CURLE_OK ? 0L : status, e->cfg.grpc ? ", grpc-status " : "",
				 e->cfg.grpc ? e->grpc_status : 0);
		e->failing = true;
	} else if (e->failing) {
		log_info("otlp metrics: export to %s works again", e->cfg.url);
		e->failing = false;
	}
}

static void *export_thread(void *arg)
{
	struct otlp_metrics_exporter *e = arg;
	pthread_mutex_lock(&e->lock);
	while (!e->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t at = ts.tv_sec * 1000000000ull + ts.tv_nsec + e->cfg.interval_ms * 1000000ull;
		ts.tv_sec = at / 1000000000ull;
		ts.tv_nsec = at % 1000000000ull;
		while (!e->stop && pthread_cond_timedwait(&e->cond, &e->lock, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&e->lock);
		export_once(e); /* the last one at stop: the final counts */
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

int otlp_metrics_start(struct otlp_metrics_config *cfg, const struct metrics *m,
		       struct otlp_metrics_exporter **out)
{
	struct otlp_metrics_exporter *e = calloc(1, sizeof(*e));
	int err = -ENOMEM;
	if (!e)
		return -ENOMEM;
	e->cfg = *cfg;
	e->m = m;
	e->st = otlp_metrics_state_new(cfg->delta, m->start_ns);
	e->curl = curl_easy_init();
	if (!e->st || !e->curl)
		goto fail;
	e->hdrs = cfg->headers;
	cfg->headers = NULL;
	e->cfg.headers = NULL;
	curl_easy_setopt(e->curl, CURLOPT_URL, e->cfg.url);
	curl_easy_setopt(e->curl, CURLOPT_HTTPHEADER, e->hdrs);
	curl_easy_setopt(e->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, (long)cfg->timeout_ms);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e->curl, CURLOPT_HEADERDATA, e);
	if (cfg->grpc) {
		bool tls = !strncasecmp(e->cfg.url, "https", 5);
		curl_easy_setopt(e->curl, CURLOPT_HTTP_VERSION,
				 tls ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
		/* libcurl < 8 fails on reused prior-knowledge connections (docs/OTLP.md) */
		curl_easy_setopt(e->curl, CURLOPT_FORBID_REUSE, 1L);
	}
	if (e->cfg.certificate[0])
		curl_easy_setopt(e->curl, CURLOPT_CAINFO, e->cfg.certificate);
	pthread_mutex_init(&e->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((err = -pthread_create(&e->thread, NULL, export_thread, e))) {
		log_error("otlp metrics: cannot start the export thread: %s", strerror(-err));
		goto fail;
	}
	log_info("otlp metrics: exporting to %s every %u ms (%s temporality)", e->cfg.url, cfg->interval_ms,
		 cfg->delta ? "delta" : "cumulative");
	*out = e;
	return 0;
fail:
	curl_slist_free_all(e->hdrs);
	if (e->curl)
		curl_easy_cleanup(e->curl);
	otlp_metrics_state_free(e->st);
	free(e);
	return err;
}

void otlp_metrics_stop(struct otlp_metrics_exporter *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->stop = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
	log_info("otlp metrics: %llu exports, %llu failed", (unsigned long long)e->exports,
		 (unsigned long long)e->errors);
	curl_slist_free_all(e->hdrs);
	curl_easy_cleanup(e->curl);
	otlp_metrics_state_free(e->st);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->cond);
	free(e);
}
