/* Loader and state owner of bpf/uprobes/tls.bpf.c: OpenSSL's plaintext
 * (docs/TLS.md). Per traced process, the entries of SSL_read(_ex) and
 * SSL_write(_ex) in the libssl it maps or would load; with weft run, once
 * per library on the host, for every process. */
#ifndef WEFT_LOADERS_TLS_H
#define WEFT_LOADERS_TLS_H

#include <stdint.h>

#include "capture.h"

struct tls_tracer;

/* Loads the programs, sharing the capture object's maps and configured
 * like it (o). Optional: a refusal is explained and *out is NULL. */
int tls_tracer_load(struct capture_tracer *ct, const struct capture_opts *o, struct tls_tracer **out);
/* Probes pid's libssl, unless already probed (a library loaded since is
 * probed too). 0, -ENOENT (no libssl: nothing to do), or -errno (logged). */
int tls_tracer_add(struct tls_tracer *tt, uint32_t pid);
/* Go process pid runs the executable b analysed (user/golang/gobinary.h):
 * probes its crypto/tls.(*Conn).Write and Read (entry and RETs), replacing
 * any probes of an earlier executable. 0, -ENOENT (no crypto/tls or its
 * offsets: logged), or -errno. */
struct go_binary;
int tls_tracer_add_go(struct tls_tracer *tt, uint32_t pid, const struct go_binary *b);
/* pid exec'd: a library the new program loads is probed too. */
void tls_tracer_exec(struct tls_tracer *tt, uint32_t pid);
/* Probes every traced process not probed yet (processes forked by traced
 * ones): the kernel's traced_pids table. */
void tls_tracer_sync(struct tls_tracer *tt, struct capture_tracer *ct);
/* The process exited: its probes and kernel entries go. */
void tls_tracer_forget(struct tls_tracer *tt, uint32_t pid);
unsigned tls_tracer_probe_count(struct tls_tracer *tt);
/* NULL-safe. */
void tls_tracer_destroy(struct tls_tracer *tt);

#endif
