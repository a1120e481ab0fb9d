#include <errno.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "bpf_config.h"
#include "go.skel.h"
#include "log.h"
#include "propagation.skel.h"
#include "sockets.skel.h"

int sockets_bpf_configure(struct sockets_bpf *skel, const struct sockets_opts *o)
{
	skel->rodata->self_tgid = o->self_tgid;
	skel->rodata->trace_all = o->trace_all;
	skel->rodata->req_capture = o->req_capture;
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

int propagation_bpf_configure(struct propagation_bpf *skel, bool trace_all, uint32_t self_tgid)
{
	skel->rodata->self_tgid = self_tgid;
	skel->rodata->trace_all = trace_all;
	return 0;
}

int go_bpf_configure(struct go_bpf *skel, bool trace_all, uint32_t self_tgid)
{
	skel->rodata->self_tgid = self_tgid;
	skel->rodata->trace_all = trace_all;
	return 0;
}
