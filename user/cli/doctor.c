/* Feature probes: each loads (and where it matters attaches) a tiny
 * program from bpf/doctor.bpf.c instead of trusting kernel config. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "bpf_config.h"
#include "doctor.h"
#include "doctor.skel.h"
#include "log.h"
#include "mounts.h"
#include "progcheck.h"
#include "tls_lib.h"

struct probe_result {
	bool ok;
	char detail[160];
};

/* A function of our own for the uprobe probe to attach to. */
__attribute__((noinline)) int doctor_uprobe_target(int x)
{
	__asm__ volatile("" ::: "memory");
	return x + 1;
}

static void line(bool ok, const char *feature, const char *detail, const char *consequence)
{
	printf("  %-4s %-22s %s%s%s\n", ok ? "ok" : "no", feature, detail, consequence && *consequence ? ": " : "",
	       consequence ? consequence : "");
}

/* Opens the doctor object with only `name` autoloaded and loads it. */
static struct doctor_bpf *load_only(const char *name, int *err)
{
	struct doctor_bpf *skel = doctor_bpf__open();
	struct bpf_program *p;
	if (!skel) {
		*err = -errno;
		return NULL;
	}
	bpf_object__for_each_program(p, skel->obj)
		bpf_program__set_autoload(p, strcmp(bpf_program__name(p), name) == 0);
	*err = doctor_bpf__load(skel);
	if (*err) {
		doctor_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

static struct bpf_program *prog(struct doctor_bpf *skel, const char *name)
{
	return bpf_object__find_program_by_name(skel->obj, name);
}

static void probe_load_attach(const char *name, struct probe_result *r,
			      struct bpf_link *(*attach)(struct bpf_program *p, void *arg), void *arg)
{
	int err;
	struct doctor_bpf *skel = load_only(name, &err);
	if (!skel) {
		snprintf(r->detail, sizeof(r->detail), "load refused (%s)", strerror(-err));
		return;
	}
	if (attach) {
		struct bpf_link *l = attach(prog(skel, name), arg);
		if (!l) {
			snprintf(r->detail, sizeof(r->detail), "loads, attach failed (%s)", strerror(errno));
			doctor_bpf__destroy(skel);
			return;
		}
		bpf_link__destroy(l);
	}
	r->ok = true;
	snprintf(r->detail, sizeof(r->detail), attach ? "loaded and attached" : "loaded");
	doctor_bpf__destroy(skel);
}

static struct bpf_link *attach_tp(struct bpf_program *p, void *arg)
{
	return bpf_program__attach_tracepoint(p, "syscalls", "sys_enter_getppid");
}

static struct bpf_link *attach_kprobe(struct bpf_program *p, void *arg)
{
	return bpf_program__attach_kprobe(p, false, "tcp_sendmsg");
}

static struct bpf_link *attach_uprobe(struct bpf_program *p, void *arg)
{
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = "doctor_uprobe_target");
	return bpf_program__attach_uprobe_opts(p, getpid(), "/proc/self/exe", 0, &opts);
}

static struct bpf_link *attach_fentry(struct bpf_program *p, void *arg)
{
	return bpf_program__attach_trace(p);
}

/* sockops on a throwaway child cgroup of the cgroup v2 mount, and sk_msg on
 * a sockhash: what traceparent injection needs. */
static void probe_sockops(const char *cg2, struct probe_result *r)
{
	int err, cgfd = -1;
	char dir[512];
	struct doctor_bpf *skel = NULL;
	struct bpf_link *l = NULL;

	if (!cg2) {
		snprintf(r->detail, sizeof(r->detail), "no cgroup v2 mount");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/weft-doctor-%d", cg2, getpid());
	if (mkdir(dir, 0755) && errno != EEXIST) {
		snprintf(r->detail, sizeof(r->detail), "cannot create a cgroup (%s)", strerror(errno));
		return;
	}
	cgfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	skel = load_only("probe_sockops", &err);
	if (!skel || cgfd < 0) {
		snprintf(r->detail, sizeof(r->detail), "sockops load refused (%s)", strerror(skel ? errno : -err));
		goto out;
	}
	l = bpf_program__attach_cgroup(prog(skel, "probe_sockops"), cgfd);
	if (!l) {
		snprintf(r->detail, sizeof(r->detail), "sockops attach failed (%s)", strerror(errno));
		goto out;
	}
	bpf_link__destroy(l);
	doctor_bpf__destroy(skel);
	skel = load_only("probe_sk_msg", &err);
	if (!skel) {
		snprintf(r->detail, sizeof(r->detail), "sk_msg load refused (%s)", strerror(-err));
		goto out;
	}
	int pfd = bpf_program__fd(prog(skel, "probe_sk_msg"));
	int mfd = bpf_map__fd(skel->maps.probe_sockhash);
	if (bpf_prog_attach(pfd, mfd, BPF_SK_MSG_VERDICT, 0)) {
		snprintf(r->detail, sizeof(r->detail), "sk_msg attach failed (%s)", strerror(errno));
		goto out;
	}
	bpf_prog_detach2(pfd, mfd, BPF_SK_MSG_VERDICT);
	r->ok = true;
	snprintf(r->detail, sizeof(r->detail), "attached to a cgroup under %s", cg2);
out:
	doctor_bpf__destroy(skel);
	if (cgfd >= 0)
		close(cgfd);
	rmdir(dir);
}

static void read_lockdown(char *out, size_t len)
{
	char buf[256];
	snprintf(out, len, "unknown");
	if (!mounts_has_fs("securityfs", NULL, 0))
		mount("securityfs", "/sys/kernel/security", "securityfs", 0, NULL);
	FILE *f = fopen("/sys/kernel/security/lockdown", "r");
	if (!f)
		return;
	if (fgets(buf, sizeof(buf), f)) {
		/* "none [integrity] confidentiality": the bracketed one is active. */
		char *l = strchr(buf, '['), *rb = l ? strchr(l, ']') : NULL;
		if (l && rb)
			snprintf(out, len, "%.*s", (int)(rb - l - 1), l + 1);
	}
	fclose(f);
}

/* The feature probes, one line each; false if weft cannot run. */
static bool probe_features(const struct utsname *u)
{
	char where[512], cg2[512], detail[256], lockdown[64];
	struct probe_result r;
	bool essential = true;

	printf("weft doctor: Linux %s (%s)\n", u->release, u->machine);

	bool tracefs = mounts_has_fs("tracefs", where, sizeof(where));
	line(tracefs, "tracefs", tracefs ? where : "not mounted", tracefs ? "" : "weft mounts it on /sys/kernel/tracing");
	bool bpffs = mounts_has_fs("bpf", where, sizeof(where));
	line(bpffs, "bpffs", bpffs ? where : "not mounted", bpffs ? "" : "weft mounts it on /sys/fs/bpf");
	bool has_cg2 = mounts_has_fs("cgroup2", cg2, sizeof(cg2));
	line(has_cg2, "cgroup v2", has_cg2 ? cg2 : "not mounted",
	     has_cg2 ? "" : "no traceparent injection (sockops needs cgroup v2)");
	if (mounts_ensure())
		essential = false;

	struct btf *btf = btf__load_vmlinux_btf();
	line(btf != NULL, "BTF", btf ? "/sys/kernel/btf/vmlinux" : "missing",
	     btf ? "CO-RE relocations work" : "weft cannot run: needs a kernel with CONFIG_DEBUG_INFO_BTF");
	essential &= btf != NULL;
	btf__free(btf);

	int rb = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "weft_probe", 0, 0, 4096, NULL);
	line(rb >= 0, "ring buffer", rb >= 0 ? "BPF_MAP_TYPE_RINGBUF" : strerror(errno),
	     rb >= 0 ? "" : "weft cannot run: needs Linux 5.8+");
	essential &= rb >= 0;
	if (rb >= 0)
		close(rb);

	memset(&r, 0, sizeof(r));
	probe_load_attach("probe_tracepoint", &r, attach_tp, NULL);
	line(r.ok, "syscall tracepoints", r.detail, r.ok ? "HTTP capture works" : "weft cannot run");
	essential &= r.ok;

	const char *why;
	enum capture_front front = bpf_config_capture_front(&why);
	snprintf(detail, sizeof(detail), "%s front", bpf_config_capture_front_name(front));
	line(true, "capture front", detail, why);
	line(bpf_config_sockops_has_pid(), "sockops process id", bpf_config_sockops_has_pid()
							? "bpf_get_current_pid_tgid"
							: "not callable from sockops",
	     bpf_config_sockops_has_pid() ? "" : "a connecting socket's owner comes from connect()'s entry");

	memset(&r, 0, sizeof(r));
	probe_load_attach("probe_uprobe", &r, attach_uprobe, NULL);
	line(r.ok, "uprobes", r.detail, r.ok ? "Go goroutine tracking possible" : "no Go goroutine-aware parenting");

	/* The host's OpenSSL (what `weft run` probes in every process); a
	 * process's own finding is `weft inspect PID`'s. */
	struct tls_lib lib;
	char tls_detail[400];
	bool tls_ok = r.ok && tls_lib_find((uint32_t)getpid(), &lib) == 0;
	if (tls_ok)
		snprintf(tls_detail, sizeof(tls_detail), "%s (%s)", lib.shown,
			 lib.version[0] ? lib.version : "version unknown");
	line(tls_ok, "OpenSSL", tls_ok ? tls_detail : r.ok ? "no libssl on this host" : "no uprobes",
	     tls_ok ? "HTTPS plaintext read (per process: weft inspect PID, also for OpenSSL linked into a program)"
		    : "TLS connections of OpenSSL programs get no spans");

	memset(&r, 0, sizeof(r));
	probe_load_attach("probe_kprobe", &r, attach_kprobe, NULL);
	line(r.ok, "kprobes", r.detail, "not needed: weft uses syscall tracepoints");

	memset(&r, 0, sizeof(r));
	probe_load_attach("probe_fentry", &r, attach_fentry, NULL);
	line(r.ok, "fentry/fexit", r.detail, "not needed: weft uses syscall tracepoints");

	memset(&r, 0, sizeof(r));
	probe_sockops(has_cg2 ? cg2 : NULL, &r);
	line(r.ok, "sockops + sk_msg", r.detail,
	     r.ok ? "traceparent injection possible" : "no traceparent injection (spans still captured)");

	/* --propagation headers,tcp: the header option helpers, and sockops
	 * that can tell the process (a traced server answers the hello). */
	bool hdr_opt = libbpf_probe_bpf_helper(BPF_PROG_TYPE_SOCK_OPS, BPF_FUNC_store_hdr_opt, NULL) > 0;
	bool tcp_ok = r.ok && hdr_opt && bpf_config_sockops_has_pid();
	line(tcp_ok, "TCP header options", hdr_opt ? "bpf_store_hdr_opt, bpf_load_hdr_opt" : "not available",
	     tcp_ok ? "--propagation headers,tcp joins traces across TLS between traced processes"
	     : !r.ok ? "no context across TLS (sockops unusable)"
	     : !hdr_opt ? "no context across TLS (needs Linux 5.10+)"
		       : "no context across TLS (sockops cannot tell the process: needs Linux 6.10+)");

	memset(&r, 0, sizeof(r));
	probe_load_attach("probe_bpf_loop", &r, NULL, NULL);
	line(r.ok, "bpf_loop", r.detail, r.ok ? "response lengths tracked in the kernel" : "weft cannot run: needs Linux 5.17+");
	essential &= r.ok;

	memset(&r, 0, sizeof(r));
	read_lockdown(lockdown, sizeof(lockdown));
	probe_load_attach("probe_write_user", &r, NULL, NULL);
	snprintf(detail, sizeof(detail), "%s (lockdown: %s)", r.detail, lockdown);
	line(r.ok, "bpf_probe_write_user", detail, "not needed: weft injects headers with sk_msg");

	return essential;
}

/* What weft does when this kernel refuses a program of object (as the
 * loaders decide: capture.c stops, propagation.c and go.c go on). */
static const char *without(const char *object, bool *fatal)
{
	*fatal = strcmp(object, "capture") == 0;
	if (*fatal)
		return "weft captures no traffic";
	if (strcmp(object, "propagation") == 0)
		return "weft runs without injecting traceparent";
	if (strcmp(object, "tls") == 0)
		return "weft runs without its TLS probes (HTTPS and TLS database sessions get no spans)";
	return "weft runs without its Go uprobes (no goroutine-aware parents)";
}

/* Is an earlier program of res[i]'s object refused? */
static bool object_refused_before(const struct progcheck_result *res, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (!res[k].loaded && strcmp(res[k].object, res[i].object) == 0)
			return true;
	return false;
}

/* weft's own programs, each loaded on its own: 0 when all load within
 * weft's ceilings, 1 when weft cannot run, 2 when one is refused but weft
 * runs without it or all load but one is over the ceilings. */
static int check_programs(const char *release)
{
	struct progcheck_result *res = NULL;
	size_t n = 0;
	int refused = 0, over = 0, ret = 0;
	bool fatal;

	printf("weft's own programs on this kernel (%s):\n", release);
	if (progcheck_run(&res, &n)) {
		printf("  the check could not run: see the error above\n");
		return 1;
	}
	progcheck_print(stdout, res, n, "  ");
	for (size_t i = 0; i < n; i++) {
		over += res[i].loaded && progcheck_failed(&res[i]);
		if (res[i].loaded)
			continue;
		refused++;
		const char *consequence = without(res[i].object, &fatal);
		ret = fatal ? 1 : ret ? ret : 2;
		if (!object_refused_before(res, i))
			printf("the kernel refuses %s/%s: %s.\n", res[i].object, res[i].program, consequence);
	}
	if (refused)
		printf("%d of %zu programs refused by Linux %s.\n", refused, n, release);
	else
		printf("all %zu programs load on Linux %s%s.\n", n, release,
		       over ? ", some above weft's ceilings (50% of the verifier's limit, 448 bytes of stack)" : "");
	free(res);
	return ret ? ret : over ? 2 : 0;
}

static const char doctor_usage[] =
	"Usage: weft doctor [--programs] [--strict]\n"
	"\n"
	"Probes this kernel by loading tiny BPF programs and prints one line per\n"
	"feature with what weft does without it, then loads each of weft's own BPF\n"
	"programs on its own, configured as weft attach does, and prints what the\n"
	"verifier made of it:\n"
	"  ok|no  object/program  N insns (P% of limit)  stack S  [reason it was refused]\n"
	"Exit 0 when weft can run: the features it needs are there and the kernel\n"
	"accepts its capture programs (without the others, it runs with less).\n"
	"\n"
	"Options:\n"
	"      --programs   only check weft's own programs (no feature probes)\n"
	"      --strict     also exit 1 when a program makes the verifier process more\n"
	"                   than 500,000 instructions (half its limit) or uses more than\n"
	"                   448 bytes of stack (of its 512): what the kernel matrix\n"
	"                   (make test-kernels) and the unit tests require\n"
	"  -h, --help       this help\n";

int doctor_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "programs", no_argument, NULL, 'P' },
		{ "strict", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	bool programs_only = false, strict = false;
	struct utsname u;
	int c, progs;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'P': programs_only = true; break;
		case 'S': strict = true; break;
		case 'h': fputs(doctor_usage, stdout); return 0;
		default: fputs(doctor_usage, stderr); return 2;
		}
	}
	if (optind < argc) {
		log_error("doctor: unexpected argument '%s' (see weft doctor --help)", argv[optind]);
		return 2;
	}
	log_setup_libbpf(); /* refusals are expected: no libbpf noise */
	uname(&u);
	if (programs_only) {
		progs = check_programs(u.release);
		return progs == 1 || (strict && progs) ? 1 : 0;
	}
	bool essential = probe_features(&u);
	printf("\n");
	progs = check_programs(u.release);
	if (progs == 1)
		essential = false;
	printf(essential ? "weft can run here.\n" : "weft cannot run here: see the lines above.\n");
	return !essential || (strict && progs) ? 1 : 0;
}
