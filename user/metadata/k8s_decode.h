/* What the Kubernetes API sends back, decoded from memory (jansson): pods,
 * a pod list, an owner's controller, the watch stream's lines and events.
 * No I/O here, so that tests and tests/fuzz/fuzz_metadata.c reach every
 * decoder; user/metadata/k8s_watch.c does the requests. */
#ifndef WEFT_METADATA_K8S_DECODE_H
#define WEFT_METADATA_K8S_DECODE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "pod_meta.h"

/* Resolves a pod's controller (kind, name) to its own controller
 * (ReplicaSet -> Deployment, Job -> CronJob): sets *top_kind and
 * *top_name (malloc'd) or leaves them NULL. */
typedef void (*k8s_owner_fn)(void *ctx, const char *ns, const char *kind, const char *name, char **top_kind,
			     char **top_name);

/* A Pod object -> a pod entry (one reference), NULL without namespace,
 * name or uid. owner (may be NULL) is asked for the controller's owner. */
struct pod_meta *k8s_pod_decode(json_t *pod, k8s_owner_fn owner, void *ctx);
/* An object's metadata.ownerReferences[] entry with controller: true:
 * *kind and *name (malloc'd), both set or both NULL (a reference without
 * its kind or its name is none). */
void k8s_controller_decode(json_t *obj, char **kind, char **name);
/* A PodList: up to max pods into out (n returned), the others counted in
 * *dropped; its metadata.resourceVersion into rv ("" when absent). */
size_t k8s_list_decode(json_t *list, k8s_owner_fn owner, void *ctx, struct pod_meta **out, size_t max,
		       size_t *dropped, char *rv, size_t rvlen);

/* One watch event line. */
enum k8s_event_type {
	K8S_EVENT_INVALID, /* not JSON, or no type: ignored */
	K8S_EVENT_UPSERT,  /* ADDED, MODIFIED (any other type too): pod, NULL when unusable */
	K8S_EVENT_DELETED, /* uid, NULL when absent */
	K8S_EVENT_BOOKMARK,
	K8S_EVENT_GONE,	   /* ERROR with a 410 Status: the resourceVersion expired */
	K8S_EVENT_ERROR,   /* another ERROR: message */
};

struct k8s_event {
	enum k8s_event_type type;
	json_t *doc;	     /* owns the strings below */
	const char *rv;	     /* the object's resourceVersion, or NULL (ERROR: always NULL) */
	const char *uid;     /* DELETED */
	const char *message; /* ERROR */
	struct pod_meta *pod; /* UPSERT: the caller's reference */
};

void k8s_event_decode(const char *line, size_t len, k8s_owner_fn owner, void *ctx, struct k8s_event *ev);
/* Frees doc (not pod). */
void k8s_event_free(struct k8s_event *ev);

/* The watch stream cut into lines: bytes as they arrive, each complete
 * non-empty line to on_line. A line longer than max is an error. */
struct k8s_lines {
	char *buf; /* max bytes once a line starts */
	size_t len, max;
};

/* 0, -E2BIG for a line over max (the lines before it were delivered), or
 * -ENOMEM. */
int k8s_lines_feed(struct k8s_lines *l, const char *data, size_t len, void (*on_line)(void *, const char *, size_t),
		   void *ctx);
void k8s_lines_free(struct k8s_lines *l);

#endif
