/* Go processes: what bpf/context/goroutine.bpf.h and bpf/go.bpf.c need to follow
 * goroutines. Per process: struct offsets (DWARF, else weft's table), the
 * address of runtime.allgs (to find an ancestor goroutine weft never met),
 * one uprobe on net/http.(*persistConn).roundTrip and, for Go < 1.21 only,
 * one on the CALL runtime.runqput in runtime.newproc.func1 (else on every
 * RET of runtime.newproc1; never uretprobes: Go moves stacks). */
#include <elf.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/go.h"
#include "go.skel.h"
#include "go_offsets.h"
#include "go_user.h"
#include "goasm.h"
#include "goelf.h"
#include "bpf_config.h"
#include "log.h"

#define ROUNDTRIP_FUNC "net/http.(*persistConn).roundTrip"
#define NEWPROC1_FUNC "runtime.newproc1"

struct go_proc {
	uint32_t pid;
	struct bpf_link **links;
	size_t n_links;
	struct go_proc *next;
};

struct go_tracer {
	struct go_bpf *skel;
	struct go_proc *procs;
	unsigned probes;
};

int go_tracer_load(struct capture_tracer *st, struct go_tracer **out)
{
	int err;
	struct go_tracer *gt = calloc(1, sizeof(*gt));
	if (!gt)
		return -ENOMEM;
	gt->skel = go_bpf__open();
	if (!gt->skel) {
		err = -errno;
		log_error("go: cannot open the BPF object: %s", strerror(-err));
		goto fail;
	}
	/* Same process filter, counters and context maps as the syscall side. */
	if ((err = capture_share_maps(st, gt->skel->obj, "go")))
		goto fail;
	if ((err = go_bpf_configure(gt->skel, capture_trace_all(st), getpid())))
		goto fail;
	err = go_bpf__load(gt->skel);
	if (err) {
		/* Optional: Go servers still get spans, from the syscall layer. */
		bpf_config_explain_refusal("go", err, false,
					   "weft goes on without its Go uprobes: Go processes still get spans, but "
					   "net/http client calls and goroutines are not parented to their requests");
		go_tracer_destroy(gt);
		*out = NULL;
		return 0;
	}
	*out = gt;
	return 0;
fail:
	go_tracer_destroy(gt);
	return err;
}

static struct go_proc *find_proc(struct go_tracer *gt, uint32_t pid, struct go_proc ***prevp)
{
	struct go_proc **pp = &gt->procs;
	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			if (prevp)
				*prevp = pp;
			return *pp;
		}
	}
	return NULL;
}

static int add_link(struct go_proc *p, struct bpf_link *l)
{
	struct bpf_link **n = realloc(p->links, (p->n_links + 1) * sizeof(*n));
	if (!n) {
		bpf_link__destroy(l);
		return -ENOMEM;
	}
	p->links = n;
	p->links[p->n_links++] = l;
	return 0;
}

static int attach_at(struct go_tracer *gt, struct go_proc *p, struct bpf_program *prog, const char *exe,
		     uint64_t offset, const char *what)
{
	struct bpf_link *l = bpf_program__attach_uprobe(prog, false, p->pid, exe, offset);
	if (!l) {
		int err = -errno;
		log_warn("go: pid %u: cannot attach a uprobe to %s (file offset 0x%" PRIx64 "): %s", p->pid, what,
			 offset, strerror(-err));
		return err;
	}
	gt->probes++;
	return add_link(p, l);
}

/* Where the executable's first segment is mapped minus where it was linked
 * (non-zero for PIE), from /proc/PID/maps. */
static int load_bias(uint32_t pid, const struct go_elf *ge, uint64_t *bias)
{
	*bias = 0;
	if (ge->type != ET_DYN)
		return 0;
	char path[64], line[512];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	if (stat(path, &st))
		return -errno;
	uint64_t first_vaddr = UINT64_MAX;
	for (size_t i = 0; i < ge->n_loads; i++)
		if (ge->loads[i].offset == 0 && ge->loads[i].vaddr < first_vaddr)
			first_vaddr = ge->loads[i].vaddr;
	if (first_vaddr == UINT64_MAX)
		return -ENOEXEC;
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int err = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off, ino;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &off, &maj, &min, &ino) != 7)
			continue;
		if (ino == (unsigned long long)st.st_ino && off == 0) {
			*bias = start - (first_vaddr & ~0xfffull);
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

static int16_t off16(const struct go_offsets *o, enum go_field f)
{
	const struct go_offset *x = &o->f[f];
	if (x->source == GO_OFF_MISSING || x->source == GO_OFF_ABSENT || x->value < 0 || x->value > 0x7fff)
		return -1;
	return (int16_t)x->value;
}

int go_tracer_add(struct go_tracer *gt, uint32_t pid)
{
	char exe[64], err_msg[512];
	struct go_elf *ge = NULL;
	struct go_offsets o;
	struct go_func fn;
	struct go_proc_info info = {};
	uint64_t *rets = NULL;
	size_t n_rets = 0;
	int err;

	if (!gt)
		return -EINVAL;
	go_tracer_forget(gt, pid); /* an exec'd process starts afresh */
	struct go_proc *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->next = gt->procs;
	gt->procs = p;

	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	err = go_elf_open(exe, &ge, err_msg, sizeof(err_msg));
	if (err) {
		log_warn("go: pid %u: %s", pid, err_msg);
		goto out;
	}
	if (!ge->is_go) {
		err = -ENOEXEC;
		goto out;
	}
	if (strcmp(go_elf_goarch(ge), "amd64") != 0) {
		log_warn("go: pid %u: %s binaries: goroutine tracking is implemented for amd64 only; its "
			 "handlers' outgoing calls start their own traces", pid, go_elf_goarch(ge));
		err = -ENOTSUP;
		goto out;
	}
	go_offsets_resolve(ge, &o);
	if (o.warning[0])
		log_warn("go: pid %u (%s): %s", pid, ge->go_version ? ge->go_version : "Go version unknown",
			 o.warning);
	info.g_goid = off16(&o, GO_FIELD_G_GOID);
	info.g_parent_goid = off16(&o, GO_FIELD_G_PARENT_GOID);
	info.g_m = off16(&o, GO_FIELD_G_M);
	info.m_curg = off16(&o, GO_FIELD_M_CURG);
	info.pc_conn = off16(&o, GO_FIELD_PERSIST_CONN_CONN);
	info.pc_tls_state = off16(&o, GO_FIELD_PERSIST_CONN_TLS_STATE);
	info.tcpconn_conn = off16(&o, GO_FIELD_TCP_CONN_CONN);
	info.conn_fd = off16(&o, GO_FIELD_NET_CONN_FD);
	info.netfd_pfd = off16(&o, GO_FIELD_NETFD_PFD);
	info.pfd_sysfd = off16(&o, GO_FIELD_POLL_FD_SYSFD);
	if (info.g_goid < 0) {
		log_warn("go: pid %u: offset of runtime.g.goid unknown: goroutines cannot be followed", pid);
		err = -ENODATA;
		goto out;
	}

	uint64_t bias = 0;
	err = load_bias(pid, ge, &bias);
	if (err)
		log_warn("go: pid %u: cannot find where the executable is mapped: %s", pid, strerror(-err));

	uint64_t allgs = 0;
	enum go_sym_source allgs_src;
	if (go_elf_find_allgs(ge, &allgs, &allgs_src) == 0 && !err)
		info.allgs = allgs + bias;
	else
		log_warn("go: pid %u: runtime.allgs not found (%s): a request's context reaches goroutines "
			 "its handler starts, not goroutines those start", pid, ge->err);

	const char *exe_path = exe;
	if (info.pc_conn >= 0 && info.tcpconn_conn >= 0 && info.conn_fd >= 0 && info.netfd_pfd >= 0 &&
	    info.pfd_sysfd >= 0 && go_elf_find_func(ge, ROUNDTRIP_FUNC, &fn) == 0) {
		uint64_t at;
		if (go_func_entry_probe_offset(ge, &fn, &at) < 0)
			at = fn.offset;
		if (attach_at(gt, p, gt->skel->progs.probe_go_persistconn_roundtrip, exe_path, at,
			      ROUNDTRIP_FUNC) == 0)
			info.flags |= GO_PROC_ROUNDTRIP;
	} else {
		log_info("go: pid %u: no net/http client (or its offsets) in this program", pid);
	}

	const char *ancestry = info.g_parent_goid >= 0 ? (info.allgs ? "g.parentGoid and runtime.allgs"
								    : "g.parentGoid")
						       : "nothing";
	if (info.g_parent_goid < 0) {
		/* Go < 1.21: no g.parentGoid, so goroutine creation is watched
		 * before the new goroutine can run anywhere: where newproc's
		 * closure queues it (one emulated CALL), else at newproc1's
		 * returns (each single-stepped: a second trap per goroutine). */
		uint64_t call_at;
		int crc;
		if (info.g_m < 0 || info.m_curg < 0) {
			log_warn("go: pid %u: offsets of runtime.g.m / runtime.m.curg unknown: goroutines a "
				 "handler starts do not inherit its context", pid);
		} else if ((crc = go_newproc_runqput_call(ge, &call_at)) == 0 &&
			   attach_at(gt, p, gt->skel->progs.probe_go_newproc_runqput, exe_path, call_at,
				     "runtime.newproc.func1 (CALL runtime.runqput)") == 0) {
			ancestry = "runtime.newproc.func1's CALL runtime.runqput";
		} else if (go_elf_find_func(ge, NEWPROC1_FUNC, &fn) != 0 ||
			   go_func_ret_offsets(ge, &fn, &rets, &n_rets) < 0 || n_rets == 0) {
			log_warn("go: pid %u: cannot find the returns of %s (%s): goroutines a handler starts "
				 "do not inherit its context", pid, NEWPROC1_FUNC, ge->err);
		} else {
			if (crc)
				log_info("go: pid %u: %s: goroutine creation watched at the %zu RETs of %s instead "
					 "(two traps each)", pid, ge->err, n_rets, NEWPROC1_FUNC);
			for (size_t i = 0; i < n_rets; i++)
				attach_at(gt, p, gt->skel->progs.probe_go_newproc1_ret, exe_path, rets[i],
					  NEWPROC1_FUNC " (RET)");
			ancestry = "runtime.newproc1's RETs";
		}
	}

	err = bpf_map__update_elem(gt->skel->maps.go_procs, &pid, sizeof(pid), &info, sizeof(info), BPF_ANY);
	if (err) {
		log_warn("go: pid %u: cannot register the process: %s", pid, strerror(-err));
		goto out;
	}
	log_info("go: pid %u: %s, %zu uprobe%s (%s), goroutine ancestry from %s", pid,
		 ge->go_version ? ge->go_version : "Go version unknown", p->n_links, p->n_links == 1 ? "" : "s",
		 info.flags & GO_PROC_ROUNDTRIP ? "net/http client" : "no net/http client", ancestry);
out:
	free(rets);
	go_elf_close(ge);
	if (err)
		go_tracer_forget(gt, pid);
	return err;
}

/* Deletes every key of map whose first 4 bytes are tgid (collected first:
 * deleting while walking a hash map restarts the walk). */
static void delete_by_tgid(struct bpf_map *map, uint32_t tgid)
{
	int fd = bpf_map__fd(map);
	size_t ks = bpf_map__key_size(map), n = 0, cap = 0;
	uint8_t key[32], *found = NULL;
	if (ks > sizeof(key))
		return;
	void *prev = NULL;
	while (bpf_map_get_next_key(fd, prev, key) == 0) {
		if (memcmp(key, &tgid, sizeof(tgid)) == 0) {
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 64;
				uint8_t *f = realloc(found, nc * ks);
				if (!f)
					break;
				found = f;
				cap = nc;
			}
			memcpy(found + n * ks, key, ks);
			n++;
		}
		prev = key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, found + i * ks);
	free(found);
}

void go_tracer_forget(struct go_tracer *gt, uint32_t pid)
{
	struct go_proc **pp;
	if (!gt)
		return;
	struct go_proc *p = find_proc(gt, pid, &pp);
	if (!p)
		return;
	*pp = p->next;
	for (size_t i = 0; i < p->n_links; i++)
		bpf_link__destroy(p->links[i]);
	gt->probes -= p->n_links;
	free(p->links);
	free(p);
	bpf_map__delete_elem(gt->skel->maps.go_procs, &pid, sizeof(pid), 0);
	delete_by_tgid(gt->skel->maps.go_serving, pid);
	delete_by_tgid(gt->skel->maps.go_inherited, pid);
	delete_by_tgid(gt->skel->maps.go_fd_ctx, pid);
}

unsigned go_tracer_probe_count(struct go_tracer *gt)
{
	return gt ? gt->probes : 0;
}

void go_tracer_destroy(struct go_tracer *gt)
{
	if (!gt)
		return;
	while (gt->procs)
		go_tracer_forget(gt, gt->procs->pid);
	go_bpf__destroy(gt->skel);
	free(gt);
}
