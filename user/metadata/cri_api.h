/* A container's name, image and the kubelet's labels from a CRI runtime
 * (containerd, cri-o) on its unix socket: the gRPC call
 * runtime.v1.RuntimeService/ContainerStatus, through libcurl (HTTP/2 with
 * prior knowledge). Asked by one thread of its own, never by the caller:
 * a lookup answers from the cache or queues the id and says "pending";
 * each answer moves cri_api_generation(). Answers are cached (missing
 * containers too), bounded; failed calls are counted, logged once, and
 * asked again after a while. */
#ifndef WEFT_METADATA_CRI_API_H
#define WEFT_METADATA_CRI_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime_api.h"

struct cri_api_stats {
	uint64_t calls, found, not_found, failed, dropped;
};

/* Starts the thread for this socket (NULL: the first of
 * /run/containerd/containerd.sock, /var/run/crio/crio.sock, /run/crio/crio.sock
 * that exists; none: nothing starts). 0, or a negative errno. */
int cri_api_start(const char *socket_path);
void cri_api_stop(struct cri_api_stats *st);
bool cri_api_on(void);
/* 1 with *out filled, 0 when the runtime does not know the container (or
 * cannot be asked), -EAGAIN while the answer is pending. */
int cri_api_container(const char *id, struct runtime_info *out);
/* Changes whenever an answer arrives. */
uint64_t cri_api_generation(void);

/* The facts in a ContainerStatusResponse message (exposed for the tests):
 * 0, or -EINVAL for a malformed message. */
int cri_decode_container_status(const uint8_t *msg, size_t len, struct runtime_info *out);
/* A gRPC answer's body: one uncompressed length-prefixed message holding
 * a ContainerStatusResponse. 0, or -EINVAL. */
int cri_decode_grpc_body(const uint8_t *body, size_t len, struct runtime_info *out);
/* One header or trailer line of the answer: grpc-status into *status,
 * grpc-message into msg; other lines change nothing. */
void cri_grpc_header(const char *line, size_t len, int *status, char *msg, size_t msglen);

#endif
