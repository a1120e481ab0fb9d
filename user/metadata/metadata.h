/* What weft knows of a process beyond /proc: its container (cgroup path),
 * its Kubernetes pod (the API, user/metadata/k8s_watch.c), and the
 * service identity built from them (docs/DEPLOY.md, "Service names"). */
#ifndef WEFT_METADATA_METADATA_H
#define WEFT_METADATA_METADATA_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "pod_meta.h"
#include "span.h"

/* Starts the Kubernetes pod watch when the configuration asks for it (or,
 * with enable: auto, inside a cluster or with a kubeconfig) and waits for
 * the first pod list (cfg->k8s_sync_timeout_ms). 0 or a negative errno
 * (logged) when it was required and cannot start. */
int metadata_start(const struct weft_config *cfg);
void metadata_stop(void);
bool metadata_k8s_on(void);
/* Changes whenever the pods known change. */
uint64_t metadata_generation(void);
/* The pod (a counted reference, pod_meta_put it) one of whose containers
 * has this id; *container is that container (valid while the ref is held). */
struct pod_meta *metadata_pod_of_container(const char *id, const struct pod_container **container);
/* Adds the container, Kubernetes and service attributes of pid to attrs,
 * which already holds /proc's (service.name from OTEL_SERVICE_NAME or the
 * executable, process.*): service.name by precedence, service.namespace,
 * service.instance.id. False when some of it may come later (the pod of
 * its container is not known yet). */
bool metadata_resource(struct attr_list *attrs, uint32_t pid);

#endif
