/* Go processes: what bpf/context/goroutine.bpf.h and bpf/go.bpf.c need to follow
 * goroutines. Per process: struct offsets (DWARF, else weft's table), the
 * address of runtime.allgs (to find an ancestor goroutine weft never met),
 * one uprobe on net/http.(*persistConn).roundTrip and, for Go < 1.21 only,
 * one on the CALL runtime.runqput in runtime.newproc.func1 (else on every
 * RET of runtime.newproc1; never uretprobes: Go moves stacks). The binary
 * is analysed by go_worker.c, off the event thread; this file applies the
 * analysis to each process. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "abi/go.h"
#include "go.skel.h"
#include "go_user.h"
#include "go_worker.h"
#include "map_sweep.h"
#include "gobinary.h"
#include "bpf_config.h"
#include "link_reaper.h"
#include "log.h"

#define ROUNDTRIP_FUNC "net/http.(*persistConn).roundTrip"
#define NEWPROC1_FUNC "runtime.newproc1"

struct go_proc {
	uint32_t pid;
	struct bpf_link **links;
	size_t n_links;
	/* grpc-go's NewStream RETs, probed once the process serves a request
	 * (before, no call can have a parent: a pure client pays nothing). */
	uint64_t *grpc_rets;
	size_t n_grpc_rets;
	struct go_proc *next;
};

struct go_tracer {
	struct go_bpf *skel;
	struct capture_tracer *cap;
	struct go_proc *procs;
	unsigned probes;
	unsigned grpc_pending; /* processes whose grpc_rets wait for a request */
	bool uprobes;          /* false: --uprobes off, nothing is attached */
};

int go_tracer_load(struct capture_tracer *st, bool uprobes, struct go_tracer **out)
{
	int err;
	struct go_tracer *gt = calloc(1, sizeof(*gt));
	if (!gt)
		return -ENOMEM;
	gt->cap = st;
	gt->uprobes = uprobes;
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
	if (!uprobes) {
		/* The object is kept for its maps (go_procs is the capture
		 * front's): none of its programs is needed. */
		struct bpf_program *prog;
		bpf_object__for_each_program(prog, gt->skel->obj)
			bpf_program__set_autoload(prog, false);
	}
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
		if (err == -ESRCH) /* exited meanwhile */
			log_debug("go: pid %u: gone before its uprobe on %s was attached", p->pid, what);
		else
			log_warn("go: pid %u: cannot attach a uprobe to %s (file offset 0x%" PRIx64 "): %s", p->pid,
				 what, offset, strerror(-err));
		return err;
	}
	gt->probes++;
	return add_link(p, l);
}

static void attach_newproc(struct go_tracer *gt, struct go_proc *p, const struct go_binary *b,
			   const char *exe, const char **ancestry)
{
	if (!b->watch_newproc) {
		log_warn("go: pid %u: offsets of runtime.g.m / runtime.m.curg unknown: goroutines a "
			 "handler starts do not inherit its context", p->pid);
		return;
	}
	if (b->call_rc == 0 && attach_at(gt, p, gt->skel->progs.probe_go_newproc_runqput, exe, b->call_at,
					 "runtime.newproc.func1 (CALL runtime.runqput)") == 0) {
		*ancestry = "runtime.newproc.func1's CALL runtime.runqput";
		return;
	}
	if (b->n_rets == 0) {
		log_warn("go: pid %u: cannot find the returns of %s (%s): goroutines a handler starts "
			 "do not inherit its context", p->pid, NEWPROC1_FUNC, b->rets_why);
		return;
	}
	if (b->call_rc)
		log_info("go: pid %u: %s: goroutine creation watched at the %zu RETs of %s instead "
			 "(two traps each)", p->pid, b->call_why, b->n_rets, NEWPROC1_FUNC);
	for (size_t i = 0; i < b->n_rets; i++)
		attach_at(gt, p, gt->skel->progs.probe_go_newproc1_ret, exe, b->rets[i], NEWPROC1_FUNC " (RET)");
	*ancestry = "runtime.newproc1's RETs";
}

int go_tracer_apply(struct go_tracer *gt, const struct go_result *r)
{
	const struct go_binary *b = r->bin;
	char exe[64];
	uint32_t pid = r->pid;
	int err;

	if (!gt)
		return -EINVAL;
	go_tracer_forget(gt, pid); /* an exec'd process starts afresh */
	if (r->err)
		return r->err;
	if (!b->is_go)
		return -ENOEXEC;
	if (b->err) {
		log_warn("go: pid %u: %s", pid, b->why);
		return b->err;
	}
	struct go_proc *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->next = gt->procs;
	gt->procs = p;

	struct go_proc_info info = b->info;
	if (b->warning[0])
		log_warn("go: pid %u (%s): %s", pid, b->version[0] ? b->version : "Go version unknown", b->warning);
	if (r->bias_err)
		log_warn("go: pid %u: cannot find where the executable is mapped: %s", pid, strerror(-r->bias_err));
	if (info.allgs && !r->bias_err)
		info.allgs += r->bias;
	else
		log_warn("go: pid %u: runtime.allgs not found (%s): a request's context reaches goroutines "
			 "its handler starts, not goroutines those start", pid,
			 info.allgs ? "the executable's load address is unknown" : b->allgs_why);
	if (r->bias_err)
		info.allgs = 0;

	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	bool roundtrip = false;
	if (b->roundtrip) {
		/* Set even when the probe is not attached: the writer goroutine's
		 * own ancestry would name a wrong parent (abi/go.h). */
		info.flags |= GO_PROC_ROUNDTRIP;
		roundtrip = gt->uprobes && attach_at(gt, p, gt->skel->progs.probe_go_persistconn_roundtrip, exe,
						     b->roundtrip_at, ROUNDTRIP_FUNC) == 0;
	} else {
		log_info("go: pid %u: no net/http client (or its offsets) in this program", pid);
	}

	bool grpc = false;
	if (!gt->uprobes) {
		/* --uprobes off: neither gRPC client parents nor, before Go 1.21,
		 * goroutine creation (below). */
	} else if (b->grpc_rc == 0) {
		p->grpc_rets = malloc(b->grpc.n_rets * sizeof(*p->grpc_rets));
		if (p->grpc_rets) {
			memcpy(p->grpc_rets, b->grpc.rets, b->grpc.n_rets * sizeof(*p->grpc_rets));
			p->n_grpc_rets = b->grpc.n_rets;
			gt->grpc_pending++;
			grpc = true;
		}
	} else if (b->grpc_rc != -ENOENT) {
		log_info("go: pid %u: gRPC client calls are not parented: %s", pid, b->grpc.why);
	}

	const char *ancestry = info.g_parent_goid >= 0 ? (info.allgs ? "g.parentGoid and runtime.allgs"
								    : "g.parentGoid")
						       : "nothing";
	if (info.g_parent_goid < 0 && gt->uprobes)
		attach_newproc(gt, p, b, exe, &ancestry);

	capture_mark_go(gt->cap, pid, true); /* before the entry: the kernel asks the bit first */
	err = bpf_map__update_elem(gt->skel->maps.go_procs, &pid, sizeof(pid), &info, sizeof(info), BPF_ANY);
	if (err) {
		log_warn("go: pid %u: cannot register the process: %s", pid, strerror(-err));
		go_tracer_forget(gt, pid);
		return err;
	}
	log_info("go: pid %u: %s, %zu uprobe%s (%s%s), goroutine ancestry from %s", pid,
		 b->version[0] ? b->version : "Go version unknown", p->n_links, p->n_links == 1 ? "" : "s",
		 !b->roundtrip ? "no net/http client"
		 : roundtrip   ? "net/http client"
		 : gt->uprobes ? "net/http client, not probed: its requests are not parented"
			       : "net/http client, not probed (--uprobes off): its requests are not parented",
		 grpc ? ", grpc-go client: probed once it serves a request" : "", ancestry);
	return 0;
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

void go_tracer_served(struct go_tracer *gt, uint32_t pid)
{
	if (!gt || !gt->grpc_pending)
		return; /* the common case: one test per exchange */
	struct go_proc *p = find_proc(gt, pid, NULL);
	if (!p || !p->grpc_rets)
		return;
	char exe[64];
	size_t ok = 0;
	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	for (size_t i = 0; i < p->n_grpc_rets; i++)
		ok += attach_at(gt, p, gt->skel->progs.probe_go_grpc_newstream, exe, p->grpc_rets[i],
				GRPC_NEWSTREAM_FUNC " (RET)") == 0;
	log_info("go: pid %u serves requests: its gRPC calls are parented (%zu uprobe%s on %s)", pid, ok,
		 ok == 1 ? "" : "s", GRPC_NEWSTREAM_FUNC);
	free(p->grpc_rets);
	p->grpc_rets = NULL;
	p->n_grpc_rets = 0;
	gt->grpc_pending--;
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
		link_reaper_put(p->links[i]);
	gt->probes -= p->n_links;
	free(p->links);
	if (p->grpc_rets)
		gt->grpc_pending--;
	free(p->grpc_rets);
	free(p);
	bpf_map__delete_elem(gt->skel->maps.go_procs, &pid, sizeof(pid), 0);
	capture_mark_go(gt->cap, pid, false);
	delete_by_tgid(gt->skel->maps.go_serving, pid);
	delete_by_tgid(gt->skel->maps.go_inherited, pid);
	delete_by_tgid(gt->skel->maps.go_fd_ctx, pid);
}

int go_tracer_sweep(struct go_tracer *gt)
{
	return gt ? map_sweep_dead_tgids(bpf_map__fd(gt->skel->maps.go_procs)) : 0;
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
