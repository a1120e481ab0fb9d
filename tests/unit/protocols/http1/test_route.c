/* Unit tests for route_from_path (user/protocols/http1/route.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "route.h"

/* Routes a NUL-terminated path into a generous buffer and compares. */
#define assert_route(in, expected)                                             \
	do {                                                                   \
		char out_[256];                                                \
		int n_ = route_from_path((in), strlen(in), out_, sizeof(out_)); \
		assert_string_equal(out_, (expected));                         \
		assert_int_equal(n_, (int)strlen(expected));                   \
	} while (0)

static void test_plain_words_kept(void **state)
{
	assert_route("/", "/");
	assert_route("/users", "/users");
	assert_route("/api/orders", "/api/orders");
	assert_route("/index.html", "/index.html");
	assert_route("/static/css/style.css", "/static/css/style.css");
	assert_route("/favicon.ico", "/favicon.ico");
	assert_route("/health-check", "/health-check");
	assert_route("/deadbeef", "/deadbeef"); /* hex letters only: a word */
}

static void test_api_versions_kept(void **state)
{
	assert_route("/v1/users", "/v1/users");
	assert_route("/api/v2/orders", "/api/v2/orders");
	assert_route("/api/V3/x", "/api/V3/x");
	assert_route("/api/v10/items", "/api/v10/items");
	assert_route("/api/v1.2/items", "/api/v1.2/items");
	assert_route("/oauth2/callback", "/oauth2/callback");
	assert_route("/2fa/setup", "/2fa/setup");
	assert_route("/s3/buckets", "/s3/buckets");
}

static void test_numbers_starred(void **state)
{
	assert_route("/users/42", "/users/*");
	assert_route("/users/42/orders/9f86d081", "/users/*/orders/*");
	assert_route("/0", "/*");
	assert_route("/items/123456789012345678901234567890", "/items/*");
	assert_route("/a/1/b/2/c/3", "/a/*/b/*/c/*");
}

static void test_uuid_starred(void **state)
{
	assert_route("/orders/123e4567-e89b-12d3-a456-426614174000", "/orders/*");
	assert_route("/orders/123E4567-E89B-12D3-A456-426614174000/items", "/orders/*/items");
	assert_route("/x/abcdefab-abcd-abcd-abcd-abcdefabcdef", "/x/*");
	/* wrong grouping: not a UUID, but still an identifier by other rules */
	assert_route("/x/123e4567e89b12d3a456426614174000", "/x/*");
}

static void test_hex_hashes_starred(void **state)
{
	assert_route("/commit/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "/commit/*");
	assert_route("/obj/507f1f77bcf86cd799439011", "/obj/*");
	assert_route("/a1b2c3d4e5", "/*");
	assert_route("/blob/ABCDEF12", "/blob/*");
	assert_route("/blob/abc1234", "/blob/*"); /* 7 chars, digit majority */
}

static void test_random_tokens_starred(void **state)
{
	assert_route("/t/eyJhbGciOiJIUzI1NiJ9", "/t/*");
	assert_route("/share/AbCdEfGhIjKlMnOp1", "/share/*");
	assert_route("/s/xK9_mQ2-pL7wZ3nR", "/s/*");
	/* long but wordy: kept */
	assert_route("/settings/authentication-v2-settings", "/settings/authentication-v2-settings");
	assert_route("/a/oauth2_callback_handler", "/a/oauth2_callback_handler");
	assert_route("/a/averyveryverylongwordwithoutdigits", "/a/averyveryverylongwordwithoutdigits");
	assert_route("/rpc/getUserProfileV2", "/rpc/getUserProfileV2");
	/* no digits at all: letters-only segments are never starred */
	assert_route("/x/AbCdEfGhIjKlMnOpQr", "/x/AbCdEfGhIjKlMnOpQr");
}

static void test_emails_and_dates_starred(void **state)
{
	assert_route("/users/john.doe@example.com/profile", "/users/*/profile");
	assert_route("/users/john.doe%40example.com", "/users/*");
	assert_route("/reports/2024-01-31", "/reports/*");
	assert_route("/reports/2024-01-31/summary", "/reports/*/summary");
	assert_route("/at/10:30", "/at/*");
	assert_route("/pkg/foo/1.2.3", "/pkg/foo/*");
	assert_route("/ts/2024-01-31T10:00:00Z", "/ts/*");
}

static void test_digit_majority(void **state)
{
	assert_route("/p/abc123456", "/p/*");
	assert_route("/p/x86", "/p/*");
	assert_route("/p/page2", "/p/page2");
	assert_route("/p/item-12", "/p/item-12");
	assert_route("/p/12345.json", "/p/*");
}

static void test_query_and_fragment_dropped(void **state)
{
	assert_route("/search?q=42", "/search");
	assert_route("/users/42?expand=true&x=/y/z", "/users/*");
	assert_route("/page#section-2", "/page");
	assert_route("/?x=1", "/");
}

static void test_percent_encoding(void **state)
{
	assert_route("/files/my%20document.pdf", "/files/my%20document.pdf");
	assert_route("/files/%E2%82%AC", "/files/%E2%82%AC");
	assert_route("/files/%20%20", "/files/%20%20");
	assert_route("/bad/%zz", "/bad/%zz");
	assert_route("/bad/%", "/bad/%");
	assert_route("/bad/%4", "/bad/*"); /* one digit, no letters */
}

static void test_slashes_kept_as_is(void **state)
{
	assert_route("/users/", "/users/");
	assert_route("/users/42/", "/users/*/");
	assert_route("//", "//");
	assert_route("////////", "////////");
	assert_route("//a//42//", "//a//*//");
}

static void test_invalid_paths(void **state)
{
	char out[16];

	memset(out, 'x', sizeof(out));
	assert_int_equal(route_from_path("", 0, out, sizeof(out)), -EINVAL);
	assert_string_equal(out, "/");
	assert_int_equal(route_from_path(NULL, 0, out, sizeof(out)), -EINVAL);
	assert_string_equal(out, "/");
	assert_int_equal(route_from_path("users/42", 8, out, sizeof(out)), -EINVAL);
	assert_string_equal(out, "/");
	assert_int_equal(route_from_path("?q=1", 4, out, sizeof(out)), -EINVAL);
	assert_string_equal(out, "/");
	assert_int_equal(route_from_path("http://h/x", 10, out, sizeof(out)), -EINVAL);
	assert_int_equal(route_from_path("*", 1, out, sizeof(out)), -EINVAL);
	assert_int_equal(route_from_path("/x", 2, out, 0), -EINVAL);
	assert_int_equal(route_from_path("/x", 2, NULL, 8), -EINVAL);
}

static void test_len_bounds_input(void **state)
{
	char out[32];
	/* no NUL terminator after the given length is needed or read */
	const char buf[] = { '/', 'u', 's', 'e', 'r', 's', '/', '4', '2' };

	assert_int_equal(route_from_path(buf, sizeof(buf), out, sizeof(out)), 8);
	assert_string_equal(out, "/users/*");
	assert_int_equal(route_from_path(buf, 6, out, sizeof(out)), 6);
	assert_string_equal(out, "/users");
}

static void test_control_bytes_starred(void **state)
{
	char out[32];

	/* the output is always a C string of the returned length */
	assert_int_equal(route_from_path("/a\0b/c", 6, out, sizeof(out)), 4);
	assert_string_equal(out, "/*/c");
	assert_route("/x/a\tb", "/x/*");
	assert_route("/x/a\r\nSet-Cookie:", "/x/*");
	assert_route("/x/\x7f", "/x/*");
	/* UTF-8 is not control: kept */
	assert_route("/caf\xc3\xa9", "/caf\xc3\xa9");
}

static void test_tiny_output_buffers(void **state)
{
	char out[8];

	memset(out, 'x', sizeof(out));
	assert_int_equal(route_from_path("/users/42", 9, out, 1), 0);
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[1], 'x');

	memset(out, 'x', sizeof(out));
	assert_int_equal(route_from_path("/users/42", 9, out, 2), 1);
	assert_string_equal(out, "/");
	assert_int_equal(out[2], 'x');

	memset(out, 'x', sizeof(out));
	assert_int_equal(route_from_path("/users/42", 9, out, 3), 1);
	assert_string_equal(out, "/");
	assert_int_equal(out[3], 'x');

	memset(out, 'x', sizeof(out));
	assert_int_equal(route_from_path("/users/42", 9, out, 5), 4);
	assert_string_equal(out, "/...");
	assert_int_equal(out[5], 'x');

	/* fits exactly: no cut */
	assert_int_equal(route_from_path("/ab", 3, out, 4), 3);
	assert_string_equal(out, "/ab");
	assert_int_equal(route_from_path("/", 1, out, 2), 1);
	assert_string_equal(out, "/");
	/* invalid path with outlen 1: empty string */
	assert_int_equal(route_from_path("x", 1, out, 1), -EINVAL);
	assert_string_equal(out, "");
}

static void test_cut_at_segment_boundary(void **state)
{
	char out[16];
	int n;

	n = route_from_path("/api/orders/items/details", 25, out, sizeof(out));
	assert_string_equal(out, "/api/orders/...");
	assert_int_equal(n, 15);

	n = route_from_path("/api/orders/items/details", 25, out, 15);
	assert_string_equal(out, "/api/...");
	assert_int_equal(n, 8);

	/* the starred form is what must fit, not the raw segment */
	n = route_from_path("/a/123456789012345678901234567890", 33, out, 5);
	assert_string_equal(out, "/a/*");
	assert_int_equal(n, 4);
}

static void test_huge_path(void **state)
{
	size_t len = 10 * 1024;
	char *path = malloc(len);
	char out[128];
	int n;

	assert_non_null(path);
	/* one giant segment */
	path[0] = '/';
	memset(path + 1, 'a', len - 1);
	n = route_from_path(path, len, out, sizeof(out));
	assert_string_equal(out, "/...");
	assert_int_equal(n, 4);

	/* many short segments: cut, bounded, ends with the marker */
	for (size_t i = 0; i < len; i++)
		path[i] = (i % 4 == 0) ? '/' : 'b';
	n = route_from_path(path, len, out, sizeof(out));
	assert_true(n > 4 && (size_t)n < sizeof(out));
	assert_int_equal(strlen(out), (size_t)n);
	assert_string_equal(out + n - 4, "/...");
	assert_memory_equal(out, "/bbb/bbb/", 9);

	/* only slashes */
	memset(path, '/', len);
	n = route_from_path(path, len, out, sizeof(out));
	assert_int_equal((size_t)n, strlen(out));
	assert_true((size_t)n < sizeof(out));

	/* a 10 KB path with a big enough buffer round-trips */
	{
		char *big = malloc(len + 1);

		assert_non_null(big);
		n = route_from_path(path, len, big, len + 1);
		assert_int_equal((size_t)n, len);
		assert_int_equal(strlen(big), len);
		free(big);
	}
	free(path);
}

static void test_all_byte_values_never_crash(void **state)
{
	char path[3] = { '/', 0, 0 };
	char out[8];

	for (int a = 0; a < 256; a++) {
		for (int b = 0; b < 256; b++) {
			int n;

			path[1] = (char)a;
			path[2] = (char)b;
			n = route_from_path(path, sizeof(path), out, sizeof(out));
			assert_true(n >= 0 && n < (int)sizeof(out));
			assert_int_equal(strlen(out), (size_t)n);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_words_kept),
		cmocka_unit_test(test_api_versions_kept),
		cmocka_unit_test(test_numbers_starred),
		cmocka_unit_test(test_uuid_starred),
		cmocka_unit_test(test_hex_hashes_starred),
		cmocka_unit_test(test_random_tokens_starred),
		cmocka_unit_test(test_emails_and_dates_starred),
		cmocka_unit_test(test_digit_majority),
		cmocka_unit_test(test_query_and_fragment_dropped),
		cmocka_unit_test(test_percent_encoding),
		cmocka_unit_test(test_slashes_kept_as_is),
		cmocka_unit_test(test_invalid_paths),
		cmocka_unit_test(test_len_bounds_input),
		cmocka_unit_test(test_control_bytes_starred),
		cmocka_unit_test(test_tiny_output_buffers),
		cmocka_unit_test(test_cut_at_segment_boundary),
		cmocka_unit_test(test_huge_path),
		cmocka_unit_test(test_all_byte_values_never_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
