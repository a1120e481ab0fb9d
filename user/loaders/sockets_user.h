/* Loader and state owner of bpf/sockets.bpf.c: syscall tracepoints,
 * connection table, in-flight exchanges, the event ring buffer. */
#ifndef WEFT_SOCKETS_USER_H
#define WEFT_SOCKETS_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "sockets.h"

struct sockets_opts {
	bool trace_all;         /* weft run */
	uint32_t self_tgid;     /* never traced */
	uint32_t req_capture;   /* bytes of each request kept */
	uint32_t resp_capture;  /* bytes of each response kept */
	uint32_t ringbuf_bytes; /* power of two, >= page size */
};

struct sockets_tracer;

/* Opens, configures and loads the programs (not attached yet). */
int sockets_load(const struct sockets_opts *o, struct sockets_tracer **out);
int sockets_attach(struct sockets_tracer *t);
/* Selects a process (all its threads, and processes it forks). */
int sockets_trace_pid(struct sockets_tracer *t, uint32_t pid);
typedef void (*txn_cb)(void *ctx, const struct txn_event *ev, size_t len);
/* The process exited: delete its connections and exchanges, handing the
 * answered ones to cb first. */
void sockets_forget_process(struct sockets_tracer *t, uint32_t tgid, txn_cb cb, void *ctx);
int sockets_events_fd(struct sockets_tracer *t);
/* Sums the per-CPU counters into out[WEFT_CNT_MAX]. */
int sockets_read_counters(struct sockets_tracer *t, uint64_t *out);
/* Exchanges whose response went quiet for idle_*_ns (no end seen and the
 * connection stays open) are handed to cb and deleted. */
void sockets_sweep_stale(struct sockets_tracer *t, uint64_t now_mono, uint64_t idle_http_ns, uint64_t idle_db_ns,
			 txn_cb cb, void *ctx);
/* fd of the map of that name (to share it with another skeleton), or -1. */
int sockets_map_fd(struct sockets_tracer *t, const char *name);
/* Before another skeleton loads: its maps named like ours become ours (one
 * process filter, one set of counters and context maps). 0 or -errno,
 * logged with who (e.g. "propagation"). */
struct bpf_object;
int sockets_share_maps(struct sockets_tracer *t, struct bpf_object *obj, const char *who);
bool sockets_trace_all(struct sockets_tracer *t);
/* Kernel-side facts about a process (PROC_* of bpf/context.bpf.h). */
int sockets_set_proc_flags(struct sockets_tracer *t, uint32_t pid, uint32_t flags);
/* Detaches and unloads everything. NULL-safe. */
void sockets_destroy(struct sockets_tracer *t);

#endif
