/* Docker-compatible container inspection over a unix socket. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pod_meta.h"
#include "runtime_api.h"

#define RUNTIME_CACHE 1024
#define RUNTIME_TIMEOUT_MS 500 /* a local socket: a slow one is given up */
#define RESPONSE_MAX (1 << 20)

struct cached {
	char id[CONTAINER_ID_MAX + 1];
	bool found;
	struct runtime_info info;
};

static char socket_path[256];
static bool configured;
static struct cached *cache;
static size_t n_cache, next_cache;

bool runtime_api_configure(const char *path)
{
	static const char *const defaults[] = { "/run/docker.sock", "/var/run/docker.sock", "/run/podman/podman.sock" };
	socket_path[0] = '\0';
	configured = true;
	if (path) {
		snprintf(socket_path, sizeof(socket_path), "%s", path);
		return true;
	}
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
		if (access(defaults[i], W_OK) == 0) {
			snprintf(socket_path, sizeof(socket_path), "%s", defaults[i]);
			log_info("containers: names and images from %s", socket_path);
			return true;
		}
	}
	return false;
}

struct body {
	char buf[RESPONSE_MAX];
	size_t len;
};

static size_t body_write(char *p, size_t sz, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t len = sz * n;
	if (b->len + len >= sizeof(b->buf))
		return 0;
	memcpy(b->buf + b->len, p, len);
	b->len += len;
	return len;
}

static void copy(char *dst, size_t cap, json_t *v)
{
	const char *s = json_string_value(v);
	snprintf(dst, cap, "%s", s ? s : "");
}

static bool inspect(const char *id, struct runtime_info *out)
{
	static struct body b;
	char url[160];
	long status = 0;
	CURL *c = curl_easy_init();
	if (!c)
		return false;
	b.len = 0;
	snprintf(url, sizeof(url), "http://localhost/containers/%s/json", id);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)RUNTIME_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK || status != 200) {
		if (rc != CURLE_OK)
			log_debug("containers: %s on %s: %s", url, socket_path, curl_easy_strerror(rc));
		return false;
	}
	return runtime_decode_inspect(b.buf, b.len, out);
}

bool runtime_decode_inspect(const char *json, size_t len, struct runtime_info *out)
{
	json_t *doc = json_loadb(json, len, 0, NULL);
	memset(out, 0, sizeof(*out));
	if (!doc)
		return false;
	const char *name = json_string_value(json_object_get(doc, "Name"));
	snprintf(out->name, sizeof(out->name), "%s", name ? name + (name[0] == '/') : "");
	json_t *cfg = json_object_get(doc, "Config"), *labels = json_object_get(cfg, "Labels");
	copy(out->image, sizeof(out->image), json_object_get(cfg, "Image"));
	copy(out->pod_name, sizeof(out->pod_name), json_object_get(labels, "io.kubernetes.pod.name"));
	copy(out->pod_namespace, sizeof(out->pod_namespace), json_object_get(labels, "io.kubernetes.pod.namespace"));
	copy(out->pod_uid, sizeof(out->pod_uid), json_object_get(labels, "io.kubernetes.pod.uid"));
	copy(out->k8s_container, sizeof(out->k8s_container), json_object_get(labels, "io.kubernetes.container.name"));
	json_decref(doc);
	return true;
}

bool runtime_api_container(const char *id, struct runtime_info *out)
{
	if (!configured)
		runtime_api_configure(NULL);
	if (!socket_path[0])
		return false;
	for (size_t i = 0; i < n_cache; i++) {
		if (!strcmp(cache[i].id, id)) {
			*out = cache[i].info;
			return cache[i].found;
		}
	}
	if (!cache && !(cache = calloc(RUNTIME_CACHE, sizeof(*cache))))
		return false;
	memset(out, 0, sizeof(*out));
	bool found = inspect(id, out);
	/* Bounded: the oldest answer makes room. */
	struct cached *slot = &cache[n_cache < RUNTIME_CACHE ? n_cache++ : next_cache++ % RUNTIME_CACHE];
	snprintf(slot->id, sizeof(slot->id), "%s", id);
	slot->found = found;
	slot->info = *out;
	return found;
}

void runtime_api_clear(void)
{
	free(cache);
	cache = NULL;
	n_cache = next_cache = 0;
	configured = false;
}
