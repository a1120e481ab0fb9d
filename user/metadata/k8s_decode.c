/* Decoding the Kubernetes API's answers (no I/O: see k8s_decode.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s_decode.h"

static char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? strdup(s) : NULL;
}

void k8s_controller_decode(json_t *obj, char **kind, char **name)
{
	json_t *refs = json_object_get(json_object_get(obj, "metadata"), "ownerReferences"), *r;
	size_t i;
	*kind = *name = NULL;
	json_array_foreach(refs, i, r) {
		if (json_is_true(json_object_get(r, "controller"))) {
			/* Half a reference names no owner (and the resource's
			 * k8s.<kind>.name would have no value). */
			if (!json_is_string(json_object_get(r, "kind")) || !json_is_string(json_object_get(r, "name")))
				return;
			*kind = jstr(r, "kind");
			*name = jstr(r, "name");
			if (!*kind || !*name) {
				free(*kind);
				free(*name);
				*kind = *name = NULL;
			}
			return;
		}
	}
}

/* "containerd://<id>", "cri-o://<id>", "docker://<id>" -> id. */
static void container_id(const char *s, char *out)
{
	const char *p = s ? strstr(s, "://") : NULL;
	snprintf(out, CONTAINER_ID_MAX + 1, "%s", p ? p + 3 : "");
}

struct pod_meta *k8s_pod_decode(json_t *o, k8s_owner_fn owner, void *ctx)
{
	json_t *md = json_object_get(o, "metadata"), *spec = json_object_get(o, "spec"),
	       *status = json_object_get(o, "status");
	struct pod_meta *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->refs = 1;
	p->ns = jstr(md, "namespace");
	p->name = jstr(md, "name");
	p->uid = jstr(md, "uid");
	p->node = jstr(spec, "nodeName");
	if (!p->ns || !p->name || !p->uid) {
		pod_meta_put(p);
		return NULL;
	}
	json_t *r, *v;
	size_t i;
	const char *k;
	k8s_controller_decode(o, &p->owner_kind, &p->owner_name);
	if (owner && p->owner_kind && p->owner_name)
		owner(ctx, p->ns, p->owner_kind, p->owner_name, &p->top_kind, &p->top_name);
	json_t *labels = json_object_get(md, "labels");
	size_t nl = json_object_size(labels);
	p->labels = calloc(nl ? nl : 1, sizeof(*p->labels));
	json_object_foreach(labels, k, v) {
		if (!json_is_string(v) || !p->labels)
			continue;
		p->labels[p->n_labels].key = strdup(k);
		p->labels[p->n_labels++].value = strdup(json_string_value(v));
	}
	/* Containers of every kind with an id: regular, init, ephemeral. */
	static const char *const lists[] = { "containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses" };
	size_t nc = 0;
	for (size_t l = 0; l < 3; l++)
		nc += json_array_size(json_object_get(status, lists[l]));
	p->containers = calloc(nc ? nc : 1, sizeof(*p->containers));
	for (size_t l = 0; l < 3 && p->containers; l++) {
		json_array_foreach(json_object_get(status, lists[l]), i, r) {
			struct pod_container *c = &p->containers[p->n_containers++];
			c->name = jstr(r, "name");
			c->image = jstr(r, "image");
			container_id(json_string_value(json_object_get(r, "containerID")), c->id);
		}
	}
	return p;
}

size_t k8s_list_decode(json_t *list, k8s_owner_fn owner, void *ctx, struct pod_meta **out, size_t max,
		       size_t *dropped, char *rv, size_t rvlen)
{
	size_t n = 0, i;
	json_t *item;
	*dropped = 0;
	json_array_foreach(json_object_get(list, "items"), i, item) {
		struct pod_meta *p = k8s_pod_decode(item, owner, ctx);
		if (p && n < max)
			out[n++] = p;
		else if (p) {
			pod_meta_put(p);
			(*dropped)++;
		}
	}
	const char *v = json_string_value(json_object_get(json_object_get(list, "metadata"), "resourceVersion"));
	snprintf(rv, rvlen, "%s", v ? v : "");
	return n;
}

void k8s_event_decode(const char *line, size_t len, k8s_owner_fn owner, void *ctx, struct k8s_event *ev)
{
	json_error_t jerr;
	memset(ev, 0, sizeof(*ev));
	ev->doc = json_loadb(line, len, 0, &jerr);
	const char *type = json_string_value(json_object_get(ev->doc, "type"));
	json_t *obj = json_object_get(ev->doc, "object"), *md = json_object_get(obj, "metadata");
	if (!ev->doc || !type)
		return;
	if (!strcmp(type, "ERROR")) {
		/* A Status: 410 Gone means our resourceVersion expired. */
		if (json_integer_value(json_object_get(obj, "code")) == 410) {
			ev->type = K8S_EVENT_GONE;
		} else {
			ev->type = K8S_EVENT_ERROR;
			ev->message = json_string_value(json_object_get(obj, "message"));
		}
		return;
	}
	ev->rv = json_string_value(json_object_get(md, "resourceVersion"));
	if (!strcmp(type, "BOOKMARK")) {
		ev->type = K8S_EVENT_BOOKMARK;
	} else if (!strcmp(type, "DELETED")) {
		ev->type = K8S_EVENT_DELETED;
		ev->uid = json_string_value(json_object_get(md, "uid"));
	} else {
		ev->type = K8S_EVENT_UPSERT;
		ev->pod = k8s_pod_decode(obj, owner, ctx);
	}
}

void k8s_event_free(struct k8s_event *ev)
{
	json_decref(ev->doc);
	ev->doc = NULL;
}

int k8s_lines_feed(struct k8s_lines *l, const char *data, size_t len, void (*on_line)(void *, const char *, size_t),
		   void *ctx)
{
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			if (l->len)
				on_line(ctx, l->buf, l->len);
			l->len = 0;
			continue;
		}
		if (l->len == l->max)
			return -E2BIG;
		if (!l->buf && !(l->buf = malloc(l->max)))
			return -ENOMEM;
		l->buf[l->len++] = data[i];
	}
	return 0;
}

void k8s_lines_free(struct k8s_lines *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = 0;
}
