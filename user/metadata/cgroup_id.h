/* Which container a process runs in, from its cgroup path
 * (/proc/PID/cgroup): the layouts of docker, containerd (CRI), cri-o and
 * podman, with the systemd or the cgroupfs driver, on cgroup v2 and v1. */
#ifndef WEFT_METADATA_CGROUP_ID_H
#define WEFT_METADATA_CGROUP_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pod_meta.h"

struct cgroup_container {
	char id[CONTAINER_ID_MAX + 1]; /* 64 lowercase hex digits */
	const char *runtime;	       /* container.runtime: docker, containerd, cri-o, podman; NULL: unknown */
	char pod_uid[40];	       /* the Kubernetes pod's uid when the path names it, else "" */
};

/* Parses the text of a /proc/PID/cgroup file (every line, v2 "0::" first).
 * True when a container id was found. */
bool cgroup_container_parse(const char *text, size_t len, struct cgroup_container *out);
/* The same for a running process; false if it is in no container or gone. */
bool cgroup_container_of_pid(uint32_t pid, struct cgroup_container *out);

#endif
