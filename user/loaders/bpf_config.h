/* How weft configures each BPF object between open and load: read-only
 * data, map sizes, and which variant of a program this kernel gets (feature
 * fallbacks). The loaders (capture.c, propagation.c, go.c) and the program
 * check of `weft doctor` (which loads every program on its own) call the
 * same functions, so the check verifies exactly what `weft attach` loads. */
#ifndef WEFT_BPF_CONFIG_H
#define WEFT_BPF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "capture.h"

struct capture_bpf;
struct propagation_bpf;
struct go_bpf;
struct tls_bpf;

/* Can sockops programs ask which process runs (bpf_get_current_pid_tgid;
 * not on 6.1)? If not, weft_sockops_cpu learns it from sys_enter_connect.
 * WEFT_SOCKOPS_FALLBACK=1 in the environment forces the fallback (tests). */
bool bpf_config_sockops_has_pid(void);
/* Which capture front this kernel gets: the socket-layer tracepoints
 * where the kernel has them (6.3+), else the syscall tracepoints.
 * WEFT_CAPTURE_FRONT=syscall forces the fallback (tests, comparisons).
 * *why (if why): one line on the choice. */
enum capture_front { CAPTURE_FRONT_AUTO = 0, CAPTURE_FRONT_SYSCALL, CAPTURE_FRONT_SOCKET };
enum capture_front bpf_config_capture_front(const char **why);
const char *bpf_config_capture_front_name(enum capture_front f);
/* The sockops program propagation_bpf_configure left on. */
struct bpf_program *propagation_bpf_sockops(struct propagation_bpf *skel);

/* 0 or -errno (logged). */
int capture_bpf_configure(struct capture_bpf *skel, const struct capture_opts *o);
/* tcp: the TCP option code of --propagation headers,tcp (kept only where
 * sockops can tell the process). */
int propagation_bpf_configure(struct propagation_bpf *skel, bool trace_all, uint32_t self_tgid, bool tcp);
int go_bpf_configure(struct go_bpf *skel, bool trace_all, uint32_t self_tgid);
int tls_bpf_configure(struct tls_bpf *skel, const struct capture_opts *o);

/* After object's load failed with err: which program the kernel refused,
 * the verifier's reason and count, and what weft does without it (logged
 * as an error if fatal, else as a warning). */
void bpf_config_explain_refusal(const char *object, int err, bool fatal, const char *without);

#endif
