/* The configuration file (libyaml's document API) and its variables. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "config.h"

#define CONFIG_FILE_MAX (1 << 20)
#define K8S_SYNC_TIMEOUT_DEFAULT_MS 10000

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	snprintf(err, errlen, fmt, a, b);
	return -EINVAL;
}

/* One selector key with a scalar value (labels come as a map in YAML, or
 * "K=V,..." from a variable). */
static int selector_set(struct selector *s, const char *key, const char *v, char *err, size_t errlen)
{
	static const struct {
		const char *key;
		size_t off;
	} regexes[] = {
		{ "container_name", offsetof(struct selector, container_name) },
		{ "k8s_namespace", offsetof(struct selector, k8s_namespace) },
		{ "k8s_pod_name", offsetof(struct selector, k8s_pod_name) },
		{ "k8s_container_name", offsetof(struct selector, k8s_container_name) },
		{ "k8s_owner_name", offsetof(struct selector, k8s_owner_name) },
		{ "k8s_deployment_name", offsetof(struct selector, k8s_deployment_name) },
		{ "k8s_statefulset_name", offsetof(struct selector, k8s_statefulset_name) },
		{ "k8s_daemonset_name", offsetof(struct selector, k8s_daemonset_name) },
		{ "k8s_replicaset_name", offsetof(struct selector, k8s_replicaset_name) },
		{ "k8s_job_name", offsetof(struct selector, k8s_job_name) },
		{ "k8s_cronjob_name", offsetof(struct selector, k8s_cronjob_name) },
	};
	if (!strcmp(key, "exe_path") || !strcmp(key, "container_id")) {
		char **dst = key[0] == 'e' ? &s->exe_path : &s->container_id;
		if (!*v)
			return fail(err, errlen, "%s: empty value%s", key, "");
		free(*dst);
		*dst = strdup(v);
		return *dst ? 0 : -ENOMEM;
	}
	if (!strcmp(key, "open_ports"))
		return selector_add_ports(s, v, err, errlen);
	if (!strcmp(key, "k8s_pod_labels"))
		return selector_add_labels(s, v, err, errlen);
	for (size_t i = 0; i < sizeof(regexes) / sizeof(regexes[0]); i++)
		if (!strcmp(key, regexes[i].key))
			return selector_set_regex((struct name_regex *)((char *)s + regexes[i].off), key, v, err, errlen);
	return fail(err, errlen,
		    "unknown selector key '%s'%s (known: exe_path, open_ports, container_id, container_name, "
		    "k8s_namespace, k8s_pod_name, k8s_container_name, k8s_owner_name, k8s_deployment_name, "
		    "k8s_statefulset_name, k8s_daemonset_name, k8s_replicaset_name, k8s_job_name, "
		    "k8s_cronjob_name, k8s_pod_labels)",
		    key, "");
}

static int set_string(char **dst, const char *v)
{
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

static int set_k8s_enable(struct weft_config *cfg, const char *v, char *err, size_t errlen)
{
	if (!strcmp(v, "auto"))
		cfg->k8s_enable = K8S_ENABLE_AUTO;
	else if (!strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "yes"))
		cfg->k8s_enable = K8S_ENABLE_ON;
	else if (!strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "no"))
		cfg->k8s_enable = K8S_ENABLE_OFF;
	else
		return fail(err, errlen, "kubernetes.enable: '%s' is not one of auto, true, false%s", v, "");
	return 0;
}

static int set_timeout(struct weft_config *cfg, const char *v, char *err, size_t errlen)
{
	char *end;
	errno = 0;
	unsigned long ms = strtoul(v, &end, 10);
	if (errno || end == v || *end || ms > 600000)
		return fail(err, errlen, "kubernetes.sync_timeout_ms: '%s' is not a number of milliseconds up to 600000%s",
			    v, "");
	cfg->k8s_sync_timeout_ms = ms;
	return 0;
}

/* ---- YAML ---------------------------------------------------------------- */

struct yaml_walk {
	yaml_document_t *doc;
	const char *name;
	char *err;
	size_t errlen;
};

static int yfail(struct yaml_walk *w, yaml_node_t *n, const char *fmt, const char *a)
{
	char msg[512];
	snprintf(msg, sizeof(msg), fmt, a);
	snprintf(w->err, w->errlen, "%s:%zu: %s", w->name, n ? n->start_mark.line + 1 : 0, msg);
	return -EINVAL;
}

static const char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *node(struct yaml_walk *w, int id)
{
	return yaml_document_get_node(w->doc, id);
}

static int walk_selector(struct yaml_walk *w, yaml_node_t *m, struct selector *s)
{
	char emsg[400];
	if (m->type != YAML_MAPPING_NODE)
		return yfail(w, m, "a selector is a mapping (exe_path: ..., open_ports: ...)%s", "");
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = node(w, p->key), *vn = node(w, p->value);
		const char *k = scalar(kn);
		int rc;
		if (!k)
			return yfail(w, kn, "a selector's keys are names%s", "");
		if (!strcmp(k, "k8s_pod_labels") && vn && vn->type == YAML_MAPPING_NODE) {
			for (yaml_node_pair_t *l = vn->data.mapping.pairs.start; l < vn->data.mapping.pairs.top; l++) {
				const char *lk = scalar(node(w, l->key)), *lv = scalar(node(w, l->value));
				if (!lk || !lv)
					return yfail(w, vn, "k8s_pod_labels: label: regex pairs%s", "");
				if ((rc = selector_add_label(s, lk, lv, emsg, sizeof(emsg))))
					return rc == -ENOMEM ? rc : yfail(w, vn, "%s", emsg);
			}
			continue;
		}
		const char *v = scalar(vn);
		if (!v)
			return yfail(w, vn, "%s: expected a single value", k);
		if ((rc = selector_set(s, k, v, emsg, sizeof(emsg))))
			return rc == -ENOMEM ? rc : yfail(w, kn, "%s", emsg);
	}
	if (selector_empty(s))
		return yfail(w, m, "an empty selector would match every process%s", "");
	return 0;
}

static int walk_selectors(struct yaml_walk *w, yaml_node_t *seq, const char *what, struct selector *out, size_t *n)
{
	if (seq->type != YAML_SEQUENCE_NODE)
		return yfail(w, seq, "discovery.%s is a list of selectors (- exe_path: ...)", what);
	for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		if (*n == CONFIG_MAX_SELECTORS)
			return yfail(w, seq, "discovery.%s: more than 32 selectors", what);
		int rc = walk_selector(w, node(w, *it), &out[*n]);
		(*n)++; /* freed with the configuration, even half-filled */
		if (rc)
			return rc;
	}
	return 0;
}

/* section: the top-level key's value; handler per key. */
static int walk_top(struct yaml_walk *w, struct weft_config *cfg, yaml_node_t *root)
{
	if (root->type == YAML_SCALAR_NODE && !*scalar(root))
		return 0; /* an empty file */
	if (root->type != YAML_MAPPING_NODE)
		return yfail(w, root, "the file is a mapping of sections (discovery:, kubernetes:, ...)%s", "");
	for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
		yaml_node_t *kn = node(w, p->key), *vn = node(w, p->value);
		const char *sect = scalar(kn);
		if (!sect)
			return yfail(w, kn, "section names are plain words%s", "");
		if (vn->type == YAML_SCALAR_NODE && !*scalar(vn))
			continue; /* an empty section */
		if (vn->type != YAML_MAPPING_NODE)
			return yfail(w, vn, "%s: expected a mapping", sect);
		for (yaml_node_pair_t *q = vn->data.mapping.pairs.start; q < vn->data.mapping.pairs.top; q++) {
			yaml_node_t *k2 = node(w, q->key), *v2 = node(w, q->value);
			const char *key = scalar(k2), *val = scalar(v2);
			char emsg[400];
			int rc = 0;
			if (!key)
				return yfail(w, k2, "%s: keys are plain words", sect);
			if (!strcmp(sect, "discovery") && !strcmp(key, "instrument")) {
				rc = walk_selectors(w, v2, key, cfg->instrument, &cfg->n_instrument);
			} else if (!strcmp(sect, "discovery") && !strcmp(key, "exclude_instrument")) {
				rc = walk_selectors(w, v2, key, cfg->exclude, &cfg->n_exclude);
			} else if (!strcmp(sect, "kubernetes") || !strcmp(sect, "container_runtime")) {
				if (!val)
					return yfail(w, v2, "%s: expected a single value", key);
				if (!strcmp(sect, "container_runtime") && !strcmp(key, "socket"))
					rc = set_string(&cfg->runtime_socket, val);
				else if (!strcmp(sect, "container_runtime") && !strcmp(key, "cri_socket"))
					rc = set_string(&cfg->cri_socket, val);
				else if (!strcmp(sect, "container_runtime"))
					return yfail(w, k2, "container_runtime: unknown key '%s' (known: socket, cri_socket)",
						     key);
				else if (!strcmp(key, "enable"))
					rc = set_k8s_enable(cfg, val, emsg, sizeof(emsg));
				else if (!strcmp(key, "kubeconfig"))
					rc = set_string(&cfg->kubeconfig, val);
				else if (!strcmp(key, "node_name"))
					rc = set_string(&cfg->node_name, val);
				else if (!strcmp(key, "sync_timeout_ms"))
					rc = set_timeout(cfg, val, emsg, sizeof(emsg));
				else
					return yfail(w, k2,
						     "kubernetes: unknown key '%s' (known: enable, kubeconfig, node_name, "
						     "sync_timeout_ms)",
						     key);
				if (rc == -EINVAL)
					return yfail(w, v2, "%s", emsg);
			} else if (!strcmp(sect, "discovery")) {
				return yfail(w, k2, "discovery: unknown key '%s' (known: instrument, exclude_instrument)",
					     key);
			} else {
				return yfail(w, kn,
					     "unknown section '%s' (known: discovery, kubernetes, container_runtime)", sect);
			}
			if (rc)
				return rc;
		}
	}
	return 0;
}

int config_parse_yaml(struct weft_config *cfg, const char *text, size_t len, const char *name, char *err,
		      size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "%s:%zu: not YAML: %s", name, parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	struct yaml_walk w = { .doc = &doc, .name = name, .err = err, .errlen = errlen };
	rc = root ? walk_top(&w, cfg, root) : 0;
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	return rc;
}

/* ---- variables ------------------------------------------------------------ */

static const char *env_get(char **env, const char *name)
{
	size_t n = strlen(name);
	for (char **e = env; e && *e; e++)
		if (!strncmp(*e, name, n) && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* The selector keys a variable can set: WEFT_DISCOVERY_<KEY> adds to one
 * more instrument selector, WEFT_DISCOVERY_EXCLUDE_<KEY> to one more
 * exclude selector. */
static const char *const env_selector_keys[] = {
	"exe_path",	       "open_ports",	       "container_id",	       "container_name",
	"k8s_namespace",       "k8s_pod_name",	       "k8s_container_name",   "k8s_owner_name",
	"k8s_deployment_name", "k8s_statefulset_name", "k8s_daemonset_name",   "k8s_replicaset_name",
	"k8s_job_name",	       "k8s_cronjob_name",     "k8s_pod_labels",
};

static int env_selector(char **env, const char *prefix, struct selector *out, size_t *n, char *err, size_t errlen)
{
	struct selector s = {};
	char var[96], msg[400];
	for (size_t i = 0; i < sizeof(env_selector_keys) / sizeof(env_selector_keys[0]); i++) {
		size_t o = snprintf(var, sizeof(var), "%s", prefix);
		for (const char *k = env_selector_keys[i]; *k && o < sizeof(var) - 1; k++)
			var[o++] = *k >= 'a' && *k <= 'z' ? *k - 32 : *k;
		var[o] = '\0';
		const char *v = env_get(env, var);
		if (!v || !*v)
			continue;
		int rc = selector_set(&s, env_selector_keys[i], v, msg, sizeof(msg));
		if (rc) {
			selector_free(&s);
			snprintf(err, errlen, "%s: %s", var, msg);
			return rc;
		}
	}
	if (selector_empty(&s))
		return 0;
	if (*n == CONFIG_MAX_SELECTORS) {
		selector_free(&s);
		snprintf(err, errlen, "%s*: more than %d selectors in all", prefix, CONFIG_MAX_SELECTORS);
		return -E2BIG;
	}
	out[(*n)++] = s;
	return 0;
}

int config_apply_env(struct weft_config *cfg, char **env, char *err, size_t errlen)
{
	const char *v;
	char msg[400];
	int rc;
	if ((rc = env_selector(env, "WEFT_DISCOVERY_EXCLUDE_", cfg->exclude, &cfg->n_exclude, err, errlen)) ||
	    (rc = env_selector(env, "WEFT_DISCOVERY_", cfg->instrument, &cfg->n_instrument, err, errlen)))
		return rc;
	if ((v = env_get(env, "WEFT_KUBERNETES_ENABLE")) && (rc = set_k8s_enable(cfg, v, msg, sizeof(msg)))) {
		snprintf(err, errlen, "WEFT_KUBERNETES_ENABLE: %s", msg);
		return rc;
	}
	if ((v = env_get(env, "WEFT_KUBERNETES_SYNC_TIMEOUT_MS")) && (rc = set_timeout(cfg, v, msg, sizeof(msg)))) {
		snprintf(err, errlen, "WEFT_KUBERNETES_SYNC_TIMEOUT_MS: %s", msg);
		return rc;
	}
	/* The conventional names first, weft's own override them. */
	if (!cfg->kubeconfig && (v = env_get(env, "KUBECONFIG")) && *v && (rc = set_string(&cfg->kubeconfig, v)))
		return rc;
	if ((v = env_get(env, "WEFT_KUBERNETES_KUBECONFIG")) && *v && (rc = set_string(&cfg->kubeconfig, v)))
		return rc;
	if (!cfg->node_name && (v = env_get(env, "NODE_NAME")) && *v && (rc = set_string(&cfg->node_name, v)))
		return rc;
	if ((v = env_get(env, "WEFT_KUBERNETES_NODE_NAME")) && *v && (rc = set_string(&cfg->node_name, v)))
		return rc;
	if ((v = env_get(env, "WEFT_CONTAINER_RUNTIME_SOCKET")) && *v && (rc = set_string(&cfg->runtime_socket, v)))
		return rc;
	if ((v = env_get(env, "WEFT_CONTAINER_RUNTIME_CRI_SOCKET")) && *v && (rc = set_string(&cfg->cri_socket, v)))
		return rc;
	return 0;
}

int config_load(struct weft_config *cfg, const char *path, char *err, size_t errlen)
{
	extern char **environ;
	int rc = 0;
	memset(cfg, 0, sizeof(*cfg));
	cfg->k8s_sync_timeout_ms = K8S_SYNC_TIMEOUT_DEFAULT_MS;
	if (path) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			rc = -errno;
			snprintf(err, errlen, "--config: %s: %s", path, strerror(-rc));
			if (fd >= 0)
				close(fd);
			return rc;
		}
		if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
			close(fd);
			snprintf(err, errlen, "--config: %s: not a regular file of at most 1 MiB", path);
			return -EINVAL;
		}
		char *text = malloc(st.st_size + 1);
		ssize_t got = text ? read(fd, text, st.st_size) : -1;
		close(fd);
		if (got != st.st_size) {
			free(text);
			snprintf(err, errlen, "--config: %s: cannot read it", path);
			return -EIO;
		}
		rc = config_parse_yaml(cfg, text, got, path, err, errlen);
		free(text);
	}
	if (!rc)
		rc = config_apply_env(cfg, environ, err, errlen);
	if (rc)
		config_free(cfg);
	return rc;
}

void config_free(struct weft_config *cfg)
{
	for (size_t i = 0; i < cfg->n_instrument; i++)
		selector_free(&cfg->instrument[i]);
	for (size_t i = 0; i < cfg->n_exclude; i++)
		selector_free(&cfg->exclude[i]);
	free(cfg->kubeconfig);
	free(cfg->node_name);
	free(cfg->runtime_socket);
	free(cfg->cri_socket);
	memset(cfg, 0, sizeof(*cfg));
}

bool config_selects(const struct weft_config *cfg)
{
	return cfg->n_instrument || cfg->n_exclude;
}

bool config_needs_k8s(const struct weft_config *cfg)
{
	for (size_t i = 0; i < cfg->n_instrument; i++)
		if (selector_needs_k8s(&cfg->instrument[i]))
			return true;
	for (size_t i = 0; i < cfg->n_exclude; i++)
		if (selector_needs_k8s(&cfg->exclude[i]))
			return true;
	return false;
}

bool config_needs_ports(const struct weft_config *cfg)
{
	for (size_t i = 0; i < cfg->n_instrument; i++)
		if (selector_needs_ports(&cfg->instrument[i]))
			return true;
	for (size_t i = 0; i < cfg->n_exclude; i++)
		if (selector_needs_ports(&cfg->exclude[i]))
			return true;
	return false;
}

bool config_wants(const struct weft_config *cfg, const struct proc_facts *f)
{
	for (size_t i = 0; i < cfg->n_exclude; i++)
		if (selector_matches(&cfg->exclude[i], f))
			return false;
	if (!cfg->n_instrument)
		return true;
	for (size_t i = 0; i < cfg->n_instrument; i++)
		if (selector_matches(&cfg->instrument[i], f))
			return true;
	return false;
}
