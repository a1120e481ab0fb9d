/* The OTLP sink: a bounded queue filled by emit() on the event thread, and an
 * export thread that batches, encodes and sends spans, retrying transient
 * failures with exponential backoff and jitter. A dead or slow collector
 * only ever costs queue space: emit() never blocks on the network.
 *
 * Threads: emit(), tick() and the resource cache belong to the event thread
 * (struct resource reference counts are not atomic, so the export thread never
 * touches the agent's resources: queued spans point to a private, merged copy
 * whose lifetime is tracked by an atomic count of queued spans). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "otlp.h"
#include "otlp_encode.h"
#include "otlp_transport.h"

#define BACKOFF_INITIAL_MS 1000
#define BACKOFF_MAX_MS 5000
#define RETRY_AFTER_MAX_MS 60000
#define OUTAGE_REPORT_NS (60 * 1000000000ull) /* a line a minute while exports fail */
#define RES_BUCKETS 64
#define RES_IDLE_TICKS 300 /* ~30 s of ticks without spans: forget a resource */
#define RES_GC_TICKS 50

/* ---- counters ------------------------------------------------------------ */

static struct {
	_Atomic uint64_t spans_received, spans_exported, dropped_queue_full, dropped_rejected,
		dropped_partial, dropped_shutdown, dropped_other, export_requests, export_errors,
		export_retries;
} ctr;

#define CTR_ADD(field, n) atomic_fetch_add_explicit(&ctr.field, (n), memory_order_relaxed)

void otlp_counters_get(struct otlp_counters *c)
{
	c->spans_received = atomic_load(&ctr.spans_received);
	c->spans_exported = atomic_load(&ctr.spans_exported);
	c->dropped_queue_full = atomic_load(&ctr.dropped_queue_full);
	c->dropped_rejected = atomic_load(&ctr.dropped_rejected);
	c->dropped_partial = atomic_load(&ctr.dropped_partial);
	c->dropped_shutdown = atomic_load(&ctr.dropped_shutdown);
	c->dropped_other = atomic_load(&ctr.dropped_other);
	c->export_requests = atomic_load(&ctr.export_requests);
	c->export_errors = atomic_load(&ctr.export_errors);
	c->export_retries = atomic_load(&ctr.export_retries);
}

uint64_t otlp_counters_dropped(const struct otlp_counters *c)
{
	return c->dropped_queue_full + c->dropped_rejected + c->dropped_partial +
	       c->dropped_shutdown + c->dropped_other;
}

static void counters_format(char *buf, size_t len)
{
	struct otlp_counters c;

	otlp_counters_get(&c);
	snprintf(buf, len,
		 "otlp: spans received %llu, exported %llu, dropped %llu (queue_full %llu, "
		 "rejected %llu, partial %llu, shutdown %llu, other %llu); requests %llu, "
		 "errors %llu, retries %llu",
		 (unsigned long long)c.spans_received, (unsigned long long)c.spans_exported,
		 (unsigned long long)otlp_counters_dropped(&c),
		 (unsigned long long)c.dropped_queue_full, (unsigned long long)c.dropped_rejected,
		 (unsigned long long)c.dropped_partial, (unsigned long long)c.dropped_shutdown,
		 (unsigned long long)c.dropped_other, (unsigned long long)c.export_requests,
		 (unsigned long long)c.export_errors, (unsigned long long)c.export_retries);
}

void otlp_counters_print(FILE *f)
{
	char line[512];

	counters_format(line, sizeof(line));
	fprintf(f, "%s\n", line);
	fflush(f);
}

/* ---- sink state ---------------------------------------------------------- */

struct res_entry {
	struct res_entry *next;
	struct resource *orig;     /* counted reference; event thread only */
	struct attr_list snapshot; /* orig->attrs when merged, to notice changes */
	unsigned long version;     /* orig->attrs.version when last equal to snapshot */
	struct resource *merged;   /* what queued spans point to */
	atomic_uint inflight;      /* queued or exporting spans using merged */
	unsigned long last_tick;
};

struct qspan {
	struct span *s;
	struct res_entry *e;
};

struct otlp_sink {
	struct span_sink base;
	unsigned schedule_delay_ms, batch_size, export_timeout_ms;
	struct attr_list extra;
	struct otlp_transport *tr;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct qspan *ring;
	size_t head, len, cap; /* under lock */
	atomic_size_t qlen;    /* len, readable without the lock */
	bool shutdown;         /* under lock */
	uint64_t flush_deadline_ns;
	pthread_t thread;
	bool thread_started;

	/* event thread */
	struct res_entry *buckets[RES_BUCKETS];
	struct res_entry *retired;
	unsigned long ticks;

	/* export thread: error logging state */
	char last_err_key[64];
	uint64_t failed_attempts;
	uint64_t outage_start_ns, outage_report_ns; /* first failure, last line */
	uint64_t outage_dropped;                    /* drops counted before it */
	char last_partial[256];
	bool warned_not_otlp;
	unsigned rnd;
};

static uint64_t deadline_after(uint64_t ms)
{
	return otlp_now_ns() + ms * 1000000ull;
}

static void ns_to_timespec(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = ns / 1000000000ull;
	ts->tv_nsec = ns % 1000000000ull;
}

/* ---- resource cache (event thread) --------------------------------------- */

static bool attrs_equal(const struct attr_list *a, const struct attr_list *b)
{
	if (a->len != b->len)
		return false;
	for (size_t i = 0; i < a->len; i++) {
		const struct attr *x = &a->items[i], *y = &b->items[i];
		if (x->type != y->type || strcmp(x->key, y->key))
			return false;
		switch (x->type) {
		case ATTR_STR: if (strcmp(x->str, y->str)) return false; break;
		case ATTR_INT: if (x->i != y->i) return false; break;
		case ATTR_BOOL: if (x->b != y->b) return false; break;
		case ATTR_DOUBLE: if (x->d != y->d) return false; break;
		}
	}
	return true;
}

static void res_entry_free(struct res_entry *e)
{
	resource_put(e->orig);
	resource_put(e->merged);
	attrs_free(&e->snapshot);
	free(e);
}

static unsigned res_hash(const struct resource *r)
{
	uintptr_t p = (uintptr_t)r;
	return (unsigned)((p >> 4) ^ (p >> 12)) % RES_BUCKETS;
}

static struct res_entry *res_lookup(struct otlp_sink *o, struct resource *r)
{
	static const struct attr_list none;
	const struct attr_list *attrs = r ? &r->attrs : &none;
	struct res_entry **pp = &o->buckets[res_hash(r)], *e;

	for (; (e = *pp); pp = &e->next) {
		if (e->orig != r)
			continue;
		/* unchanged since last compared (the usual case, once per span):
		 * no need to compare every attribute again */
		if (e->version == attrs->version || attrs_equal(&e->snapshot, attrs)) {
			e->version = attrs->version;
			e->last_tick = o->ticks;
			return e;
		}
		/* the agent updated this resource: retire the stale entry */
		*pp = e->next;
		e->next = o->retired;
		o->retired = e;
		break;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->merged = calloc(1, sizeof(*e->merged));
	if (!e->merged || attrs_copy(&e->snapshot, attrs) ||
	    otlp_resource_merge(&e->merged->attrs, attrs, &o->extra)) {
		if (e->merged)
			e->merged->refs = 1;
		res_entry_free(e);
		return NULL;
	}
	e->merged->refs = 1;
	e->merged->pid = r ? r->pid : 0;
	e->version = attrs->version;
	e->orig = resource_get(r);
	e->last_tick = o->ticks;
	e->next = o->buckets[res_hash(r)];
	o->buckets[res_hash(r)] = e;
	return e;
}

static void res_gc(struct otlp_sink *o, bool all)
{
	struct res_entry **pp, *e;

	for (pp = &o->retired; (e = *pp);) {
		if (all || atomic_load(&e->inflight) == 0) {
			*pp = e->next;
			res_entry_free(e);
		} else {
			pp = &e->next;
		}
	}
	for (int b = 0; b < RES_BUCKETS; b++) {
		for (pp = &o->buckets[b]; (e = *pp);) {
			if (all || (atomic_load(&e->inflight) == 0 &&
				    o->ticks - e->last_tick > RES_IDLE_TICKS)) {
				*pp = e->next;
				res_entry_free(e);
			} else {
				pp = &e->next;
			}
		}
	}
}

/* ---- queued spans --------------------------------------------------------- */

/* A read-only copy of s in a single allocation (struct span, attributes,
 * strings; static keys are shared), pointing to resource r: one malloc and
 * one free per queued span instead of dozens. Released with free(), never
 * span_free(). */
static struct span *span_pack(const struct span *s, struct resource *r)
{
	size_t n = sizeof(struct span) + s->attrs.len * sizeof(struct attr);
	struct span *c;
	char *p;

#define STRSZ(x) ((x) ? strlen(x) + 1 : 0)
	n += STRSZ(s->name) + STRSZ(s->trace_state) + STRSZ(s->status_message);
	for (size_t i = 0; i < s->attrs.len; i++)
		n += (s->attrs.items[i].key_owned ? STRSZ(s->attrs.items[i].key) : 0) +
		     (s->attrs.items[i].type == ATTR_STR ? STRSZ(s->attrs.items[i].str) : 0);
#undef STRSZ
	c = malloc(n);
	if (!c)
		return NULL;
	*c = *s;
	c->resource = r;
	c->attrs = (struct attr_list){ .items = (struct attr *)(c + 1), .len = s->attrs.len,
				       .cap = s->attrs.len };
	p = (char *)(c->attrs.items + s->attrs.len);
#define STRCPY(dst, src)                                                       \
	do {                                                                   \
		if (src) {                                                     \
			size_t l_ = strlen(src) + 1;                           \
			memcpy(p, src, l_);                                    \
			(dst) = p;                                             \
			p += l_;                                               \
		} else {                                                       \
			(dst) = NULL;                                          \
		}                                                              \
	} while (0)
	STRCPY(c->name, s->name);
	STRCPY(c->trace_state, s->trace_state);
	STRCPY(c->status_message, s->status_message);
	for (size_t i = 0; i < s->attrs.len; i++) {
		const struct attr *a = &s->attrs.items[i];
		struct attr *d = &c->attrs.items[i];
		*d = *a;
		if (a->key_owned) /* static keys are shared */
			STRCPY(d->key, a->key);
		d->key_owned = false; /* freed with the block */
		if (a->type == ATTR_STR)
			STRCPY(d->str, a->str);
	}
#undef STRCPY
	return c;
}

static void qspan_release(struct qspan *q)
{
	free(q->s); /* span_pack(): one block; the resource belongs to the cache */
	if (q->e)
		atomic_fetch_sub(&q->e->inflight, 1);
	q->s = NULL;
	q->e = NULL;
}

/* The collector's side of weft's own export requests (weft run traces the
 * collector too): exporting those would feed back forever. */
static bool is_own_export(const struct span *s)
{
	const struct attr *ua;

	if (s->kind != SPAN_KIND_SERVER)
		return false;
	ua = attrs_get(&s->attrs, "user_agent.original");
	return ua && ua->type == ATTR_STR && !strncmp(ua->str, "weft/", 5);
}

static void otlp_emit(struct span_sink *sink, const struct span *span)
{
	struct otlp_sink *o = (struct otlp_sink *)sink;
	struct qspan q;
	bool queued = false;

	if (is_own_export(span))
		return;
	CTR_ADD(spans_received, 1);
	if (atomic_load_explicit(&o->qlen, memory_order_relaxed) >= o->cap) {
		CTR_ADD(dropped_queue_full, 1);
		return;
	}
	q.e = res_lookup(o, span->resource);
	/* the copy points to the private merged resource, not the agent's */
	q.s = q.e ? span_pack(span, q.e->merged) : NULL;
	if (!q.s) {
		CTR_ADD(dropped_other, 1);
		return;
	}
	atomic_fetch_add(&q.e->inflight, 1);

	pthread_mutex_lock(&o->lock);
	if (o->len < o->cap) {
		o->ring[(o->head + o->len) % o->cap] = q;
		o->len++;
		atomic_store_explicit(&o->qlen, o->len, memory_order_relaxed);
		queued = true;
		/* wake the exporter: first span (starts its delay), or a full batch */
		if (o->len == 1 || o->len == o->batch_size)
			pthread_cond_signal(&o->cond);
	}
	pthread_mutex_unlock(&o->lock);
	if (!queued) {
		qspan_release(&q);
		CTR_ADD(dropped_queue_full, 1);
	}
}

static void otlp_tick(struct span_sink *sink, uint64_t now_ns)
{
	struct otlp_sink *o = (struct otlp_sink *)sink;

	if (++o->ticks % RES_GC_TICKS == 0)
		res_gc(o, false);
}

/* ---- export thread -------------------------------------------------------- */

static unsigned jitter_ms(struct otlp_sink *o, unsigned base)
{
	/* uniform in [base/2, 3*base/2) */
	o->rnd = o->rnd * 1103515245u + 12345u;
	return base / 2 + (unsigned)(((uint64_t)(o->rnd >> 8) * base) >> 24);
}

/* Sleeps up to ms, less if shutdown makes the flush deadline come first.
 * Returns false if the flush deadline has passed. */
static bool backoff_wait(struct otlp_sink *o, unsigned ms)
{
	uint64_t until = deadline_after(ms);
	struct timespec ts;
	bool alive = true;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		uint64_t now = otlp_now_ns(), end = until;
		if (o->shutdown) {
			if (now >= o->flush_deadline_ns) {
				alive = false;
				break;
			}
			if (o->flush_deadline_ns < end)
				end = o->flush_deadline_ns;
		}
		if (now >= end)
			break;
		ns_to_timespec(end, &ts);
		pthread_cond_timedwait(&o->cond, &o->lock, &ts);
	}
	pthread_mutex_unlock(&o->lock);
	return alive;
}

static bool flush_deadline_passed(struct otlp_sink *o)
{
	bool passed;

	pthread_mutex_lock(&o->lock);
	passed = o->shutdown && otlp_now_ns() >= o->flush_deadline_ns;
	pthread_mutex_unlock(&o->lock);
	return passed;
}

static uint64_t dropped_total(void)
{
	struct otlp_counters c;

	otlp_counters_get(&c);
	return otlp_counters_dropped(&c);
}

/* Logs an export error once per kind, not once per batch; while exports
 * keep failing, a line a minute says what it has cost so far. */
static void log_failure(struct otlp_sink *o, const struct otlp_result *res)
{
	uint64_t now = otlp_now_ns();
	char key[64];

	if (!o->failed_attempts++) {
		o->outage_start_ns = o->outage_report_ns = now;
		o->outage_dropped = dropped_total();
	} else if (now - o->outage_report_ns >= OUTAGE_REPORT_NS) {
		o->outage_report_ns = now;
		log_warn("otlp: exports failing for %llu s (%llu attempts): %llu spans dropped meanwhile, "
			 "%zu queued", (unsigned long long)((now - o->outage_start_ns) / 1000000000ull),
			 (unsigned long long)o->failed_attempts,
			 (unsigned long long)(dropped_total() - o->outage_dropped),
			 atomic_load_explicit(&o->qlen, memory_order_relaxed));
	}
	/* the kind of error: not its text, which may vary ("after 3 ms") */
	snprintf(key, sizeof(key), "%d/%ld/%d/%d", res->outcome, res->http_status,
		 res->grpc_status, res->curl_code);
	if (!strcmp(key, o->last_err_key))
		return;
	snprintf(o->last_err_key, sizeof(o->last_err_key), "%s", key);
	if (res->outcome == OTLP_OUTCOME_RETRY)
		log_warn("otlp: export failed, will retry: %s", res->error);
	else
		log_error("otlp: export failed permanently, dropping spans: %s "
			  "(further such errors are counted, not logged)", res->error);
}

static void log_success(struct otlp_sink *o)
{
	if (o->last_err_key[0] && o->failed_attempts)
		log_info("otlp: export succeeded after %llu failed attempt%s; %llu spans dropped meanwhile",
			 (unsigned long long)o->failed_attempts, o->failed_attempts > 1 ? "s" : "",
			 (unsigned long long)(dropped_total() - o->outage_dropped));
	o->last_err_key[0] = '\0';
	o->failed_attempts = 0;
}

static void export_batch(struct otlp_sink *o, struct qspan *batch, const struct span **ptrs,
			 size_t n)
{
	unsigned backoff = BACKOFF_INITIAL_MS;
	struct otlp_result res;
	uint8_t *body = NULL;
	size_t len = 0;
	int ret;

	for (size_t i = 0; i < n; i++)
		ptrs[i] = batch[i].s;
	ret = otlp_encode_spans(ptrs, n, &body, &len);
	if (ret) {
		log_error("otlp: cannot encode %zu spans: %s", n, strerror(-ret));
		CTR_ADD(dropped_other, n);
		goto cleanup;
	}
	for (unsigned attempt = 0;; attempt++) {
		if (flush_deadline_passed(o)) {
			CTR_ADD(dropped_shutdown, n);
			break;
		}
		CTR_ADD(export_requests, 1);
		if (attempt)
			CTR_ADD(export_retries, 1);
		ret = otlp_transport_send(o->tr, body, len, &res);
		if (ret) {
			log_error("otlp: cannot send %zu spans: %s", n, strerror(-ret));
			CTR_ADD(dropped_other, n);
			break;
		}
		if (res.outcome == OTLP_OUTCOME_OK) {
			uint64_t rejected = res.rejected < 0 ? 0 : (uint64_t)res.rejected;
			if (rejected > n)
				rejected = n;
			CTR_ADD(spans_exported, n - rejected);
			CTR_ADD(dropped_partial, rejected);
			log_success(o);
			if (res.not_otlp[0] && !o->warned_not_otlp) {
				o->warned_not_otlp = true;
				log_warn("otlp: the collector's answer is not an OTLP response (%s): spans "
					 "count as exported, but is the endpoint an OTLP receiver?", res.not_otlp);
			}
			if (rejected && strcmp(res.partial_msg, o->last_partial)) {
				snprintf(o->last_partial, sizeof(o->last_partial), "%s", res.partial_msg);
				log_warn("otlp: collector rejected %llu of %zu spans: %s",
					(unsigned long long)rejected, n,
					res.partial_msg[0] ? res.partial_msg : "(no message)");
			}
			break;
		}
		CTR_ADD(export_errors, 1);
		if (res.outcome == OTLP_OUTCOME_ABORTED) {
			CTR_ADD(dropped_shutdown, n);
			break;
		}
		log_failure(o, &res);
		if (res.outcome == OTLP_OUTCOME_FAIL) {
			CTR_ADD(dropped_rejected, n);
			break;
		}
		/* transient: wait the backoff with jitter, or longer if the
		 * collector's Retry-After says so (never shorter: "Retry-After: 0"
		 * to every request would be a busy loop), then retry */
		unsigned wait = jitter_ms(o, backoff);
		if (res.retry_after_ms > (long)wait)
			wait = res.retry_after_ms < RETRY_AFTER_MAX_MS ? (unsigned)res.retry_after_ms
								       : RETRY_AFTER_MAX_MS;
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
		if (!backoff_wait(o, wait)) {
			CTR_ADD(dropped_shutdown, n);
			break;
		}
	}
cleanup:
	free(body);
	for (size_t i = 0; i < n; i++)
		qspan_release(&batch[i]);
}

static void *export_thread(void *arg)
{
	struct otlp_sink *o = arg;
	struct qspan *batch = calloc(o->batch_size, sizeof(*batch));
	const struct span **ptrs = calloc(o->batch_size, sizeof(*ptrs));
	struct timespec ts;

	pthread_mutex_lock(&o->lock);
	for (;;) {
		size_t n = 0;

		/* idle: sleep until emit() queues a first span (no periodic wakeups) */
		while (!o->shutdown && !o->len)
			pthread_cond_wait(&o->cond, &o->lock);
		/* then export a full batch at once, a partial one after the delay */
		uint64_t due = deadline_after(o->schedule_delay_ms);
		while (!o->shutdown && o->len < o->batch_size && otlp_now_ns() < due) {
			ns_to_timespec(due, &ts);
			pthread_cond_timedwait(&o->cond, &o->lock, &ts);
		}
		if (o->shutdown && !o->len)
			break;
		if (!batch || !ptrs) { /* out of memory at start: drop what comes */
			CTR_ADD(dropped_other, o->len);
			while (o->len) {
				qspan_release(&o->ring[o->head]);
				o->head = (o->head + 1) % o->cap;
				o->len--;
			}
			atomic_store(&o->qlen, 0);
			continue;
		}
		while (n < o->batch_size && o->len) {
			batch[n++] = o->ring[o->head];
			o->head = (o->head + 1) % o->cap;
			o->len--;
		}
		atomic_store_explicit(&o->qlen, o->len, memory_order_relaxed);
		pthread_mutex_unlock(&o->lock);

		export_batch(o, batch, ptrs, n);

		pthread_mutex_lock(&o->lock);
	}
	pthread_mutex_unlock(&o->lock);
	free(batch);
	free(ptrs);
	return NULL;
}

/* ---- lifetime ------------------------------------------------------------- */

static void otlp_sink_free(struct otlp_sink *o)
{
	res_gc(o, true);
	otlp_transport_free(o->tr);
	attrs_free(&o->extra);
	free(o->ring);
	pthread_cond_destroy(&o->cond);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

static void otlp_close(struct span_sink *sink)
{
	struct otlp_sink *o = (struct otlp_sink *)sink;
	uint64_t deadline = deadline_after(o->export_timeout_ms);
	char line[512];

	pthread_mutex_lock(&o->lock);
	o->shutdown = true;
	o->flush_deadline_ns = deadline;
	pthread_cond_broadcast(&o->cond);
	pthread_mutex_unlock(&o->lock);
	/* a request in flight at the deadline is abandoned */
	otlp_transport_abort_at(o->tr, deadline);
	if (o->thread_started)
		pthread_join(o->thread, NULL);
	CTR_ADD(dropped_shutdown, o->len);
	while (o->len) {
		qspan_release(&o->ring[o->head]);
		o->head = (o->head + 1) % o->cap;
		o->len--;
	}
	counters_format(line, sizeof(line));
	log_info("%s", line);
	otlp_sink_free(o);
}

struct span_sink *otlp_sink_create(const struct otlp_config *cfg,
				   const struct attr_list *extra_resource)
{
	struct otlp_sink *o;
	pthread_condattr_t ca;
	sigset_t all, old;
	char err[256] = "";
	char url[2048];
	int ret;

	if (otlp_config_check(cfg, err, sizeof(err))) {
		log_error("otlp: %s", err);
		return NULL;
	}
	o = calloc(1, sizeof(*o));
	if (!o) {
		log_error("otlp: out of memory");
		return NULL;
	}
	o->base.name = "otlp";
	o->base.emit = otlp_emit;
	o->base.tick = otlp_tick;
	o->base.close = otlp_close;
	o->schedule_delay_ms = cfg->schedule_delay_ms;
	o->batch_size = cfg->max_export_batch_size;
	o->export_timeout_ms = cfg->export_timeout_ms;
	o->cap = cfg->max_queue_size;
	o->rnd = (unsigned)otlp_now_ns() ^ (unsigned)getpid();
	pthread_mutex_init(&o->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->cond, &ca);
	pthread_condattr_destroy(&ca);

	o->ring = calloc(o->cap, sizeof(*o->ring));
	if (!o->ring || (extra_resource && attrs_copy(&o->extra, extra_resource))) {
		log_error("otlp: out of memory");
		goto cleanup;
	}
	o->tr = otlp_transport_new(cfg, err, sizeof(err));
	if (!o->tr) {
		log_error("otlp: %s", err);
		goto cleanup;
	}
	/* the export thread takes no signals: they are the agent's business */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&o->thread, NULL, export_thread, o);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		log_error("otlp: cannot start export thread: %s", strerror(ret));
		goto cleanup;
	}
	pthread_setname_np(o->thread, "weft-otlp");
	o->thread_started = true;
	otlp_config_url(cfg, url, sizeof(url));
	log_info("otlp: exporting to %s (%s%s)", url, otlp_protocol_name(cfg->protocol),
		 cfg->compression == OTLP_COMPRESSION_GZIP ? ", gzip" : "");
	return &o->base;
cleanup:
	otlp_sink_free(o);
	return NULL;
}

struct span_sink *otlp_sink_create_from_env(const struct otlp_config *cfg)
{
	struct attr_list extra = {0};
	struct span_sink *sink = NULL;
	char err[256];
	int ret;

	ret = otlp_resource_from_env(&extra, err, sizeof(err));
	if (ret) {
		log_error("otlp: %s", ret == -ENOMEM ? "out of memory" : err);
		goto cleanup;
	}
	sink = otlp_sink_create(cfg, &extra);
cleanup:
	attrs_free(&extra);
	return sink;
}
