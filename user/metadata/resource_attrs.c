/* A process's resource attributes from what its container and pod say
 * (see resource_attrs.h). */
#include <string.h>

#include "resource_attrs.h"

static int hexval(int c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* s[0..n) trimmed and percent-decoded into out (W3C Baggage encoding, as
 * the SDKs read OTEL_RESOURCE_ATTRIBUTES). */
static void decode(const char *s, size_t n, char *out, size_t outlen)
{
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < outlen; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
			out[o++] = hexval(s[i + 1]) * 16 + hexval(s[i + 2]);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
}

void resource_attrs_from_text(struct attr_list *attrs, const char *v, bool *own)
{
	for (const char *p = v; *p;) {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);
		if (eq) {
			char key[256], val[1024];
			decode(p, eq - p, key, sizeof(key));
			decode(eq + 1, p + n - eq - 1, val, sizeof(val));
			if (!key[0] || !strncmp(key, "weft.", 5)) {
				/* weft's internal keys are not the process's to set */
			} else if (!strcmp(key, "service.name")) {
				if (!*own && val[0]) {
					attrs_set_str(attrs, "service.name", val);
					*own = true;
				}
			} else if (!attrs_get(attrs, key)) {
				attrs_set_str(attrs, key, val);
			}
		}
		p += n;
		if (*p)
			p++;
	}
}

static const char *owner_attr(const char *kind)
{
	static const char *const kinds[][2] = {
		{ "Deployment", "k8s.deployment.name" }, { "ReplicaSet", "k8s.replicaset.name" },
		{ "StatefulSet", "k8s.statefulset.name" }, { "DaemonSet", "k8s.daemonset.name" },
		{ "Job", "k8s.job.name" },		   { "CronJob", "k8s.cronjob.name" },
	};
	for (size_t i = 0; kind && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(kind, kinds[i][0]))
			return kinds[i][1];
	return NULL;
}

/* "registry/repo/name:tag" or "name@sha256:..." -> container.image.name, tag. */
static void image_attrs(struct attr_list *attrs, const char *image)
{
	const char *at = strchr(image, '@');
	size_t end = at ? (size_t)(at - image) : strlen(image);
	const char *slash = memrchr(image, '/', end);
	const char *colon = memchr(slash ? slash : image, ':', end - (slash ? slash - image : 0));
	size_t name_len = colon ? (size_t)(colon - image) : end;
	attrs_set_strn(attrs, "container.image.name", image, name_len);
	if (colon)
		attrs_set_strn(attrs, "container.image.tag", colon + 1, end - name_len - 1);
}

void resource_attrs_pod(struct attr_list *attrs, const struct pod_meta *pod, const struct pod_container *c, bool *own)
{
	attrs_set_str(attrs, "k8s.namespace.name", pod->ns);
	attrs_set_str(attrs, "k8s.pod.name", pod->name);
	if (pod->uid)
		attrs_set_str(attrs, "k8s.pod.uid", pod->uid);
	if (pod->node)
		attrs_set_str(attrs, "k8s.node.name", pod->node);
	if (c->name)
		attrs_set_str(attrs, "k8s.container.name", c->name);
	if (c->image && *c->image)
		image_attrs(attrs, c->image);
	const char *a;
	if ((a = owner_attr(pod->owner_kind)) && pod->owner_name)
		attrs_set_str(attrs, a, pod->owner_name);
	if ((a = owner_attr(pod->top_kind)) && pod->top_name)
		attrs_set_str(attrs, a, pod->top_name);
	if (!*own) {
		/* The workload's name: a Deployment's pods (through their
		 * ReplicaSet) are the Deployment's service. */
		const char *svc = pod->top_name ? pod->top_name : pod->owner_name ? pod->owner_name : c->name;
		if (svc && *svc) {
			attrs_set_str(attrs, "service.name", svc);
			*own = true;
		}
	}
	if (!attrs_get(attrs, "service.namespace"))
		attrs_set_str(attrs, "service.namespace", pod->ns);
}

/* What the runtime says (after the API's pod, which wins). */
void resource_attrs_runtime(struct attr_list *attrs, const struct runtime_info *ri, bool *own)
{
	if (ri->name[0])
		attrs_set_str(attrs, "container.name", ri->name);
	if (ri->image[0] && !attrs_get(attrs, "container.image.name"))
		image_attrs(attrs, ri->image);
	/* The kubelet's labels, where the pod is not known from the API. */
	if (ri->pod_name[0] && !attrs_get(attrs, "k8s.pod.name")) {
		attrs_set_str(attrs, "k8s.pod.name", ri->pod_name);
		if (ri->pod_namespace[0]) {
			attrs_set_str(attrs, "k8s.namespace.name", ri->pod_namespace);
			if (!attrs_get(attrs, "service.namespace"))
				attrs_set_str(attrs, "service.namespace", ri->pod_namespace);
		}
		if (ri->pod_uid[0])
			attrs_set_str(attrs, "k8s.pod.uid", ri->pod_uid);
		if (ri->k8s_container[0])
			attrs_set_str(attrs, "k8s.container.name", ri->k8s_container);
	}
	const char *name = ri->k8s_container[0] ? ri->k8s_container : ri->name;
	if (!*own && name[0]) {
		attrs_set_str(attrs, "service.name", name);
		*own = true;
	}
}
