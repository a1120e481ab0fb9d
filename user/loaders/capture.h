/* Loader and state owner of bpf/capture/capture.bpf.c: syscall tracepoints,
 * connection table, in-flight exchanges, the event ring buffer. */
#ifndef WEFT_LOADERS_CAPTURE_H
#define WEFT_LOADERS_CAPTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "abi/weft.h"

struct capture_opts {
	bool trace_all;         /* weft run */
	bool discovery;         /* weft run with a selection: exec and listen events of every process */
	uint32_t self_tgid;     /* never traced */
	uint32_t req_capture;   /* bytes of each request kept */
	uint32_t resp_capture;  /* bytes of each response kept */
	uint32_t ringbuf_bytes; /* power of two, >= page size */
	bool drop_sampled_out;  /* the kernel drops sampled-out exchanges (no metrics, no --keep-errors) */
};

struct capture_tracer;

/* Opens, configures and loads the programs (not attached yet). */
int capture_load(const struct capture_opts *o, struct capture_tracer **out);
int capture_attach(struct capture_tracer *t);
/* Selects a process (all its threads, and processes it forks). */
int capture_trace_pid(struct capture_tracer *t, uint32_t pid);
/* Unselects a process the agent selected (a new program it does not want). */
void capture_untrace_pid(struct capture_tracer *t, uint32_t pid);
/* Is pid's bit set in the kernel's process filter? */
bool capture_pid_traced(struct capture_tracer *t, uint32_t pid);
typedef void (*txn_cb)(void *ctx, const struct txn_event *ev, size_t len);
/* The process exited: delete its connections and exchanges, handing the
 * answered ones to cb first. */
void capture_forget_process(struct capture_tracer *t, uint32_t tgid, txn_cb cb, void *ctx);
/* Every exchange whose response has begun goes to cb and is deleted (at
 * exit: what was answered is not lost with the kernel's table). */
void capture_deliver_answered(struct capture_tracer *t, txn_cb cb, void *ctx);
int capture_events_fd(struct capture_tracer *t);
/* Sums the per-CPU counters into out[WEFT_CNT_MAX]. */
int capture_read_counters(struct capture_tracer *t, uint64_t *out);
/* Exchanges whose response went quiet for their protocol's idle_ns (no
 * end seen and the connection stays open) are handed to cb and deleted. */
void capture_sweep_stale(struct capture_tracer *t, uint64_t now_mono, txn_cb cb, void *ctx);
/* fd of the map of that name (to share it with another skeleton), or -1. */
int capture_map_fd(struct capture_tracer *t, const char *name);
/* Before another skeleton loads: its maps named like ours become ours (one
 * process filter, one set of counters and context maps), except program
 * tables (one program type each). 0 or -errno,
 * logged with who (e.g. "propagation"). */
struct bpf_object;
int capture_share_maps(struct capture_tracer *t, struct bpf_object *obj, const char *who);
/* The stream protocols' forwarding programs (<id>_forward in
 * bpf/protocols/<id>.bpf.h) of a loaded object into its table map_fd,
 * which its programs tail-call. 0 or -errno, logged. */
int capture_set_stream_programs(struct bpf_object *obj, int map_fd);
bool capture_trace_all(struct capture_tracer *t);
/* Kernel-side facts about a process (PROC_* of bpf/context/thread.bpf.h). */
int capture_set_proc_flags(struct capture_tracer *t, uint32_t pid, uint32_t flags);
/* pid is (on) or is no longer a Go process with a go_procs entry: set
 * before the entry is written, cleared after it is deleted
 * (bpf/context/goroutine.bpf.h go_bits). */
void capture_mark_go(struct capture_tracer *t, uint32_t pid, bool on);
/* The process's PROC_* flags: 0, or -ENOENT when the kernel has none. */
int capture_get_proc_flags(struct capture_tracer *t, uint32_t pid, uint32_t *flags);
void capture_clear_proc_flags(struct capture_tracer *t, uint32_t pid);
/* Detaches and unloads everything. NULL-safe. */
void capture_destroy(struct capture_tracer *t);

#endif
