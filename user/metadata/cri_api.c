/* CRI ContainerStatus over gRPC on a unix socket, from a thread of its own
 * (the caller only reads the cache: a slow runtime never stalls spans). */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cri_api.h"
#include "log.h"
#include "pod_meta.h"

#define CRI_CACHE 1024		    /* answers kept, the oldest replaced */
#define CRI_QUEUE 64		    /* ids waiting to be asked; more are dropped (counted) */
#define CRI_TIMEOUT_MS 500	    /* a local socket: a slow one is given up */
#define CRI_RETRY_S 10		    /* a failed call is asked again after this */
#define CRI_RESPONSE_MAX (256 << 10) /* a ContainerStatus is a few KiB */
#define CRI_PATH "/runtime.v1.RuntimeService/ContainerStatus"
#define GRPC_NOT_FOUND 5
#define GRPC_UNKNOWN 2

enum slot_state { SLOT_PENDING, SLOT_FOUND, SLOT_ABSENT, SLOT_FAILED };

struct slot {
	char id[CONTAINER_ID_MAX + 1];
	enum slot_state state;
	time_t failed_at;
	struct runtime_info info;
};

static struct {
	pthread_t thread;
	pthread_mutex_t lock; /* everything below */
	pthread_cond_t cond;
	bool running, stop, warned;
	char socket[256];
	struct slot *cache;
	size_t n_cache, next_cache;
	char queue[CRI_QUEUE][CONTAINER_ID_MAX + 1];
	size_t q_head, q_len;
	uint64_t gen;
	struct cri_api_stats st;
} cri = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };

/* ---- protobuf: the few fields weft reads, by hand (bounded, no allocation) ---- */

struct pb {
	const uint8_t *p, *end;
};

static bool pb_varint(struct pb *b, uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64 && b->p < b->end; shift += 7) {
		uint8_t c = *b->p++;
		*v |= (uint64_t)(c & 0x7f) << shift;
		if (!(c & 0x80))
			return true;
	}
	return false;
}

/* The next field: its number, and for length-delimited ones the bytes.
 * 1 for a field, 0 at the end, -EINVAL when malformed. */
static int pb_next(struct pb *b, uint32_t *num, struct pb *val)
{
	uint64_t key, v;
	if (b->p >= b->end)
		return 0;
	if (!pb_varint(b, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
		return -EINVAL;
	*num = (uint32_t)(key >> 3);
	val->p = val->end = NULL;
	switch (key & 7) {
	case 0: /* varint */
		return pb_varint(b, &v) ? 1 : -EINVAL;
	case 1: /* fixed64 */
		if (b->end - b->p < 8)
			return -EINVAL;
		b->p += 8;
		return 1;
	case 2: /* length-delimited */
		if (!pb_varint(b, &v) || v > (uint64_t)(b->end - b->p))
			return -EINVAL;
		val->p = b->p;
		val->end = b->p + v;
		b->p += v;
		return 1;
	case 5: /* fixed32 */
		if (b->end - b->p < 4)
			return -EINVAL;
		b->p += 4;
		return 1;
	default: /* groups: not in the CRI */
		return -EINVAL;
	}
}

static void pb_str(const struct pb *v, char *dst, size_t cap)
{
	size_t n = v->p ? (size_t)(v->end - v->p) : 0;
	if (n >= cap)
		n = cap - 1; /* longer than any name the attributes keep */
	memcpy(dst, v->p ? (const char *)v->p : "", n);
	dst[n] = '\0';
}

static bool pb_is(const struct pb *v, const char *s)
{
	size_t n = strlen(s);
	return v->p && (size_t)(v->end - v->p) == n && !memcmp(v->p, s, n);
}

/* A map<string, string> entry: key = 1, value = 2. */
static int label_entry(struct pb e, struct runtime_info *out)
{
	struct pb key = {}, value = {}, v;
	uint32_t num;
	int rc;
	while ((rc = pb_next(&e, &num, &v)) > 0) {
		if (num == 1 && v.p)
			key = v;
		else if (num == 2 && v.p)
			value = v;
	}
	if (rc < 0)
		return rc;
	if (pb_is(&key, "io.kubernetes.pod.name"))
		pb_str(&value, out->pod_name, sizeof(out->pod_name));
	else if (pb_is(&key, "io.kubernetes.pod.namespace"))
		pb_str(&value, out->pod_namespace, sizeof(out->pod_namespace));
	else if (pb_is(&key, "io.kubernetes.pod.uid"))
		pb_str(&value, out->pod_uid, sizeof(out->pod_uid));
	else if (pb_is(&key, "io.kubernetes.container.name"))
		pb_str(&value, out->k8s_container, sizeof(out->k8s_container));
	return 0;
}

/* The first length-delimited field `want` of a message, as its string. */
static int sub_string(struct pb m, uint32_t want, char *dst, size_t cap)
{
	struct pb v;
	uint32_t num;
	int rc;
	while ((rc = pb_next(&m, &num, &v)) > 0)
		if (num == want && v.p) {
			pb_str(&v, dst, cap);
			return 0;
		}
	return rc;
}

/* ContainerStatusResponse { ContainerStatus status = 1; } and in it
 * (cri-api runtime/v1 api.proto): ContainerMetadata metadata = 2 (name = 1),
 * ImageSpec image = 8 (image = 1), map<string, string> labels = 12. */
int cri_decode_container_status(const uint8_t *msg, size_t len, struct runtime_info *out)
{
	struct pb resp = { msg, msg + len }, status = {}, v;
	uint32_t num;
	int rc;
	memset(out, 0, sizeof(*out));
	while ((rc = pb_next(&resp, &num, &v)) > 0)
		if (num == 1 && v.p)
			status = v;
	if (rc < 0 || !status.p)
		return -EINVAL;
	while ((rc = pb_next(&status, &num, &v)) > 0) {
		if (!v.p)
			continue;
		if (num == 2)
			rc = sub_string(v, 1, out->name, sizeof(out->name));
		else if (num == 8)
			rc = sub_string(v, 1, out->image, sizeof(out->image));
		else if (num == 12)
			rc = label_entry(v, out);
		if (rc < 0)
			return rc;
	}
	return rc;
}

/* ---- the gRPC call ---- */

int cri_decode_grpc_body(const uint8_t *body, size_t len, struct runtime_info *out)
{
	/* One uncompressed message (weft offers no grpc-accept-encoding). */
	size_t n = len >= 5 ? (size_t)body[1] << 24 | (size_t)body[2] << 16 | (size_t)body[3] << 8 | body[4] : 0;
	if (len < 5 || body[0] != 0 || n != len - 5 || cri_decode_container_status(body + 5, n, out))
		return -EINVAL;
	return 0;
}

struct response {
	uint8_t buf[CRI_RESPONSE_MAX];
	size_t len;
	int grpc_status; /* -1 until a grpc-status header or trailer */
	char grpc_message[160];
};

static size_t body_write(char *p, size_t sz, size_t n, void *ctx)
{
	struct response *r = ctx;
	size_t len = sz * n;
	if (r->len + len > sizeof(r->buf))
		return 0; /* too long: the transfer fails */
	memcpy(r->buf + r->len, p, len);
	r->len += len;
	return len;
}

/* A grpc-status value: a code is a small number; anything else is
 * UNKNOWN (atoi once made "4294967301" NOT_FOUND, "4294967296" OK). */
static int grpc_status(const char *v)
{
	char *end;
	errno = 0;
	long code = strtol(v, &end, 10);
	while (*end == ' ' || *end == '\t')
		end++;
	return errno || end == v || *end || code < 0 || code > 0xffff ? GRPC_UNKNOWN : (int)code;
}

void cri_grpc_header(const char *p, size_t len, int *status, char *msg, size_t msglen)
{
	char line[256];
	snprintf(line, sizeof(line), "%.*s", (int)(len < sizeof(line) ? len : sizeof(line) - 1), p);
	line[strcspn(line, "\r\n")] = '\0';
	if (!strncasecmp(line, "grpc-status:", 12))
		*status = grpc_status(line + 12);
	else if (!strncasecmp(line, "grpc-message:", 13))
		snprintf(msg, msglen, "%s", line + 13 + (line[13] == ' '));
}

/* Headers and, for HTTP/2, trailers: grpc-status and grpc-message. */
static size_t header_line(char *p, size_t sz, size_t n, void *ctx)
{
	struct response *r = ctx;
	size_t len = sz * n;
	cri_grpc_header(p, len, &r->grpc_status, r->grpc_message, sizeof(r->grpc_message));
	return len;
}

/* 1 found (out filled), 0 the runtime does not know it, <0 failed (err says why). */
static int container_status(const char *id, struct runtime_info *out, char *err, size_t errlen)
{
	static struct response r; /* the CRI thread's only */
	uint8_t req[5 + 2 + CONTAINER_ID_MAX + 2];
	size_t idlen = strnlen(id, CONTAINER_ID_MAX), mlen = 2 + idlen + 2;
	long http = 0;
	int ret = -EIO;

	/* ContainerStatusRequest { container_id = 1; verbose = 2 (false: sent
	 * for clarity, the runtime's info map is not wanted) } in a gRPC frame. */
	req[0] = 0; /* not compressed */
	req[1] = 0, req[2] = 0, req[3] = 0, req[4] = (uint8_t)mlen;
	req[5] = 0x0a, req[6] = (uint8_t)idlen;
	memcpy(req + 7, id, idlen);
	req[7 + idlen] = 0x10, req[8 + idlen] = 0;

	r.len = 0;
	r.grpc_status = -1;
	r.grpc_message[0] = '\0';
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL, *h2;
	if (!c)
		return -ENOMEM;
	if (!(h2 = curl_slist_append(h, "Content-Type: application/grpc")) || !(h = h2) ||
	    !(h2 = curl_slist_append(h, "TE: trailers")) || !(h = h2)) {
		ret = -ENOMEM;
		goto cleanup;
	}
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, cri.socket);
	curl_easy_setopt(c, CURLOPT_URL, "http://localhost" CRI_PATH);
	curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)req);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(5 + mlen));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)CRI_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_line);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &http);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s", curl_easy_strerror(rc));
		goto cleanup;
	}
	if (http != 200 || r.grpc_status < 0) {
		snprintf(err, errlen, "not a gRPC answer (HTTP %ld)", http);
		goto cleanup;
	}
	if (r.grpc_status == GRPC_NOT_FOUND) {
		ret = 0;
		goto cleanup;
	}
	if (r.grpc_status != 0) {
		snprintf(err, errlen, "gRPC status %d: %s", r.grpc_status, r.grpc_message);
		goto cleanup;
	}
	if (cri_decode_grpc_body(r.buf, r.len, out)) {
		snprintf(err, errlen, "malformed ContainerStatusResponse (%zu bytes)", r.len);
		ret = -EPROTO;
		goto cleanup;
	}
	ret = 1;
cleanup:
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return ret;
}

/* ---- the thread and the cache ---- */

static struct slot *slot_of(const char *id)
{
	for (size_t i = 0; i < cri.n_cache; i++)
		if (!strcmp(cri.cache[i].id, id))
			return &cri.cache[i];
	return NULL;
}

static void *cri_thread(void *arg)
{
	(void)arg;
	char id[CONTAINER_ID_MAX + 1], err[256];
	pthread_mutex_lock(&cri.lock);
	for (;;) {
		while (!cri.stop && !cri.q_len)
			pthread_cond_wait(&cri.cond, &cri.lock);
		if (cri.stop)
			break;
		memcpy(id, cri.queue[cri.q_head], sizeof(id));
		cri.q_head = (cri.q_head + 1) % CRI_QUEUE;
		cri.q_len--;
		pthread_mutex_unlock(&cri.lock);

		struct runtime_info info;
		err[0] = '\0';
		int rc = container_status(id, &info, err, sizeof(err));

		pthread_mutex_lock(&cri.lock);
		cri.st.calls++;
		if (rc < 0) {
			cri.st.failed++;
			if (!cri.warned) /* once: a runtime that fails, fails for every container */
				log_warn("containers: CRI ContainerStatus on %s: %s (counted from now on)", cri.socket, err);
			cri.warned = true;
		} else {
			rc ? cri.st.found++ : cri.st.not_found++;
		}
		struct slot *s = slot_of(id); /* NULL if replaced meanwhile: the answer is dropped */
		if (s) {
			s->state = rc > 0 ? SLOT_FOUND : rc == 0 ? SLOT_ABSENT : SLOT_FAILED;
			s->failed_at = time(NULL);
			if (rc > 0)
				s->info = info;
		}
		cri.gen++;
	}
	pthread_mutex_unlock(&cri.lock);
	return NULL;
}

int cri_api_start(const char *path)
{
	static const char *const defaults[] = { "/run/containerd/containerd.sock", "/var/run/crio/crio.sock",
						"/run/crio/crio.sock" };
	if (cri.running)
		return 0;
	cri.socket[0] = '\0';
	for (size_t i = 0; !path && i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (access(defaults[i], W_OK) == 0)
			path = defaults[i];
	if (!path)
		return 0;
	snprintf(cri.socket, sizeof(cri.socket), "%s", path);
	if (!(cri.cache = calloc(CRI_CACHE, sizeof(*cri.cache))))
		return -ENOMEM;
	cri.stop = cri.warned = false;
	cri.n_cache = cri.next_cache = cri.q_head = cri.q_len = 0;
	memset(&cri.st, 0, sizeof(cri.st));
	int rc = pthread_create(&cri.thread, NULL, cri_thread, NULL);
	if (rc) {
		free(cri.cache);
		cri.cache = NULL;
		return -rc;
	}
	cri.running = true;
	log_info("containers: names and images from the CRI runtime on %s", cri.socket);
	return 0;
}

void cri_api_stop(struct cri_api_stats *st)
{
	if (st)
		memset(st, 0, sizeof(*st));
	if (!cri.running)
		return;
	pthread_mutex_lock(&cri.lock);
	cri.stop = true;
	pthread_cond_signal(&cri.cond);
	pthread_mutex_unlock(&cri.lock);
	pthread_join(cri.thread, NULL); /* at most one call in flight: CRI_TIMEOUT_MS */
	if (st)
		*st = cri.st;
	free(cri.cache);
	cri.cache = NULL;
	cri.running = false;
}

bool cri_api_on(void)
{
	return cri.running;
}

int cri_api_container(const char *id, struct runtime_info *out)
{
	int ret = 0;
	if (!cri.running || !*id || strlen(id) > CONTAINER_ID_MAX)
		return 0;
	pthread_mutex_lock(&cri.lock);
	struct slot *s = slot_of(id);
	if (s && s->state == SLOT_FOUND) {
		*out = s->info;
		ret = 1;
	} else if (s && s->state == SLOT_PENDING) {
		ret = -EAGAIN;
	} else if (s && (s->state == SLOT_ABSENT || time(NULL) - s->failed_at < CRI_RETRY_S)) {
		ret = 0;
	} else if (cri.q_len == CRI_QUEUE) {
		cri.st.dropped++; /* asked again with the process's next look */
	} else {
		if (!s) { /* bounded: the oldest answer makes room */
			s = &cri.cache[cri.n_cache < CRI_CACHE ? cri.n_cache++ : cri.next_cache++ % CRI_CACHE];
			memset(s, 0, sizeof(*s));
			snprintf(s->id, sizeof(s->id), "%s", id);
		}
		s->state = SLOT_PENDING;
		memcpy(cri.queue[(cri.q_head + cri.q_len) % CRI_QUEUE], s->id, sizeof(s->id));
		cri.q_len++;
		pthread_cond_signal(&cri.cond);
		ret = -EAGAIN;
	}
	pthread_mutex_unlock(&cri.lock);
	return ret;
}

uint64_t cri_api_generation(void)
{
	pthread_mutex_lock(&cri.lock);
	uint64_t g = cri.gen;
	pthread_mutex_unlock(&cri.lock);
	return g;
}
