/* A process's resource attributes from what is said of it: its own
 * OTEL_RESOURCE_ATTRIBUTES, the Kubernetes API's pod, the container
 * runtime's answer; the service name by precedence (docs/DEPLOY.md,
 * "Service names"). No I/O: metadata.c gathers, these decide, and
 * tests/fuzz/fuzz_metadata.c feeds them decoded answers. */
#ifndef WEFT_METADATA_RESOURCE_ATTRS_H
#define WEFT_METADATA_RESOURCE_ATTRS_H

#include <stdbool.h>

#include "pod_meta.h"
#include "runtime_api.h"
#include "span.h"

/* The text of OTEL_RESOURCE_ATTRIBUTES (k=v,... percent-encoded):
 * service.name when *own is false yet (then *own), every other key the
 * resource lacks; weft.* keys are not the process's to set. */
void resource_attrs_from_text(struct attr_list *attrs, const char *text, bool *own);
/* The pod and the container c of it the process runs in (the API's
 * answer, which wins over the runtime's). */
void resource_attrs_pod(struct attr_list *attrs, const struct pod_meta *pod, const struct pod_container *c,
			bool *own);
/* What the container runtime says. */
void resource_attrs_runtime(struct attr_list *attrs, const struct runtime_info *ri, bool *own);

#endif
