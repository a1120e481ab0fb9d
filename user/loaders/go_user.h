/* Loader and state owner of bpf/go.bpf.c: per Go process, analyses the
 * executable (offsets, runtime.allgs, function addresses), tells the
 * kernel side about it (go_procs) and attaches the few uprobes Go needs. */
#ifndef WEFT_GO_USER_H
#define WEFT_GO_USER_H

#include <stdint.h>

#include "capture.h"

struct go_tracer;

/* Loads the Go uprobe programs, sharing the syscall side's maps. */
int go_tracer_load(struct capture_tracer *st, struct go_tracer **out);

/* pid runs a Go program: analyse it and attach. 0, or a negative errno
 * (logged once with the reason; the process is then traced by the syscall
 * layer alone, its handlers' outgoing calls starting their own traces). */
int go_tracer_add(struct go_tracer *gt, uint32_t pid);

/* The process exited or exec'd: detach its probes, drop its kernel state. */
void go_tracer_forget(struct go_tracer *gt, uint32_t pid);

/* Uprobes attached now (for the log and tests). */
unsigned go_tracer_probe_count(struct go_tracer *gt);

/* NULL-safe. */
void go_tracer_destroy(struct go_tracer *gt);

#endif
