/* weft run's configuration file (`--config FILE`, YAML, read with
 * libyaml) and the environment variables that set the same keys
 * (docs/DEPLOY.md lists every key and its variable). */
#ifndef WEFT_CONFIG_CONFIG_H
#define WEFT_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "selector.h"

#define CONFIG_MAX_SELECTORS 32

enum k8s_enable { K8S_ENABLE_AUTO = 0, K8S_ENABLE_ON, K8S_ENABLE_OFF };

struct weft_config {
	struct selector instrument[CONFIG_MAX_SELECTORS]; /* none: every process */
	size_t n_instrument;
	struct selector exclude[CONFIG_MAX_SELECTORS];
	size_t n_exclude;
	/* kubernetes: */
	enum k8s_enable k8s_enable; /* auto: on inside a cluster or with a kubeconfig */
	char *kubeconfig;	    /* NULL: in-cluster service account, else $KUBECONFIG */
	char *node_name;	    /* NULL: $NODE_NAME, else the host name */
	unsigned k8s_sync_timeout_ms; /* how long `ready` waits for the first pod list */
	char *runtime_socket;	      /* container_runtime.socket: Docker-compatible API, or NULL */
	char *cri_socket;	      /* container_runtime.cri_socket: a CRI runtime's, or NULL */
};

/* Reads path (NULL: only defaults) into cfg, then applies the environment
 * (WEFT_* variables). 0, or a negative errno with a message in err naming
 * the file, line and key. cfg is freed on error. */
int config_load(struct weft_config *cfg, const char *path, char *err, size_t errlen);
/* Parses YAML text (the file's contents); name is used in messages. */
int config_parse_yaml(struct weft_config *cfg, const char *text, size_t len, const char *name, char *err,
		      size_t errlen);
/* Applies WEFT_* variables from env (NULL-terminated "K=V" strings). */
int config_apply_env(struct weft_config *cfg, char **env, char *err, size_t errlen);
void config_free(struct weft_config *cfg);

/* Does the configuration select (rather than trace every process)? */
bool config_selects(const struct weft_config *cfg);
bool config_needs_k8s(const struct weft_config *cfg);
bool config_needs_ports(const struct weft_config *cfg);
/* The decision for one process: some instrument selector (or none given)
 * and no exclude selector. */
bool config_wants(const struct weft_config *cfg, const struct proc_facts *f);

#endif
