/* tls_entry_probe_offset on real prologues (OpenSSL 3.0.x as Debian
 * builds it) and on the cases that must fall back to the entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tls_entry.h"

/* SSL_write: sub rsp,0x18; mov rax,fs:0x28; mov [rsp+8],rax; xor eax,eax;
 * test edx,edx; js +0x2f; ... ret */
static const uint8_t ssl_write[] = { 0x48, 0x83, 0xec, 0x18, 0x64, 0x48, 0x8b, 0x04, 0x25, 0x28, 0x00, 0x00,
				     0x00, 0x48, 0x89, 0x44, 0x24, 0x08, 0x31, 0xc0, 0x85, 0xd2, 0x78, 0x2f,
				     0x48, 0x83, 0xc4, 0x18, 0xc3 };

static void test_jcc_after_canary(void **state)
{
	(void)state;
	assert_int_equal(tls_entry_probe_offset(ssl_write, sizeof(ssl_write)), 0x16);
}

/* SSL_write_ex: sub rsp,8; call rel32 */
static void test_call(void **state)
{
	(void)state;
	static const uint8_t c[] = { 0x48, 0x83, 0xec, 0x08, 0xe8, 0xc7, 0xfd, 0xff, 0xff, 0x48, 0x83, 0xc4, 0x08, 0xc3 };
	assert_int_equal(tls_entry_probe_offset(c, sizeof(c)), 4);
}

/* An argument register written first (mov rdx, rsi): the entry. */
static void test_argument_written(void **state)
{
	(void)state;
	static const uint8_t c[] = { 0x48, 0x89, 0xf2, 0x85, 0xd2, 0x78, 0x02, 0xc3 };
	assert_int_equal(tls_entry_probe_offset(c, sizeof(c)), 0);
}

/* A loop back to the jump: passed twice per call, so the entry. */
static void test_loop_into_prologue(void **state)
{
	(void)state;
	/* 0: sub rsp,8  4: test edx,edx  6: js +3 (-> 11)  8: dec edx  10: nop
	 * 11: jmp 4 (eb f7) ... */
	static const uint8_t c[] = { 0x48, 0x83, 0xec, 0x08, 0x85, 0xd2, 0x78, 0x03, 0xff, 0xca,
				     0x90, 0xeb, 0xf7, 0xc3 };
	assert_int_equal(tls_entry_probe_offset(c, sizeof(c)), 0);
}

/* No branch before a RET, or nothing decodable: the entry. */
static void test_no_branch(void **state)
{
	(void)state;
	static const uint8_t ret[] = { 0x31, 0xc0, 0xc3 };
	static const uint8_t junk[] = { 0x0f, 0x0b };
	assert_int_equal(tls_entry_probe_offset(ret, sizeof(ret)), 0);
	assert_int_equal(tls_entry_probe_offset(junk, sizeof(junk)), 0);
	assert_int_equal(tls_entry_probe_offset(ret, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jcc_after_canary),    cmocka_unit_test(test_call),
		cmocka_unit_test(test_argument_written),    cmocka_unit_test(test_loop_into_prologue),
		cmocka_unit_test(test_no_branch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
