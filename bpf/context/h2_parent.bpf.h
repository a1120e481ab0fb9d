/* h2_client_parents (abi/h2_parent.h): the request an HTTP/2 client stream
 * is made for, by (socket, stream id). Created by the capture object
 * (capture.bpf.c includes this file) and shared by name with the Go
 * uprobes, which fill it, and with sk_msg (bpf/inject/http2_inject.bpf.h
 * declares the same map), which reads and deletes it when injecting into a
 * HEADERS frame. LRU: entries nobody consumed (a stream whose HEADERS went
 * out first) age out. */
#ifndef WEFT_CONTEXT_H2_PARENT_BPF_H
#define WEFT_CONTEXT_H2_PARENT_BPF_H

#include "lib/common.bpf.h"
#include "abi/h2_parent.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct h2_parent_key);
	__type(value, struct h2_parent);
} h2_client_parents SEC(".maps");

#endif
