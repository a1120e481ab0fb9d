/* tracefs and bpffs: mounted by weft when missing. */
#ifndef WEFT_MOUNTS_H
#define WEFT_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

/* Mounts tracefs and bpffs where they are missing. 0 or -errno (logged). */
int mounts_ensure(void);
bool mounts_has_fs(const char *fstype, char *where, size_t wherelen);

#endif
