/* Discovery: facts about a process, the configuration's decision, the
 * kernel's process filter. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "capture.h"
#include "cgroup_id.h"
#include "discovery.h"
#include "listen_ports.h"
#include "log.h"
#include "metadata.h"
#include "proc.h"
#include "runtime_api.h"

#define DISC_BUCKETS 4096
#define DISC_MAX_PROCS 65536 /* processes with state kept (traced, listening, waiting for their pod) */
#define DISC_PORTS 8	     /* listening ports remembered per process */
/* New programs not selected, by pid % DISC_REJECTED: their events still in
 * the ring buffer behind their exec event are dropped. Direct-mapped: a
 * slot lost to another pid only matters for events still queued. */
#define DISC_REJECTED 1024

struct disc_proc {
	uint32_t pid;
	bool traced;
	bool pending; /* in a container whose pod is not known yet */
	uint8_t n_ports;
	uint16_t ports[DISC_PORTS];
	struct disc_proc *next;
};

struct discovery {
	const struct weft_config *cfg;
	struct capture_tracer *cap;
	bool needs_ports, needs_pod;
	struct disc_proc *buckets[DISC_BUCKETS];
	size_t n_procs;
	uint64_t meta_gen;
	unsigned ticks;
	struct discovery_stats st;
	uint32_t rejected[DISC_REJECTED];
};

static struct disc_proc *find(struct discovery *d, uint32_t pid)
{
	for (struct disc_proc *p = d->buckets[pid % DISC_BUCKETS]; p; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

static struct disc_proc *find_or_add(struct discovery *d, uint32_t pid)
{
	struct disc_proc *p = find(d, pid);
	if (p)
		return p;
	if (d->n_procs == DISC_MAX_PROCS || !(p = calloc(1, sizeof(*p)))) {
		d->st.not_kept++;
		return NULL;
	}
	p->pid = pid;
	p->next = d->buckets[pid % DISC_BUCKETS];
	d->buckets[pid % DISC_BUCKETS] = p;
	d->n_procs++;
	return p;
}

static void drop(struct discovery *d, uint32_t pid)
{
	for (struct disc_proc **pp = &d->buckets[pid % DISC_BUCKETS]; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			struct disc_proc *p = *pp;
			*pp = p->next;
			free(p);
			d->n_procs--;
			return;
		}
	}
}

int discovery_create(const struct weft_config *cfg, struct capture_tracer *cap, struct discovery **out)
{
	struct discovery *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->cfg = cfg;
	d->cap = cap;
	d->needs_ports = config_needs_ports(cfg);
	d->needs_pod = config_needs_k8s(cfg) && metadata_k8s_on();
	d->meta_gen = metadata_generation();
	*out = d;
	return 0;
}

/* A new program traced since its exec is not selected (or is gone): the
 * kernel stops tracing it. -1 when it opened connections meanwhile (the
 * caller forgets its state, kernel tables included), else 0. */
static int untrace_provisional(struct discovery *d, uint32_t pid, uint32_t pflags)
{
	capture_untrace_pid(d->cap, pid);
	/* Read again now that the kernel sees it untraced: a connection opened
	 * until then has marked it. */
	uint32_t now = pflags;
	if (capture_get_proc_flags(d->cap, pid, &now) == 0)
		pflags |= now;
	capture_clear_proc_flags(d->cap, pid);
	return pflags & PROC_TOUCHED ? -1 : 0;
}

/* pid exec'd exec_path and exited before it could be looked at (a static
 * client lives a millisecond): what the kernel traced of it meanwhile is
 * kept if its executable alone selects it. Its tracing ended with it. */
static int decide_gone(struct discovery *d, uint32_t pid, const char *exec_path)
{
	char exe[PATH_MAX];
	struct proc_facts f = {};
	/* As /proc/PID/exe would have said: symbolic links resolved (from this
	 * mount namespace: a container's program may not resolve, and is then
	 * taken as given). */
	if (!realpath(exec_path, exe))
		snprintf(exe, sizeof(exe), "%s", exec_path);
	f.exe_path = exe;
	d->st.looked_at++;
	if (!config_wants(d->cfg, &f))
		return 0;
	d->rejected[pid % DISC_REJECTED] = 0;
	proc_note_program(pid, exe);
	d->st.selected++;
	log_debug("discovery: process %u (%s) exited before it was looked at: its exchanges are kept", pid, exe);
	return 0;
}

/* Decides about pid from what is known now; port: one more port it listens on. */
static int decide(struct discovery *d, uint32_t pid, uint16_t port, bool fresh, const char *exec_path)
{
	char exe_link[64], exe[PATH_MAX];
	uint16_t ports[DISC_PORTS + 1];
	size_t n_ports = 0;
	struct cgroup_container cg;
	struct runtime_info ri;
	struct proc_facts f = {};
	struct pod_meta *pod = NULL;
	const struct pod_container *pc = NULL;

	if (pid == (uint32_t)getpid())
		return 0;
	/* A new program the kernel traces until now (PROC_PROVISIONAL): its
	 * bit is not a decision; what it sent meanwhile is dropped unless it
	 * is selected. */
	uint32_t pflags = 0;
	bool provisional = fresh && capture_get_proc_flags(d->cap, pid, &pflags) == 0 && (pflags & PROC_PROVISIONAL);
	uint32_t *rej = &d->rejected[pid % DISC_REJECTED];
	if (fresh)
		*rej = pid; /* until selected: gone already, or not wanted */
	snprintf(exe_link, sizeof(exe_link), "/proc/%u/exe", pid);
	ssize_t n = readlink(exe_link, exe, sizeof(exe) - 1);
	if (n <= 0) {
		if (provisional) /* gone before it could be looked at (else the kernel cleaned) */
			untrace_provisional(d, pid, pflags);
		if (fresh && exec_path && exec_path[0] == '/')
			return decide_gone(d, pid, exec_path);
		return 0; /* a kernel thread, or gone */
	}
	exe[n] = '\0';
	char *del = strstr(exe, " (deleted)");
	if (del)
		*del = '\0';
	f.exe_path = exe;

	struct disc_proc *p = find(d, pid);
	if (p && fresh) {
		p->n_ports = 0; /* a new program: its listeners are learned anew */
		p->pending = false;
	}
	if (d->needs_ports) {
		if (p && !fresh)
			for (size_t i = 0; i < p->n_ports; i++)
				ports[n_ports++] = p->ports[i];
		if (port) {
			bool dup = false;
			for (size_t i = 0; i < n_ports; i++)
				dup |= ports[i] == port;
			if (!dup && n_ports < DISC_PORTS)
				ports[n_ports++] = port;
		}
		if (!port || !p) {
			int got = listen_ports_of_pid(pid, ports + n_ports, DISC_PORTS - n_ports);
			if (got > 0)
				n_ports += got;
		}
		f.ports = ports;
		f.n_ports = n_ports;
	}
	bool in_container = cgroup_container_of_pid(pid, &cg);
	if (in_container) {
		f.container_id = cg.id;
		pod = metadata_pod_of_container(cg.id, &pc);
		if (pod) {
			f.pod = pod;
			f.k8s_container_name = pc->name;
			f.container_name = pc->name;
		} else if (runtime_api_container(cg.id, &ri)) {
			f.container_name = ri.name;
		}
	}
	bool want = config_wants(d->cfg, &f);
	bool pending = d->needs_pod && in_container && !pod;
	if (pod)
		pod_meta_put(pod);
	d->st.looked_at++;

	if (want || pending || n_ports || (p && p->traced)) {
		if (!p)
			p = find_or_add(d, pid);
		if (p) {
			p->pending = pending && !want;
			p->n_ports = n_ports < DISC_PORTS ? n_ports : DISC_PORTS;
			memcpy(p->ports, ports, p->n_ports * sizeof(ports[0]));
		}
	}
	if (want && *rej == pid)
		*rej = 0;
	if (provisional && !(p && p->traced)) {
		if (want) {
			/* Selected: traced for good from its exec on. */
			if (capture_trace_pid(d->cap, pid) == 0) {
				if (!p)
					p = find_or_add(d, pid);
				if (p)
					p->traced = true;
				d->st.selected++;
				log_debug("discovery: tracing process %u (%s)", pid, exe);
				return 1;
			}
		}
		int r = untrace_provisional(d, pid, pflags);
		if (p && !p->pending && !p->n_ports)
			drop(d, pid);
		return r;
	}
	/* Forked by a traced process, the kernel traces it already. */
	bool was = (p && p->traced) || capture_pid_traced(d->cap, pid);
	if (want && !was) {
		if (capture_trace_pid(d->cap, pid))
			return 0;
		if (p)
			p->traced = true;
		d->st.selected++;
		log_debug("discovery: tracing process %u (%s)", pid, exe);
		return 1;
	}
	if (!want && was) {
		capture_untrace_pid(d->cap, pid);
		if (p)
			p->traced = false;
		d->st.unselected++;
		log_debug("discovery: no longer tracing process %u (%s)", pid, exe);
		return -1;
	}
	if (p && !p->traced && !p->pending && !p->n_ports)
		drop(d, pid);
	return want ? 1 : 0;
}

size_t discovery_scan(struct discovery *d)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	size_t traced = 0;
	if (!dir) {
		log_error("discovery: cannot list /proc: %s", strerror(errno));
		return 0;
	}
	while ((de = readdir(dir))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		uint32_t pid = strtoul(de->d_name, NULL, 10);
		if (decide(d, pid, 0, true, NULL) > 0)
			traced++;
	}
	closedir(dir);
	return traced;
}

int discovery_look(struct discovery *d, uint32_t pid, const char *exec_path)
{
	return decide(d, pid, 0, true, exec_path);
}

int discovery_on_listen(struct discovery *d, uint32_t pid, uint16_t port)
{
	if (!d->needs_ports)
		return 0;
	return decide(d, pid, port, false, NULL);
}

void discovery_forget(struct discovery *d, uint32_t pid)
{
	drop(d, pid);
}

bool discovery_drops(struct discovery *d, uint32_t pid)
{
	if (!pid || d->rejected[pid % DISC_REJECTED] != pid)
		return false;
	d->st.provisional_dropped++;
	return true;
}

bool discovery_traced(struct discovery *d, uint32_t pid)
{
	return capture_pid_traced(d->cap, pid);
}

void discovery_tick(struct discovery *d)
{
	uint64_t gen = metadata_generation();
	bool again = gen != d->meta_gen;
	uint32_t redo[256];
	size_t n_redo = 0;
	d->meta_gen = gen;
	if (!again && ++d->ticks % 20) /* processes gone: every 20th tick (2 s) */
		return;
	for (size_t b = 0; b < DISC_BUCKETS; b++) {
		for (struct disc_proc *p = d->buckets[b], *next; p; p = next) {
			next = p->next;
			if (!proc_exists(p->pid)) {
				drop(d, p->pid);
				continue;
			}
			if (again && p->pending && n_redo < 256)
				redo[n_redo++] = p->pid;
		}
	}
	for (size_t i = 0; i < n_redo; i++)
		decide(d, redo[i], 0, false, NULL);
}

void discovery_get_stats(struct discovery *d, struct discovery_stats *st)
{
	*st = d->st;
}

void discovery_destroy(struct discovery *d)
{
	if (!d)
		return;
	for (size_t b = 0; b < DISC_BUCKETS; b++)
		while (d->buckets[b])
			drop(d, d->buckets[b]->pid);
	free(d);
}
