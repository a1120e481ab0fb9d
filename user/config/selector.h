/* What `weft run` traces: selectors over what is known of a process (its
 * executable, listening ports, container, Kubernetes pod). A selector
 * matches when every criterion it sets matches; a process is traced when
 * some `instrument` selector matches (or there is none) and no
 * `exclude_instrument` selector does. Names follow OBI/Beyla's discovery
 * section (docs/DEPLOY.md). */
#ifndef WEFT_CONFIG_SELECTOR_H
#define WEFT_CONFIG_SELECTOR_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SELECTOR_MAX_PORT_RANGES 32
#define SELECTOR_MAX_LABELS 16

struct port_range {
	uint16_t lo, hi;
};

/* A POSIX extended regular expression, anchored on both ends. */
struct name_regex {
	bool set;
	char *text;
	regex_t re;
};

struct label_regex {
	char *key;
	struct name_regex value;
};

struct selector {
	char *exe_path; /* fnmatch(3) glob on the executable's full path, or NULL */
	struct port_range ports[SELECTOR_MAX_PORT_RANGES];
	size_t n_ports;
	char *container_id; /* a prefix of the container id (12 hex digits suffice), or NULL */
	struct name_regex container_name;
	struct name_regex k8s_namespace, k8s_pod_name, k8s_container_name;
	struct name_regex k8s_owner_name; /* the top owner, whatever its kind */
	struct name_regex k8s_deployment_name, k8s_statefulset_name, k8s_daemonset_name, k8s_replicaset_name,
		k8s_job_name, k8s_cronjob_name;
	struct label_regex labels[SELECTOR_MAX_LABELS];
	size_t n_labels;
};

/* What is known of a process when it is looked at. NULL/0: unknown. */
struct proc_facts {
	const char *exe_path;
	const uint16_t *ports; /* listening TCP ports */
	size_t n_ports;
	const char *container_id;
	const char *container_name;
	const struct pod_meta *pod; /* user/metadata/pod_meta.h; NULL outside a known pod */
	const char *k8s_container_name;
};

/* Does s need facts that only the Kubernetes API gives? */
bool selector_needs_k8s(const struct selector *s);
bool selector_needs_ports(const struct selector *s);
bool selector_matches(const struct selector *s, const struct proc_facts *f);
bool selector_empty(const struct selector *s);
void selector_free(struct selector *s);

/* Parsers for one criterion; 0 or -EINVAL with a message in err. */
int selector_set_regex(struct name_regex *r, const char *what, const char *text, char *err, size_t errlen);
/* "80", "8000-8999", "80,443,8000-8999" (appends). */
int selector_add_ports(struct selector *s, const char *text, char *err, size_t errlen);
/* "app=checkout,tier=web.*" (appends; values are regexes). */
int selector_add_labels(struct selector *s, const char *text, char *err, size_t errlen);
int selector_add_label(struct selector *s, const char *key, const char *value, char *err, size_t errlen);

#endif
