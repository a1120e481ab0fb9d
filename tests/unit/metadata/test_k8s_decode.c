/* The Kubernetes API's answers decoded (user/metadata/k8s_decode.c), in
 * the shapes of tests/e2e/k8s_api_peer.py: a PodList with owners resolved
 * through a ReplicaSet answer, containers of every kind, labels; watch
 * events of every type; the watch stream cut into lines whatever the
 * chunks, an overlong line refused. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "k8s_decode.h"

#define CID "3f4d5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"

static const char pod_json[] =
	"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"checkout-7d9f8-abcde\",\"namespace\":\"shop\","
	"\"uid\":\"u-1\",\"resourceVersion\":\"203\",\"labels\":{\"app\":\"checkout\",\"n\":1},\"ownerReferences\":["
	"{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"name\":\"other\"},"
	"{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"name\":\"checkout-7d9f8\",\"uid\":\"o-1\","
	"\"controller\":true}]},"
	"\"spec\":{\"nodeName\":\"node-a\"},"
	"\"status\":{\"containerStatuses\":[{\"name\":\"checkout\",\"image\":\"shop/checkout:2.1\","
	"\"containerID\":\"containerd://" CID "\"}],"
	"\"initContainerStatuses\":[{\"name\":\"init\",\"containerID\":\"cri-o://abc\"}],"
	"\"ephemeralContainerStatuses\":[{\"name\":\"debug\"}]}}";

struct owner_calls {
	int n;
	char ns[32], kind[32], name[32];
};

static void owner(void *ctx, const char *ns, const char *kind, const char *name, char **top_kind, char **top_name)
{
	struct owner_calls *c = ctx;
	c->n++;
	snprintf(c->ns, sizeof(c->ns), "%s", ns);
	snprintf(c->kind, sizeof(c->kind), "%s", kind);
	snprintf(c->name, sizeof(c->name), "%s", name);
	/* the ReplicaSet's answer, as the API sends it */
	json_t *rs = json_loads("{\"kind\":\"ReplicaSet\",\"metadata\":{\"name\":\"checkout-7d9f8\",\"ownerReferences\":"
				"[{\"kind\":\"Deployment\",\"name\":\"checkout\",\"controller\":true}]}}",
				0, NULL);
	k8s_controller_decode(rs, top_kind, top_name);
	json_decref(rs);
}

static void test_pod(void **state)
{
	struct owner_calls calls = {};
	json_t *o = json_loads(pod_json, 0, NULL);
	struct pod_meta *p = k8s_pod_decode(o, owner, &calls);
	json_decref(o);
	assert_non_null(p);
	assert_string_equal(p->ns, "shop");
	assert_string_equal(p->name, "checkout-7d9f8-abcde");
	assert_string_equal(p->uid, "u-1");
	assert_string_equal(p->node, "node-a");
	assert_string_equal(p->owner_kind, "ReplicaSet"); /* the controller, not the first reference */
	assert_string_equal(p->owner_name, "checkout-7d9f8");
	assert_int_equal(calls.n, 1);
	assert_string_equal(calls.ns, "shop");
	assert_string_equal(p->top_kind, "Deployment");
	assert_string_equal(p->top_name, "checkout");
	assert_int_equal(p->n_labels, 1); /* a number is no label value */
	assert_string_equal(pod_meta_label(p, "app"), "checkout");
	assert_int_equal(p->n_containers, 3);
	assert_string_equal(p->containers[0].id, CID);
	assert_string_equal(p->containers[0].image, "shop/checkout:2.1");
	assert_string_equal(p->containers[1].id, "abc");
	assert_string_equal(p->containers[2].id, ""); /* not running yet */
	assert_ptr_equal(pod_meta_container(p, CID), &p->containers[0]);
	pod_meta_put(p);

	/* no namespace, name or uid: no pod */
	o = json_loads("{\"metadata\":{\"name\":\"a\",\"namespace\":\"b\"}}", 0, NULL);
	assert_null(k8s_pod_decode(o, owner, &calls));
	json_decref(o);
	assert_null(k8s_pod_decode(NULL, NULL, NULL));
}

/* A controller reference without its name (or kind) names no owner: the
 * resource once got k8s.job.name with no value, a NULL strlen'd
 * (fuzz_metadata). Also for the owner's own answer. */
static void test_half_owner_reference(void **state)
{
	static const char *const pods[] = {
		"{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"ownerReferences\":"
		"[{\"kind\":\"Job\",\"controller\":true}]}}",
		"{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"ownerReferences\":"
		"[{\"name\":\"j\",\"controller\":true}]}}",
		"{\"metadata\":{\"name\":\"p\",\"namespace\":\"n\",\"uid\":\"u\",\"ownerReferences\":"
		"[{\"kind\":\"Job\",\"name\":7,\"controller\":true}]}}",
	};
	struct owner_calls calls = {};
	for (size_t i = 0; i < sizeof(pods) / sizeof(pods[0]); i++) {
		json_t *o = json_loads(pods[i], 0, NULL);
		struct pod_meta *p = k8s_pod_decode(o, owner, &calls);
		assert_non_null(p);
		assert_null(p->owner_kind);
		assert_null(p->owner_name);
		pod_meta_put(p);
		json_decref(o);
	}
	assert_int_equal(calls.n, 0);
	char *k, *n;
	json_t *job = json_loads("{\"metadata\":{\"ownerReferences\":[{\"kind\":\"CronJob\",\"controller\":true}]}}",
				 0, NULL);
	k8s_controller_decode(job, &k, &n);
	assert_null(k);
	assert_null(n);
	json_decref(job);
}

static void test_list(void **state)
{
	char text[4096], rv[8];
	snprintf(text, sizeof(text),
		 "{\"kind\":\"PodList\",\"metadata\":{\"resourceVersion\":\"1234567890\"},\"items\":[%s,%s,{},%s]}",
		 pod_json, pod_json, pod_json);
	json_t *doc = json_loads(text, 0, NULL);
	struct pod_meta *pods[2];
	size_t dropped;
	assert_non_null(doc);
	assert_int_equal(k8s_list_decode(doc, NULL, NULL, pods, 2, &dropped, rv, sizeof(rv)), 2);
	assert_int_equal(dropped, 1); /* the third pod: no room; {} is no pod */
	assert_string_equal(rv, "1234567"); /* truncated to its buffer */
	assert_null(pods[0]->top_kind);	    /* no owner resolver */
	pod_meta_put(pods[0]);
	pod_meta_put(pods[1]);
	json_decref(doc);
}

static void decode(const char *line, struct k8s_event *ev)
{
	k8s_event_decode(line, strlen(line), NULL, NULL, ev);
}

static void test_events(void **state)
{
	struct k8s_event ev;
	char line[4096];
	snprintf(line, sizeof(line), "{\"type\":\"MODIFIED\",\"object\":%s}", pod_json);
	decode(line, &ev);
	assert_int_equal(ev.type, K8S_EVENT_UPSERT);
	assert_non_null(ev.pod);
	assert_string_equal(ev.rv, "203");
	pod_meta_put(ev.pod);
	k8s_event_free(&ev);

	decode("{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"uid\":\"u-1\",\"resourceVersion\":\"204\"}}}", &ev);
	assert_int_equal(ev.type, K8S_EVENT_DELETED);
	assert_string_equal(ev.uid, "u-1");
	assert_string_equal(ev.rv, "204");
	assert_null(ev.pod);
	k8s_event_free(&ev);

	decode("{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{\"resourceVersion\":\"205\"}}}", &ev);
	assert_int_equal(ev.type, K8S_EVENT_BOOKMARK);
	assert_string_equal(ev.rv, "205");
	k8s_event_free(&ev);

	decode("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"message\":\"too old resource version\","
	       "\"reason\":\"Expired\",\"code\":410,\"metadata\":{\"resourceVersion\":\"9\"}}}",
	       &ev);
	assert_int_equal(ev.type, K8S_EVENT_GONE);
	assert_null(ev.rv); /* an error moves no version */
	k8s_event_free(&ev);

	decode("{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":500,\"message\":\"etcd\"}}", &ev);
	assert_int_equal(ev.type, K8S_EVENT_ERROR);
	assert_string_equal(ev.message, "etcd");
	k8s_event_free(&ev);

	decode("{\"type\":\"ADDED\",\"object\":{}}", &ev); /* counted, no pod */
	assert_int_equal(ev.type, K8S_EVENT_UPSERT);
	assert_null(ev.pod);
	k8s_event_free(&ev);

	decode("{\"object\":{}}", &ev);
	assert_int_equal(ev.type, K8S_EVENT_INVALID);
	k8s_event_free(&ev);
	decode("{\"type\":", &ev);
	assert_int_equal(ev.type, K8S_EVENT_INVALID);
	k8s_event_free(&ev);
}

struct seen {
	char lines[8][32];
	int n;
};

static void on_line(void *ctx, const char *line, size_t len)
{
	struct seen *s = ctx;
	assert_true(s->n < 8);
	snprintf(s->lines[s->n++], sizeof(s->lines[0]), "%.*s", (int)len, line);
}

static void test_lines(void **state)
{
	static const char stream[] = "{\"a\":1}\n\n{\"b\":2}\n{\"c\"";
	for (size_t chunk = 1; chunk <= sizeof(stream); chunk++) {
		struct k8s_lines l = { .max = 16 };
		struct seen s = {};
		for (size_t i = 0; i < sizeof(stream) - 1; i += chunk) {
			size_t n = sizeof(stream) - 1 - i < chunk ? sizeof(stream) - 1 - i : chunk;
			assert_int_equal(k8s_lines_feed(&l, stream + i, n, on_line, &s), 0);
		}
		assert_int_equal(s.n, 2); /* empty lines skipped, the last one incomplete */
		assert_string_equal(s.lines[0], "{\"a\":1}");
		assert_string_equal(s.lines[1], "{\"b\":2}");
		assert_int_equal(l.len, 4);
		k8s_lines_free(&l);
	}
	struct k8s_lines l = { .max = 7 };
	struct seen s = {};
	assert_int_equal(k8s_lines_feed(&l, "{\"a\":1}\n{\"b\":22}\n", 17, on_line, &s), -E2BIG);
	assert_int_equal(s.n, 1); /* the line before the overlong one */
	k8s_lines_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pod),
		cmocka_unit_test(test_half_owner_reference),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_lines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
