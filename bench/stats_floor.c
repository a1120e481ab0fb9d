// SPDX-License-Identifier: GPL-2.0 OR BSD-3-Clause
/* bench/stats_floor: attaches the no-op programs of stats_floor.bpf.c,
 * prints "ready", and detaches them when SIGINT or SIGTERM comes (or its
 * standard input closes). Used by bench/go_overhead during its bpf_stats
 * run; see stats_floor.bpf.c. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "stats_floor.skel.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	stopping = 1;
}

int main(void)
{
	struct stats_floor_bpf *skel = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	int err;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	skel = stats_floor_bpf__open_and_load();
	if (!skel) {
		err = -errno;
		fprintf(stderr, "stats_floor: loading the no-op programs: %s\n", strerror(-err));
		return 1;
	}
	err = stats_floor_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "stats_floor: attaching to sock:sock_{recv,send}_length: %s (kernel before 6.3?)\n",
			strerror(-err));
		goto cleanup;
	}
	printf("ready\n");
	fflush(stdout);
	/* Until a signal or the end of standard input (read 0, or an error
	 * such as a closed descriptor, which poll reports at once). */
	while (!stopping) {
		struct pollfd in = { .fd = STDIN_FILENO, .events = POLLIN };
		char c;
		if (poll(&in, 1, -1) > 0 && read(STDIN_FILENO, &c, 1) <= 0)
			break;
	}
cleanup:
	stats_floor_bpf__destroy(skel);
	return err ? 1 : 0;
}
