#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "log.h"
#include "mounts.h"

bool mounts_has_fs(const char *fstype, char *where, size_t wherelen)
{
	FILE *f = setmntent("/proc/mounts", "r");
	struct mntent *m;
	bool found = false;
	if (!f)
		return false;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, fstype) == 0) {
			if (where)
				snprintf(where, wherelen, "%s", m->mnt_dir);
			found = true;
			break;
		}
	}
	endmntent(f);
	return found;
}

static int ensure(const char *fstype, const char *dir)
{
	if (mounts_has_fs(fstype, NULL, 0))
		return 0;
	mkdir(dir, 0755);
	if (mount(fstype, dir, fstype, 0, NULL)) {
		int err = -errno;
		log_error("cannot mount %s on %s: %s", fstype, dir, strerror(-err));
		return err;
	}
	log_info("mounted %s on %s", fstype, dir);
	return 0;
}

int mounts_ensure(void)
{
	/* libbpf finds tracepoint ids under tracefs (or debugfs/tracing). */
	struct stat st;
	if (stat("/sys/kernel/debug/tracing/events", &st) != 0) {
		int err = ensure("tracefs", "/sys/kernel/tracing");
		if (err)
			return err;
	}
	return ensure("bpf", "/sys/fs/bpf");
}
