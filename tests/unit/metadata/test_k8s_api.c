/* Reaching the Kubernetes API (user/metadata/k8s_api.c): a kubeconfig's
 * current context (server, CA data, token, client certificate files
 * relative to the file), refusals of what weft cannot use, and the
 * in-cluster service account's absence. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k8s_api.h"

static const char kubeconfig[] = "apiVersion: v1\n"
				 "kind: Config\n"
				 "current-context: prod\n"
				 "clusters:\n"
				 "- name: dev-cluster\n"
				 "  cluster: {server: https://dev:6443}\n"
				 "- name: prod-cluster\n"
				 "  cluster:\n"
				 "    server: https://10.0.0.1:6443/\n"
				 "    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n"
				 "contexts:\n"
				 "- name: dev\n"
				 "  context: {cluster: dev-cluster, user: dev-user}\n"
				 "- name: prod\n"
				 "  context: {cluster: prod-cluster, user: prod-user}\n"
				 "users:\n"
				 "- name: dev-user\n"
				 "  user: {token: wrong}\n"
				 "- name: prod-user\n"
				 "  user:\n"
				 "    client-certificate: certs/client.crt\n"
				 "    client-key: /abs/client.key\n"
				 "    token: s3cret\n";

static void test_current_context(void **state)
{
	struct k8s_api a = {};
	char err[256];
	assert_int_equal(k8s_api_from_kubeconfig(kubeconfig, strlen(kubeconfig), "/home/u/.kube", &a, err, sizeof(err)), 0);
	assert_string_equal(a.server, "https://10.0.0.1:6443"); /* trailing slash dropped */
	assert_string_equal(a.ca_data, "-----BEGIN CERTIFICATE-----");
	assert_string_equal(a.token, "s3cret");
	assert_string_equal(a.cert_file, "/home/u/.kube/certs/client.crt");
	assert_string_equal(a.key_file, "/abs/client.key");
	assert_false(a.insecure);
	k8s_api_free(&a);
}

static void test_refusals(void **state)
{
	struct k8s_api a = {};
	char err[256];
	const char *no_ctx = "current-context: nowhere\nclusters: []\n";
	assert_int_equal(k8s_api_from_kubeconfig(no_ctx, strlen(no_ctx), ".", &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "nowhere"));
	const char *exec = "current-context: c\nclusters:\n- name: k\n  cluster: {server: https://x}\ncontexts:\n"
			   "- name: c\n  context: {cluster: k, user: u}\nusers:\n- name: u\n  user:\n    exec: {command: aws}\n";
	assert_int_equal(k8s_api_from_kubeconfig(exec, strlen(exec), ".", &a, err, sizeof(err)), -ENOTSUP);
	assert_non_null(strstr(err, "plugin"));
	assert_int_equal(k8s_api_from_kubeconfig("[", 1, ".", &a, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not YAML"));
}

static void test_not_in_cluster(void **state)
{
	struct k8s_api a;
	char err[256];
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_int_equal(k8s_api_config(NULL, &a, err, sizeof(err)), -ENOENT);
	assert_int_equal(k8s_api_config("/nonexistent/kubeconfig", &a, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/kubeconfig"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_current_context),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_not_in_cluster),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
