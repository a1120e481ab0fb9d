/* h2_client_parents (abi/h2_parent.h): the request an HTTP/2 client stream
 * is made for, by (socket, stream id). Created with the capture object (its
 * tables include this file) and shared by the Go uprobes, which fill it,
 * and by sk_msg, which reads it when injecting into a HEADERS frame. LRU:
 * entries nobody consumed (a stream whose HEADERS went out first, a call
 * that failed) age out. */
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
