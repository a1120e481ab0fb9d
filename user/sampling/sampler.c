#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sampler.h"

static const struct {
	const char *name;
	enum sampler_kind kind;
} kinds[] = {
	{ "parentbased_always_on", SAMPLER_PARENTBASED_ALWAYS_ON },
	{ "parentbased_always_off", SAMPLER_PARENTBASED_ALWAYS_OFF },
	{ "parentbased_traceidratio", SAMPLER_PARENTBASED_TRACEIDRATIO },
	{ "always_on", SAMPLER_ALWAYS_ON },
	{ "always_off", SAMPLER_ALWAYS_OFF },
	{ "traceidratio", SAMPLER_TRACEIDRATIO },
};

static bool is_ratio(enum sampler_kind k)
{
	return k == SAMPLER_TRACEIDRATIO || k == SAMPLER_PARENTBASED_TRACEIDRATIO;
}

int sampler_parse(const char *name, const char *arg, const char *what, const char *what_arg,
		  struct sampler *out, char *err, size_t err_len)
{
	struct sampler s = { .kind = SAMPLER_PARENTBASED_ALWAYS_ON, .ratio = 1.0 };
	if (name && *name) {
		size_t i;
		for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
			if (strcmp(name, kinds[i].name) == 0)
				break;
		if (i == sizeof(kinds) / sizeof(kinds[0])) {
			snprintf(err, err_len,
				 "%s: '%s' is not one of: always_on, always_off, traceidratio, parentbased_always_on, "
				 "parentbased_always_off, parentbased_traceidratio",
				 what, name);
			return -EINVAL;
		}
		s.kind = kinds[i].kind;
	}
	if (arg && *arg && is_ratio(s.kind)) {
		char *end;
		errno = 0;
		double r = strtod(arg, &end);
		if (errno || end == arg || *end || !(r >= 0.0 && r <= 1.0)) {
			snprintf(err, err_len, "%s: '%s' is not a sampling ratio from 0 to 1", what_arg, arg);
			return -EINVAL;
		}
		s.ratio = r;
	}
	*out = s;
	return 0;
}

int sampler_configure(const char *flag, const char *flag_arg, struct sampler *out, char *err, size_t err_len)
{
	const char *name = getenv("OTEL_TRACES_SAMPLER"), *arg = getenv("OTEL_TRACES_SAMPLER_ARG");
	const char *what = "OTEL_TRACES_SAMPLER", *what_arg = "OTEL_TRACES_SAMPLER_ARG";
	if (flag) {
		name = flag;
		what = "--sampler";
	}
	if (flag_arg) {
		arg = flag_arg;
		what_arg = "--sampler-arg";
	}
	return sampler_parse(name, arg, what, what_arg, out, err, err_len);
}

void sampler_describe(const struct sampler *s, char *out, size_t len)
{
	const char *name = "?";
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == s->kind)
			name = kinds[i].name;
	if (is_ratio(s->kind))
		snprintf(out, len, "%s(%g)", name, s->ratio);
	else
		snprintf(out, len, "%s", name);
}

uint64_t sampler_threshold(const struct sampler *s)
{
	double r;
	switch (s->kind) {
	case SAMPLER_ALWAYS_OFF:
	case SAMPLER_PARENTBASED_ALWAYS_OFF:
		return SAMPLER_RANDOMNESS_LIMIT;
	case SAMPLER_TRACEIDRATIO:
	case SAMPLER_PARENTBASED_TRACEIDRATIO:
		/* Sampled when R >= T = (1 - ratio) * 2^56 (OpenTelemetry's
		 * TraceIdRatioBased with W3C level 2 randomness). */
		r = s->ratio;
		if (r >= 1.0)
			return 0;
		if (r <= 0.0)
			return SAMPLER_RANDOMNESS_LIMIT;
		return (uint64_t)llround(ldexp(1.0 - r, 56));
	default:
		return 0;
	}
}

uint64_t sampler_word(const struct sampler *s)
{
	uint64_t w = sampler_threshold(s);
	if (s->kind == SAMPLER_ALWAYS_ON || s->kind == SAMPLER_ALWAYS_OFF || s->kind == SAMPLER_TRACEIDRATIO)
		w |= SAMPLER_WORD_IGNORE_PARENT;
	return w;
}

uint8_t sampler_flags(uint64_t word, const uint8_t trace_id[16], uint8_t parent_flags, bool has_parent)
{
	uint64_t r = 0;
	if (has_parent && !(word & SAMPLER_WORD_IGNORE_PARENT))
		return parent_flags;
	for (int i = 9; i < 16; i++)
		r = r << 8 | trace_id[i];
	uint8_t f = has_parent ? parent_flags : 1;
	return r >= (word & ~SAMPLER_WORD_IGNORE_PARENT) ? f | 1 : f & ~1;
}
