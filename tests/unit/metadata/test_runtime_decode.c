/* The container runtimes' answers decoded from memory: a Docker-compatible
 * inspect answer (user/metadata/runtime_api.c; runtime_api_peer.py's
 * shape), a CRI answer's gRPC framing and its header and trailer lines
 * (user/metadata/cri_api.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cri_api.h"
#include "runtime_api.h"

static void test_inspect(void **state)
{
	static const char answer[] =
		"{\"Id\":\"c0ffee\",\"Name\":\"/k8s_web_web-1_shop_u-1_0\",\"State\":{\"Running\":true},"
		"\"Config\":{\"Image\":\"registry.local/shop/web:2.1\",\"Labels\":{\"io.kubernetes.pod.name\":\"web-1\","
		"\"io.kubernetes.pod.namespace\":\"shop\",\"io.kubernetes.pod.uid\":\"u-1\","
		"\"io.kubernetes.container.name\":\"web\",\"app\":\"x\"}}}";
	struct runtime_info ri;
	assert_true(runtime_decode_inspect(answer, strlen(answer), &ri));
	assert_string_equal(ri.name, "k8s_web_web-1_shop_u-1_0"); /* without its '/' */
	assert_string_equal(ri.image, "registry.local/shop/web:2.1");
	assert_string_equal(ri.pod_name, "web-1");
	assert_string_equal(ri.pod_namespace, "shop");
	assert_string_equal(ri.pod_uid, "u-1");
	assert_string_equal(ri.k8s_container, "web");
	static const char podman[] = "{\"Name\":\"web\",\"Config\":{\"Labels\":null}}";
	assert_true(runtime_decode_inspect(podman, strlen(podman), &ri));
	assert_string_equal(ri.name, "web");
	assert_string_equal(ri.pod_name, "");
	assert_false(runtime_decode_inspect("{\"Name\":", 8, &ri));
}

static void test_grpc_body(void **state)
{
	/* ContainerStatusResponse { status { metadata { name "web" } } } */
	static const uint8_t body[] = { 0, 0, 0, 0, 7, 0x0a, 0x05, 0x12, 0x03, 0x0a, 0x01, 'w' };
	struct runtime_info ri;
	assert_int_equal(cri_decode_grpc_body(body, sizeof(body), &ri), 0);
	assert_string_equal(ri.name, "w");
	assert_int_equal(cri_decode_grpc_body(body, sizeof(body) - 1, &ri), -EINVAL); /* length disagrees */
	uint8_t compressed[sizeof(body)];
	memcpy(compressed, body, sizeof(body));
	compressed[0] = 1;
	assert_int_equal(cri_decode_grpc_body(compressed, sizeof(body), &ri), -EINVAL);
	assert_int_equal(cri_decode_grpc_body(body, 4, &ri), -EINVAL);
}

static void test_grpc_headers(void **state)
{
	int status = -1;
	char msg[16] = "";
	cri_grpc_header("content-type: application/grpc\r\n", 32, &status, msg, sizeof(msg));
	assert_int_equal(status, -1);
	cri_grpc_header("Grpc-Status: 5\r\n", 16, &status, msg, sizeof(msg));
	assert_int_equal(status, 5);
	/* out of range or not a number: UNKNOWN (2), never OK or NOT_FOUND */
	cri_grpc_header("grpc-status: 4294967296\r\n", 25, &status, msg, sizeof(msg));
	assert_int_equal(status, 2);
	cri_grpc_header("grpc-status: 4294967301\r\n", 25, &status, msg, sizeof(msg));
	assert_int_equal(status, 2);
	cri_grpc_header("grpc-status: 0x\r\n", 18, &status, msg, sizeof(msg));
	assert_int_equal(status, 2);
	cri_grpc_header("grpc-status:\r\n", 14, &status, msg, sizeof(msg));
	assert_int_equal(status, 2);
	cri_grpc_header("grpc-status: 0 \r\n", 17, &status, msg, sizeof(msg));
	assert_int_equal(status, 0);
	cri_grpc_header("grpc-message: an error occurred when try to find container\r\n", 61, &status, msg, sizeof(msg));
	assert_string_equal(msg, "an error occurr"); /* bounded by its buffer */
	cri_grpc_header("grpc-message:", 13, &status, msg, sizeof(msg));
	assert_string_equal(msg, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inspect),
		cmocka_unit_test(test_grpc_body),
		cmocka_unit_test(test_grpc_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
