/* The pods of this node, from the Kubernetes API: a list, then a watch
 * (fieldSelector=spec.nodeName=NODE, allowWatchBookmarks), resumed from
 * the last resourceVersion seen, listed again on 410 Gone; ReplicaSets
 * resolved to their Deployment, Jobs to their CronJob. One thread; readers take counted
 * references to immutable pod entries. */
#ifndef WEFT_METADATA_K8S_WATCH_H
#define WEFT_METADATA_K8S_WATCH_H

#include <stdint.h>

#include "k8s_api.h"
#include "pod_meta.h"

#define K8S_MAX_PODS 4096 /* pods kept; beyond, new pods are counted, not kept */

struct k8s_watch;

struct k8s_watch_stats {
	uint64_t lists, watches, events, bookmarks, gone, errors, pods_dropped;
	uint64_t pods; /* kept now */
};

/* Starts the thread and waits up to sync_ms for the first list. 0, or a
 * negative errno (logged) if the thread cannot start; an API that does not
 * answer in time is logged and retried in the background. */
int k8s_watch_start(const struct k8s_api *api, const char *node, unsigned sync_ms, struct k8s_watch **out);
void k8s_watch_stop(struct k8s_watch *w);
uint64_t k8s_watch_generation(struct k8s_watch *w);
struct pod_meta *k8s_watch_pod_of_container(struct k8s_watch *w, const char *id, const struct pod_container **c);
void k8s_watch_get_stats(struct k8s_watch *w, struct k8s_watch_stats *st);

#endif
