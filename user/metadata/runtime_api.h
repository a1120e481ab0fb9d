/* A container's name, image and the kubelet's labels from a
 * Docker-compatible API (docker, podman) on its unix socket:
 * GET /containers/<id>/json, through libcurl. Answers are cached (missing
 * containers too), bounded. */
#ifndef WEFT_METADATA_RUNTIME_API_H
#define WEFT_METADATA_RUNTIME_API_H

#include <stdbool.h>
#include <stddef.h>

struct runtime_info {
	char name[256];	 /* without the leading '/' */
	char image[512]; /* Config.Image */
	/* The kubelet's labels (dockershim, cri-dockerd), "" when absent. */
	char pod_name[256], pod_namespace[256], pod_uid[64], k8s_container[256];
};

/* Sets the socket (NULL: the first of /run/docker.sock,
 * /var/run/docker.sock, /run/podman/podman.sock that exists); false when
 * there is none. */
bool runtime_api_configure(const char *socket_path);
/* The container's facts; false if no runtime answers for it. */
bool runtime_api_container(const char *id, struct runtime_info *out);
void runtime_api_clear(void);
/* An inspect answer (GET /containers/<id>/json) -> out (zeroed first):
 * false when it is not JSON. Exposed for the tests. */
bool runtime_decode_inspect(const char *json, size_t len, struct runtime_info *out);

#endif
