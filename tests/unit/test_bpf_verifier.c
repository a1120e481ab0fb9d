/* How hard the kernel's verifier works on weft's BPF programs. It refuses a
 * program once it has processed 1,000,000 instructions; sys_exit_io once
 * stood at 997,320 on 6.18 (the header scan's loop state on the stack), a
 * change away from not loading at all. Each program here must stay well
 * below the limit. Loads (never attaches) the skeletons: needs root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/libbpf.h>

#include "go.skel.h"
#include "propagation.skel.h"
#include "sockets.skel.h"

#define VERIFIER_LIMIT 1000000L
#define MARGIN_LIMIT 700000L /* 70% of the limit */

struct prog_cost {
	char name[64];
	long insns;
};

static struct prog_cost costs[64];
static size_t n_costs;
static char current[64];

/* libbpf prints each program's verifier log (kernel_log_level 4: the
 * statistics only) between BEGIN/END lines naming the program. */
static int collect(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	static char buf[1 << 16];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		const char *p = strstr(line, "prog '");
		if (p && strstr(line, "BEGIN PROG LOAD LOG")) {
			p += 6;
			size_t k = strcspn(p, "'");
			snprintf(current, sizeof(current), "%.*s", (int)k, p);
		}
		long insns;
		p = strstr(line, "processed ");
		if (p && sscanf(p, "processed %ld insns", &insns) == 1 && n_costs < 64) {
			snprintf(costs[n_costs].name, sizeof(costs[0].name), "%s", current);
			costs[n_costs++].insns = insns;
		}
		line = nl ? nl + 1 : NULL;
	}
	return 0;
}

static void check_costs(const char *object, size_t expect_at_least)
{
	if (n_costs < expect_at_least)
		fail_msg("%s: verifier statistics of %zu programs read, expected %zu", object, n_costs,
			 expect_at_least);
	for (size_t i = 0; i < n_costs; i++) {
		printf("  %s: %-32s %7ld instructions processed\n", object, costs[i].name, costs[i].insns);
		if (costs[i].insns > MARGIN_LIMIT)
			fail_msg("%s: %s makes the verifier process %ld of its %ld instructions: simplify it "
				 "before some kernel refuses it",
				 object, costs[i].name, costs[i].insns, VERIFIER_LIMIT);
	}
}

static void reset(void)
{
	n_costs = 0;
	current[0] = 0;
}

/* Loads skeleton obj (never attaches it) with the verifier's statistics on,
 * then checks at least min_progs programs' costs. */
#define LOAD_AND_CHECK(obj, min_progs)                                          \
	do {                                                                    \
		LIBBPF_OPTS(bpf_object_open_opts, o, .kernel_log_level = 4);    \
		reset();                                                        \
		struct obj##_bpf *skel = obj##_bpf__open_opts(&o);              \
		assert_non_null(skel);                                          \
		assert_int_equal(obj##_bpf__load(skel), 0);                     \
		obj##_bpf__destroy(skel);                                       \
		check_costs(#obj, min_progs);                                   \
	} while (0)

static void test_sockets(void **state)
{
	LOAD_AND_CHECK(sockets, 3); /* sys_enter_io, sys_exit_io, ... */
}

static void test_propagation(void **state)
{
	LOAD_AND_CHECK(propagation, 3); /* sockops, sk_skb, sk_msg */
}

static void test_go(void **state)
{
	LOAD_AND_CHECK(go, 3);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_bpf_verifier: FAIL: loading BPF programs needs root\n");
		return 1;
	}
	libbpf_set_print(collect);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sockets),
		cmocka_unit_test(test_propagation),
		cmocka_unit_test(test_go),
	};
	return cmocka_run_group_tests_name("bpf_verifier", tests, NULL, NULL);
}
