/* Loader and state owner of bpf/go.bpf.c: per Go process, analyses the
 * executable (offsets, runtime.allgs, function addresses), tells the
 * kernel side about it (go_procs) and attaches the few uprobes Go needs. */
#ifndef WEFT_GO_USER_H
#define WEFT_GO_USER_H

#include <stdbool.h>
#include <stdint.h>

#include "capture.h"

struct go_tracer;

/* Loads the Go uprobe programs, sharing the syscall side's maps. With
 * uprobes false (--uprobes off) no program is loaded or attached: Go
 * processes are still registered (goroutine context from the socket
 * calls alone). */
int go_tracer_load(struct capture_tracer *st, bool uprobes, struct go_tracer **out);

struct go_result;

/* A process's executable was analysed (go_worker.h): if it is a Go program
 * weft can follow, register it and attach its uprobes. 0, or a negative
 * errno (-ENOEXEC: not Go; else logged once with the reason: the process is
 * then traced by the syscall layer alone, its handlers' outgoing calls
 * starting their own traces). */
int go_tracer_apply(struct go_tracer *gt, const struct go_result *r);

/* Process pid served a request (an exchange of it as a server came in):
 * the probes that only matter while it serves are attached now, once. */
void go_tracer_served(struct go_tracer *gt, uint32_t pid);

/* The process exited or exec'd: detach its probes, drop its kernel state. */
void go_tracer_forget(struct go_tracer *gt, uint32_t pid);

/* Drops go_procs entries of processes that are gone. Returns how many. */
int go_tracer_sweep(struct go_tracer *gt);

/* Uprobes attached now (for the log and tests). */
unsigned go_tracer_probe_count(struct go_tracer *gt);

/* NULL-safe. */
void go_tracer_destroy(struct go_tracer *gt);

#endif
