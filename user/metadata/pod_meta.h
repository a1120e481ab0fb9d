/* What the Kubernetes API says of a pod of this node, as weft keeps it:
 * immutable once built, shared by counted reference (the watch thread
 * replaces a pod's entry; readers keep the version they hold). */
#ifndef WEFT_METADATA_POD_META_H
#define WEFT_METADATA_POD_META_H

#include <stddef.h>

#define CONTAINER_ID_MAX 64 /* hex digits of a runtime's container id */

struct pod_label {
	char *key, *value;
};

struct pod_container {
	char *name;
	char id[CONTAINER_ID_MAX + 1]; /* without the "containerd://" scheme; "" until it runs */
	char *image;		       /* status.containerStatuses[].image, or spec's */
};

struct pod_meta {
	int refs;
	char *ns, *name, *uid, *node;
	char *owner_kind, *owner_name; /* the pod's controller (ownerReferences[controller]) */
	char *top_kind, *top_name;     /* its own owner when known: ReplicaSet -> Deployment */
	struct pod_label *labels;
	size_t n_labels;
	struct pod_container *containers;
	size_t n_containers;
};

struct pod_meta *pod_meta_get(struct pod_meta *p);
void pod_meta_put(struct pod_meta *p);
const char *pod_meta_label(const struct pod_meta *p, const char *key);
/* The container of p whose id is id (a full id), or NULL. */
const struct pod_container *pod_meta_container(const struct pod_meta *p, const char *id);

#endif
