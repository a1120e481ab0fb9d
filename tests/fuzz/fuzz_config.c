/* libFuzzer harness for `weft run --config`'s file (user/config/config.c,
 * libyaml) and its selectors (user/config/selector.c: globs, anchored
 * regexes, port ranges, labels). The administrator writes the file, but a
 * mistake in it must be a clean error naming the file, never a crash. The
 * input is the file's text (not NUL-terminated: the parser takes a
 * length); its lines of the form K=V are also applied as WEFT_* variables
 * to a fresh configuration. Checked after a successful parse:
 *   - the bounds the parser promises (selectors, ports, the timeout);
 *   - no selector matches a process of which nothing is known;
 *   - a selector whose criteria are all literal (no glob or regex
 *     character) matches the process that has exactly those facts;
 *   - config_wants on a few synthetic processes runs (its answer is only
 *     bounded by the checks above).
 * An error leaves a NUL-terminated message naming the file or variable.
 * Built and run by tests/fuzz/run_config. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "pod_meta.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

#define NAME "fuzz.yaml"

static bool literal(const char *s, bool glob)
{
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      strchr(glob ? "-_./: +" : "-_/: ", *s)))
			return false;
	return true;
}

static bool regex_literal(const struct name_regex *r)
{
	return !r->set || literal(r->text, false);
}

/* The owner-kind criteria set, and the name the self-describing pod gets. */
static const char *owner_kind_of(const struct selector *s, const char **name, int *n)
{
	const struct {
		const struct name_regex *r;
		const char *kind;
	} kinds[] = {
		{ &s->k8s_deployment_name, "Deployment" }, { &s->k8s_statefulset_name, "StatefulSet" },
		{ &s->k8s_daemonset_name, "DaemonSet" },   { &s->k8s_replicaset_name, "ReplicaSet" },
		{ &s->k8s_job_name, "Job" },		   { &s->k8s_cronjob_name, "CronJob" },
	};
	const char *kind = NULL;
	*n = 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].r->set) {
			(*n)++;
			kind = kinds[i].kind;
			*name = kinds[i].r->text;
		}
	return kind;
}

/* The process described by the selector's own criteria: when they are all
 * literal and do not contradict each other, the selector must match it. */
static void check_self_match(const struct selector *s)
{
	const char *owner = NULL;
	int n_kinds;
	const char *kind = owner_kind_of(s, &owner, &n_kinds);
	const struct name_regex *all[] = { &s->container_name,	  &s->k8s_namespace,	 &s->k8s_pod_name,
					   &s->k8s_container_name, &s->k8s_owner_name,	 &s->k8s_deployment_name,
					   &s->k8s_statefulset_name, &s->k8s_daemonset_name, &s->k8s_replicaset_name,
					   &s->k8s_job_name,	   &s->k8s_cronjob_name };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (!regex_literal(all[i]))
			return;
	for (size_t i = 0; i < s->n_labels; i++) {
		if (!regex_literal(&s->labels[i].value))
			return;
		for (size_t j = 0; j < i; j++) /* the first of two same keys is the pod's */
			if (!strcmp(s->labels[i].key, s->labels[j].key))
				return;
	}
	if (s->exe_path && !literal(s->exe_path, true))
		return;
	if (n_kinds > 1 || (s->k8s_owner_name.set && kind && strcmp(s->k8s_owner_name.text, owner)))
		return; /* one pod has one top owner */

	uint16_t ports[SELECTOR_MAX_PORT_RANGES];
	for (size_t i = 0; i < s->n_ports; i++)
		ports[i] = s->ports[i].lo;
	struct pod_label labels[SELECTOR_MAX_LABELS];
	for (size_t i = 0; i < s->n_labels; i++)
		labels[i] = (struct pod_label){ s->labels[i].key, s->labels[i].value.text };
	struct pod_meta pod = {
		.refs = 1,
		.ns = s->k8s_namespace.set ? s->k8s_namespace.text : "default",
		.name = s->k8s_pod_name.set ? s->k8s_pod_name.text : "pod",
		.top_kind = (char *)kind,
		.top_name = (char *)(kind ? owner : s->k8s_owner_name.set ? s->k8s_owner_name.text : NULL),
		.labels = labels,
		.n_labels = s->n_labels,
	};
	struct proc_facts f = {
		.exe_path = s->exe_path,
		.ports = ports,
		.n_ports = s->n_ports,
		.container_id = s->container_id,
		.container_name = s->container_name.set ? s->container_name.text : NULL,
		.pod = &pod,
		.k8s_container_name = s->k8s_container_name.set ? s->k8s_container_name.text : NULL,
	};
	CHECK(selector_matches(s, &f));
}

static void check_selectors(const struct selector *sel, size_t n)
{
	static const struct proc_facts nothing = {};
	CHECK(n <= CONFIG_MAX_SELECTORS);
	for (size_t i = 0; i < n; i++) {
		const struct selector *s = &sel[i];
		CHECK(!selector_empty(s));
		CHECK(s->n_ports <= SELECTOR_MAX_PORT_RANGES && s->n_labels <= SELECTOR_MAX_LABELS);
		for (size_t j = 0; j < s->n_ports; j++)
			CHECK(s->ports[j].lo >= 1 && s->ports[j].lo <= s->ports[j].hi);
		CHECK(!selector_matches(s, &nothing));
		check_self_match(s);
	}
}

/* A few processes: inside a Deployment's pod, a bare process, and one
 * whose owner names are missing (as from a partial API answer). */
static void check_wants(const struct weft_config *cfg)
{
	static struct pod_label labels[] = { { "app", "checkout" }, { "tier", "web" } };
	static const uint16_t ports[] = { 80, 8080, 65535 };
	struct pod_meta dep = { .refs = 1, .ns = "shop", .name = "checkout-7d9f8-abcde", .owner_kind = "ReplicaSet",
				.owner_name = "checkout-7d9f8", .top_kind = "Deployment", .top_name = "checkout",
				.labels = labels, .n_labels = 2 };
	struct pod_meta bare = { .refs = 1, .ns = "", .name = "", .owner_kind = "Job" };
	const struct proc_facts procs[] = {
		{ .exe_path = "/usr/bin/python3.11", .ports = ports, .n_ports = 3,
		  .container_id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		  .container_name = "web", .pod = &dep, .k8s_container_name = "app" },
		{ .exe_path = "/app", .ports = ports, .n_ports = 1 },
		{ .exe_path = "", .pod = &bare, .container_name = "" },
	};
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		bool w = config_wants(cfg, &procs[i]);
		if (!config_selects(cfg))
			CHECK(w);
	}
	(void)config_needs_k8s(cfg);
	(void)config_needs_ports(cfg);
}

static void check_error(int rc, const char *err, size_t errlen, const char *prefix)
{
	CHECK(rc == -EINVAL || rc == -E2BIG || rc == -ENOMEM);
	CHECK(memchr(err, '\0', errlen) != NULL);
	CHECK(rc == -ENOMEM || !strncmp(err, prefix, strlen(prefix)));
}

/* The input's lines with a '=' as a NULL-terminated environment. */
static char **env_of(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), **env = calloc(size / 2 + 2, sizeof(*env));
	size_t n = 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strchr(l, '='))
			env[n++] = strdup(l);
	free(text);
	return env;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct weft_config cfg = {};
	char err[512];
	char *text = malloc(size ? size : 1); /* exact size: ASan sees a read past the text */
	memcpy(text, data, size);

	memset(err, 0x55, sizeof(err));
	int rc = config_parse_yaml(&cfg, text, size, NAME, err, sizeof(err));
	if (rc) {
		check_error(rc, err, sizeof(err), NAME ":");
	} else {
		CHECK(cfg.n_instrument <= CONFIG_MAX_SELECTORS && cfg.n_exclude <= CONFIG_MAX_SELECTORS);
		CHECK(cfg.k8s_sync_timeout_ms <= 600000);
		check_selectors(cfg.instrument, cfg.n_instrument);
		check_selectors(cfg.exclude, cfg.n_exclude);
		check_wants(&cfg);
	}
	config_free(&cfg);
	free(text);

	char **env = env_of(data, size);
	memset(err, 0x55, sizeof(err));
	rc = config_apply_env(&cfg, env, err, sizeof(err));
	if (rc) {
		check_error(rc, err, sizeof(err), "");
	} else {
		check_selectors(cfg.instrument, cfg.n_instrument);
		check_selectors(cfg.exclude, cfg.n_exclude);
		check_wants(&cfg);
	}
	config_free(&cfg);
	for (char **e = env; *e; e++)
		free(*e);
	free(env);
	return 0;
}
