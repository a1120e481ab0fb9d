/* This node's pods from the Kubernetes API (libcurl, jansson): list, then
 * watch from the list's resourceVersion with bookmarks; a watch that ends
 * resumes from the last version seen, a 410 Gone (the version expired)
 * lists again. Memory is bounded: at most K8S_MAX_PODS pods, a bounded
 * cache of the owners' owners (ReplicaSet -> Deployment, Job -> CronJob),
 * watch lines of at most WATCH_LINE_MAX. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "k8s_watch.h"
#include "log.h"

#define WATCH_LINE_MAX (4 << 20)  /* one watch event (a pod's JSON) */
#define LIST_MAX (64 << 20)	  /* one list response */
#define OWNER_CACHE 1024	  /* ReplicaSet/Job -> owner answers kept */
#define WATCH_TIMEOUT_S 300	  /* the server ends each watch after this; resumed */
#define RETRY_MS 2000

struct owner_owner {
	char *key; /* "Kind/ns/name" */
	char *kind, *name;
};

struct k8s_watch {
	struct k8s_api api;
	char *node;
	pthread_t thread;
	pthread_mutex_t lock; /* pods, gen, stats, synced */
	pthread_cond_t synced_cond;
	bool synced, stop;
	struct pod_meta *pods[K8S_MAX_PODS];
	size_t n_pods;
	uint64_t gen;
	struct k8s_watch_stats st;
	char rv[128]; /* resourceVersion to resume from (watch thread only) */
	struct owner_owner owners[OWNER_CACHE];
	size_t n_owners, next_owner;
	/* The watch stream being read. */
	char *line;
	size_t line_len;
	bool gone;
};

/* ---- HTTP ---- */

struct body {
	char *buf;
	size_t len, cap, max;
};

static size_t body_write(char *p, size_t sz, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t len = sz * n;
	if (b->len + len + 1 > b->max)
		return 0; /* too big: the transfer fails */
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64 << 10;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *nb = realloc(b->buf, cap);
		if (!nb)
			return 0;
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return len;
}

static int stop_check(void *ctx, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct k8s_watch *w = ctx;
	return __atomic_load_n(&w->stop, __ATOMIC_RELAXED); /* non-zero aborts the transfer */
}

static CURL *request(struct k8s_watch *w, const char *path, struct curl_slist **hdrs)
{
	char url[2048], auth[8192];
	CURL *c = curl_easy_init();
	if (!c)
		return NULL;
	snprintf(url, sizeof(url), "%s%s", w->api.server, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, stop_check);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a dead peer: given up after the watch's own timeout */
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)WATCH_TIMEOUT_S + 60);
	*hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (w->api.token) {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", w->api.token);
		*hdrs = curl_slist_append(*hdrs, auth);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	if (w->api.ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, w->api.ca_file);
	if (w->api.ca_data) {
		struct curl_blob blob = { w->api.ca_data, strlen(w->api.ca_data), CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &blob);
	}
	if (w->api.cert_file)
		curl_easy_setopt(c, CURLOPT_SSLCERT, w->api.cert_file);
	if (w->api.key_file)
		curl_easy_setopt(c, CURLOPT_SSLKEY, w->api.key_file);
	if (w->api.cert_data) {
		struct curl_blob blob = { w->api.cert_data, strlen(w->api.cert_data), CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &blob);
	}
	if (w->api.key_data) {
		struct curl_blob blob = { w->api.key_data, strlen(w->api.key_data), CURL_BLOB_COPY };
		curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &blob);
	}
	if (w->api.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	return c;
}

/* GET path into a JSON document; NULL on any failure (counted, logged). */
static json_t *get_json(struct k8s_watch *w, const char *path, long *status)
{
	struct curl_slist *hdrs = NULL;
	struct body b = { .max = LIST_MAX };
	CURL *c = request(w, path, &hdrs);
	json_t *doc = NULL;
	*status = 0;
	if (!c)
		return NULL;
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	if (rc == CURLE_OK && *status == 200 && b.buf) {
		json_error_t jerr;
		doc = json_loadb(b.buf, b.len, 0, &jerr);
		if (!doc)
			log_warn("kubernetes: GET %s: not JSON (%s)", path, jerr.text);
	} else if (!w->stop) {
		log_warn("kubernetes: GET %s%s: %s (HTTP %ld)", w->api.server, path,
			 rc == CURLE_OK ? "refused" : curl_easy_strerror(rc), *status);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	free(b.buf);
	return doc;
}

/* ---- pods ---- */

static char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? strdup(s) : NULL;
}

/* Where the pod's owner of this kind is read (its own controller is the
 * workload the pod belongs to), NULL for the kinds that have none. */
static const char *owner_path_fmt(const char *kind)
{
	if (!strcmp(kind, "ReplicaSet"))
		return "/apis/apps/v1/namespaces/%s/replicasets/%s";
	if (!strcmp(kind, "Job"))
		return "/apis/batch/v1/namespaces/%s/jobs/%s";
	return NULL;
}

/* The controller of a ReplicaSet (a Deployment) or of a Job (a CronJob),
 * from the cache or the API. An owner without one (a bare Job) is cached
 * too, so that each is asked once. */
static void owner_owner(struct k8s_watch *w, const char *ns, const char *kind, const char *owner,
			char **top_kind, char **top_name)
{
	const char *fmt = owner_path_fmt(kind);
	char key[512], path[1024];
	long status;
	if (!fmt)
		return;
	snprintf(key, sizeof(key), "%s/%s/%s", kind, ns, owner);
	for (size_t i = 0; i < w->n_owners; i++) {
		if (w->owners[i].key && !strcmp(w->owners[i].key, key)) {
			*top_kind = w->owners[i].kind ? strdup(w->owners[i].kind) : NULL;
			*top_name = w->owners[i].name ? strdup(w->owners[i].name) : NULL;
			return;
		}
	}
	snprintf(path, sizeof(path), fmt, ns, owner);
	json_t *doc = get_json(w, path, &status);
	if (!doc && status != 404)
		return; /* not cached: asked again with the pod's next event */
	json_t *refs = json_object_get(json_object_get(doc, "metadata"), "ownerReferences"), *r;
	size_t i;
	char *k = NULL, *n = NULL;
	json_array_foreach(refs, i, r) {
		if (json_is_true(json_object_get(r, "controller"))) {
			k = jstr(r, "kind");
			n = jstr(r, "name");
			break;
		}
	}
	json_decref(doc);
	/* Bounded: the oldest answer makes room. */
	struct owner_owner *slot =
		&w->owners[w->n_owners < OWNER_CACHE ? w->n_owners++ : (w->next_owner++ % OWNER_CACHE)];
	free(slot->key);
	free(slot->kind);
	free(slot->name);
	slot->key = strdup(key);
	slot->kind = k;
	slot->name = n;
	*top_kind = k ? strdup(k) : NULL;
	*top_name = n ? strdup(n) : NULL;
}

/* "containerd://<id>", "cri-o://<id>", "docker://<id>" -> id. */
static void container_id(const char *s, char *out)
{
	const char *p = s ? strstr(s, "://") : NULL;
	snprintf(out, CONTAINER_ID_MAX + 1, "%s", p ? p + 3 : "");
}

static struct pod_meta *pod_from_json(struct k8s_watch *w, json_t *o)
{
	json_t *md = json_object_get(o, "metadata"), *spec = json_object_get(o, "spec"),
	       *status = json_object_get(o, "status");
	struct pod_meta *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->refs = 1;
	p->ns = jstr(md, "namespace");
	p->name = jstr(md, "name");
	p->uid = jstr(md, "uid");
	p->node = jstr(spec, "nodeName");
	if (!p->ns || !p->name || !p->uid) {
		pod_meta_put(p);
		return NULL;
	}
	json_t *refs = json_object_get(md, "ownerReferences"), *r, *v;
	size_t i;
	const char *k;
	json_array_foreach(refs, i, r) {
		if (json_is_true(json_object_get(r, "controller"))) {
			p->owner_kind = jstr(r, "kind");
			p->owner_name = jstr(r, "name");
			break;
		}
	}
	if (p->owner_kind && p->owner_name)
		owner_owner(w, p->ns, p->owner_kind, p->owner_name, &p->top_kind, &p->top_name);
	json_t *labels = json_object_get(md, "labels");
	size_t nl = json_object_size(labels);
	p->labels = calloc(nl ? nl : 1, sizeof(*p->labels));
	json_object_foreach(labels, k, v) {
		if (!json_is_string(v) || !p->labels)
			continue;
		p->labels[p->n_labels].key = strdup(k);
		p->labels[p->n_labels++].value = strdup(json_string_value(v));
	}
	/* Containers of every kind with an id: regular, init, ephemeral. */
	static const char *const lists[] = { "containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses" };
	size_t nc = 0;
	for (size_t l = 0; l < 3; l++)
		nc += json_array_size(json_object_get(status, lists[l]));
	p->containers = calloc(nc ? nc : 1, sizeof(*p->containers));
	for (size_t l = 0; l < 3 && p->containers; l++) {
		json_array_foreach(json_object_get(status, lists[l]), i, r) {
			struct pod_container *c = &p->containers[p->n_containers++];
			c->name = jstr(r, "name");
			c->image = jstr(r, "image");
			container_id(json_string_value(json_object_get(r, "containerID")), c->id);
		}
	}
	return p;
}

/* Under the lock. */
static void store_put(struct k8s_watch *w, struct pod_meta *p)
{
	for (size_t i = 0; i < w->n_pods; i++) {
		if (!strcmp(w->pods[i]->uid, p->uid)) {
			pod_meta_put(w->pods[i]);
			w->pods[i] = p;
			return;
		}
	}
	if (w->n_pods == K8S_MAX_PODS) {
		w->st.pods_dropped++;
		pod_meta_put(p);
		return;
	}
	w->pods[w->n_pods++] = p;
}

static void store_delete(struct k8s_watch *w, const char *uid)
{
	for (size_t i = 0; i < w->n_pods; i++) {
		if (!strcmp(w->pods[i]->uid, uid)) {
			pod_meta_put(w->pods[i]);
			w->pods[i] = w->pods[--w->n_pods];
			return;
		}
	}
}

static int list_pods(struct k8s_watch *w)
{
	char path[512];
	long status;
	snprintf(path, sizeof(path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", w->node);
	json_t *doc = get_json(w, path, &status);
	if (!doc) {
		pthread_mutex_lock(&w->lock);
		w->st.errors++;
		pthread_mutex_unlock(&w->lock);
		return -EIO;
	}
	struct pod_meta *fresh[K8S_MAX_PODS];
	size_t n = 0, i, dropped = 0;
	json_t *item;
	json_array_foreach(json_object_get(doc, "items"), i, item) {
		struct pod_meta *p = pod_from_json(w, item);
		if (p && n < K8S_MAX_PODS)
			fresh[n++] = p;
		else if (p) {
			pod_meta_put(p);
			dropped++;
		}
	}
	const char *rv = json_string_value(json_object_get(json_object_get(doc, "metadata"), "resourceVersion"));
	snprintf(w->rv, sizeof(w->rv), "%s", rv ? rv : "");
	json_decref(doc);
	pthread_mutex_lock(&w->lock);
	for (i = 0; i < w->n_pods; i++)
		pod_meta_put(w->pods[i]);
	memcpy(w->pods, fresh, n * sizeof(fresh[0]));
	w->n_pods = n;
	w->st.lists++;
	w->st.pods_dropped += dropped;
	w->gen++;
	w->synced = true;
	pthread_cond_broadcast(&w->synced_cond);
	pthread_mutex_unlock(&w->lock);
	log_debug("kubernetes: %zu pods on node %s (resourceVersion %s)", n, w->node, w->rv);
	return 0;
}

/* One watch event line. */
static void watch_event(struct k8s_watch *w, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *ev = json_loadb(line, len, 0, &jerr);
	const char *type = json_string_value(json_object_get(ev, "type"));
	json_t *obj = json_object_get(ev, "object");
	if (!ev || !type) {
		json_decref(ev);
		return;
	}
	const char *rv = json_string_value(json_object_get(json_object_get(obj, "metadata"), "resourceVersion"));
	if (!strcmp(type, "ERROR")) {
		/* A Status: 410 Gone means our resourceVersion expired. */
		if (json_integer_value(json_object_get(obj, "code")) == 410)
			w->gone = true;
		else
			log_warn("kubernetes: watch error: %s", json_string_value(json_object_get(obj, "message")) ?: "?");
		json_decref(ev);
		return;
	}
	if (rv)
		snprintf(w->rv, sizeof(w->rv), "%s", rv);
	if (!strcmp(type, "BOOKMARK")) {
		pthread_mutex_lock(&w->lock);
		w->st.bookmarks++;
		pthread_mutex_unlock(&w->lock);
		json_decref(ev);
		return;
	}
	struct pod_meta *p = strcmp(type, "DELETED") ? pod_from_json(w, obj) : NULL;
	const char *uid = json_string_value(json_object_get(json_object_get(obj, "metadata"), "uid"));
	pthread_mutex_lock(&w->lock);
	w->st.events++;
	if (!strcmp(type, "DELETED") && uid)
		store_delete(w, uid);
	else if (p)
		store_put(w, p);
	w->gen++;
	pthread_mutex_unlock(&w->lock);
	json_decref(ev);
}

static size_t watch_write(char *data, size_t sz, size_t n, void *ctx)
{
	struct k8s_watch *w = ctx;
	size_t len = sz * n;
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			if (w->line_len)
				watch_event(w, w->line, w->line_len);
			w->line_len = 0;
			continue;
		}
		if (w->line_len == WATCH_LINE_MAX) {
			log_warn("kubernetes: a watch event over %d bytes: listing again", WATCH_LINE_MAX);
			w->gone = true;
			return 0;
		}
		if (!w->line && !(w->line = malloc(WATCH_LINE_MAX)))
			return 0;
		w->line[w->line_len++] = data[i];
	}
	return w->gone ? 0 : len; /* 410: end this watch, list again */
}

static int watch_pods(struct k8s_watch *w)
{
	char path[768];
	struct curl_slist *hdrs = NULL;
	long status = 0;
	snprintf(path, sizeof(path),
		 "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&watch=1&allowWatchBookmarks=true&resourceVersion=%s"
		 "&timeoutSeconds=%d",
		 w->node, w->rv, WATCH_TIMEOUT_S);
	CURL *c = request(w, path, &hdrs);
	if (!c)
		return -ENOMEM;
	w->line_len = 0;
	w->gone = false;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, watch_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
	pthread_mutex_lock(&w->lock);
	w->st.watches++;
	pthread_mutex_unlock(&w->lock);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	if (status == 410 || w->gone) {
		pthread_mutex_lock(&w->lock);
		w->st.gone++;
		pthread_mutex_unlock(&w->lock);
		return -ESTALE;
	}
	if (rc != CURLE_OK || status != 200) {
		if (!w->stop) {
			log_warn("kubernetes: watch: %s (HTTP %ld)", curl_easy_strerror(rc), status);
			pthread_mutex_lock(&w->lock);
			w->st.errors++;
			pthread_mutex_unlock(&w->lock);
		}
		return -EIO;
	}
	return 0; /* the server ended it (timeoutSeconds): resume from w->rv */
}

static void nap(struct k8s_watch *w, unsigned ms)
{
	for (unsigned t = 0; t < ms && !__atomic_load_n(&w->stop, __ATOMIC_RELAXED); t += 100)
		nanosleep(&(struct timespec){ 0, 100 * 1000000 }, NULL);
}

static void *watch_thread(void *arg)
{
	struct k8s_watch *w = arg;
	bool listed = false;
	while (!__atomic_load_n(&w->stop, __ATOMIC_RELAXED)) {
		if (!listed) {
			if (list_pods(w)) {
				nap(w, RETRY_MS);
				continue;
			}
			listed = true;
		}
		int rc = watch_pods(w);
		if (rc == -ESTALE)
			listed = false; /* 410 Gone: list again */
		else if (rc)
			nap(w, RETRY_MS); /* resume from the last version seen */
	}
	return NULL;
}

int k8s_watch_start(const struct k8s_api *api, const char *node, unsigned sync_ms, struct k8s_watch **out)
{
	struct k8s_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	w->api = *api;
	/* Own copies of every string of the configuration. */
	char **fields[] = { &w->api.server,    &w->api.token,	  &w->api.token_file, &w->api.ca_file, &w->api.ca_data,
			    &w->api.cert_file, &w->api.key_file, &w->api.cert_data, &w->api.key_data };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		*fields[i] = *fields[i] ? strdup(*fields[i]) : NULL;
	w->node = strdup(node);
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->synced_cond, NULL);
	int rc = pthread_create(&w->thread, NULL, watch_thread, w);
	if (rc) {
		log_error("kubernetes: cannot start the watch thread: %s", strerror(rc));
		k8s_api_free(&w->api);
		free(w->node);
		free(w);
		return -rc;
	}
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += sync_ms / 1000;
	until.tv_nsec += (sync_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->lock);
	while (!w->synced && pthread_cond_timedwait(&w->synced_cond, &w->lock, &until) == 0)
		;
	bool synced = w->synced;
	size_t n = w->n_pods;
	pthread_mutex_unlock(&w->lock);
	if (synced)
		log_info("kubernetes: %zu pods on node %s, from %s", n, w->node, w->api.server);
	else
		log_warn("kubernetes: no pod list from %s within %u ms: going on, pods come as the API answers",
			 w->api.server, sync_ms);
	*out = w;
	return 0;
}

void k8s_watch_stop(struct k8s_watch *w)
{
	if (!w)
		return;
	__atomic_store_n(&w->stop, true, __ATOMIC_RELAXED);
	pthread_join(w->thread, NULL);
	for (size_t i = 0; i < w->n_pods; i++)
		pod_meta_put(w->pods[i]);
	for (size_t i = 0; i < w->n_owners; i++) {
		free(w->owners[i].key);
		free(w->owners[i].kind);
		free(w->owners[i].name);
	}
	k8s_api_free(&w->api);
	free(w->line);
	free(w->node);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->synced_cond);
	free(w);
}

uint64_t k8s_watch_generation(struct k8s_watch *w)
{
	pthread_mutex_lock(&w->lock);
	uint64_t g = w->gen;
	pthread_mutex_unlock(&w->lock);
	return g;
}

struct pod_meta *k8s_watch_pod_of_container(struct k8s_watch *w, const char *id, const struct pod_container **c)
{
	struct pod_meta *found = NULL;
	pthread_mutex_lock(&w->lock);
	for (size_t i = 0; i < w->n_pods && !found; i++) {
		const struct pod_container *pc = pod_meta_container(w->pods[i], id);
		if (pc) {
			found = pod_meta_get(w->pods[i]);
			*c = pc;
		}
	}
	pthread_mutex_unlock(&w->lock);
	return found;
}

void k8s_watch_get_stats(struct k8s_watch *w, struct k8s_watch_stats *st)
{
	pthread_mutex_lock(&w->lock);
	*st = w->st;
	st->pods = w->n_pods;
	pthread_mutex_unlock(&w->lock);
}
