/* weft run with a selection (--config, WEFT_DISCOVERY_*): which processes
 * the kernel traces. Running processes are looked at when weft starts; a
 * new program at its exec, a new listener when it listens (the kernel
 * reports both: bpf/capture sched_process_exec, sock_listen), and a process
 * whose pod was not known yet when its pod appears. Selected processes get
 * their bit in the kernel's traced_bits: the kernel drops every event of
 * the others at its first test. */
#ifndef WEFT_DISCOVERY_DISCOVERY_H
#define WEFT_DISCOVERY_DISCOVERY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct capture_tracer;
struct discovery;

struct discovery_stats {
	uint64_t looked_at; /* decisions made */
	uint64_t selected;  /* decisions to trace */
	uint64_t unselected; /* traced processes that exec'd a program not wanted */
	uint64_t not_kept;  /* processes whose state did not fit the table */
	uint64_t provisional_dropped; /* events of new programs traced until a decision, then not selected */
};

int discovery_create(const struct weft_config *cfg, struct capture_tracer *cap, struct discovery **out);
/* Looks at every running process; returns how many are traced. */
size_t discovery_scan(struct discovery *d);
/* pid exec'd (or is seen first): 1 traced now, 0 not, -1 traced before
 * and not any more (the caller forgets what it knew of it). The kernel
 * traces a new program from its exec until this decision
 * (PROC_PROVISIONAL): what it sent meanwhile is dropped when it is not
 * selected (discovery_drops). exec_path: the path exec was given (the
 * kernel's event; NULL or "" unknown), what a process already gone is
 * judged by (its executable alone: it has no ports, container or pod left
 * to look at). */
int discovery_look(struct discovery *d, uint32_t pid, const char *exec_path);
/* Is an event of pid one to drop: sent while the kernel traced it before a
 * decision not to select it? Counted. */
bool discovery_drops(struct discovery *d, uint32_t pid);
/* pid listens on port (0: unknown). Same result as discovery_look. */
int discovery_on_listen(struct discovery *d, uint32_t pid, uint16_t port);
/* The process exited. */
void discovery_forget(struct discovery *d, uint32_t pid);
/* Housekeeping: processes waiting for their pod are looked at again when
 * the pods known change; entries of processes gone are dropped. */
void discovery_tick(struct discovery *d);
void discovery_get_stats(struct discovery *d, struct discovery_stats *st);
bool discovery_traced(struct discovery *d, uint32_t pid);
void discovery_destroy(struct discovery *d);

#endif
