#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_config.h"
#include "log.h"
#include "mounts.h"
#include "propagation.h"
#include "propagation.skel.h"

struct propagation {
	struct propagation_bpf *skel;
	struct bpf_link *sockops_link;
	bool sk_msg_attached;
	bool sk_skb_attached;
	int cgroup_fd;
};

int propagation_start(struct capture_tracer *st, const char *cgroup, bool tcp, struct propagation **out)
{
	char root[512];
	int err;
	struct propagation *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->cgroup_fd = -1;

	if (!cgroup) {
		if (!mounts_has_fs("cgroup2", root, sizeof(root))) {
			log_error("propagation: no cgroup v2 mount; use --propagation=off or mount cgroup2");
			err = -ENOENT;
			goto fail;
		}
		cgroup = root;
	}
	p->cgroup_fd = open(cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->cgroup_fd < 0) {
		err = -errno;
		log_error("propagation: cannot open cgroup %s: %s", cgroup, strerror(-err));
		goto fail;
	}

	p->skel = propagation_bpf__open();
	if (!p->skel) {
		err = -errno;
		log_error("propagation: cannot open the BPF object: %s", strerror(-err));
		goto fail;
	}
	/* Same process filter, counters and context maps as the syscall side. */
	if ((err = capture_share_maps(st, p->skel->obj, "propagation")))
		goto fail;
	if (tcp && !bpf_config_sockops_has_pid()) {
		log_info("propagation: TCP options need sockops that can tell the process (Linux 6.10+): TLS "
			 "requests carry no context on this kernel");
		tcp = false;
	}
	if ((err = propagation_bpf_configure(p->skel, capture_trace_all(st), getpid(), tcp)))
		goto fail;
	err = propagation_bpf__load(p->skel);
	if (err) {
		/* Optional: spans are still made, only traceparent is not injected. */
		bpf_config_explain_refusal("propagation", err, false,
					   "weft goes on without injecting traceparent: spans of different "
					   "services are not joined into one trace");
		propagation_stop(p);
		*out = NULL;
		return 0;
	}

	int prog = bpf_program__fd(p->skel->progs.weft_sk_msg);
	int sockhash = bpf_map__fd(p->skel->maps.traced_socks);
	/* Attached to the map, which only weft's fds and programs hold: if weft
	 * dies, the map, the attachment and every socket's membership go too. */
	if (bpf_prog_attach(prog, sockhash, BPF_SK_MSG_VERDICT, 0)) {
		err = -errno;
		log_error("propagation: cannot attach sk_msg to the sockhash: %s", strerror(-err));
		goto fail;
	}
	p->sk_msg_attached = true;
	if (bpf_prog_attach(bpf_program__fd(p->skel->progs.weft_sk_skb), sockhash, BPF_SK_SKB_VERDICT, 0)) {
		err = -errno;
		log_error("propagation: cannot attach the sk_skb verdict to the sockhash: %s", strerror(-err));
		goto fail;
	}
	p->sk_skb_attached = true;

	p->sockops_link = bpf_program__attach_cgroup(propagation_bpf_sockops(p->skel), p->cgroup_fd);
	if (!p->sockops_link) {
		err = -errno;
		log_error("propagation: cannot attach sockops to cgroup %s: %s", cgroup, strerror(-err));
		goto fail;
	}
	log_info("propagation: injecting traceparent into the HTTP/1 requests and HTTP/2 request HEADERS%s of "
		 "traced processes in cgroup %s%s",
		 tcp ? ", and TLS requests' context into TCP options," : "", cgroup,
		 bpf_config_sockops_has_pid() ? ""
					      : " (sockops cannot tell the process on this kernel: its owner "
						"is taken from the connect() entry)");
	*out = p;
	return 0;
fail:
	propagation_stop(p);
	return err;
}

void propagation_stop(struct propagation *p)
{
	if (!p)
		return;
	bpf_link__destroy(p->sockops_link);
	if (p->sk_skb_attached)
		bpf_prog_detach2(bpf_program__fd(p->skel->progs.weft_sk_skb),
				 bpf_map__fd(p->skel->maps.traced_socks), BPF_SK_SKB_VERDICT);
	if (p->sk_msg_attached)
		bpf_prog_detach2(bpf_program__fd(p->skel->progs.weft_sk_msg),
				 bpf_map__fd(p->skel->maps.traced_socks), BPF_SK_MSG_VERDICT);
	propagation_bpf__destroy(p->skel);
	if (p->cgroup_fd >= 0)
		close(p->cgroup_fd);
	free(p);
}
