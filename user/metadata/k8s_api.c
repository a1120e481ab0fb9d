#include <errno.h>
#include "k8s_api.h"
int k8s_api_config(const char *kubeconfig, struct k8s_api *out, char *err, size_t errlen) { return -ENOENT; }
void k8s_api_free(struct k8s_api *a) {}
