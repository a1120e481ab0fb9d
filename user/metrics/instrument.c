#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "instrument.h"
#include "log.h"

#define INDEX_CAP 4096 /* a power of two, twice the cardinality limit */

int instrument_init(struct instrument *in, const char *name, const char *unit, const char *description,
		    enum instr_kind kind, const double *bounds, size_t n_bounds, const char *const *keys,
		    size_t n_keys)
{
	if (n_keys > INSTR_MAX_LABELS || n_bounds > INSTR_MAX_BOUNDS)
		return -EINVAL;
	memset(in, 0, sizeof(*in));
	in->name = name;
	in->unit = unit;
	in->description = description;
	in->kind = kind;
	in->bounds = bounds;
	in->n_bounds = kind == INSTR_HISTOGRAM ? n_bounds : 0;
	in->keys = keys;
	in->n_keys = n_keys;
	in->index_cap = INDEX_CAP;
	in->index = calloc(INDEX_CAP, sizeof(*in->index));
	return in->index ? 0 : -ENOMEM;
}

static void series_free(struct series *s)
{
	if (!s)
		return;
	free(s->strs);
	free(s->counts);
	free(s->exemplars);
	free(s);
}

void instrument_free(struct instrument *in)
{
	size_t n = instrument_nseries(in);
	for (size_t i = 0; i < n; i++)
		series_free(in->series[i]);
	free(in->index);
	memset(in, 0, sizeof(*in));
}

static uint64_t hash_values(const struct instrument *in, const char *const *values)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t k = 0; k < in->n_keys; k++) {
		const char *v = values[k] ? values[k] : "";
		for (; *v; v++)
			h = (h ^ (uint8_t)*v) * 1099511628211ull;
		h = (h ^ 0xff) * 1099511628211ull; /* separator */
	}
	return h;
}

static bool same_values(const struct instrument *in, const struct series *s, const char *const *values)
{
	for (size_t k = 0; k < in->n_keys; k++) {
		const char *a = s->values[k] ? s->values[k] : "", *b = values[k] ? values[k] : "";
		if (strcmp(a, b))
			return false;
	}
	return true;
}

static struct series *series_new(const struct instrument *in, const char *const *values, bool overflow)
{
	size_t len = 0, nb = in->kind == INSTR_HISTOGRAM ? in->n_bounds + 1 : 1;
	struct series *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->overflow = overflow;
	for (size_t k = 0; !overflow && k < in->n_keys; k++)
		len += values[k] && *values[k] ? strlen(values[k]) + 1 : 0;
	s->strs = malloc(len + 1);
	s->counts = calloc(nb, sizeof(*s->counts));
	if (in->kind == INSTR_HISTOGRAM)
		s->exemplars = calloc(nb, sizeof(*s->exemplars));
	if (!s->strs || !s->counts || (in->kind == INSTR_HISTOGRAM && !s->exemplars)) {
		series_free(s);
		return NULL;
	}
	char *p = s->strs;
	for (size_t k = 0; !overflow && k < in->n_keys; k++) {
		if (!values[k] || !*values[k])
			continue;
		size_t n = strlen(values[k]) + 1;
		memcpy(p, values[k], n);
		s->values[k] = p;
		p += n;
	}
	return s;
}

static struct series *publish(struct instrument *in, struct series *s)
{
	size_t n = atomic_load_explicit(&in->n_series, memory_order_relaxed);
	atomic_store_explicit(&in->series[n], s, memory_order_release);
	atomic_store_explicit(&in->n_series, n + 1, memory_order_release);
	return s;
}

struct series *instrument_series(struct instrument *in, const char *const *values)
{
	uint64_t h = hash_values(in, values);
	size_t mask = in->index_cap - 1;
	for (size_t i = h & mask;; i = (i + 1) & mask) {
		uint32_t slot = in->index[i];
		if (!slot)
			break;
		struct series *s = in->series[slot - 1];
		if (!s->overflow && same_values(in, s, values))
			return s;
	}
	size_t n = atomic_load_explicit(&in->n_series, memory_order_relaxed);
	if (n >= INSTR_CARDINALITY_LIMIT - 1 || in->overflow_series) {
		/* The last slot is the overflow series'. */
		in->overflowed++;
		if (!in->overflow_series) {
			in->overflow_series = series_new(in, values, true);
			if (!in->overflow_series)
				return NULL;
			publish(in, in->overflow_series);
			log_warn("metrics: %s has reached %d series: new attribute sets are counted in the series "
				 "otel.metric.overflow=true",
				 in->name, INSTR_CARDINALITY_LIMIT);
		}
		return in->overflow_series;
	}
	struct series *s = series_new(in, values, false);
	if (!s)
		return NULL;
	size_t i = h & mask;
	while (in->index[i])
		i = (i + 1) & mask;
	in->index[i] = n + 1;
	return publish(in, s);
}

static size_t bucket_of(const struct instrument *in, uint64_t ns)
{
	double v = ns / 1e9;
	size_t b = 0;
	while (b < in->n_bounds && v > in->bounds[b])
		b++;
	return b;
}

void instrument_record(struct instrument *in, const char *const *values, uint64_t duration_ns,
		       const uint8_t *trace_id, const uint8_t *span_id, uint64_t now_ns)
{
	struct series *s = instrument_series(in, values);
	if (!s)
		return;
	size_t b = bucket_of(in, duration_ns);
	if (trace_id && span_id) {
		struct exemplar *e = &s->exemplars[b];
		uint64_t seq = atomic_load_explicit(&e->seq, memory_order_relaxed);
		atomic_store_explicit(&e->seq, seq + 1, memory_order_relaxed);
		atomic_thread_fence(memory_order_release);
		memcpy(e->trace_id, trace_id, 16);
		memcpy(e->span_id, span_id, 8);
		e->value_ns = duration_ns;
		e->time_ns = now_ns;
		atomic_store_explicit(&e->seq, seq + 2, memory_order_release);
	}
	atomic_fetch_add_explicit(&s->sum_ns, duration_ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->counts[b], 1, memory_order_release);
}

void instrument_add(struct instrument *in, const char *const *values, uint64_t n)
{
	struct series *s = instrument_series(in, values);
	if (s)
		atomic_fetch_add_explicit(&s->counts[0], n, memory_order_release);
}

uint64_t series_snapshot(const struct instrument *in, const struct series *s, uint64_t *buckets, double *sum_s)
{
	uint64_t total = 0;
	size_t nb = in->kind == INSTR_HISTOGRAM ? in->n_bounds + 1 : 1;
	for (size_t b = 0; b < nb; b++) {
		uint64_t c = atomic_load_explicit(&s->counts[b], memory_order_acquire);
		if (buckets)
			buckets[b] = c;
		total += c;
	}
	if (sum_s)
		*sum_s = atomic_load_explicit(&s->sum_ns, memory_order_relaxed) / 1e9;
	return total;
}

bool series_exemplar(const struct series *s, size_t bucket, struct exemplar *out)
{
	if (!s->exemplars)
		return false;
	const struct exemplar *e = &s->exemplars[bucket];
	for (int tries = 0; tries < 4; tries++) {
		uint64_t a = atomic_load_explicit(&e->seq, memory_order_acquire);
		if (!a || (a & 1))
			continue;
		memcpy(out->trace_id, e->trace_id, 16);
		memcpy(out->span_id, e->span_id, 8);
		out->value_ns = e->value_ns;
		out->time_ns = e->time_ns;
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&e->seq, memory_order_relaxed) == a)
			return true;
	}
	return false;
}
