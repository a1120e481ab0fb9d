/* This node's pods from the Kubernetes API (libcurl; the answers are
 * decoded by k8s_decode.c): list, then
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

#include "k8s_decode.h"
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
	struct k8s_lines lines;
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
static void owner_owner(void *ctx, const char *ns, const char *kind, const char *owner, char **top_kind,
			char **top_name)
{
	struct k8s_watch *w = ctx;
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
	char *k, *n;
	k8s_controller_decode(doc, &k, &n);
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
	size_t i, dropped;
	size_t n = k8s_list_decode(doc, owner_owner, w, fresh, K8S_MAX_PODS, &dropped, w->rv, sizeof(w->rv));
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
static void watch_event(void *ctx, const char *line, size_t len)
{
	struct k8s_watch *w = ctx;
	struct k8s_event ev;
	k8s_event_decode(line, len, owner_owner, w, &ev);
	switch (ev.type) {
	case K8S_EVENT_INVALID:
		break;
	case K8S_EVENT_GONE:
		w->gone = true;
		break;
	case K8S_EVENT_ERROR:
		log_warn("kubernetes: watch error: %s", ev.message ?: "?");
		break;
	case K8S_EVENT_BOOKMARK:
	case K8S_EVENT_DELETED:
	case K8S_EVENT_UPSERT:
		if (ev.rv)
			snprintf(w->rv, sizeof(w->rv), "%s", ev.rv);
		pthread_mutex_lock(&w->lock);
		if (ev.type == K8S_EVENT_BOOKMARK) {
			w->st.bookmarks++;
		} else {
			w->st.events++;
			if (ev.type == K8S_EVENT_DELETED && ev.uid)
				store_delete(w, ev.uid);
			else if (ev.pod)
				store_put(w, ev.pod);
			w->gen++;
		}
		pthread_mutex_unlock(&w->lock);
		break;
	}
	k8s_event_free(&ev);
}

static size_t watch_write(char *data, size_t sz, size_t n, void *ctx)
{
	struct k8s_watch *w = ctx;
	size_t len = sz * n;
	int rc = k8s_lines_feed(&w->lines, data, len, watch_event, w);
	if (rc == -E2BIG) {
		log_warn("kubernetes: a watch event over %d bytes: listing again", WATCH_LINE_MAX);
		w->gone = true;
	}
	if (rc)
		return 0;
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
	w->lines.len = 0;
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
	w->lines.max = WATCH_LINE_MAX;
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
	k8s_lines_free(&w->lines);
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
