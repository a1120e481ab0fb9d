/* The sampler (user/sampling/sampler.c): OpenTelemetry's names and
 * precedence (flags over OTEL_TRACES_SAMPLER*), errors naming the
 * variable or flag, the threshold of ratio sampling (W3C level 2
 * randomness: the 56 low bits of the trace id) and the decision the kernel
 * makes from the word (bpf/context/assign.bpf.h mirrors sampler_flags). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sampler.h"

static void set_env(const char *name, const char *arg)
{
	if (name)
		setenv("OTEL_TRACES_SAMPLER", name, 1);
	else
		unsetenv("OTEL_TRACES_SAMPLER");
	if (arg)
		setenv("OTEL_TRACES_SAMPLER_ARG", arg, 1);
	else
		unsetenv("OTEL_TRACES_SAMPLER_ARG");
}

static void test_default_and_names(void **state)
{
	struct sampler s;
	char err[256], d[64];
	set_env(NULL, NULL);
	assert_int_equal(sampler_configure(NULL, NULL, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, SAMPLER_PARENTBASED_ALWAYS_ON);
	assert_int_equal(sampler_word(&s), 0); /* what the kernel assumes when never told */
	set_env("", "");
	assert_int_equal(sampler_configure(NULL, NULL, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, SAMPLER_PARENTBASED_ALWAYS_ON);

	set_env("parentbased_traceidratio", "0.25");
	assert_int_equal(sampler_configure(NULL, NULL, &s, err, sizeof(err)), 0);
	sampler_describe(&s, d, sizeof(d));
	assert_string_equal(d, "parentbased_traceidratio(0.25)");
	/* each flag wins over its variable */
	assert_int_equal(sampler_configure("traceidratio", NULL, &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, SAMPLER_TRACEIDRATIO);
	assert_true(s.ratio == 0.25);
	assert_int_equal(sampler_configure(NULL, "0.5", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, SAMPLER_PARENTBASED_TRACEIDRATIO);
	assert_true(s.ratio == 0.5);
	assert_int_equal(sampler_configure("always_off", "0.5", &s, err, sizeof(err)), 0);
	assert_int_equal(s.kind, SAMPLER_ALWAYS_OFF);
	set_env(NULL, NULL);
}

static void test_errors_name_the_source(void **state)
{
	struct sampler s;
	char err[256];
	set_env("ratio", NULL);
	assert_int_equal(sampler_configure(NULL, NULL, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_TRACES_SAMPLER: 'ratio'"));
	set_env("traceidratio", "1.5");
	assert_int_equal(sampler_configure(NULL, NULL, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "OTEL_TRACES_SAMPLER_ARG: '1.5'"));
	assert_int_equal(sampler_configure(NULL, "x", &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--sampler-arg: 'x'"));
	assert_int_equal(sampler_configure("nope", NULL, &s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--sampler: 'nope'"));
	assert_int_equal(sampler_configure("traceidratio", "-0.1", &s, err, sizeof(err)), -EINVAL);
	assert_int_equal(sampler_configure("traceidratio", "nan", &s, err, sizeof(err)), -EINVAL);
	set_env(NULL, NULL);
}

static void test_threshold(void **state)
{
	struct sampler s = { .kind = SAMPLER_TRACEIDRATIO, .ratio = 0.25 };
	assert_int_equal(sampler_threshold(&s), 3ull << 54);
	s.ratio = 1.0;
	assert_int_equal(sampler_threshold(&s), 0);
	s.ratio = 0.0;
	assert_int_equal(sampler_threshold(&s), 1ull << 56);
	s.kind = SAMPLER_ALWAYS_OFF;
	assert_int_equal(sampler_word(&s), (1ull << 56) | SAMPLER_WORD_IGNORE_PARENT);
	s.kind = SAMPLER_PARENTBASED_ALWAYS_OFF;
	assert_int_equal(sampler_word(&s), 1ull << 56);
}

static void id_with_r(uint8_t id[16], uint64_t r)
{
	memset(id, 0xab, 16); /* the high bits do not count */
	for (int i = 15; i >= 9; i--, r >>= 8)
		id[i] = r & 0xff;
}

static void test_decision(void **state)
{
	struct sampler s = { .kind = SAMPLER_PARENTBASED_TRACEIDRATIO, .ratio = 0.25 };
	uint64_t w = sampler_word(&s), t = 3ull << 54;
	uint8_t id[16];
	id_with_r(id, t);
	assert_int_equal(sampler_flags(w, id, 0, false), 1); /* R >= T: sampled */
	id_with_r(id, t - 1);
	assert_int_equal(sampler_flags(w, id, 0, false), 0);
	/* parent-based: the parent's flags, whatever the id */
	assert_int_equal(sampler_flags(w, id, 1, true), 1);
	id_with_r(id, (1ull << 56) - 1);
	assert_int_equal(sampler_flags(w, id, 0, true), 0);
	/* not parent-based: the id decides, other flag bits kept */
	s.kind = SAMPLER_TRACEIDRATIO;
	w = sampler_word(&s);
	id_with_r(id, 5);
	assert_int_equal(sampler_flags(w, id, 0x03, true), 0x02);
	s.kind = SAMPLER_ALWAYS_ON;
	assert_int_equal(sampler_flags(sampler_word(&s), id, 0, true), 1);

	/* the share of random ids kept is the ratio */
	s.kind = SAMPLER_TRACEIDRATIO;
	s.ratio = 0.1;
	w = sampler_word(&s);
	srand(7);
	int kept = 0, n = 100000;
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 16; j++)
			id[j] = rand() & 0xff;
		kept += sampler_flags(w, id, 0, false);
	}
	assert_in_range(kept, 9500, 10500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_and_names),
		cmocka_unit_test(test_errors_name_the_source),
		cmocka_unit_test(test_threshold),
		cmocka_unit_test(test_decision),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
