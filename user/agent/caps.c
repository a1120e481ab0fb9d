/* Capabilities: what each one is for, and what weft does without it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "caps.h"
#include "log.h"

#define CAP_DAC_READ_SEARCH 2
#define CAP_NET_ADMIN 12
#define CAP_SYS_PTRACE 19
#define CAP_SYS_ADMIN 21
#define CAP_PERFMON 38
#define CAP_BPF 39

static bool has(uint64_t eff, int cap)
{
	return (eff >> cap) & 1;
}

uint64_t caps_effective(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long long eff = ~0ull;
	if (!f)
		return eff;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &eff) == 1)
			break;
	fclose(f);
	return eff;
}

int caps_check(uint64_t eff, bool *propagation)
{
	/* CAP_SYS_ADMIN implies CAP_BPF and CAP_PERFMON (bpf_capable(), perfmon_capable()). */
	bool admin = has(eff, CAP_SYS_ADMIN);
	int err = 0;
	if (!admin && !has(eff, CAP_BPF)) {
		log_error("missing capability CAP_BPF: weft cannot load its BPF programs and maps (give weft CAP_BPF, "
			  "CAP_PERFMON, CAP_NET_ADMIN and CAP_SYS_PTRACE: docs/DEPLOY.md)");
		err = -EPERM;
	}
	if (!admin && !has(eff, CAP_PERFMON)) {
		log_error("missing capability CAP_PERFMON: weft cannot attach to tracepoints and uprobes, nor read "
			  "kernel memory from its programs (docs/DEPLOY.md)");
		err = -EPERM;
	}
	if (err)
		return err;
	if (*propagation && !has(eff, CAP_NET_ADMIN)) {
		log_warn("missing capability CAP_NET_ADMIN: no traceparent injection (sockops and sk_msg attach to a "
			 "cgroup); give it, or run with --propagation off to silence this");
		*propagation = false;
	}
	if (!has(eff, CAP_SYS_PTRACE))
		log_warn("missing capability CAP_SYS_PTRACE: the executables, environment (OTEL_SERVICE_NAME) and "
			 "listening ports of other users' processes cannot be read");
	return 0;
}
