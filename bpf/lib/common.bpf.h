/* Includes, constants and maps that every weft BPF object shares. Each
 * skeleton declares these maps; the loader creates them once and hands the
 * same fds to the other skeletons (bpf_map__reuse_fd), so all programs see
 * one process filter and one set of counters. */
#ifndef WEFT_COMMON_BPF_H
#define WEFT_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "abi/weft.h"
#include "lib/profile.bpf.h"

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define EAGAIN 11
#define EEXIST 17
#define EINPROGRESS 115

/* Set by the loader before load. */
const volatile __u32 self_tgid = 0;   /* weft itself: never traced */
const volatile __u8 trace_all = 0;    /* weft run */
const volatile __u8 socket_front = 0; /* capture from the socket-layer tracepoints */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);  /* tgid */
	__type(value, __u8); /* TRACED_* */
} traced_pids SEC(".maps");

/* The same selection as a bitmap over every possible tgid (bit tgid % 64 of
 * word tgid / 64): the filter every traced syscall of every process asks
 * first, so it is an array access the JIT inlines rather than a hash
 * lookup. traced_pids stays the record of why a process is traced. The
 * agent sets bits through a shared mapping (atomically: the kernel side
 * sets and clears bits of forked and exiting processes meanwhile). */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TRACED_BITS_WORDS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} traced_bits SEC(".maps");

/* The traced_bits word holding tgid's bit. */
static __always_inline __u64 *traced_word(__u32 tgid)
{
	__u32 w = tgid / 64;
	return bpf_map_lookup_elem(&traced_bits, &w);
}

static __always_inline void traced_bit_set(__u32 tgid, bool on)
{
	__u64 *v = traced_word(tgid);
	if (!v)
		return;
	if (on)
		__sync_fetch_and_or(v, 1ull << (tgid % 64));
	else
		__sync_fetch_and_and(v, ~(1ull << (tgid % 64)));
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WEFT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20); /* resized by the loader (--ringbuf-mb) */
} events SEC(".maps");

/* Makes the compiler forget what it knows about var, so a bounds check
 * placed after it stays in the code on the register the verifier sees. */
#define clamp_for_verifier(var, max)                 \
	do {                                         \
		asm volatile("" : "+r"(var));        \
		if ((var) > (max))                   \
			(var) = (max);               \
	} while (0)

/* Wake the agent only when the data waiting crosses RB_WAKEUP_BYTES with
 * this record: a wakeup per event (an irq_work, i.e. a self-IPI, which on a
 * VM is a costly exit, then a context switch) would cost more than the
 * event. Waking on every record above the threshold, as before, raised one
 * IPI per record for as long as the agent took to drain the ring. The agent
 * also polls every 100 ms, so a quiet trickle still arrives. */
#define RB_WAKEUP_BYTES (256 << 10)

static __always_inline __u64 rb_flags(__u32 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	return avail < RB_WAKEUP_BYTES && avail + size >= RB_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static __always_inline void count(__u32 which)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &which);
	if (v)
		*v += 1;
}

/* Set by the loader: weft run with a selection (user/discovery/). */
const volatile __u8 discovery = 0;

static __always_inline bool tgid_traced(__u32 tgid)
{
	if (tgid == self_tgid)
		return false;
	if (trace_all)
		return true;
	__u64 *v = traced_word(tgid);
	return v && (*v >> (tgid % 64)) & 1;
}

/* The user registers the current syscall saved at entry: a BTF pointer,
 * read with plain (CO-RE) loads, no helper call per register. */
static __always_inline struct pt_regs *user_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

#endif
