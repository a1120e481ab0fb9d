/* One metric (OpenTelemetry instrument): a counter or an explicit-bucket
 * histogram of durations, its series keyed by a fixed list of attribute
 * keys. Written by the event thread only, read by any thread without
 * locks: series are published through an array of atomic pointers and
 * their counts are atomics, so a scrape never blocks span processing.
 * Cardinality is bounded as OpenTelemetry SDKs bound it: past
 * INSTR_CARDINALITY_LIMIT - 1 series, new attribute sets are recorded into
 * one overflow series marked otel.metric.overflow=true. */
#ifndef WEFT_INSTRUMENT_H
#define WEFT_INSTRUMENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INSTR_CARDINALITY_LIMIT 2000
#define INSTR_MAX_LABELS 8
#define INSTR_MAX_BOUNDS 16

enum instr_kind { INSTR_COUNTER, INSTR_HISTOGRAM };

/* The most recent sampled (exported) measurement of a bucket. */
struct exemplar {
	_Atomic uint64_t seq; /* odd while being written (seqlock) */
	uint8_t trace_id[16], span_id[8];
	uint64_t value_ns, time_ns;
};

struct series {
	const char *values[INSTR_MAX_LABELS]; /* per key; NULL: absent */
	bool overflow;
	_Atomic uint64_t sum_ns;            /* histogram: sum of durations */
	_Atomic uint64_t *counts;           /* histogram: n_bounds + 1 buckets; counter: 1 */
	struct exemplar *exemplars;         /* histogram: one per bucket */
	char *strs;                         /* owns the values */
};

struct instrument {
	const char *name, *unit, *description;
	enum instr_kind kind;
	const double *bounds; /* histogram: upper bounds in seconds, ascending */
	size_t n_bounds;
	const char *const *keys; /* attribute keys, n_keys of them */
	size_t n_keys;
	struct series *_Atomic series[INSTR_CARDINALITY_LIMIT];
	_Atomic size_t n_series;
	/* event thread only */
	uint32_t *index; /* open addressing: series index + 1, 0 empty */
	size_t index_cap;
	struct series *overflow_series;
	uint64_t overflowed; /* measurements recorded into the overflow series */
};

int instrument_init(struct instrument *in, const char *name, const char *unit, const char *description,
		    enum instr_kind kind, const double *bounds, size_t n_bounds, const char *const *keys,
		    size_t n_keys);
void instrument_free(struct instrument *in);
/* values: one per key (NULL or "": absent). Returns the series (NULL: out of
 * memory, counted nowhere else). */
struct series *instrument_series(struct instrument *in, const char *const *values);
/* Histogram: one duration; trace/span ids (sampled spans only, else NULL)
 * become the bucket's exemplar. */
void instrument_record(struct instrument *in, const char *const *values, uint64_t duration_ns,
		       const uint8_t *trace_id, const uint8_t *span_id, uint64_t now_ns);
void instrument_add(struct instrument *in, const char *const *values, uint64_t n);

/* Readers (any thread). */
static inline size_t instrument_nseries(const struct instrument *in)
{
	return atomic_load_explicit(&in->n_series, memory_order_acquire);
}
static inline const struct series *instrument_get(const struct instrument *in, size_t i)
{
	return atomic_load_explicit(&in->series[i], memory_order_acquire);
}
/* Histogram snapshot: per-bucket counts (n_bounds + 1), their total, the sum. */
uint64_t series_snapshot(const struct instrument *in, const struct series *s, uint64_t *buckets, double *sum_s);
/* A bucket's exemplar, if any and read consistently. */
bool series_exemplar(const struct series *s, size_t bucket, struct exemplar *out);

#endif
