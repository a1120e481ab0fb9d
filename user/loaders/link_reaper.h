/* Detaching per-process uprobes off the event thread.
 *
 * Closing a uprobe's link waits for an RCU grace period in the kernel
 * (uprobe_unregister's synchronize: 50-110 ms each on a VM here; the kernel
 * serialises the closes of perf-event uprobes, so they do not share grace
 * periods: uprobes.c makes one link of many where the kernel can). A process
 * with TLS and Go probes has several: detaching them where its exit event is
 * read stalled the event thread for half a second per process, and a
 * short-lived program that exec'd meanwhile was gone before the agent looked
 * at it. Links handed over here are destroyed by a few threads of their own. */
#ifndef WEFT_LOADERS_LINK_REAPER_H
#define WEFT_LOADERS_LINK_REAPER_H

#include <stddef.h>

struct bpf_link;

/* An attachment: a libbpf link (perf-event uprobe), or the fd of a BPF
 * link libbpf does not know (uprobe_multi: libbpf 1.1 has no API for them;
 * uprobes.c). */
struct probe_link {
	struct bpf_link *link;
	int fd;
};

/* Starts the reaper threads. Until then (or if starting fails) links put
 * are destroyed by the caller. Returns 0 or a negative errno. */
int link_reaper_start(void);

/* Hands l (may be NULL) over: destroyed soon, on a reaper thread. */
void link_reaper_put(struct bpf_link *l);

/* The same for either kind of attachment. */
void link_reaper_put_probe(struct probe_link l);

/* Links handed over and not yet destroyed. */
size_t link_reaper_pending(void);

/* Destroys every link still queued (in parallel), then stops the threads. */
void link_reaper_stop(void);

#endif
