// SPDX-License-Identifier: BSD-3-Clause
/* Uprobes as few BPF links as the kernel allows (uprobes.h says why). */
#include "uprobes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "link_reaper.h"
#include "log.h"

/* From Linux 6.6's uapi (the build's headers may be older). */
#define WEFT_BPF_TRACE_UPROBE_MULTI 48
#define WEFT_BPF_F_UPROBE_MULTI_RETURN 1U

/* BPF_LINK_CREATE's attributes for a uprobe_multi link, laid out as in
 * union bpf_attr (the kernel wants every byte past them zero). */
union uprobe_multi_attr {
	struct {
		uint32_t prog_fd;
		uint32_t target_fd;
		uint32_t attach_type;
		uint32_t flags;
		uint64_t path;
		uint64_t offsets;
		uint64_t ref_ctr_offsets;
		uint64_t cookies;
		uint32_t cnt;
		uint32_t multi_flags;
		uint32_t pid;
	} link_create;
	uint8_t bytes[64];
};

_Static_assert(__builtin_offsetof(union uprobe_multi_attr, link_create.path) == 16, "bpf_attr layout");
_Static_assert(__builtin_offsetof(union uprobe_multi_attr, link_create.pid) == 56, "bpf_attr layout");

static int multi_link_create(int prog_fd, const char *path, const uint64_t *offsets, const uint64_t *cookies,
			     uint32_t cnt, bool retprobe, uint32_t pid)
{
	union uprobe_multi_attr a;
	memset(&a, 0, sizeof(a));
	a.link_create.prog_fd = prog_fd;
	a.link_create.attach_type = WEFT_BPF_TRACE_UPROBE_MULTI;
	a.link_create.path = (uint64_t)(uintptr_t)path;
	a.link_create.offsets = (uint64_t)(uintptr_t)offsets;
	a.link_create.cookies = (uint64_t)(uintptr_t)cookies;
	a.link_create.cnt = cnt;
	a.link_create.multi_flags = retprobe ? WEFT_BPF_F_UPROBE_MULTI_RETURN : 0;
	a.link_create.pid = pid;
	int fd = (int)syscall(__NR_bpf, BPF_LINK_CREATE, &a, sizeof(a));
	return fd < 0 ? -errno : fd;
}

bool uprobe_multi_supported(void)
{
	static int has = -1;
	if (has >= 0)
		return has;
	has = 0;
	const char *force = getenv("WEFT_UPROBE_MULTI");
	if (force && strcmp(force, "0") == 0)
		return has;
	/* r0 = 0; exit */
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, po, .expected_attach_type = WEFT_BPF_TRACE_UPROBE_MULTI);
	int prog = bpf_prog_load(BPF_PROG_TYPE_KPROBE, "weft_um_probe", "GPL", insns, 2, &po);
	if (prog < 0)
		return has;
	uint64_t offset = 0;
	int fd = multi_link_create(prog, "/nonexistent/weft-uprobe-multi-probe", &offset, NULL, 1, false, 0);
	has = fd == -ENOENT;
	if (fd >= 0)
		close(fd);
	close(prog);
	log_debug("uprobes: %s", has ? "uprobe_multi links" : "one perf-event link per probe (no uprobe_multi)");
	return has;
}

void uprobes_prepare(struct bpf_object *obj)
{
	if (!uprobe_multi_supported())
		return;
	struct bpf_program *p;
	bpf_object__for_each_program(p, obj)
	{
		if (bpf_program__type(p) == BPF_PROG_TYPE_KPROBE)
			bpf_program__set_expected_attach_type(p, WEFT_BPF_TRACE_UPROBE_MULTI);
	}
}

int uprobes_attach(struct bpf_program *prog, uint32_t pid, const char *path, const struct uprobe_spot *spots,
		   size_t n, bool retprobe, struct probe_link *out)
{
	if (!n)
		return 0;
	if ((int)bpf_program__expected_attach_type(prog) == WEFT_BPF_TRACE_UPROBE_MULTI) {
		uint64_t *offsets = calloc(2 * n, sizeof(*offsets));
		if (!offsets)
			return -ENOMEM;
		uint64_t *cookies = offsets + n;
		for (size_t i = 0; i < n; i++) {
			offsets[i] = spots[i].offset;
			cookies[i] = spots[i].cookie;
		}
		int fd = multi_link_create(bpf_program__fd(prog), path, offsets, cookies, (uint32_t)n, retprobe, pid);
		free(offsets);
		if (fd < 0)
			return fd;
		out[0] = (struct probe_link){ .link = NULL, .fd = fd };
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .bpf_cookie = spots[i].cookie, .retprobe = retprobe);
		struct bpf_link *l = bpf_program__attach_uprobe_opts(prog, pid ? (int)pid : -1, path, spots[i].offset, &uo);
		if (!l) {
			int err = -errno;
			for (size_t k = 0; k < i; k++)
				link_reaper_put_probe(out[k]);
			return err;
		}
		out[i] = (struct probe_link){ .link = l, .fd = -1 };
	}
	return (int)n;
}
