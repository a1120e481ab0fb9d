/* How weft configures each BPF object between open and load: read-only
 * data, map sizes, and which variant of a program this kernel gets (feature
 * fallbacks). The loaders (sockets.c, propagation.c, go.c) and the program
 * check of `weft doctor` (which loads every program on its own) call the
 * same functions, so the check verifies exactly what `weft attach` loads. */
#ifndef WEFT_BPF_CONFIG_H
#define WEFT_BPF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "sockets_user.h"

struct sockets_bpf;
struct propagation_bpf;
struct go_bpf;

/* 0 or -errno (logged). */
int sockets_bpf_configure(struct sockets_bpf *skel, const struct sockets_opts *o);
int propagation_bpf_configure(struct propagation_bpf *skel, bool trace_all, uint32_t self_tgid);
int go_bpf_configure(struct go_bpf *skel, bool trace_all, uint32_t self_tgid);

#endif
