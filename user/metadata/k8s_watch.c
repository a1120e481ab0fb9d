#include <errno.h>
#include "k8s_watch.h"
int k8s_watch_start(const struct k8s_api *api, const char *node, unsigned sync_ms, struct k8s_watch **out) { return -ENOSYS; }
void k8s_watch_stop(struct k8s_watch *w) {}
uint64_t k8s_watch_generation(struct k8s_watch *w) { return 0; }
struct pod_meta *k8s_watch_pod_of_container(struct k8s_watch *w, const char *id, const struct pod_container **c) { return 0; }
void k8s_watch_get_stats(struct k8s_watch *w, struct k8s_watch_stats *st) {}
