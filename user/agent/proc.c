/* Process resources: service.name, process.*, host.name. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "metadata.h"
#include "proc.h"
#include "proc_parse.h"
#include "version.h"

#define PROC_BUCKETS 1024

struct proc_entry {
	uint32_t pid;
	bool vetted; /* its executable was handed to the Go analysis */
	uint64_t start_time; /* /proc/PID/stat starttime: tells a reused PID */
	bool complete; /* nothing more to learn (else: its pod may become known) */
	uint64_t meta_gen; /* metadata_generation() when res was built */
	struct resource *res;
	struct proc_entry *next;
};

static struct proc_entry *buckets[PROC_BUCKETS];
static uint64_t proc_gone_resources;

uint64_t proc_gone_count(void)
{
	return proc_gone_resources;
}

/* Reads a whole /proc file (bounded), returns its length or -errno. */
static ssize_t read_proc_file(uint32_t pid, const char *what, char *buf, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/%s", pid, what);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	size_t got = 0;
	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int err = -errno;
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	return got;
}

int proc_environ_get(uint32_t pid, const char *name, char *out, size_t outlen)
{
	static char env[64 * 1024];
	ssize_t n = read_proc_file(pid, "environ", env, sizeof(env));
	if (n < 0)
		return n;
	return proc_environ_find(env, n, name, out, outlen);
}

uint64_t proc_read_start_time(uint32_t pid)
{
	char buf[1024];
	ssize_t n = read_proc_file(pid, "stat", buf, sizeof(buf));
	return n > 0 ? proc_stat_start_time(buf, n) : 0;
}

enum sender { SENDER_NOT, SENDER_RUNNING, SENDER_EXITED };

/* Whether pid is still the process that made a span starting at since_ns
 * (unix epoch; 0: not checked): running, exited (a zombie: its command
 * name, in comm, is all that is left of it), or not it (gone, or another
 * process). /proc's start time is in clock ticks since boot, rounded down,
 * so it is never later than the true start: a process that shows a start
 * after the span's is another one, its PID freed and taken again meanwhile
 * (the kernel hands PIDs out cyclically: a PID comes back only after the
 * other 32,767+ have been used, so never within the 1 s of margin kept for
 * clock adjustments). */
static enum sender proc_sender(uint32_t pid, uint64_t since_ns, char *comm, size_t commlen)
{
	char buf[1024];
	ssize_t n = read_proc_file(pid, "stat", buf, sizeof(buf) - 1);
	if (n <= 0)
		return SENDER_NOT;
	buf[n] = '\0';
	const char *lp = strchr(buf, '('), *rp = strrchr(buf, ')');
	if (!lp || !rp || rp < lp || rp[1] != ' ' || !rp[2])
		return SENDER_NOT;
	snprintf(comm, commlen, "%.*s", (int)(rp - lp - 1), lp + 1);
	enum sender st = rp[2] == 'Z' || rp[2] == 'X' ? SENDER_EXITED : SENDER_RUNNING;
	uint64_t ticks = proc_stat_start_time(buf, n);
	long hz = sysconf(_SC_CLK_TCK);
	struct timespec rt, bt;
	if (!since_ns || !ticks || hz <= 0 || clock_gettime(CLOCK_REALTIME, &rt) ||
	    clock_gettime(CLOCK_BOOTTIME, &bt))
		return st; /* nothing to compare with */
	int64_t boot_epoch_ns = ((int64_t)rt.tv_sec - bt.tv_sec) * 1000000000LL + (rt.tv_nsec - bt.tv_nsec);
	int64_t start_ns = (int64_t)(ticks * (1000000000ULL / (uint64_t)hz)) + boot_epoch_ns;
	return start_ns <= (int64_t)since_ns + 1000000000LL ? st : SENDER_NOT;
}

int proc_exists(uint32_t pid)
{
	return kill(pid, 0) == 0 || errno == EPERM;
}

/* *alive: its command line (or, if empty, its executable's link) could be
 * read last, so the process still had its memory through every read before
 * (the executable's path, the environment): what was read is its own, not
 * the blanks of a process exiting meanwhile. */
static bool fill_resource(struct resource *r, uint32_t pid, bool *alive)
{
	char exe[PATH_MAX], path[64], buf[4096], svc[256];
	const char *exe_name = NULL;

	snprintf(path, sizeof(path), "/proc/%u/exe", pid);
	ssize_t n = readlink(path, exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		/* A replaced binary shows as "path (deleted)". */
		char *del = strstr(exe, " (deleted)");
		if (del)
			*del = '\0';
		const char *slash = strrchr(exe, '/');
		exe_name = slash ? slash + 1 : exe;
		attrs_set_str(&r->attrs, "process.executable.path", exe);
	}
	if (!exe_name) {
		n = read_proc_file(pid, "comm", buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			buf[strcspn(buf, "\n")] = '\0';
			exe_name = buf;
		}
	}
	bool from_process = proc_environ_get(pid, "OTEL_SERVICE_NAME", svc, sizeof(svc)) == 0 && svc[0];
	if (from_process)
		attrs_set_str(&r->attrs, "service.name", svc);
	else if (exe_name)
		attrs_set_str(&r->attrs, "service.name", exe_name);
	else
		attrs_set_str(&r->attrs, "service.name", "unknown_service");
	attrs_set_bool(&r->attrs, WEFT_ATTR_SERVICE_FROM_PROCESS, from_process);
	if (exe_name)
		attrs_set_str(&r->attrs, "process.executable.name", exe_name);
	attrs_set_int(&r->attrs, "process.pid", pid);

	n = read_proc_file(pid, "cmdline", buf, sizeof(buf) - 1);
	/* an empty command line: exiting, unless its executable is still
	 * there (a process may blank its own arguments) */
	*alive = n > 0 || readlink(path, exe, sizeof(exe) - 1) > 0;
	if (n > 0) {
		proc_cmdline_join(buf, n);
		attrs_set_str(&r->attrs, "process.command_line", buf);
	}
	char host[256];
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		attrs_set_str(&r->attrs, "host.name", host);
	}
	attrs_set_str(&r->attrs, "telemetry.sdk.name", "weft");
	attrs_set_str(&r->attrs, "telemetry.sdk.version", WEFT_VERSION);
	return metadata_resource(&r->attrs, pid);
}

/* The resource of a process that is no longer there to read (it exited
 * before weft looked, or its PID is another process's now): its PID, and
 * its command name if its zombie was still there (comm, else NULL);
 * service.name as OpenTelemetry SDKs name a service they know nothing of
 * (its OTEL_SERVICE_NAME, if any, went with its memory). Nothing that
 * could be another program's. */
/* proc_note_program's names, by pid % PROGRAM_NOTES (a slot lost to
 * another pid leaves a span with its PID only). */
#define PROGRAM_NOTES 256
static struct {
	uint32_t pid;
	char name[64];
} program_notes[PROGRAM_NOTES];

void proc_note_program(uint32_t pid, const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (!pid || !base[0])
		return;
	program_notes[pid % PROGRAM_NOTES].pid = pid;
	snprintf(program_notes[pid % PROGRAM_NOTES].name, sizeof(program_notes[0].name), "%s", base);
}

static const char *program_noted(uint32_t pid)
{
	return pid && program_notes[pid % PROGRAM_NOTES].pid == pid ? program_notes[pid % PROGRAM_NOTES].name : NULL;
}

static struct resource *resource_gone(uint32_t pid, const char *comm)
{
	struct resource *r = calloc(1, sizeof(*r));
	char host[256];

	if (!r)
		return NULL;
	if (!comm || !comm[0])
		comm = program_noted(pid);
	r->refs = 1;
	r->pid = pid;
	if (comm && comm[0]) {
		char svc[64];
		snprintf(svc, sizeof(svc), "unknown_service:%s", comm);
		attrs_set_str(&r->attrs, "service.name", svc);
		attrs_set_str(&r->attrs, "process.executable.name", comm);
	} else {
		attrs_set_str(&r->attrs, "service.name", "unknown_service");
	}
	attrs_set_bool(&r->attrs, WEFT_ATTR_SERVICE_FROM_PROCESS, false);
	attrs_set_int(&r->attrs, "process.pid", pid);
	if (gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		attrs_set_str(&r->attrs, "host.name", host);
	}
	attrs_set_str(&r->attrs, "telemetry.sdk.name", "weft");
	attrs_set_str(&r->attrs, "telemetry.sdk.version", WEFT_VERSION);
	return r;
}

/* NULL if out of memory, or if the process was exiting while read. */
static struct resource *resource_build(uint32_t pid, bool *complete)
{
	struct resource *r = calloc(1, sizeof(*r));
	bool alive = false;
	if (!r)
		return NULL;
	r->refs = 1; /* the cache's reference */
	r->pid = pid;
	*complete = fill_resource(r, pid, &alive);
	if (!alive) {
		resource_put(r);
		return NULL;
	}
	return r;
}

static struct proc_entry *proc_entry_get(uint32_t pid)
{
	struct proc_entry **b = &buckets[pid % PROC_BUCKETS];
	for (struct proc_entry *e = *b; e; e = e->next)
		if (e->pid == pid)
			return e;
	struct proc_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->start_time = proc_read_start_time(pid); /* before the rest: never newer than them */
	e->meta_gen = metadata_generation();
	/* exited already (first seen at its last exchange): a zombie's
	 * /proc says too little to name it, an empty one nothing */
	struct resource *r = NULL;
	char comm[64] = "";
	enum sender st = proc_sender(pid, 0, comm, sizeof(comm));
	if (st == SENDER_RUNNING)
		r = resource_build(pid, &e->complete);
	if (!r) {
		/* exiting: what it was named is read again, a zombie's now */
		if (st == SENDER_RUNNING)
			st = proc_sender(pid, 0, comm, sizeof(comm));
		proc_gone_resources++;
		e->complete = true;
		r = resource_gone(pid, st == SENDER_NOT ? NULL : comm);
	}
	if (!r) {
		free(e);
		return NULL;
	}
	e->pid = pid;
	e->res = r;
	e->next = *b;
	*b = e;
	return e;
}

static struct proc_entry *proc_entry_find(uint32_t pid)
{
	for (struct proc_entry *e = buckets[pid % PROC_BUCKETS]; e; e = e->next)
		if (e->pid == pid)
			return e;
	return NULL;
}

struct resource *proc_resource(uint32_t pid, uint64_t since_ns)
{
	struct proc_entry *e = proc_entry_find(pid);
	/* First span of pid: the process may have exited since it was made
	 * (a short-lived client is gone a moment after its answer), its PID
	 * even taken by another process whose /proc would be read instead.
	 * Its span then says only its PID (and its zombie's command name),
	 * never another's name, and nothing is cached (the new owner of the
	 * PID gets its own entry). */
	char comm[64] = "";
	enum sender st = e ? SENDER_RUNNING : proc_sender(pid, since_ns, comm, sizeof(comm));
	if (st == SENDER_NOT) {
		proc_gone_resources++;
		return resource_gone(pid, NULL);
	}
	if (st == SENDER_EXITED) {
		proc_gone_resources++;
		return resource_gone(pid, comm);
	}
	if (!e)
		e = proc_entry_get(pid);
	if (!e)
		return NULL;
	uint64_t gen;
	if (!e->complete && (gen = metadata_generation()) != e->meta_gen) {
		/* Its pod may be known now: spans from here on carry it. */
		bool complete;
		struct resource *r = resource_build(pid, &complete);
		if (r) {
			resource_put(e->res);
			e->res = r;
			e->complete = complete;
			e->meta_gen = gen;
		}
	}
	return resource_get(e->res);
}

bool proc_vet_first(uint32_t pid)
{
	struct proc_entry *e = proc_entry_get(pid);
	if (!e || e->vetted)
		return false;
	e->vetted = true;
	return true;
}

bool proc_same_process(uint32_t pid)
{
	for (struct proc_entry *e = buckets[pid % PROC_BUCKETS]; e; e = e->next)
		if (e->pid == pid)
			return e->start_time && e->start_time == proc_read_start_time(pid);
	return false;
}

size_t proc_gone(uint32_t *out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < PROC_BUCKETS && n < max; i++)
		for (struct proc_entry *e = buckets[i]; e && n < max; e = e->next)
			if (!proc_exists(e->pid))
				out[n++] = e->pid;
	return n;
}

void proc_forget(uint32_t pid)
{
	if (program_notes[pid % PROGRAM_NOTES].pid == pid)
		program_notes[pid % PROGRAM_NOTES].pid = 0;
	for (struct proc_entry **p = &buckets[pid % PROC_BUCKETS]; *p; p = &(*p)->next) {
		if ((*p)->pid == pid) {
			struct proc_entry *e = *p;
			*p = e->next;
			resource_put(e->res);
			free(e);
			return;
		}
	}
}

void proc_cache_clear(void)
{
	for (size_t i = 0; i < PROC_BUCKETS; i++) {
		while (buckets[i]) {
			struct proc_entry *e = buckets[i];
			buckets[i] = e->next;
			resource_put(e->res);
			free(e);
		}
	}
}
