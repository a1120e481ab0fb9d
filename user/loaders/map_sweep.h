/* Per-process kernel state whose process is gone: the kernel deletes it at
 * exit, but an entry the agent writes after that (a process that exited
 * while its executable was being analysed) would stay forever. */
#ifndef WEFT_MAP_SWEEP_H
#define WEFT_MAP_SWEEP_H

/* Deletes the entries of the map (keys starting with a tgid, a u32) whose
 * process no longer exists. Returns how many, or a negative errno. */
int map_sweep_dead_tgids(int map_fd);

#endif
