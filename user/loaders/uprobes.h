/* Uprobes as few BPF links as the kernel allows.
 *
 * A perf-event uprobe is one link per probed instruction, and the kernel
 * closes them one after the other, each waiting for a grace period (about
 * 50 ms here): weft's seven OpenSSL probes of one process took 0.4 s to
 * detach, at every exit of weft and of a traced process. Where the kernel
 * has uprobe_multi links (Linux 6.6+), one link carries all of a program's
 * probes in a file and is detached with one wait. The programs of an object
 * are loaded for one kind or the other (uprobes_prepare), and every probe of
 * them is attached the same way: a tail call between programs needs them to
 * have the same attach type. */
#ifndef WEFT_LOADERS_UPROBES_H
#define WEFT_LOADERS_UPROBES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "link_reaper.h" /* struct probe_link, link_reaper_put_probe */

struct bpf_object;
struct bpf_program;

/* Where a probe goes: an offset in the file, and the value the program's
 * bpf_get_attach_cookie() returns there. */
struct uprobe_spot {
	uint64_t offset;
	uint64_t cookie;
};

/* Does this kernel make uprobe_multi links? Probed once (a link to a file
 * that does not exist: ENOENT where the kernel knows the kind, EINVAL
 * before). WEFT_UPROBE_MULTI=0 says no (tests of the fallback). */
bool uprobe_multi_supported(void);

/* Before obj is loaded: its kprobe-type programs are made uprobe_multi
 * programs where the kernel has them. */
void uprobes_prepare(struct bpf_object *obj);

/* Attaches prog at n spots of path (retprobe: at the returns of the
 * functions they start), for process pid (0: every process). Fills out
 * with the links made (one for a uprobe_multi program, else n) and returns
 * how many, or -errno (nothing left attached). */
int uprobes_attach(struct bpf_program *prog, uint32_t pid, const char *path, const struct uprobe_spot *spots,
		   size_t n, bool retprobe, struct probe_link *out);

#endif
