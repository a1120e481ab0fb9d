/* How hard the kernel's verifier works on weft's BPF programs, through the
 * program check of `weft doctor` (user/loaders/progcheck.c): each program weft's
 * configuration leaves on for this kernel is loaded on its own (never
 * attached). The kernel refuses a program once it has processed 1,000,000
 * instructions (sys_exit_io once stood at 997,320 on 6.18), and kernels
 * differ in how much they process: every program must load, stay under
 * half the limit, and keep its deepest chain of frames within 448 of the
 * 512 bytes of stack. make test-kernels runs the same check on other kernels.
 * Needs root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "progcheck.h"

static struct progcheck_result *results;
static size_t n_results;

static int run_check(void **state)
{
	return progcheck_run(&results, &n_results) ? -1 : 0;
}

static int free_results(void **state)
{
	free(results);
	return 0;
}

/* Prints object's programs and fails unless there are at least min_progs,
 * each loaded within weft's ceilings. */
static void check_object(const char *object, size_t min_progs)
{
	size_t n = 0, failed = 0;
	for (size_t i = 0; i < n_results; i++) {
		const struct progcheck_result *r = &results[i];
		if (strcmp(r->object, object))
			continue;
		n++;
		progcheck_print(stdout, r, 1, "  ");
		if (progcheck_failed(r))
			failed++;
	}
	if (n < min_progs)
		fail_msg("%s: %zu programs checked, expected at least %zu", object, n, min_progs);
	if (failed)
		fail_msg("%s: %zu of %zu programs refused or over weft's ceilings (%ld of the verifier's %ld "
			 "processed instructions, %ld bytes of stack): see above",
			 object, failed, n, PROGCHECK_INSN_BUDGET, PROGCHECK_INSN_LIMIT, PROGCHECK_STACK_LIMIT);
}

static void test_sockets(void **state)
{
	check_object("capture", 3); /* sys_enter_io, sys_exit_io, ... */
}

static void test_propagation(void **state)
{
	check_object("propagation", 3); /* sockops, sk_skb, sk_msg */
}

static void test_go(void **state)
{
	check_object("go", 3);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_bpf_verifier: FAIL: loading BPF programs needs root\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sockets),
		cmocka_unit_test(test_propagation),
		cmocka_unit_test(test_go),
	};
	return cmocka_run_group_tests_name("bpf_verifier", tests, run_check, free_results);
}
