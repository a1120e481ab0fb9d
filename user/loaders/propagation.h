/* Loader of bpf/propagation.bpf.c: sockops on a cgroup v2 and sk_msg on the
 * sockhash, to inject traceparent into outgoing HTTP/1 requests. */
#ifndef WEFT_PROPAGATION_H
#define WEFT_PROPAGATION_H

#include "capture.h"

struct propagation;

/* cgroup: a cgroup v2 directory, or NULL for the host's cgroup v2 root.
 * tcp: TLS requests' context in a TCP header option too (needs sockops
 * that can tell the process: else a warning, headers only). Shares the
 * process filter and context maps of the capture tracer. */
int propagation_start(struct capture_tracer *st, const char *cgroup, bool tcp, struct propagation **out);
/* Detaches the cgroup program and the sk_msg program; sockets leave the
 * sockhash as it is freed. NULL-safe. */
void propagation_stop(struct propagation *p);

#endif
