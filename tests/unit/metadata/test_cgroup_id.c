/* Container ids from /proc/PID/cgroup (user/metadata/cgroup_id.c), on
 * the paths real runtimes make: docker, containerd (CRI), cri-o, podman;
 * systemd and cgroupfs drivers; cgroup v2 and v1; and what is no
 * container (a runtime's monitor, a systemd service, the root). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup_id.h"

#define ID "3f4d5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f80"
#define UID "0c8d7a2b-1e3f-4a5b-9c6d-7e8f9a0b1c2d"
#define UID_ "0c8d7a2b_1e3f_4a5b_9c6d_7e8f9a0b1c2d"

struct sample {
	const char *text;
	const char *id;	     /* NULL: no container */
	const char *runtime; /* NULL: unknown */
	const char *pod_uid; /* "" */
};

static const struct sample samples[] = {
	/* containerd (CRI), systemd driver, cgroup v2 */
	{ "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/cri-containerd-" ID ".scope\n",
	  ID, "containerd", UID },
	/* burstable and guaranteed QoS */
	{ "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_ ".slice/cri-containerd-" ID ".scope\n",
	  ID, "containerd", UID },
	{ "0::/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID ".scope\n", ID, "containerd", UID },
	/* cgroupfs driver (kubelet --cgroup-driver=cgroupfs), v1: every controller line */
	{ "12:pids:/kubepods/besteffort/pod" UID "/" ID "\n11:memory:/kubepods/besteffort/pod" UID "/" ID
	  "\n1:name=systemd:/kubepods/besteffort/pod" UID "/" ID "\n0::/\n",
	  ID, NULL, UID },
	{ "0::/kubepods/burstable/pod" UID "/" ID "\n", ID, NULL, UID },
	/* cri-o, systemd and cgroupfs */
	{ "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/crio-" ID ".scope\n", ID,
	  "cri-o", UID },
	{ "0::/kubepods/pod" UID "/crio-" ID "\n", ID, "cri-o", UID },
	/* cri-o's monitor is not the container */
	{ "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_ ".slice/crio-conmon-" ID ".scope\n",
	  NULL, NULL, "" },
	/* docker: systemd driver v2, cgroupfs v1, nested cgroups made inside the container */
	{ "0::/system.slice/docker-" ID ".scope\n", ID, "docker", "" },
	{ "12:devices:/docker/" ID "\n4:memory:/docker/" ID "\n0::/system.slice/containerd.service\n", ID, "docker", "" },
	{ "0::/system.slice/docker-" ID ".scope/init.scope\n", ID, "docker", "" },
	/* podman: systemd (root and rootless), cgroupfs; conmon is not it */
	{ "0::/machine.slice/libpod-" ID ".scope/container\n", ID, "podman", "" },
	{ "0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID ".scope\n", ID, "podman", "" },
	{ "0::/libpod_parent/libpod-" ID "\n", ID, "podman", "" },
	{ "0::/machine.slice/libpod-conmon-" ID ".scope\n", NULL, NULL, "" },
	/* containerd without Kubernetes (nerdctl) */
	{ "0::/system.slice/nerdctl-x.slice/cri-containerd-" ID ".scope\n", ID, "containerd", "" },
	/* no container */
	{ "0::/\n", NULL, NULL, "" },
	{ "0::/system.slice/nginx.service\n", NULL, NULL, "" },
	{ "4:memory:/process_api/c9ece54d9be35d592f83aed44e58ac65\n0::/\n", NULL, NULL, "" },
	{ "0::/docker-" ID "x.scope\n", NULL, NULL, "" },		    /* 65 digits */
	{ "0::/docker-3F4D5E6A7B8C9D0E1F2A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F80.scope\n", NULL, NULL, "" }, /* uppercase */
	{ "", NULL, NULL, "" },
	{ "garbage without colons", NULL, NULL, "" },
};

static void test_samples(void **state)
{
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		const struct sample *s = &samples[i];
		struct cgroup_container c;
		memset(&c, 0x55, sizeof(c));
		bool found = cgroup_container_parse(s->text, strlen(s->text), &c);
		if (found != (s->id != NULL))
			fail_msg("sample %zu: found=%d: %s", i, found, s->text);
		if (!found)
			continue;
		if (strcmp(c.id, s->id))
			fail_msg("sample %zu: id %s", i, c.id);
		if ((c.runtime == NULL) != (s->runtime == NULL) || (c.runtime && strcmp(c.runtime, s->runtime)))
			fail_msg("sample %zu: runtime %s", i, c.runtime ? c.runtime : "(none)");
		if (strcmp(c.pod_uid, s->pod_uid))
			fail_msg("sample %zu: pod uid '%s'", i, c.pod_uid);
	}
}

static void test_v2_line_first(void **state)
{
	/* A v1 controller still in a container the process left (v2 moved on). */
	const char *t = "4:memory:/docker/" ID "\n0::/kubepods.slice/kubepods-pod" UID_
			".slice/cri-containerd-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.scope\n";
	struct cgroup_container c;
	assert_true(cgroup_container_parse(t, strlen(t), &c));
	assert_string_equal(c.id, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	assert_string_equal(c.runtime, "containerd");
}

static void test_unterminated(void **state)
{
	/* No trailing newline, and a length that cuts the id. */
	const char *t = "0::/system.slice/docker-" ID ".scope";
	struct cgroup_container c;
	assert_true(cgroup_container_parse(t, strlen(t), &c));
	assert_false(cgroup_container_parse(t, strlen(t) - 10, &c));
}

/* A component that looks like a pod's but is no uid leaves the uid found
 * above it, or none, and always NUL-terminated (once it was copied half,
 * without its NUL: fuzz_metadata). */
static void test_pod_uid_not_half_copied(void **state)
{
	const char *t = "0::/kubepods/pod1111111111111111111111111111111111zz/" ID "\n";
	const char *u = "0::/kubepods/pod" UID "/pod2222222222222222222222222222222222zz/" ID "\n";
	struct cgroup_container c;
	memset(&c, 'U', sizeof(c));
	assert_true(cgroup_container_parse(t, strlen(t), &c));
	assert_string_equal(c.pod_uid, "");
	memset(&c, 'U', sizeof(c));
	assert_true(cgroup_container_parse(u, strlen(u), &c));
	assert_string_equal(c.pod_uid, UID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_samples),
		cmocka_unit_test(test_v2_line_first),
		cmocka_unit_test(test_unterminated),
		cmocka_unit_test(test_pod_uid_not_half_copied),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
