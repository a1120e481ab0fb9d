#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <stdio.h>

#include <bpf/libbpf.h>

#include "bpf_config.h"
#include "uprobes.h"
#include "go.skel.h"
#include "tls.skel.h"
#include "log.h"
#include "propagation.skel.h"
#include "capture.skel.h"

/* WEFT_TEST_REFUSE=<program>: that program is loaded as a socket filter,
 * a type that may not call the helpers it calls, so the kernel's verifier
 * refuses it: the tests see how weft explains and survives a refusal,
 * through the real kernel path. */
static void test_refusal(struct bpf_object *obj)
{
	const char *name = getenv("WEFT_TEST_REFUSE");
	struct bpf_program *p = name && *name ? bpf_object__find_program_by_name(obj, name) : NULL;
	if (p)
		bpf_program__set_type(p, BPF_PROG_TYPE_SOCKET_FILTER);
}

bool bpf_config_sockops_has_pid(void)
{
	static int has = -1;
	if (has < 0) {
		const char *force = getenv("WEFT_SOCKOPS_FALLBACK");
		if (force && *force && strcmp(force, "0") != 0)
			has = 0;
		else
			has = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_get_current_pid_tgid, NULL) > 0;
	}
	return has;
}

/* Does tracefs list the tracepoint group/name? */
static bool tracefs_event(const char *group, const char *name)
{
	static const char *const roots[] = { "/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events" };
	for (size_t i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
		char path[160];
		snprintf(path, sizeof(path), "%s/%s/%s", roots[i], group, name);
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

/* The socket-layer tracepoints (Linux 6.3+), as tracefs lists them. */
static bool socket_tracepoints(void)
{
	return tracefs_event("sock", "sock_recv_length") && tracefs_event("sock", "sock_send_length") &&
	       tracefs_event("sock", "inet_sock_set_state");
}

enum capture_front bpf_config_capture_front(const char **why)
{
	static enum capture_front front = CAPTURE_FRONT_AUTO;
	static const char *reason;
	if (front == CAPTURE_FRONT_AUTO) {
		const char *force = getenv("WEFT_CAPTURE_FRONT");
		if (force && strcmp(force, "syscall") == 0) {
			front = CAPTURE_FRONT_SYSCALL;
			reason = "WEFT_CAPTURE_FRONT=syscall";
		} else if (socket_tracepoints()) {
			front = CAPTURE_FRONT_SOCKET;
			reason = "sock:sock_{send,recv}_length and sock:inet_sock_set_state exist: no syscall "
				 "tracepoint taxes the host's other processes";
		} else {
			front = CAPTURE_FRONT_SYSCALL;
			reason = "this kernel has no sock:sock_{send,recv}_length tracepoints (Linux < 6.3): syscall "
				 "tracepoints instead, which slow every syscall on the host a little";
		}
	}
	if (why)
		*why = reason;
	return front;
}

const char *bpf_config_capture_front_name(enum capture_front f)
{
	return f == CAPTURE_FRONT_SOCKET ? "socket" : "syscall";
}

int capture_bpf_configure(struct capture_bpf *skel, const struct capture_opts *o)
{
	bool sock = bpf_config_capture_front(NULL) == CAPTURE_FRONT_SOCKET;
	struct bpf_program *syscall_progs[] = {
		skel->progs.sys_enter_io,	 skel->progs.sys_exit_io,	skel->progs.sys_exit_accept,
		skel->progs.sys_exit_accept4, skel->progs.sys_exit_connect, skel->progs.sys_enter_close,
	};
	test_refusal(skel->obj);
	for (size_t i = 0; i < sizeof(syscall_progs) / sizeof(syscall_progs[0]); i++)
		bpf_program__set_autoload(syscall_progs[i], !sock);
	bpf_program__set_autoload(skel->progs.sock_recv, sock);
	bpf_program__set_autoload(skel->progs.sock_send, sock);
	bpf_program__set_autoload(skel->progs.sock_state, sock);
	skel->rodata->socket_front = sock;
	/* The socket front's programs are raw tracepoints, and a tail call stays
	 * within one program type: the stream protocols' forwarding programs
	 * (which read nothing of their context) are made raw tracepoints too. */
#define WEFT_PROTOCOL(NAME, id, value, flags)                                                  \
	if (sock && ((flags) & WEFT_PROTO_F_STREAM)) {                                         \
		struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, #id "_forward"); \
		if (p)                                                                         \
			bpf_program__set_type(p, BPF_PROG_TYPE_RAW_TRACEPOINT);                \
	}
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
	/* connect()'s entry is only needed by the sockops fallback. */
	bpf_program__set_autoload(skel->progs.sys_enter_connect, !bpf_config_sockops_has_pid());
	skel->rodata->self_tgid = o->self_tgid;
	skel->rodata->trace_all = o->trace_all;
	skel->rodata->discovery = o->discovery;
	bpf_program__set_autoload(skel->progs.sock_listen, o->discovery);
	skel->rodata->req_capture = o->req_capture;
	skel->rodata->drop_sampled_out = o->drop_sampled_out;
	skel->rodata->resp_capture = o->resp_capture;
	if (o->ringbuf_bytes) {
		int err = bpf_map__set_max_entries(skel->maps.events, o->ringbuf_bytes);
		if (err) {
			log_error("ring buffer size %u: %s", o->ringbuf_bytes, strerror(-err));
			return err;
		}
	}
	return 0;
}

struct bpf_program *propagation_bpf_sockops(struct propagation_bpf *skel)
{
	return bpf_config_sockops_has_pid() ? skel->progs.weft_sockops : skel->progs.weft_sockops_cpu;
}

int propagation_bpf_configure(struct propagation_bpf *skel, bool trace_all, uint32_t self_tgid, bool tcp)
{
	bool pid = bpf_config_sockops_has_pid();
	test_refusal(skel->obj);
	/* Without the syscall front's entry note, sk_msg reads the fd of the
	 * write it runs in from the task's saved registers. */
	skel->rodata->fd_from_regs = bpf_config_capture_front(NULL) == CAPTURE_FRONT_SOCKET;
	bpf_program__set_autoload(skel->progs.weft_sockops, pid);
	bpf_program__set_autoload(skel->progs.weft_sockops_cpu, !pid);
	skel->rodata->self_tgid = self_tgid;
	skel->rodata->trace_all = trace_all;
	skel->rodata->tcp_opt = tcp && pid;
	return 0;
}

int go_bpf_configure(struct go_bpf *skel, bool trace_all, uint32_t self_tgid)
{
	test_refusal(skel->obj);
	skel->rodata->self_tgid = self_tgid;
	skel->rodata->trace_all = trace_all;
	return 0;
}

int tls_bpf_configure(struct tls_bpf *skel, const struct capture_opts *o)
{
	/* The plaintext runs the capture front's own on_data: the same settings. */
	test_refusal(skel->obj);
	skel->rodata->socket_front = bpf_config_capture_front(NULL) == CAPTURE_FRONT_SOCKET;
	skel->rodata->self_tgid = o->self_tgid;
	skel->rodata->trace_all = o->trace_all;
	skel->rodata->req_capture = o->req_capture;
	skel->rodata->drop_sampled_out = o->drop_sampled_out;
	skel->rodata->resp_capture = o->resp_capture;
	/* The uprobes tail-call the stream protocols' forwarding programs
	 * (HTTP/2 over TLS), and a tail call stays within one program type:
	 * this object's copies are kprobe programs (they read nothing of
	 * their context). */
#define WEFT_PROTOCOL(NAME, id, value, flags)                                                  \
	if ((flags) & WEFT_PROTO_F_STREAM) {                                                   \
		struct bpf_program *p = bpf_object__find_program_by_name(skel->obj, #id "_forward"); \
		if (p)                                                                         \
			bpf_program__set_type(p, BPF_PROG_TYPE_KPROBE);                        \
	}
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
	/* One link per program and file where the kernel has uprobe_multi
	 * (uprobes.h): every kprobe-type program of the object, tail-called
	 * ones included (a tail call needs the same attach type). */
	uprobes_prepare(skel->obj);
	return 0;
}

/* Is this verifier log line a statistic rather than the reason? */
static bool stat_line(const char *l, size_t n)
{
	return n == 0 || !strncmp(l, "processed ", 10) || !strncmp(l, "verification time", 17) ||
	       !strncmp(l, "stack depth", 11);
}

void bpf_config_explain_refusal(const char *object, int err, bool fatal, const char *without)
{
	enum log_level lv = fatal ? LOG_ERROR : LOG_WARN;
	struct utsname u;
	const char *tail = "", *prog = log_refused_program(&tail);
	if (uname(&u))
		snprintf(u.release, sizeof(u.release), "?");
	log_msg(lv, "the kernel (%s) refused BPF program %s/%s: %s", u.release, object, prog ? prog : "?",
		strerror(-err));
	/* The verifier's reason is its last line before the statistics. */
	const char *reason = NULL, *processed = NULL;
	size_t reason_n = 0, processed_n = 0;
	for (const char *l = tail; *l;) {
		size_t n = strcspn(l, "\n");
		if (!strncmp(l, "processed ", 10)) {
			processed = l;
			processed_n = n;
		} else if (!stat_line(l, n)) {
			reason = l;
			reason_n = n;
		}
		l += n + (l[n] == '\n');
	}
	if (reason)
		log_msg(lv, "  verifier: %.*s", (int)reason_n, reason);
	if (processed)
		log_msg(lv, "  verifier: %.*s", (int)processed_n, processed);
	log_msg(lv, "  %s", without);
	log_msg(lv, "  'weft doctor' lists which of weft's programs this kernel accepts; please send its output "
		    "with a bug report");
	log_refusal_clear();
}
