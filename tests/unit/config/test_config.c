/* The configuration file and its variables (user/config/): keys, errors
 * naming file, line and key, selectors' matching (globs, port ranges,
 * anchored regexes, owners, labels), instrument/exclude precedence. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"
#include "pod_meta.h"

static int parse(struct weft_config *cfg, const char *text, char *err)
{
	memset(cfg, 0, sizeof(*cfg));
	int rc = config_parse_yaml(cfg, text, strlen(text), "weft.yaml", err, 512);
	if (rc)
		config_free(cfg);
	return rc;
}

static void test_full_file(void **state)
{
	struct weft_config cfg;
	char err[512] = "";
	const char *text = "discovery:\n"
			   "  instrument:\n"
			   "    - exe_path: /usr/bin/python3*\n"
			   "      open_ports: 8000-8099,9090\n"
			   "    - k8s_namespace: shop|payments\n"
			   "      k8s_deployment_name: check.*\n"
			   "      k8s_pod_labels:\n"
			   "        app: checkout\n"
			   "  exclude_instrument:\n"
			   "    - container_name: sidecar\n"
			   "kubernetes:\n"
			   "  enable: true\n"
			   "  kubeconfig: /etc/kube.conf\n"
			   "  node_name: node-a\n"
			   "  sync_timeout_ms: 2500\n"
			   "container_runtime:\n"
			   "  socket: /run/docker.sock\n"
			   "  cri_socket: /run/containerd/containerd.sock\n";
	assert_int_equal(parse(&cfg, text, err), 0);
	assert_int_equal(cfg.n_instrument, 2);
	assert_int_equal(cfg.n_exclude, 1);
	assert_string_equal(cfg.instrument[0].exe_path, "/usr/bin/python3*");
	assert_int_equal(cfg.instrument[0].n_ports, 2);
	assert_int_equal(cfg.instrument[0].ports[0].lo, 8000);
	assert_int_equal(cfg.instrument[0].ports[0].hi, 8099);
	assert_int_equal(cfg.instrument[0].ports[1].lo, 9090);
	assert_int_equal(cfg.instrument[0].ports[1].hi, 9090);
	assert_int_equal(cfg.instrument[1].n_labels, 1);
	assert_int_equal(cfg.k8s_enable, K8S_ENABLE_ON);
	assert_string_equal(cfg.kubeconfig, "/etc/kube.conf");
	assert_string_equal(cfg.node_name, "node-a");
	assert_int_equal(cfg.k8s_sync_timeout_ms, 2500);
	assert_string_equal(cfg.runtime_socket, "/run/docker.sock");
	assert_string_equal(cfg.cri_socket, "/run/containerd/containerd.sock");
	assert_true(config_selects(&cfg));
	assert_true(config_needs_k8s(&cfg));
	assert_true(config_needs_ports(&cfg));
	config_free(&cfg);
}

static void test_errors_name_line_and_key(void **state)
{
	struct weft_config cfg;
	char err[512];
	assert_int_equal(parse(&cfg, "discovery:\n  instrument:\n    - open_ports: 0\n", err), -EINVAL);
	assert_non_null(strstr(err, "weft.yaml:3:"));
	assert_non_null(strstr(err, "open_ports: '0'"));
	assert_int_equal(parse(&cfg, "discovery:\n  instrument:\n    - open_ports: 90-80\n", err), -EINVAL);
	assert_int_equal(parse(&cfg, "discovery:\n  instrument:\n    - k8s_pod_name: 'a('\n", err), -EINVAL);
	assert_non_null(strstr(err, "k8s_pod_name: 'a(' is not a regular expression"));
	assert_int_equal(parse(&cfg, "discovery:\n  instrument:\n    - {}\n", err), -EINVAL);
	assert_non_null(strstr(err, "empty selector"));
	assert_int_equal(parse(&cfg, "discover:\n  instrument: []\n", err), -EINVAL);
	assert_non_null(strstr(err, "unknown section 'discover'"));
	assert_int_equal(parse(&cfg, "discovery:\n  instrument: 3\n", err), -EINVAL);
	assert_int_equal(parse(&cfg, "discovery: [\n", err), -EINVAL);
	assert_non_null(strstr(err, "not YAML"));
	assert_int_equal(parse(&cfg, "- a\n- b\n", err), -EINVAL);
	/* empty file, empty section: defaults */
	assert_int_equal(parse(&cfg, "", err), 0);
	assert_false(config_selects(&cfg));
	assert_int_equal(parse(&cfg, "discovery:\n", err), 0);
	config_free(&cfg);
}

static void test_env(void **state)
{
	struct weft_config cfg = {};
	char err[512];
	char *env[] = { "WEFT_DISCOVERY_OPEN_PORTS=8080", "WEFT_DISCOVERY_EXE_PATH=*/nginx",
			"WEFT_DISCOVERY_EXCLUDE_K8S_NAMESPACE=kube-system", "WEFT_DISCOVERY_K8S_POD_LABELS=app=web,tier=f.*",
			"KUBECONFIG=/k", "NODE_NAME=n1", "WEFT_KUBERNETES_NODE_NAME=n2", "WEFT_KUBERNETES_ENABLE=false",
			"WEFT_CONTAINER_RUNTIME_CRI_SOCKET=/var/run/crio/crio.sock", NULL };
	assert_int_equal(config_apply_env(&cfg, env, err, sizeof(err)), 0);
	assert_int_equal(cfg.n_instrument, 1);
	assert_int_equal(cfg.n_exclude, 1);
	assert_string_equal(cfg.instrument[0].exe_path, "*/nginx");
	assert_int_equal(cfg.instrument[0].ports[0].lo, 8080);
	assert_int_equal(cfg.instrument[0].n_labels, 2);
	assert_true(cfg.exclude[0].k8s_namespace.set);
	assert_string_equal(cfg.kubeconfig, "/k");
	assert_string_equal(cfg.node_name, "n2"); /* weft's own name wins */
	assert_int_equal(cfg.k8s_enable, K8S_ENABLE_OFF);
	assert_string_equal(cfg.cri_socket, "/var/run/crio/crio.sock");
	config_free(&cfg);
	char *bad[] = { "WEFT_DISCOVERY_OPEN_PORTS=http", NULL };
	assert_int_equal(config_apply_env(&cfg, bad, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "WEFT_DISCOVERY_OPEN_PORTS"));
	config_free(&cfg);
}

static struct pod_meta *pod(const char *ns, const char *name, const char *okind, const char *oname,
			    const char *tkind, const char *tname)
{
	static struct pod_label labels[] = { { "app", "checkout" }, { "tier", "web" } };
	struct pod_meta *p = calloc(1, sizeof(*p));
	p->refs = 1;
	p->ns = strdup(ns);
	p->name = strdup(name);
	p->owner_kind = okind ? strdup(okind) : NULL;
	p->owner_name = oname ? strdup(oname) : NULL;
	p->top_kind = tkind ? strdup(tkind) : NULL;
	p->top_name = tname ? strdup(tname) : NULL;
	p->labels = calloc(2, sizeof(*p->labels));
	for (int i = 0; i < 2; i++) {
		p->labels[i].key = strdup(labels[i].key);
		p->labels[i].value = strdup(labels[i].value);
	}
	p->n_labels = 2;
	return p;
}

static void test_matching(void **state)
{
	struct weft_config cfg;
	char err[512];
	const char *text = "discovery:\n"
			   "  instrument:\n"
			   "    - exe_path: /usr/bin/python3*\n"
			   "      open_ports: 8000-8099\n"
			   "    - k8s_deployment_name: check.*\n"
			   "      k8s_pod_labels: {tier: web}\n"
			   "    - container_id: 0123456789ab\n"
			   "  exclude_instrument:\n"
			   "    - k8s_namespace: kube-.*\n";
	assert_int_equal(parse(&cfg, text, err), 0);
	uint16_t p8080[] = { 8080 }, p9000[] = { 9000 };
	struct proc_facts f = { .exe_path = "/usr/bin/python3.11", .ports = p8080, .n_ports = 1 };
	assert_true(config_wants(&cfg, &f));
	f.ports = p9000;
	assert_false(config_wants(&cfg, &f)); /* both criteria of a selector */
	f.exe_path = "/usr/local/bin/python3";
	f.ports = p8080;
	assert_false(config_wants(&cfg, &f)); /* the glob is on the full path */

	struct pod_meta *dep = pod("shop", "checkout-7d9f8-abcde", "ReplicaSet", "checkout-7d9f8", "Deployment", "checkout");
	struct proc_facts k = { .exe_path = "/app", .pod = dep };
	assert_true(config_wants(&cfg, &k));
	struct pod_meta *sts = pod("shop", "checkout-0", "StatefulSet", "checkout", NULL, NULL);
	k.pod = sts;
	assert_false(config_wants(&cfg, &k)); /* a StatefulSet is not a Deployment */
	struct pod_meta *sys = pod("kube-system", "checkout-1", "ReplicaSet", "checkout-1", "Deployment", "checkout");
	k.pod = sys;
	assert_false(config_wants(&cfg, &k)); /* excluded */
	struct pod_meta *partial = pod("shop", "x", "ReplicaSet", "x", "Deployment", "xcheckout");
	k.pod = partial;
	assert_false(config_wants(&cfg, &k)); /* anchored: the whole name */
	k.pod = NULL;
	assert_false(config_wants(&cfg, &k)); /* pod unknown */
	k.container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	assert_true(config_wants(&cfg, &k)); /* id prefix */
	pod_meta_put(dep);
	pod_meta_put(sts);
	pod_meta_put(sys);
	pod_meta_put(partial);
	config_free(&cfg);
}

/* Regexes glibc would take seconds or gigabytes to compile, or that match
 * in exponential time, are refused with the key named (found by
 * tests/fuzz/fuzz_config.c: "w_+++...+" ran it out of memory); the usual
 * ones pass. */
static void test_costly_regexes(void **state)
{
	static const char *const refused[] = {
		"'r_++++++++++++++++++++++++++++++++++++'", /* each + doubles glibc's copies */
		"'(()*){0,24}'",			       /* 24 s to compile */
		"'()*()*()*()*()*()*()*()*()*()*()*()*()*'",
		"'a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*a?*'",
		"'(.{1,255}){1,255}'", /* 150 MB, seconds per name matched */
		"'(a*)*\\1b'",		 /* back-reference: exponential matching */
		"'((((((((((((((((((((((((((((((((((a))))))))))))))))))))))))))))))))))'",
		/* empty alternatives with stacked repetitions: minutes in regcomp
		 * (fuzz_config, 2026-12-06); each alone is undefined in POSIX */
		"'W||||||||tX+++)+++'",
		"'a||b'", "'|a'", "'a|'", "'(|a)'", "'(a|)'", "'x+*'", "'x{2}{3}'", "'a)b'",
	};
	static const char *const accepted[] = {
		"'checkout-[a-z0-9]{9,10}-[a-z0-9]{5}'", "'.{0,253}'", "'kube-system|weft'", "'(web|api)-[0-9]+'",
		"'[[:alpha:]]+[]a-]*'", "'[\\1]x'",
	};
	struct weft_config cfg;
	char text[256], err[512];
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		snprintf(text, sizeof(text), "discovery:\n  instrument:\n    - k8s_pod_name: %s\n", refused[i]);
		assert_int_equal(parse(&cfg, text, err), -EINVAL);
		assert_non_null(strstr(err, "weft.yaml:3: k8s_pod_name: "));
		assert_true(strstr(err, "too costly") || strstr(err, "back-references") || strstr(err, "nested") ||
			    strstr(err, "undefined in POSIX") || strstr(err, "unbalanced"));
	}
	for (size_t i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		snprintf(text, sizeof(text), "discovery:\n  instrument:\n    - k8s_pod_name: %s\n", accepted[i]);
		assert_int_equal(parse(&cfg, text, err), 0);
		config_free(&cfg);
	}
	char *env[] = { "WEFT_DISCOVERY_K8S_POD_LABELS=app=x{250}y{250}", NULL };
	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_apply_env(&cfg, env, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "WEFT_DISCOVERY_K8S_POD_LABELS: k8s_pod_labels.app: regular expression too costly"));
	config_free(&cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_errors_name_line_and_key),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_matching),
		cmocka_unit_test(test_costly_regexes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
