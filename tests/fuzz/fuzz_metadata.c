/* libFuzzer harness for what weft reads of a process's container and pod
 * (user/metadata/): the Kubernetes API's answers, the container runtimes'
 * answers, /proc/PID/cgroup, a kubeconfig, a process's
 * OTEL_RESOURCE_ATTRIBUTES; each decoded value then goes where the agent
 * puts it (resource attributes, discovery selectors). A compromised or
 * broken API server, runtime or proxy, or a traced process, chooses these
 * bytes. The first byte's low 3 bits pick the decoder, its high 5 bits a
 * parameter p:
 *   0: a PodList [+ "\n--\n" + the ReplicaSet/Job answer owners get];
 *   1: a watch stream [+ the same], cut into (p % 16 + 1)-byte chunks,
 *      lines of at most 256 (p >= 16) or 65536 bytes: the lines delivered
 *      must not depend on the cutting; each event applied to a store;
 *   2: a Docker-compatible inspect answer;
 *   3: a CRI answer's gRPC body (p odd: the bare ContainerStatusResponse);
 *   4: a CRI answer's header and trailer lines;
 *   5: a /proc/PID/cgroup text;
 *   6: a kubeconfig (its files under a directory that does not exist);
 *   7: OTEL_RESOURCE_ATTRIBUTES.
 * Checked: no crash, leak or undefined behaviour; decoded strings are
 * NUL-terminated within their buffers; a pod has namespace, name and uid;
 * every resource attribute is a string; a cgroup's id is 64 lowercase hex
 * digits; a grpc-status is a code (0-65535) or none. Built and run by tests/fuzz/run_metadata; seeds written by
 * tests/fuzz/make_metadata_seeds. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup_id.h"
#include "config.h"
#include "cri_api.h"
#include "k8s_api.h"
#include "k8s_decode.h"
#include "resource_attrs.h"
#include "runtime_api.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#define SEP "\n--\n"
#define STORE_MAX 16

/* Selectors over every pod fact, parsed once. */
static struct weft_config selectors;

static const char SELECTORS[] = "discovery:\n"
				"  instrument:\n"
				"    - k8s_deployment_name: check.*\n"
				"      k8s_pod_labels: {app: .+}\n"
				"    - k8s_owner_name: .*\n"
				"      k8s_container_name: .*\n"
				"    - k8s_cronjob_name: .*\n"
				"    - k8s_replicaset_name: .*\n"
				"      k8s_namespace: shop\n"
				"  exclude_instrument:\n"
				"    - k8s_job_name: .*\n"
				"      k8s_pod_name: .*\n";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	if (config_parse_yaml(&selectors, SELECTORS, strlen(SELECTORS), "selectors", err, sizeof(err)))
		abort();
	return 0;
}

static void check_attrs(const struct attr_list *a)
{
	for (size_t i = 0; i < a->len; i++) {
		CHECK(a->items[i].key);
		if (a->items[i].type == ATTR_STR)
			CHECK(a->items[i].str);
	}
}

/* A decoded pod, as the agent uses it: its attributes for each of its
 * containers, the selectors. */
static void check_pod(const struct pod_meta *p)
{
	static const struct pod_container none = {};
	CHECK(p->refs == 1 && p->ns && p->name && p->uid);
	for (size_t i = 0; i < p->n_labels; i++)
		CHECK(p->labels[i].key && p->labels[i].value && pod_meta_label(p, p->labels[i].key));
	for (size_t i = 0; i <= p->n_containers; i++) {
		const struct pod_container *c = i < p->n_containers ? &p->containers[i] : &none;
		CHECK(strnlen(c->id, sizeof(c->id)) < sizeof(c->id));
		if (c->id[0])
			CHECK(pod_meta_container(p, c->id));
		struct attr_list attrs = {};
		bool own = false;
		resource_attrs_pod(&attrs, p, c, &own);
		check_attrs(&attrs);
		attrs_free(&attrs);
		struct proc_facts f = { .exe_path = "/app", .container_id = c->id, .container_name = c->name,
					.pod = p, .k8s_container_name = c->name };
		(void)config_wants(&selectors, &f);
	}
}

/* The ReplicaSet or Job answer, as k8s_watch.c's owner_owner reads it
 * (without its cache): none is a 404, which names no owner; not JSON
 * leaves the pod without one. */
struct owner_answer {
	const char *json;
	size_t len;
};

static void owner_of(void *ctx, const char *ns, const char *kind, const char *name, char **top_kind, char **top_name)
{
	struct owner_answer *a = ctx;
	char *k, *n;
	CHECK(ns && kind && name);
	if (strcmp(kind, "ReplicaSet") && strcmp(kind, "Job"))
		return;
	json_t *doc = a->json ? json_loadb(a->json, a->len, 0, NULL) : NULL;
	if (!doc && a->json)
		return;
	k8s_controller_decode(doc, &k, &n);
	json_decref(doc);
	*top_kind = k;
	*top_name = n;
}

static void list(const char *text, size_t len, struct owner_answer *owner)
{
	struct pod_meta *pods[STORE_MAX];
	char rv[128];
	size_t dropped;
	json_t *doc = json_loadb(text, len, 0, NULL);
	size_t n = k8s_list_decode(doc, owner_of, owner, pods, STORE_MAX, &dropped, rv, sizeof(rv));
	CHECK(n <= STORE_MAX && strnlen(rv, sizeof(rv)) < sizeof(rv));
	for (size_t i = 0; i < n; i++) {
		check_pod(pods[i]);
		pod_meta_put(pods[i]);
	}
	json_decref(doc);
}

/* ---- the watch stream ---- */

struct store {
	struct owner_answer *owner;
	struct pod_meta *pods[STORE_MAX];
	size_t n;
	char rv[128];
	uint64_t hash, lines;
};

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return (h ^ n) * 0x100000001b3ull;
}

static void store_drop(struct store *s, const char *uid)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->pods[i]->uid, uid)) {
			pod_meta_put(s->pods[i]);
			s->pods[i] = s->pods[--s->n];
			return;
		}
}

/* What k8s_watch.c's watch_event does with an event. */
static void on_event(void *ctx, const char *line, size_t len)
{
	struct store *s = ctx;
	struct k8s_event ev;
	CHECK(len > 0 && !memchr(line, '\n', len));
	s->hash = fnv(s->hash, line, len);
	s->lines++;
	k8s_event_decode(line, len, owner_of, s->owner, &ev);
	CHECK(ev.type == K8S_EVENT_UPSERT || !ev.pod);
	if (ev.rv && ev.type != K8S_EVENT_GONE && ev.type != K8S_EVENT_ERROR)
		snprintf(s->rv, sizeof(s->rv), "%s", ev.rv);
	if (ev.type == K8S_EVENT_DELETED && ev.uid)
		store_drop(s, ev.uid);
	if (ev.pod) {
		check_pod(ev.pod);
		store_drop(s, ev.pod->uid);
		if (s->n < STORE_MAX)
			s->pods[s->n++] = ev.pod;
		else
			pod_meta_put(ev.pod);
	}
	k8s_event_free(&ev);
}

static void on_line(void *ctx, const char *line, size_t len)
{
	struct store *s = ctx;
	s->hash = fnv(s->hash, line, len);
	s->lines++;
}

static void watch(const char *text, size_t len, unsigned p, struct owner_answer *owner)
{
	size_t chunk = p % 16 + 1, max = p >= 16 ? 256 : 65536;
	struct store s = { .owner = owner }, whole = {};
	struct k8s_lines cut = { .max = max }, one = { .max = max };
	int rc = 0;
	for (size_t i = 0; i < len && !rc; i += chunk)
		rc = k8s_lines_feed(&cut, text + i, len - i < chunk ? len - i : chunk, on_event, &s);
	int rc1 = k8s_lines_feed(&one, text, len, on_line, &whole);
	CHECK(rc == rc1 && (rc == 0 || rc == -E2BIG));
	CHECK(s.hash == whole.hash && s.lines == whole.lines && cut.len == one.len && cut.len <= max);
	CHECK(strnlen(s.rv, sizeof(s.rv)) < sizeof(s.rv));
	for (size_t i = 0; i < s.n; i++)
		pod_meta_put(s.pods[i]);
	k8s_lines_free(&cut);
	k8s_lines_free(&one);
}

/* ---- runtimes, cgroups, kubeconfig, the process's own attributes ---- */

static void check_runtime(const struct runtime_info *ri)
{
	CHECK(strnlen(ri->name, sizeof(ri->name)) < sizeof(ri->name));
	CHECK(strnlen(ri->image, sizeof(ri->image)) < sizeof(ri->image));
	CHECK(strnlen(ri->pod_name, sizeof(ri->pod_name)) < sizeof(ri->pod_name));
	CHECK(strnlen(ri->pod_namespace, sizeof(ri->pod_namespace)) < sizeof(ri->pod_namespace));
	CHECK(strnlen(ri->pod_uid, sizeof(ri->pod_uid)) < sizeof(ri->pod_uid));
	CHECK(strnlen(ri->k8s_container, sizeof(ri->k8s_container)) < sizeof(ri->k8s_container));
	struct attr_list attrs = {};
	bool own = false;
	resource_attrs_runtime(&attrs, ri, &own);
	check_attrs(&attrs);
	CHECK(own == (ri->name[0] || ri->k8s_container[0]));
	attrs_free(&attrs);
}

static void grpc_headers(const char *text, size_t len)
{
	int status = -1;
	char msg[160];
	memset(msg, 0x55, sizeof(msg));
	msg[0] = '\0';
	for (const char *l = text, *end = text + len; l < end;) {
		const char *nl = memchr(l, '\n', end - l);
		size_t n = (nl ? nl + 1 : end) - l; /* curl hands each line with its end */
		cri_grpc_header(l, n, &status, msg, sizeof(msg));
		CHECK(memchr(msg, '\0', sizeof(msg)));
		CHECK(status >= -1 && status <= 0xffff); /* a gRPC code, or none yet */
		l += n;
	}
}

static void cgroup(const char *text, size_t len)
{
	struct cgroup_container c;
	memset(&c, 0x55, sizeof(c));
	if (!cgroup_container_parse(text, len, &c))
		return;
	CHECK(strlen(c.id) == CONTAINER_ID_MAX && strspn(c.id, "0123456789abcdef") == CONTAINER_ID_MAX);
	size_t ul = strnlen(c.pod_uid, sizeof(c.pod_uid));
	CHECK(ul < sizeof(c.pod_uid) && (ul == 0 || ul >= 32) && strspn(c.pod_uid, "0123456789abcdef-") == ul);
	CHECK(!c.runtime || !strcmp(c.runtime, "docker") || !strcmp(c.runtime, "containerd") ||
	      !strcmp(c.runtime, "cri-o") || !strcmp(c.runtime, "podman"));
}

static void kubeconfig(const char *text, size_t len)
{
	struct k8s_api a = {};
	char err[256];
	memset(err, 0x55, sizeof(err));
	int rc = k8s_api_from_kubeconfig(text, len, "/nonexistent-weft-fuzz", &a, err, sizeof(err));
	if (rc) {
		CHECK(memchr(err, '\0', sizeof(err)));
		CHECK(!a.server && !a.token); /* freed */
		return;
	}
	size_t sl = strlen(a.server);
	CHECK(!sl || a.server[sl - 1] != '/');
	k8s_api_free(&a);
}

static void own_attributes(const char *text, size_t len)
{
	char *v = strndup(text, len);
	struct attr_list attrs = {};
	bool own = len % 2; /* OTEL_SERVICE_NAME set, or not */
	attrs_set_str(&attrs, "process.pid", "1");
	resource_attrs_from_text(&attrs, v, &own);
	check_attrs(&attrs);
	for (size_t i = 0; i < attrs.len; i++)
		CHECK(strncmp(attrs.items[i].key, "weft.", 5));
	CHECK(attrs_get(&attrs, "process.pid")); /* not the process's to replace */
	attrs_free(&attrs);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	unsigned which = data[0] & 7, p = data[0] >> 3;
	size_t len = size - 1;
	char *text = malloc(len ? len : 1); /* exact size: ASan sees a read past it */
	memcpy(text, data + 1, len);
	struct owner_answer owner = {};
	const char *sep = memmem(text, len, SEP, strlen(SEP));
	size_t main_len = sep ? (size_t)(sep - text) : len;
	if (sep) {
		owner.json = sep + strlen(SEP);
		owner.len = text + len - owner.json;
	}
	struct runtime_info ri;
	switch (which) {
	case 0:
		list(text, main_len, &owner);
		break;
	case 1:
		watch(text, main_len, p, &owner);
		break;
	case 2:
		if (runtime_decode_inspect(text, len, &ri))
			check_runtime(&ri);
		break;
	case 3:
		if (!(p % 2 ? cri_decode_container_status((const uint8_t *)text, len, &ri)
			    : cri_decode_grpc_body((const uint8_t *)text, len, &ri)))
			check_runtime(&ri);
		break;
	case 4:
		grpc_headers(text, len);
		break;
	case 5:
		cgroup(text, len);
		break;
	case 6:
		kubeconfig(text, len);
		break;
	case 7:
		own_attributes(text, len);
		break;
	}
	free(text);
	return 0;
}
