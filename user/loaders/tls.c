/* OpenSSL plaintext capture: loads bpf/uprobes/tls.bpf.c and attaches its
 * entry probes per traced process (tls.h). Uprobes are set on the file, for
 * one process: a library the process maps later (Python's ssl module on
 * first use, a program exec'd after weft attached) gets them when it is
 * mapped, and other processes never trap. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_config.h"
#include "link_reaper.h"
#include "log.h"
#include "tls.h"
#include "tls.skel.h"
#include "tls_lib.h"
#include "uprobes.h"
#include "gobinary.h"

struct tls_proc {
	uint32_t pid;		  /* 0: every process (weft run) */
	uint64_t dev, ino;	  /* the library probed */
	struct probe_link links[2 * TLS_FN_N]; /* entries, and the reads' returns */
	unsigned n_links;
	unsigned n_probes;
	struct tls_proc *next;
};

/* A Go process's crypto/tls probes (on its executable, for it only). */
struct go_tls_proc {
	uint32_t pid;
	struct probe_link *links;
	size_t n_links;
	size_t n_probes;
	struct go_tls_proc *next;
};

struct tls_tracer {
	struct tls_bpf *skel;
	struct tls_proc *procs;
	struct go_tls_proc *go_procs;
	unsigned probes;
	bool trace_all;
};

int tls_tracer_load(struct capture_tracer *ct, const struct capture_opts *o, struct tls_tracer **out)
{
	int err;
	struct tls_tracer *tt = calloc(1, sizeof(*tt));
	*out = NULL;
	if (!tt)
		return -ENOMEM;
	tt->trace_all = o->trace_all;
	tt->skel = tls_bpf__open();
	if (!tt->skel) {
		err = -errno;
		log_error("tls: cannot open the BPF object: %s", strerror(-err));
		goto fail;
	}
	/* One connection table, one set of exchanges: the plaintext goes where
	 * the socket's bytes go. */
	if ((err = capture_share_maps(ct, tt->skel->obj, "tls")))
		goto fail;
	if ((err = tls_bpf_configure(tt->skel, o)))
		goto fail;
	err = tls_bpf__load(tt->skel);
	if (err) {
		bpf_config_explain_refusal("tls", err, false,
					   "weft goes on without its TLS probes: HTTPS and TLS database sessions get no "
					   "spans");
		tls_tracer_destroy(tt);
		return 0;
	}
	if ((err = capture_set_stream_programs(tt->skel->obj, bpf_map__fd(tt->skel->maps.stream_progs))))
		goto fail;
	/* The probes tail-call tls_data with the plaintext (bpf/uprobes/tls.bpf.c). */
	__u32 zero = 0;
	int data_fd = bpf_program__fd(tt->skel->progs.tls_data);
	if (bpf_map__update_elem(tt->skel->maps.tls_data_prog, &zero, sizeof(zero), &data_fd, sizeof(data_fd),
				 BPF_ANY)) {
		err = -errno;
		log_error("tls: cannot install the plaintext program: %s", strerror(-err));
		goto fail;
	}
	*out = tt;
	return 0;
fail:
	tls_tracer_destroy(tt);
	return err;
}

/* Has pid exited (or is it exiting)? Its /proc directory outlives it as a
 * zombie's, but its root (the mount namespace the probed paths go through)
 * goes with its last thread. */
static bool proc_gone(uint32_t pid)
{
	char root[40];
	snprintf(root, sizeof(root), "/proc/%u/root/", pid);
	return access(root, F_OK) != 0;
}

static struct tls_proc *find_proc(struct tls_tracer *tt, uint32_t pid, uint64_t dev, uint64_t ino)
{
	for (struct tls_proc *p = tt->procs; p; p = p->next)
		if (p->pid == pid && (!dev || (p->dev == dev && p->ino == ino)))
			return p;
	return NULL;
}

static int attach_lib(struct tls_tracer *tt, uint32_t pid, const struct tls_lib *lib)
{
	struct tls_proc *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pid = pid;
	p->dev = lib->dev;
	p->ino = lib->ino;
	char names[192] = "";
	size_t o = 0;
	/* One program for the entries (the cookie names the function), one for
	 * the reads' returns: two links where the kernel has uprobe_multi. */
	struct uprobe_spot entries[TLS_FN_N], rets[TLS_FN_N];
	size_t n_entries = 0, n_rets = 0;
	for (int i = 0; i < TLS_FN_N; i++) {
		if (!lib->has[i])
			continue;
		if (!lib->fn_off[i]) {
			log_warn("tls: pid %u: %s in %s is in no executable segment: not probed", pid, tls_fn_names[i],
				 lib->shown);
			continue;
		}
		/* lib->at: an instruction the kernel emulates, where it could be
		 * found (tls_entry.h) */
		entries[n_entries++] = (struct uprobe_spot){ .offset = lib->fn_off[i] + lib->at[i], .cookie = i };
		if (i == TLS_FN_READ || i == TLS_FN_READ_EX)
			rets[n_rets++] = (struct uprobe_spot){ .offset = lib->fn_off[i], .cookie = i };
		if (o < sizeof(names))
			o += snprintf(names + o, sizeof(names) - o, "%s%s", o ? ", " : "", tls_fn_names[i]);
		if (lib->at[i] && o < sizeof(names))
			o += snprintf(names + o, sizeof(names) - o, "+0x%x", lib->at[i]);
	}
	int n = uprobes_attach(tt->skel->progs.probe_ssl_entry, pid, lib->path, entries, n_entries, false, p->links);
	int r = n < 0 ? 0
		      : uprobes_attach(tt->skel->progs.probe_ssl_read_ret, pid, lib->path, rets, n_rets, true,
				       p->links + n);
	/* A uprobe_multi link takes a process that is exiting (perf-event
	 * uprobes refuse it with ESRCH): the same, nothing kept. */
	int err = n < 0 ? n : r < 0 ? r : pid && proc_gone(pid) ? -ESRCH : 0;
	if (err) {
		int made = n < 0 ? 0 : n + (r > 0 ? r : 0);
		for (int k = 0; k < made; k++)
			link_reaper_put_probe(p->links[k]); /* off this thread: unregistering waits for RCU */
		free(p);
		if (pid && (err == -ESRCH || proc_gone(pid))) {
			/* Exited meanwhile (a short-lived client): nothing to warn
			 * about, and nothing of it kept. */
			log_debug("tls: pid %u: gone before its probes were attached", pid);
			return -ESRCH;
		}
		log_warn("tls: pid %u: cannot probe %s in %s: %s", pid, names, lib->shown, strerror(-err));
		return err;
	}
	p->n_links = (unsigned)(n + r);
	p->n_probes = (unsigned)(n_entries + n_rets);
	if (!p->n_links) {
		free(p);
		return -ENOENT;
	}
	p->next = tt->procs;
	tt->procs = p;
	tt->probes += p->n_probes;
	uint32_t zero = 0, on = 1;
	bpf_map__update_elem(tt->skel->maps.tls_on, &zero, sizeof(zero), &on, sizeof(on), BPF_ANY);
	const char *version = lib->version[0] ? lib->version : "version unknown";
	if (lib->in_exe)
		log_info("tls: %s%.0u%s%s (%s) linked into the executable %s: probed %s%s", pid ? "pid " : "", pid,
			 pid ? ": " : "", strncmp(version, "BoringSSL", 9) ? "OpenSSL" : "BoringSSL", version, lib->shown,
			 names, pid ? "" : " in every process");
	else if (pid)
		log_info("tls: pid %u: OpenSSL %s (%s, %s): probed %s", pid, lib->shown, version,
			 lib->mapped ? "loaded" : "not loaded yet: probed when it is", names);
	else
		log_info("tls: OpenSSL %s (%s): probed %s in every process", lib->shown, version, names);
	return 0;
}

int tls_tracer_add(struct tls_tracer *tt, uint32_t pid)
{
	struct tls_lib lib;
	char other[600];
	if (!tt)
		return -EINVAL;
	if (!tt->trace_all && !find_proc(tt, pid, 0, 0) && tls_lib_other(pid, other, sizeof(other)) == 0)
		log_warn("tls: pid %u: %s: not probed (weft reads OpenSSL and Go's crypto/tls): its TLS "
			 "connections get no spans", pid, other);
	int err = tls_lib_find(pid, &lib);
	if (err) {
		if (err != -ENOENT && err != -ESRCH)
			log_warn("tls: pid %u: cannot look for OpenSSL: %s", pid, strerror(-err));
		char why[512];
		if (err == -ENOENT && !find_proc(tt, pid, 0, 0) && tls_lib_exe_unprobeable(pid, why, sizeof(why)) == 0)
			log_warn("tls: pid %u: %s: its TLS connections get no spans", pid, why);
		if (err == -ENOENT && !tt->trace_all && !find_proc(tt, pid, 0, 0)) {
			/* Looked at: no libssl (until it execs). */
			struct tls_proc *none = calloc(1, sizeof(*none));
			if (none) {
				none->pid = pid;
				none->next = tt->procs;
				tt->procs = none;
			}
		}
		return err;
	}
	uint32_t who = tt->trace_all ? 0 : pid; /* weft run: one probe set per library */
	if (find_proc(tt, who, lib.dev, lib.ino))
		return 0;
	bool any = false;
	for (int i = 0; i < TLS_FN_N; i++)
		any |= lib.has[i] && i != TLS_FN_SET_FD;
	if (!any) {
		log_warn("tls: pid %u: %s exports none of SSL_read/SSL_write: its TLS traffic is not seen", pid,
			 lib.shown);
		return -ENOENT;
	}
	return attach_lib(tt, who, &lib);
}

static void go_forget(struct tls_tracer *tt, uint32_t pid)
{
	for (struct go_tls_proc **pp = &tt->go_procs; *pp;) {
		struct go_tls_proc *p = *pp;
		if (pid && p->pid != pid) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		for (size_t i = 0; i < p->n_links; i++)
			link_reaper_put_probe(p->links[i]);
		tt->probes -= p->n_probes;
		free(p->links);
		free(p);
	}
}

static int go_attach(struct tls_tracer *tt, struct go_tls_proc *p, struct bpf_program *prog, const char *exe,
		     const uint64_t *at, size_t n_at, const char *what)
{
	struct uprobe_spot spots[n_at ? n_at : 1];
	for (size_t i = 0; i < n_at; i++)
		spots[i] = (struct uprobe_spot){ .offset = at[i] };
	int n = uprobes_attach(prog, p->pid, exe, spots, n_at, false, p->links + p->n_links);
	if (n < 0) {
		if (n == -ESRCH || proc_gone(p->pid))
			return -ESRCH; /* the caller says so, once */
		log_warn("tls: pid %u: cannot probe %s (file offset 0x%llx): %s", p->pid, what,
			 (unsigned long long)at[0], strerror(-n));
		return n;
	}
	p->n_links += (size_t)n;
	p->n_probes += n_at;
	tt->probes += n_at;
	return 0;
}

int tls_tracer_add_go(struct tls_tracer *tt, uint32_t pid, const struct go_binary *b)
{
	if (!tt || !b)
		return -EINVAL;
	go_forget(tt, pid); /* an exec'd process starts afresh */
	if (!b->tls) {
		log_info("tls: pid %u: Go, crypto/tls not probed: %s", pid, b->tls_why[0] ? b->tls_why : "not found");
		return -ENOENT;
	}
	struct go_tls_proc *p = calloc(1, sizeof(*p));
	if (!p || !(p->links = calloc(2 + b->n_tls_read_rets, sizeof(*p->links)))) {
		free(p);
		return -ENOMEM;
	}
	p->pid = pid;
	p->next = tt->go_procs;
	tt->go_procs = p;
	char exe[64];
	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	int err = go_attach(tt, p, tt->skel->progs.probe_go_tls_write, exe, &b->tls_write_at, 1,
			    "crypto/tls.(*Conn).Write");
	if (!err)
		err = go_attach(tt, p, tt->skel->progs.probe_go_tls_read, exe, &b->tls_read_at, 1,
				"crypto/tls.(*Conn).Read");
	if (!err && b->n_tls_read_rets)
		err = go_attach(tt, p, tt->skel->progs.probe_go_tls_read_ret, exe, b->tls_read_rets,
				b->n_tls_read_rets, "crypto/tls.(*Conn).Read (RET)");
	if (!err && proc_gone(pid))
		err = -ESRCH; /* exiting: a uprobe_multi link takes it, nothing is kept */
	if (err) {
		if (err == -ESRCH)
			log_debug("tls: pid %u: gone before its probes were attached", pid);
		go_forget(tt, pid); /* all or nothing: a read without its returns sends nothing */
		return err;
	}
	uint32_t zero = 0, on = 1;
	bpf_map__update_elem(tt->skel->maps.tls_on, &zero, sizeof(zero), &on, sizeof(on), BPF_ANY);
	log_info("tls: pid %u: Go crypto/tls (%s): probed (*Conn).Write, (*Conn).Read and its %zu RETs", pid,
		 b->version[0] ? b->version : "Go version unknown", b->n_tls_read_rets);
	return 0;
}

void tls_tracer_exec(struct tls_tracer *tt, uint32_t pid)
{
	if (!tt)
		return;
	go_forget(tt, pid); /* the new program's analysis brings its own */
	/* Probes on a library stay (a file's probes survive exec); the record
	 * of a process without one goes: the new program may have one. */
	for (struct tls_proc **pp = &tt->procs; *pp;) {
		struct tls_proc *p = *pp;
		if (p->pid == pid && !p->n_links) {
			*pp = p->next;
			free(p);
		} else {
			pp = &p->next;
		}
	}
	tls_tracer_add(tt, pid);
}

void tls_tracer_sync(struct tls_tracer *tt, struct capture_tracer *ct)
{
	if (!tt || tt->trace_all)
		return;
	int fd = capture_map_fd(ct, "traced_pids");
	uint32_t key, *prev = NULL;
	while (fd >= 0 && bpf_map_get_next_key(fd, prev, &key) == 0) {
		if (!find_proc(tt, key, 0, 0))
			tls_tracer_add(tt, key);
		prev = &key;
	}
}

/* Deletes tls_conns entries of tgid (collected first: deleting while
 * walking restarts the walk). */
static void forget_conns(struct tls_tracer *tt, uint32_t tgid)
{
	int fd = bpf_map__fd(tt->skel->maps.tls_conns);
	struct { uint32_t tgid, pad; uint64_t ssl; } key, *prev = NULL, found[256];
	size_t n = 0;
	while (n < 256 && bpf_map_get_next_key(fd, prev, &key) == 0) {
		if (key.tgid == tgid)
			found[n++] = key;
		prev = &key;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &found[i]);
}

void tls_tracer_forget(struct tls_tracer *tt, uint32_t pid)
{
	if (!tt || !pid)
		return;
	struct tls_proc **pp = &tt->procs;
	while (*pp) {
		struct tls_proc *p = *pp;
		if (p->pid != pid) {
			pp = &p->next;
			continue;
		}
		*pp = p->next;
		for (unsigned i = 0; i < p->n_links; i++)
			link_reaper_put_probe(p->links[i]);
		tt->probes -= p->n_probes;
		free(p);
	}
	go_forget(tt, pid);
	forget_conns(tt, pid);
}

unsigned tls_tracer_probe_count(struct tls_tracer *tt)
{
	return tt ? tt->probes : 0;
}

void tls_tracer_destroy(struct tls_tracer *tt)
{
	if (!tt)
		return;
	while (tt->procs) {
		struct tls_proc *p = tt->procs;
		tt->procs = p->next;
		for (unsigned i = 0; i < p->n_links; i++)
			link_reaper_put_probe(p->links[i]);
		free(p);
	}
	go_forget(tt, 0);
	tls_bpf__destroy(tt->skel);
	free(tt);
}
