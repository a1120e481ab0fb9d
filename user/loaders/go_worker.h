/* Go binary analysis off the event thread: one worker thread, a bounded
 * queue of processes to look at, and a cache of analyses keyed by the
 * executable's device, inode, size and mtime, so that a thousand processes
 * of one binary cost one analysis (and a hostile binary stalls at most the
 * worker, never the reading of kernel events).
 *
 * Threads: submit, cancel, collect and stop are called from one thread (the
 * agent's); the worker only analyses and posts results. */
#ifndef WEFT_GO_WORKER_H
#define WEFT_GO_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gobinary.h"

#define GO_WORKER_QUEUE 1024 /* processes waiting or done, not yet collected */
#define GO_WORKER_CACHE 256  /* binaries remembered */

struct go_worker;

struct go_result {
	uint32_t pid;
	int err;		    /* 0, or why the process could not be looked at (-ESRCH: gone) */
	const struct go_binary *bin; /* its executable's analysis; NULL when err */
	uint64_t bias;		    /* load bias of a PIE (bin->pie), from /proc/PID/maps */
	int bias_err;
};

struct go_worker_stats {
	uint64_t submitted, analysed, cache_hits, queue_full, failed;
	uint64_t max_analysis_ns; /* slowest single analysis */
};

/* The analysis function is go_binary_analyse_fd unless a test passes another. */
typedef int (*go_analyse_fn)(int fd, const char *name, struct go_binary *b);

int go_worker_start(go_analyse_fn analyse, struct go_worker **out);
/* Stops the thread (waits for the analysis in progress) and frees all. NULL-safe. */
void go_worker_stop(struct go_worker *w);

/* Queues pid: 0, and a result follows. 1 when the answer is already known
 * (its executable is in the cache and is not Go): no result follows.
 * -EAGAIN when the queue is full (counted), -EINVAL without a worker. */
int go_worker_submit(struct go_worker *w, uint32_t pid);
/* pid exited or exec'd: drop what is queued or done for it; an analysis in
 * progress for it is discarded when done. */
void go_worker_cancel(struct go_worker *w, uint32_t pid);
/* Calls fn for each finished result, in order (never blocks). Returns the count. */
size_t go_worker_collect(struct go_worker *w, void (*fn)(void *ctx, const struct go_result *r), void *ctx);
/* Processes submitted and not yet collected. */
size_t go_worker_pending(struct go_worker *w);
/* Waits until nothing is queued or being analysed, at most timeout_ms:
 * 0, or -ETIMEDOUT. */
int go_worker_wait_idle(struct go_worker *w, int timeout_ms);
void go_worker_get_stats(struct go_worker *w, struct go_worker_stats *s);

#endif
