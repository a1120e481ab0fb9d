/* Trace sampling with the OpenTelemetry SDK's names and semantics
 * (OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG). The decision is made in
 * the kernel, once per trace at its root (bpf/context/assign.bpf.h and
 * bpf/inject/propagation.bpf.c), and travels in traceparent's flags; the
 * agent exports only spans whose sampled flag is set (docs/METRICS.md). */
#ifndef WEFT_SAMPLER_H
#define WEFT_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sampler_kind {
	SAMPLER_PARENTBASED_ALWAYS_ON = 0, /* the SDK's default */
	SAMPLER_PARENTBASED_ALWAYS_OFF,
	SAMPLER_PARENTBASED_TRACEIDRATIO,
	SAMPLER_ALWAYS_ON,
	SAMPLER_ALWAYS_OFF,
	SAMPLER_TRACEIDRATIO,
};

struct sampler {
	enum sampler_kind kind;
	double ratio; /* traceidratio kinds: 0..1 (default 1) */
};

/* The kernel's sampler word: bits 0-56 the threshold, bit 63 not
 * parent-based (bpf/context/assign.bpf.h). */
#define SAMPLER_WORD_IGNORE_PARENT (1ull << 63)
#define SAMPLER_RANDOMNESS_LIMIT (1ull << 56)

/* name (NULL: default) and arg (NULL or "": the kind's default); what and
 * what_arg name them in errors ("OTEL_TRACES_SAMPLER", "--sampler").
 * Returns 0, or -EINVAL with a message naming them in err. */
int sampler_parse(const char *name, const char *arg, const char *what, const char *what_arg,
		  struct sampler *out, char *err, size_t err_len);
/* OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, each overridden by its
 * flag's value when not NULL (--sampler alone keeps the variable's ratio). */
int sampler_configure(const char *flag, const char *flag_arg, struct sampler *out, char *err, size_t err_len);
/* "parentbased_traceidratio(0.25)" */
void sampler_describe(const struct sampler *s, char *out, size_t len);
uint64_t sampler_threshold(const struct sampler *s);
uint64_t sampler_word(const struct sampler *s);
/* The decision the kernel makes for a span of trace_id whose parent (if
 * has_parent) had parent_flags: the W3C flags of the span. */
uint8_t sampler_flags(uint64_t word, const uint8_t trace_id[16], uint8_t parent_flags, bool has_parent);

#endif
