/* Where the Kubernetes API is and how to authenticate: the pod's service
 * account, or a kubeconfig's current context (read with libyaml). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "k8s_api.h"

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define KUBECONFIG_MAX (1 << 20)

static char *read_file(const char *path, size_t max, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size < 0 || (size_t)st.st_size > max) {
		close(fd);
		errno = EFBIG;
		return NULL;
	}
	char *buf = malloc(st.st_size + 1);
	ssize_t n = buf ? read(fd, buf, st.st_size) : -1;
	close(fd);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

static char *dupz(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A path relative to the kubeconfig's directory. */
static char *resolve(const char *dir, const char *p)
{
	if (!p)
		return NULL;
	if (p[0] == '/' || !dir)
		return strdup(p);
	size_t n = strlen(dir) + strlen(p) + 2;
	char *out = malloc(n);
	if (out)
		snprintf(out, n, "%s/%s", dir, p);
	return out;
}

static char *b64_decode(const char *in)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), o = 0;
	char *out = malloc(n / 4 * 3 + 4);
	unsigned acc = 0;
	int bits = 0;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *p = in[i] ? strchr(tbl, in[i]) : NULL;
		if (!p)
			continue; /* padding, line breaks */
		acc = acc << 6 | (unsigned)(p - tbl);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (acc >> bits) & 0xff;
		}
	}
	out[o] = '\0';
	return out;
}

static int in_cluster(struct k8s_api *a, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	if (!host || !*host)
		return -ENOENT;
	size_t n = strlen(host) + 32;
	a->server = malloc(n);
	if (!a->server)
		return -ENOMEM;
	/* An IPv6 service address needs brackets. */
	snprintf(a->server, n, strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host, port && *port ? port : "443");
	a->token_file = strdup(SA_DIR "/token");
	a->token = read_file(a->token_file, 64 << 10, NULL);
	if (!a->token) {
		snprintf(err, errlen, "in a cluster, but the service account token %s cannot be read: %s (is "
			 "automountServiceAccountToken off?)", a->token_file, strerror(errno));
		return -EACCES;
	}
	a->token[strcspn(a->token, "\r\n")] = '\0';
	a->ca_file = strdup(SA_DIR "/ca.crt");
	return 0;
}

/* ---- kubeconfig ---- */

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *m, const char *key)
{
	if (!m || m->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(d, p->key);
		if (k && k->type == YAML_SCALAR_NODE && !strcmp((char *)k->data.scalar.value, key))
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

static const char *map_str(yaml_document_t *d, yaml_node_t *m, const char *key)
{
	yaml_node_t *v = map_get(d, m, key);
	return v && v->type == YAML_SCALAR_NODE ? (const char *)v->data.scalar.value : NULL;
}

/* The entry of list (clusters, users, contexts) named name: its "what" map. */
static yaml_node_t *named(yaml_document_t *d, yaml_node_t *root, const char *list, const char *name, const char *what)
{
	yaml_node_t *l = map_get(d, root, list);
	if (!l || l->type != YAML_SEQUENCE_NODE || !name)
		return NULL;
	for (yaml_node_item_t *it = l->data.sequence.items.start; it < l->data.sequence.items.top; it++) {
		yaml_node_t *e = yaml_document_get_node(d, *it);
		const char *n = map_str(d, e, "name");
		if (n && !strcmp(n, name))
			return map_get(d, e, what);
	}
	return NULL;
}

int k8s_api_from_kubeconfig(const char *text, size_t len, const char *dir, struct k8s_api *a, char *err,
			    size_t errlen)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = 0;
	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		snprintf(err, errlen, "kubeconfig: not YAML (line %zu: %s)", parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "parse error");
		yaml_parser_delete(&parser);
		return -EINVAL;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	const char *ctx_name = map_str(&doc, root, "current-context");
	yaml_node_t *ctx = named(&doc, root, "contexts", ctx_name, "context");
	const char *cluster_name = map_str(&doc, ctx, "cluster"), *user_name = map_str(&doc, ctx, "user");
	yaml_node_t *cluster = named(&doc, root, "clusters", cluster_name, "cluster");
	yaml_node_t *user = named(&doc, root, "users", user_name, "user");
	const char *server = map_str(&doc, cluster, "server");
	if (!ctx || !cluster || !server) {
		snprintf(err, errlen, "kubeconfig: no server for the current context '%s'", ctx_name ? ctx_name : "");
		rc = -EINVAL;
		goto out;
	}
	a->server = strdup(server);
	size_t sl = strlen(a->server);
	while (sl && a->server[sl - 1] == '/')
		a->server[--sl] = '\0';
	const char *v;
	a->ca_file = resolve(dir, map_str(&doc, cluster, "certificate-authority"));
	if ((v = map_str(&doc, cluster, "certificate-authority-data")))
		a->ca_data = b64_decode(v);
	a->insecure = (v = map_str(&doc, cluster, "insecure-skip-tls-verify")) && !strcmp(v, "true");
	a->token = dupz(map_str(&doc, user, "token"));
	a->token_file = resolve(dir, map_str(&doc, user, "tokenFile"));
	if (!a->token && a->token_file) {
		a->token = read_file(a->token_file, 64 << 10, NULL);
		if (a->token)
			a->token[strcspn(a->token, "\r\n")] = '\0';
	}
	a->cert_file = resolve(dir, map_str(&doc, user, "client-certificate"));
	a->key_file = resolve(dir, map_str(&doc, user, "client-key"));
	if ((v = map_str(&doc, user, "client-certificate-data")))
		a->cert_data = b64_decode(v);
	if ((v = map_str(&doc, user, "client-key-data")))
		a->key_data = b64_decode(v);
	if (map_get(&doc, user, "exec") || map_get(&doc, user, "auth-provider")) {
		snprintf(err, errlen, "kubeconfig: user '%s' authenticates through a plugin (exec/auth-provider), "
			 "which weft does not run: give it a token or a client certificate", user_name ? user_name : "");
		rc = -ENOTSUP;
	}
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (rc)
		k8s_api_free(a);
	return rc;
}

int k8s_api_config(const char *kubeconfig, struct k8s_api *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (!kubeconfig)
		return in_cluster(out, err, errlen);
	size_t len;
	char *text = read_file(kubeconfig, KUBECONFIG_MAX, &len);
	if (!text) {
		int e = errno;
		snprintf(err, errlen, "kubeconfig %s: %s", kubeconfig, strerror(e));
		return -e;
	}
	char *dir = strdup(kubeconfig), *slash = dir ? strrchr(dir, '/') : NULL;
	if (slash)
		*slash = '\0';
	int rc = k8s_api_from_kubeconfig(text, len, slash ? dir : ".", out, err, errlen);
	free(dir);
	free(text);
	return rc;
}

void k8s_api_free(struct k8s_api *a)
{
	free(a->server);
	free(a->token);
	free(a->token_file);
	free(a->ca_file);
	free(a->ca_data);
	free(a->cert_file);
	free(a->key_file);
	free(a->cert_data);
	free(a->key_data);
	memset(a, 0, sizeof(*a));
}
