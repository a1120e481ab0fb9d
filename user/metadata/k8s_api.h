/* How to reach the Kubernetes API: in a pod, its service account
 * (KUBERNETES_SERVICE_HOST/PORT, the token and CA under
 * /var/run/secrets/kubernetes.io/serviceaccount); outside, a kubeconfig's
 * current context (server, CA, token or client certificate). Requests go
 * through libcurl. */
#ifndef WEFT_METADATA_K8S_API_H
#define WEFT_METADATA_K8S_API_H

#include <stdbool.h>
#include <stddef.h>

struct k8s_api {
	char *server;	     /* https://host:port, no trailing slash */
	char *token;	     /* bearer token, or NULL */
	char *token_file;    /* re-read on 401 (bound tokens rotate), or NULL */
	char *ca_file;	     /* PEM file, or NULL (the system's) */
	char *ca_data;	     /* PEM text (certificate-authority-data), or NULL */
	char *cert_file, *key_file; /* client certificate, or NULL */
	char *cert_data, *key_data;
	bool insecure;	     /* insecure-skip-tls-verify */
};

/* In-cluster when KUBERNETES_SERVICE_HOST is set and kubeconfig is NULL,
 * else the kubeconfig file. -ENOENT: neither (no cluster here); other
 * errors with a message in err. */
int k8s_api_config(const char *kubeconfig, struct k8s_api *out, char *err, size_t errlen);
/* Parses kubeconfig YAML text (its current context); dir resolves
 * relative file paths. */
int k8s_api_from_kubeconfig(const char *text, size_t len, const char *dir, struct k8s_api *out, char *err,
			    size_t errlen);
void k8s_api_free(struct k8s_api *a);

#endif
