/* Container ids in cgroup paths. Runtimes name a container's cgroup after
 * its 64-hex-digit id, with a prefix saying who made it:
 *   systemd driver: .../docker-<id>.scope, .../cri-containerd-<id>.scope,
 *                   .../crio-<id>.scope, .../libpod-<id>.scope
 *   cgroupfs driver: /docker/<id>, /kubepods/<qos>/pod<uid>/<id>,
 *                   /kubepods/pod<uid>/crio-<id>, /libpod_parent/libpod-<id>
 * A runtime's monitor (crio-conmon-<id>, libpod-conmon-<id>) is not the
 * container. The deepest component that names a container wins (a
 * container may make cgroups of its own below it). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgroup_id.h"

static const struct {
	const char *prefix;
	const char *runtime;
} prefixes[] = {
	{ "cri-containerd-", "containerd" },
	{ "docker-", "docker" },
	{ "crio-", "cri-o" },
	{ "libpod-", "podman" },
	{ "containerd-", "containerd" },
};

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A path component naming a container: its id and runtime (NULL: unknown). */
static bool component_id(const char *c, size_t n, char *id, const char **runtime)
{
	if (n > 6 && !memcmp(c + n - 6, ".scope", 6))
		n -= 6;
	*runtime = NULL;
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t pl = strlen(prefixes[i].prefix);
		if (n > pl && !memcmp(c, prefixes[i].prefix, pl)) {
			c += pl;
			n -= pl;
			*runtime = prefixes[i].runtime;
			break;
		}
	}
	if (n != CONTAINER_ID_MAX || !all_hex(c, n))
		return false; /* includes the monitors: "conmon-<id>" */
	memcpy(id, c, n);
	id[n] = '\0';
	return true;
}

/* "pod<uid>" (cgroupfs) or "kubepods-<qos>-pod<uid_with_underscores>.slice". */
static void component_pod_uid(const char *c, size_t n, char *out, size_t outlen)
{
	const char *p = NULL;
	if (n > 6 && !memcmp(c + n - 6, ".slice", 6))
		n -= 6;
	for (size_t i = 0; i + 3 < n; i++) {
		if (!memcmp(c + i, "pod", 3) && (i == 0 || c[i - 1] == '-')) {
			p = c + i + 3;
			break;
		}
	}
	if (!p)
		return;
	size_t len = c + n - p;
	char uid[64];
	if (len < 32 || len >= outlen || len >= sizeof(uid)) /* a uid: 36 characters with dashes */
		return;
	/* Checked whole before out changes: a component that is no uid
	 * leaves the one found above it (once, a half-copied uid without its
	 * NUL; found by fuzz_metadata). */
	for (size_t i = 0; i < len; i++) {
		char ch = p[i] == '_' ? '-' : p[i];
		if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || ch == '-'))
			return;
		uid[i] = ch;
	}
	memcpy(out, uid, len);
	out[len] = '\0';
}

/* One cgroup path: the deepest container component, the pod uid above it. */
static bool path_container(const char *path, size_t len, struct cgroup_container *out)
{
	const char *end = path + len, *found = NULL;
	char id[CONTAINER_ID_MAX + 1];
	const char *runtime = NULL;
	/* Components from the deepest up. */
	const char *c_end = end;
	while (c_end > path) {
		const char *c = c_end;
		while (c > path && c[-1] != '/')
			c--;
		if (component_id(c, c_end - c, id, &runtime)) {
			found = c;
			break;
		}
		c_end = c > path ? c - 1 : path;
	}
	if (!found)
		return false;
	memcpy(out->id, id, sizeof(id));
	out->runtime = runtime;
	out->pod_uid[0] = '\0';
	bool kube = false;
	/* What lies above: a pod's cgroup, or the runtime's cgroupfs parent. */
	for (const char *c = path; c < found;) {
		const char *slash = memchr(c, '/', found - c);
		size_t n = (slash ? slash : found) - c;
		if (n >= 8 && !memcmp(c, "kubepods", 8))
			kube = true;
		if (n)
			component_pod_uid(c, n, out->pod_uid, sizeof(out->pod_uid));
		if (!out->runtime && n == 6 && !memcmp(c, "docker", 6))
			out->runtime = "docker";
		if (!out->runtime && n == 13 && !memcmp(c, "libpod_parent", 13))
			out->runtime = "podman";
		c += n + 1;
	}
	if (!kube)
		out->pod_uid[0] = '\0';
	return true;
}

bool cgroup_container_parse(const char *text, size_t len, struct cgroup_container *out)
{
	/* The unified (v2) line "0::/path" first, then v1 lines in order. */
	for (int pass = 0; pass < 2; pass++) {
		for (const char *line = text; line < text + len;) {
			const char *nl = memchr(line, '\n', text + len - line);
			const char *le = nl ? nl : text + len;
			bool v2 = le - line >= 3 && !memcmp(line, "0::", 3);
			const char *c1 = memchr(line, ':', le - line);
			const char *c2 = c1 ? memchr(c1 + 1, ':', le - c1 - 1) : NULL;
			if (c2 && v2 == (pass == 0) && path_container(c2 + 1, le - c2 - 1, out))
				return true;
			line = le + 1;
		}
	}
	return false;
}

bool cgroup_container_of_pid(uint32_t pid, struct cgroup_container *out)
{
	char path[64], buf[8192];
	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	return n > 0 && cgroup_container_parse(buf, n, out);
}
