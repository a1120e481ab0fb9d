/* tls.* attributes (user/span/tls_attrs.c): the IANA names of the
 * generated table at its ends and in between, versions, and what is left
 * out (an unknown suite, a handshake not seen). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tls_attrs.h"

static void test_cipher_names(void **state)
{
	(void)state;
	assert_string_equal(tls_cipher_name(0x1301), "TLS_AES_128_GCM_SHA256");
	assert_string_equal(tls_cipher_name(0x1302), "TLS_AES_256_GCM_SHA384");
	assert_string_equal(tls_cipher_name(0x1303), "TLS_CHACHA20_POLY1305_SHA256");
	assert_string_equal(tls_cipher_name(0x1305), "TLS_AES_128_CCM_8_SHA256");
	assert_string_equal(tls_cipher_name(0xC02F), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
	assert_string_equal(tls_cipher_name(0xCCA9), "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
	assert_string_equal(tls_cipher_name(0x0001), "TLS_RSA_WITH_NULL_MD5"); /* the table's first */
	assert_string_equal(tls_cipher_name(0x002F), "TLS_RSA_WITH_AES_128_CBC_SHA");
	assert_null(tls_cipher_name(0x0000));
	assert_null(tls_cipher_name(0xFFFF));
	assert_null(tls_cipher_name(0x1306));
}

static const char *str_of(const struct attr_list *l, const char *key)
{
	const struct attr *a = attrs_get(l, key);
	return a && a->type == ATTR_STR ? a->str : NULL;
}

static void test_attributes(void **state)
{
	(void)state;
	struct attr_list l = { 0 };
	assert_int_equal(span_add_tls(&l, 4, 0x1302), 0);
	assert_string_equal(str_of(&l, "tls.protocol.name"), "tls");
	assert_string_equal(str_of(&l, "tls.protocol.version"), "1.3");
	assert_string_equal(str_of(&l, "tls.cipher"), "TLS_AES_256_GCM_SHA384");
	attrs_free(&l);

	struct attr_list v12 = { 0 };
	assert_int_equal(span_add_tls(&v12, 3, 0xABCD), 0); /* unknown suite: no tls.cipher */
	assert_string_equal(str_of(&v12, "tls.protocol.version"), "1.2");
	assert_null(attrs_get(&v12, "tls.cipher"));
	attrs_free(&v12);

	struct attr_list none = { 0 };
	assert_int_equal(span_add_tls(&none, 0, 0x1301), 0); /* no handshake seen */
	assert_int_equal(span_add_tls(&none, 5, 0x1301), 0); /* not a version weft knows */
	assert_int_equal(none.len, 0);
	attrs_free(&none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cipher_names),
		cmocka_unit_test(test_attributes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
