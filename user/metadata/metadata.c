/* Container and Kubernetes attributes of a process's resource, and its
 * service identity. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup_id.h"
#include "k8s_watch.h"
#include "log.h"
#include "metadata.h"
#include "proc.h"
#include "resource_attrs.h"
#include "cri_api.h"
#include "runtime_api.h"

static struct k8s_watch *k8s;

int metadata_start(const struct weft_config *cfg)
{
	struct k8s_api api = {};
	char err[512], host[256];
	int rc0;
	/* The CRI where no Docker-compatible API is (or where it is asked for):
	 * containerd's and cri-o's nodes. */
	if ((!runtime_api_configure(cfg->runtime_socket) || cfg->cri_socket) &&
	    (rc0 = cri_api_start(cfg->cri_socket)))
		log_warn("containers: CRI client not started: %s", strerror(-rc0));
	if (cfg->k8s_enable == K8S_ENABLE_OFF) {
		if (config_needs_k8s(cfg))
			log_warn("kubernetes: disabled, yet selectors name pods: they match nothing");
		return 0;
	}
	int rc = k8s_api_config(cfg->kubeconfig, &api, err, sizeof(err));
	if (rc == -ENOENT && cfg->k8s_enable == K8S_ENABLE_AUTO && !config_needs_k8s(cfg))
		return 0; /* not in a cluster: no Kubernetes metadata, as asked */
	if (rc) {
		log_error("kubernetes: %s", rc == -ENOENT ? "not in a cluster (no KUBERNETES_SERVICE_HOST) and no "
							    "kubeconfig (--kubeconfig, KUBECONFIG)"
							  : err);
		return rc == -ENOENT ? -EINVAL : rc;
	}
	const char *node = cfg->node_name;
	if (!node) {
		if (gethostname(host, sizeof(host)))
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = '\0';
		node = host;
		log_info("kubernetes: node name from the host name '%s' (set NODE_NAME from the downward API "
			 "otherwise)", node);
	}
	rc = k8s_watch_start(&api, node, cfg->k8s_sync_timeout_ms, &k8s);
	k8s_api_free(&api);
	return rc;
}

void metadata_stop(void)
{
	if (k8s) {
		struct k8s_watch_stats st;
		k8s_watch_get_stats(k8s, &st);
		log_info("kubernetes: %llu pods of this node known; %llu lists, %llu watches, %llu events, %llu "
			 "bookmarks, %llu expired resource versions (410), %llu errors; %llu pods not kept (table full)",
			 (unsigned long long)st.pods, (unsigned long long)st.lists, (unsigned long long)st.watches,
			 (unsigned long long)st.events, (unsigned long long)st.bookmarks, (unsigned long long)st.gone,
			 (unsigned long long)st.errors, (unsigned long long)st.pods_dropped);
	}
	k8s_watch_stop(k8s);
	k8s = NULL;
	runtime_api_clear();
	if (cri_api_on()) {
		struct cri_api_stats st;
		cri_api_stop(&st);
		log_info("containers: %llu CRI ContainerStatus calls: %llu found, %llu not found, %llu failed; %llu "
			 "not asked (queue full)",
			 (unsigned long long)st.calls, (unsigned long long)st.found, (unsigned long long)st.not_found,
			 (unsigned long long)st.failed, (unsigned long long)st.dropped);
	}
}

bool metadata_k8s_on(void)
{
	return k8s != NULL;
}

uint64_t metadata_generation(void)
{
	/* Both only grow: their sum changes whenever either does. */
	return (k8s ? k8s_watch_generation(k8s) : 0) + (cri_api_on() ? cri_api_generation() : 0);
}

struct pod_meta *metadata_pod_of_container(const char *id, const struct pod_container **container)
{
	return k8s ? k8s_watch_pod_of_container(k8s, id, container) : NULL;
}

/* ---- resource ------------------------------------------------------------- */

/* The process's own OTEL_RESOURCE_ATTRIBUTES: service.name when it is not
 * set yet by OTEL_SERVICE_NAME (*own), every other key the resource lacks. */
static void own_resource_attributes(struct attr_list *attrs, uint32_t pid, bool *own)
{
	static char v[8192];
	if (proc_environ_get(pid, "OTEL_RESOURCE_ATTRIBUTES", v, sizeof(v)))
		return;
	resource_attrs_from_text(attrs, v, own);
}

/* FNV-1a, 64 bits, from seed. */
static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* A UUID that names this process for as long as it runs, the same for
 * every weft that looks at it: from the boot id, the pid and the
 * process's start time (so a reused pid is another instance). */
static void instance_id(struct attr_list *attrs, uint32_t pid)
{
	static char boot_id[64];
	char path[64], stat[1024], out[40];
	if (!boot_id[0]) {
		int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, boot_id, sizeof(boot_id) - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n <= 0)
			snprintf(boot_id, sizeof(boot_id), "unknown");
	}
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, stat, sizeof(stat) - 1) : -1;
	if (fd >= 0)
		close(fd);
	unsigned long long start = 0;
	if (n > 0) {
		stat[n] = '\0';
		/* Field 22, counted after the command's closing parenthesis. */
		const char *p = strrchr(stat, ')');
		for (int field = 2; p && field < 22; field++)
			p = strchr(p + 1, ' ');
		if (p)
			start = strtoull(p + 1, NULL, 10);
	}
	char key[160];
	int kl = snprintf(key, sizeof(key), "%s/%u/%llu", boot_id, pid, start);
	uint64_t hi = fnv1a(0xcbf29ce484222325ull, key, kl), lo = fnv1a(0x84222325cbf29ce4ull ^ hi, key, kl);
	/* Version 8 (custom), RFC 9562 variant. */
	hi = (hi & ~0xf000ull) | 0x8000ull;
	lo = (lo & ~(3ull << 62)) | (2ull << 62);
	snprintf(out, sizeof(out), "%08llx-%04llx-%04llx-%04llx-%012llx", (unsigned long long)(hi >> 32),
		 (unsigned long long)((hi >> 16) & 0xffff), (unsigned long long)(hi & 0xffff),
		 (unsigned long long)(lo >> 48), (unsigned long long)(lo & 0xffffffffffffull));
	attrs_set_str(attrs, "service.instance.id", out);
}

bool metadata_resource(struct attr_list *attrs, uint32_t pid)
{
	const struct attr *fp = attrs_get(attrs, WEFT_ATTR_SERVICE_FROM_PROCESS);
	bool own = fp && fp->type == ATTR_BOOL && fp->b, complete = true;
	struct cgroup_container cg;

	own_resource_attributes(attrs, pid, &own);
	if (cgroup_container_of_pid(pid, &cg)) {
		attrs_set_str(attrs, "container.id", cg.id);
		if (cg.runtime)
			attrs_set_str(attrs, "container.runtime", cg.runtime);
		const struct pod_container *c = NULL;
		struct pod_meta *pod = metadata_pod_of_container(cg.id, &c);
		if (pod) {
			resource_attrs_pod(attrs, pod, c, &own);
			pod_meta_put(pod);
		} else {
			if (cg.pod_uid[0])
				attrs_set_str(attrs, "k8s.pod.uid", cg.pod_uid);
			complete = !k8s;
		}
		struct runtime_info ri;
		int rc;
		if (runtime_api_container(cg.id, &ri))
			resource_attrs_runtime(attrs, &ri, &own);
		else if ((rc = cri_api_container(cg.id, &ri)) > 0)
			resource_attrs_runtime(attrs, &ri, &own);
		else if (rc == -EAGAIN)
			complete = false; /* asked by the CRI thread: spans carry it once answered */
	}
	if (!attrs_get(attrs, "service.instance.id"))
		instance_id(attrs, pid);
	/* A name of the process's own or of its workload: weft's own
	 * OTEL_SERVICE_NAME does not replace it (user/export/otlp). */
	attrs_set_bool(attrs, WEFT_ATTR_SERVICE_FROM_PROCESS, own);
	return complete;
}
