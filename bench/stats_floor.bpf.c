// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Programs that do nothing, on the tracepoints of weft's socket front:
 * what kernel.bpf_stats_enabled reports for them per run is the price of
 * its own clock reads (and of entering a program), which it adds to every
 * program's run_time_ns. bench/go_overhead subtracts it from weft's BPF
 * time per request. Owned by bench/stats_floor.c. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("raw_tracepoint/sock_recv_length")
int floor_recv(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sock_send_length")
int floor_send(struct bpf_raw_tracepoint_args *ctx)
{
	return 0;
}
