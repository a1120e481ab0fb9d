/* See map_sweep.h. */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "map_sweep.h"

#define SWEEP_MAX_KEY 64

static bool tgid_gone(uint32_t tgid)
{
	return tgid && kill((pid_t)tgid, 0) < 0 && errno == ESRCH;
}

int map_sweep_dead_tgids(int fd)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info);
	uint8_t key[SWEEP_MAX_KEY], *gone = NULL;
	size_t n = 0, cap = 0;
	int deleted = 0;

	if (fd < 0)
		return -EBADF;
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return -errno;
	if (info.key_size < sizeof(uint32_t) || info.key_size > SWEEP_MAX_KEY)
		return -EINVAL;
	/* collected first: deleting while walking a hash map restarts the walk */
	void *prev = NULL;
	while (bpf_map_get_next_key(fd, prev, key) == 0) {
		uint32_t tgid;
		memcpy(&tgid, key, sizeof(tgid));
		if (tgid_gone(tgid)) {
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 64;
				uint8_t *g = realloc(gone, nc * info.key_size);
				if (!g)
					break;
				gone = g;
				cap = nc;
			}
			memcpy(gone + n++ * info.key_size, key, info.key_size);
		}
		prev = key;
	}
	for (size_t i = 0; i < n; i++)
		deleted += bpf_map_delete_elem(fd, gone + i * info.key_size) == 0;
	free(gone);
	return deleted;
}
