// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* Tiny programs that `weft doctor` loads one at a time (the others'
 * autoload turned off) to learn what this kernel really allows. Owned by
 * user/doctor.c. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, 4);
	__type(key, __u64);
	__type(value, __u64);
} probe_sockhash SEC(".maps");

__u64 hits = 0;

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_tracepoint(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("uprobe")
int probe_uprobe(void *ctx)
{
	__sync_fetch_and_add(&hits, 1);
	return 0;
}

SEC("kprobe")
int probe_kprobe(void *ctx)
{
	return 0;
}

SEC("fentry/tcp_sendmsg")
int probe_fentry(void *ctx)
{
	return 0;
}

SEC("sockops")
int probe_sockops(struct bpf_sock_ops *ops)
{
	return 1;
}

SEC("sk_msg")
int probe_sk_msg(struct sk_msg_md *msg)
{
	return SK_PASS;
}

static long loop_step(__u64 i, void *ctx)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_bpf_loop(void *ctx)
{
	bpf_loop(4, loop_step, NULL, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int probe_write_user(void *ctx)
{
	__u64 v = 0;
	bpf_probe_write_user((void *)8, &v, sizeof(v));
	return 0;
}
