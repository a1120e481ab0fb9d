/* Per-process facts for span resources, read from /proc once and cached
 * until the process exits. */
#ifndef WEFT_PROC_H
#define WEFT_PROC_H

#include <stdbool.h>
#include <stdint.h>

#include "span.h"

/* Internal resource attribute: true when service.name came from the
 * process's own OTEL_SERVICE_NAME. Exporters never send weft.* keys. */
#define WEFT_ATTR_SERVICE_FROM_PROCESS "weft.service.name.from_process"

/* Counted reference to pid's resource (never NULL unless out of memory)
 * for a span that started at since_ns (unix epoch; 0: not checked). A
 * process not cached yet that has exited, or whose PID another process has
 * taken since (started after since_ns), gets a resource with its PID,
 * service.name "unknown_service" and, if its zombie is still there, its
 * command name ("unknown_service:NAME", process.executable.name), counted
 * by proc_gone_count(). */
struct resource *proc_resource(uint32_t pid, uint64_t since_ns);
uint64_t proc_gone_count(void);
/* The process exited: drop the cache entry (spans keep their references). */
void proc_forget(uint32_t pid);
/* pid exec'd the program at path (from the kernel's exec event) and was
 * gone before weft could read its /proc: its spans, until proc_forget(pid)
 * (its exit), name that program's file (process.executable.name) rather
 * than only its PID. */
void proc_note_program(uint32_t pid, const char *path);
void proc_cache_clear(void);

/* True the first time it is called for pid (and again after proc_forget,
 * e.g. on exec): the caller then has the process's executable looked at. */
bool proc_vet_first(uint32_t pid);

/* Up to max pids of the cache whose process no longer exists (their exit
 * event was lost, or weft run sends none): the caller forgets them. */
size_t proc_gone(uint32_t *out, size_t max);

/* Value of NAME in /proc/PID/environ into out; 0, or -ENOENT / -errno. */
int proc_environ_get(uint32_t pid, const char *name, char *out, size_t outlen);
/* True if pid is still the process whose facts are cached (not gone, and
 * its PID not reused by another: same start time). */
bool proc_same_process(uint32_t pid);
/* Start time of pid (clock ticks since boot), 0 if unreadable. */
uint64_t proc_read_start_time(uint32_t pid);
/* True if the process exists (and is not a zombie we could not read). */
int proc_exists(uint32_t pid);

#endif
