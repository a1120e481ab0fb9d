/* grpc-go client streams in Go binaries (user/golang/gogrpc.c): the
 * version scan, and on tests/apps/grpcgo built by scripts/build_grpc_apps
 * (build/grpcgo/1.XX/): NewStream and its RETs found with and without
 * symbols, offsets from DWARF equal to weft's table row for that grpc-go
 * version (the row stripped builds use). */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "goelf.h"
#include "gogrpc.h"

static char root[PATH_MAX];

static void scan(const char *in, int want_rc, const char *want)
{
	char out[32] = "";
	int rc = go_grpc_version_scan((const uint8_t *)in, strlen(in), out, sizeof(out));
	assert_int_equal(rc, want_rc);
	if (!rc)
		assert_string_equal(out, want);
}

static void test_version_scan(void **state)
{
	scan("xx grpc-go/1.33.3\0yy", 0, "1.33.3");
	scan("grpc-go/1.62.0-dev", 0, "1.62.0");
	scan("grpc-go/1.", -ENOENT, NULL);	       /* cut at the end */
	scan("grpc-go/1.x grpc-go/1.20.1", 0, "1.20.1"); /* the first with digits */
	scan("grpc-go/2.0", -ENOENT, NULL);
	scan("", -ENOENT, NULL);
	char small[4];
	assert_int_equal(go_grpc_version_scan((const uint8_t *)"grpc-go/1.33.3", 14, small, sizeof(small)), -ENOENT);
}

static struct go_elf *open_ok(const char *path)
{
	char err[512];
	struct go_elf *ge = NULL;
	int rc = go_elf_open(path, &ge, err, sizeof(err));
	if (rc)
		print_error("go_elf_open(%s): %s\n", path, err);
	assert_int_equal(rc, 0);
	return ge;
}

static void test_grpcgo_builds(void **state)
{
	glob_t g;
	char pat[PATH_MAX + 32];
	snprintf(pat, sizeof(pat), "%s/build/grpcgo/1.*/grpcgo", root);
	assert_int_equal(glob(pat, 0, NULL, &g), 0);
	assert_true(g.gl_pathc > 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char stripped[PATH_MAX + 16];
		snprintf(stripped, sizeof(stripped), "%s-stripped", g.gl_pathv[i]);
		struct go_elf *ge = open_ok(g.gl_pathv[i]), *gs = open_ok(stripped);
		struct go_grpc a, b;
		assert_int_equal(go_grpc_analyse(ge, &a), 0);
		assert_int_equal(go_grpc_analyse(gs, &b), 0);
		assert_string_equal(a.source, "DWARF");
		assert_string_equal(b.source, "table");
		assert_string_equal(a.version, "1.33.3"); /* Debian's golang-google-grpc-dev */
		assert_string_equal(b.version, "1.33.3");
		/* The table row is what the DWARF says. */
		assert_int_equal(a.stream_id, b.stream_id);
		assert_int_equal(a.stream_ct, b.stream_ct);
		assert_int_equal(a.client_conn, b.client_conn);
		/* Same code, same RETs (pclntab sizes include padding: no extra RET). */
		assert_true(a.n_rets > 0);
		assert_int_equal(a.n_rets, b.n_rets);
		for (size_t r = 0; r < a.n_rets; r++) {
			const uint8_t *p = go_elf_at_offset(gs, b.rets[r], 1);
			assert_non_null(p);
			assert_int_equal(p[0], 0xc3); /* RET */
		}
		go_grpc_free(&a);
		go_grpc_free(&b);
		go_elf_close(ge);
		go_elf_close(gs);
	}
	globfree(&g);
}

static void test_not_grpc(void **state)
{
	/* weft itself is not Go; a Go program without grpc-go says -ENOENT. */
	glob_t g;
	char pat[PATH_MAX + 32];
	snprintf(pat, sizeof(pat), "%s/build/go/1.*/httpapp", root);
	if (glob(pat, 0, NULL, &g) != 0 || !g.gl_pathc)
		skip();
	struct go_elf *ge = open_ok(g.gl_pathv[0]);
	struct go_grpc a;
	assert_int_equal(go_grpc_analyse(ge, &a), -ENOENT);
	assert_null(a.rets);
	go_elf_close(ge);
	globfree(&g);
}

static int setup(void **state)
{
	if (getenv("WEFT_ROOT"))
		snprintf(root, sizeof(root), "%s", getenv("WEFT_ROOT"));
	else if (!getcwd(root, sizeof(root)))
		return -1;
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof(cmd), "'%s/scripts/build_grpc_apps' >&2", root);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_gogrpc: FAIL: scripts/build_grpc_apps failed (run from the weft tree)\n");
		return -1;
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_scan),
		cmocka_unit_test(test_grpcgo_builds),
		cmocka_unit_test(test_not_grpc),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
