/* Go binary analysis worker: one thread, a bounded queue, a per-binary
 * cache. See go_worker.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "go_worker.h"
#include "log.h"

struct bin_key {
	uint64_t dev, ino, size;
	int64_t mtime_s, mtime_ns;
};

struct bin_ent {
	struct bin_key key;
	struct go_binary bin;
	unsigned refs;	/* the cache's own, plus one per result not yet collected */
	bool in_cache;
	uint64_t used;	/* last use, for eviction */
};

struct done {
	uint32_t pid;
	bool cancelled;
	struct go_result res;
	struct bin_ent *ent;
};

struct go_worker {
	pthread_t thread;
	bool started, stop;
	pthread_mutex_t mu;
	pthread_cond_t work, idle;
	go_analyse_fn analyse;

	uint32_t todo[GO_WORKER_QUEUE];	/* pids waiting, FIFO from todo_head */
	size_t todo_head, todo_n;
	bool busy, busy_cancelled;	/* an analysis in progress */
	uint32_t busy_pid;
	struct done done[GO_WORKER_QUEUE]; /* results not collected, FIFO */
	size_t done_head, done_n;

	struct bin_ent *cache[GO_WORKER_CACHE];
	size_t cache_n;
	uint64_t clock;
	struct go_worker_stats stats;
};

static void key_of(const struct stat *st, struct bin_key *k)
{
	memset(k, 0, sizeof(*k));
	k->dev = st->st_dev;
	k->ino = st->st_ino;
	k->size = (uint64_t)st->st_size;
	k->mtime_s = st->st_mtim.tv_sec;
	k->mtime_ns = st->st_mtim.tv_nsec;
}

/* Under mu. */
static struct bin_ent *cache_find(struct go_worker *w, const struct bin_key *k)
{
	for (size_t i = 0; i < w->cache_n; i++) {
		struct bin_ent *e = w->cache[i];
		if (!memcmp(&e->key, k, sizeof(*k))) {
			e->used = ++w->clock;
			return e;
		}
	}
	return NULL;
}

/* Under mu. */
static void ent_put(struct bin_ent *e)
{
	if (!e || --e->refs)
		return;
	go_binary_free(&e->bin);
	free(e);
}

/* Under mu: e joins the cache (with the cache's reference), evicting the
 * least recently used binary when full. */
static void cache_insert(struct go_worker *w, struct bin_ent *e)
{
	if (w->cache_n == GO_WORKER_CACHE) {
		size_t lru = 0;
		for (size_t i = 1; i < w->cache_n; i++)
			if (w->cache[i]->used < w->cache[lru]->used)
				lru = i;
		w->cache[lru]->in_cache = false;
		ent_put(w->cache[lru]);
		w->cache[lru] = w->cache[--w->cache_n];
	}
	e->in_cache = true;
	e->refs++;
	e->used = ++w->clock;
	w->cache[w->cache_n++] = e;
}

/* Where the executable's first segment is mapped minus where it was linked
 * (PIE), from /proc/PID/maps: the mapping of inode ino at file offset 0. */
static int load_bias(uint32_t pid, uint64_t ino, uint64_t first_vaddr, uint64_t *bias)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int err = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, end, off, i;
		unsigned maj, min;
		char perms[8];
		if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu", &start, &end, perms, &off, &maj, &min, &i) != 7)
			continue;
		if (i == ino && off == 0) {
			*bias = start - (first_vaddr & ~0xfffull);
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

/* Analyses the executable open on fd (cache miss). */
static struct bin_ent *analyse_new(struct go_worker *w, int fd, uint32_t pid, const struct bin_key *k)
{
	char name[64];
	struct bin_ent *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->key = *k;
	snprintf(name, sizeof(name), "/proc/%u/exe", pid);
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	w->analyse(fd, name, &e->bin);
	uint64_t dt = clock_ns(CLOCK_MONOTONIC) - t0;
	if (e->bin.err && e->bin.is_go)
		log_debug("go: pid %u: binary not followed: %s", pid, e->bin.why);
	pthread_mutex_lock(&w->mu);
	w->stats.analysed++;
	if (dt > w->stats.max_analysis_ns)
		w->stats.max_analysis_ns = dt;
	e->refs = 1; /* the result's */
	cache_insert(w, e);
	pthread_mutex_unlock(&w->mu);
	return e;
}

/* One process: its executable's analysis (cached or new) and its load bias. */
static void process(struct go_worker *w, uint32_t pid, struct go_result *r, struct bin_ent **out)
{
	char exe[64];
	struct stat st;
	struct bin_key k;
	struct bin_ent *e = NULL;

	memset(r, 0, sizeof(*r));
	r->pid = pid;
	*out = NULL;
	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	int fd = open(exe, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		r->err = errno == ENOENT ? -ESRCH : -errno;
		return;
	}
	if (fstat(fd, &st) < 0) {
		r->err = -errno;
		goto out;
	}
	key_of(&st, &k);
	pthread_mutex_lock(&w->mu);
	e = cache_find(w, &k);
	if (e) {
		e->refs++;
		w->stats.cache_hits++;
	}
	pthread_mutex_unlock(&w->mu);
	if (!e)
		e = analyse_new(w, fd, pid, &k);
	if (!e) {
		r->err = -ENOMEM;
		goto out;
	}
	r->bin = &e->bin;
	if (e->bin.err == 0 && e->bin.pie) {
		r->bias_err = e->bin.first_vaddr_ok ? load_bias(pid, k.ino, e->bin.first_vaddr, &r->bias) : -ENOEXEC;
	}
	*out = e;
out:
	close(fd);
}

static bool idle(const struct go_worker *w)
{
	return !w->todo_n && !w->busy;
}

static void *worker_main(void *arg)
{
	struct go_worker *w = arg;
	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && !w->todo_n)
			pthread_cond_wait(&w->work, &w->mu);
		if (w->stop)
			break;
		uint32_t pid = w->todo[w->todo_head];
		w->todo_head = (w->todo_head + 1) % GO_WORKER_QUEUE;
		w->todo_n--;
		w->busy = true;
		w->busy_cancelled = false;
		w->busy_pid = pid;
		pthread_mutex_unlock(&w->mu);

		struct go_result r;
		struct bin_ent *e;
		process(w, pid, &r, &e);

		pthread_mutex_lock(&w->mu);
		if (r.err)
			w->stats.failed++;
		if (w->busy_cancelled || w->done_n == GO_WORKER_QUEUE) {
			ent_put(e);
		} else {
			struct done *d = &w->done[(w->done_head + w->done_n++) % GO_WORKER_QUEUE];
			d->pid = pid;
			d->cancelled = false;
			d->res = r;
			d->ent = e;
		}
		w->busy = false;
		if (idle(w))
			pthread_cond_broadcast(&w->idle);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

int go_worker_start(go_analyse_fn analyse, struct go_worker **out)
{
	struct go_worker *w = calloc(1, sizeof(*w));
	*out = NULL;
	if (!w)
		return -ENOMEM;
	w->analyse = analyse ? analyse : go_binary_analyse_fd;
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->idle, NULL);
	int err = pthread_create(&w->thread, NULL, worker_main, w);
	if (err) {
		log_error("go: cannot start the binary analysis thread: %s", strerror(err));
		go_worker_stop(w);
		return -err;
	}
	w->started = true;
	*out = w;
	return 0;
}

void go_worker_stop(struct go_worker *w)
{
	if (!w)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_signal(&w->work);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->thread, NULL);
	}
	for (size_t i = 0; i < w->done_n; i++)
		ent_put(w->done[(w->done_head + i) % GO_WORKER_QUEUE].ent);
	for (size_t i = 0; i < w->cache_n; i++)
		ent_put(w->cache[i]);
	pthread_cond_destroy(&w->idle);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

/* Under mu: the executable k is in the cache and is not a Go program. */
static bool known_not_go(struct go_worker *w, const struct bin_key *k)
{
	const struct bin_ent *e = cache_find(w, k);
	return e && !e->bin.is_go;
}

int go_worker_submit(struct go_worker *w, uint32_t pid)
{
	char exe[64];
	struct stat st;
	struct bin_key k;
	bool have_key;
	int rc = 0;
	if (!w)
		return -EINVAL;
	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	have_key = stat(exe, &st) == 0;
	if (have_key)
		key_of(&st, &k);
	pthread_mutex_lock(&w->mu);
	w->stats.submitted++;
	if (have_key && known_not_go(w, &k)) {
		w->stats.cache_hits++;
		rc = 1;
	} else if (w->todo_n + w->done_n + w->busy >= GO_WORKER_QUEUE) {
		w->stats.queue_full++;
		rc = -EAGAIN;
	} else {
		w->todo[(w->todo_head + w->todo_n++) % GO_WORKER_QUEUE] = pid;
		pthread_cond_signal(&w->work);
	}
	pthread_mutex_unlock(&w->mu);
	return rc;
}

void go_worker_cancel(struct go_worker *w, uint32_t pid)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	size_t kept = 0;
	for (size_t i = 0; i < w->todo_n; i++) {
		uint32_t p = w->todo[(w->todo_head + i) % GO_WORKER_QUEUE];
		if (p != pid)
			w->todo[(w->todo_head + kept++) % GO_WORKER_QUEUE] = p;
	}
	w->todo_n = kept;
	if (w->busy && w->busy_pid == pid)
		w->busy_cancelled = true;
	for (size_t i = 0; i < w->done_n; i++) {
		struct done *d = &w->done[(w->done_head + i) % GO_WORKER_QUEUE];
		if (d->pid == pid)
			d->cancelled = true;
	}
	if (idle(w))
		pthread_cond_broadcast(&w->idle);
	pthread_mutex_unlock(&w->mu);
}

size_t go_worker_collect(struct go_worker *w, void (*fn)(void *ctx, const struct go_result *r), void *ctx)
{
	size_t n = 0;
	if (!w)
		return 0;
	for (;;) {
		pthread_mutex_lock(&w->mu);
		if (!w->done_n) {
			pthread_mutex_unlock(&w->mu);
			return n;
		}
		struct done d = w->done[w->done_head];
		w->done_head = (w->done_head + 1) % GO_WORKER_QUEUE;
		w->done_n--;
		pthread_mutex_unlock(&w->mu);
		if (!d.cancelled) {
			fn(ctx, &d.res);
			n++;
		}
		pthread_mutex_lock(&w->mu);
		ent_put(d.ent);
		pthread_mutex_unlock(&w->mu);
	}
}

size_t go_worker_pending(struct go_worker *w)
{
	if (!w)
		return 0;
	pthread_mutex_lock(&w->mu);
	size_t n = w->todo_n + w->busy + w->done_n;
	pthread_mutex_unlock(&w->mu);
	return n;
}

int go_worker_wait_idle(struct go_worker *w, int timeout_ms)
{
	struct timespec until;
	int rc = 0;
	if (!w)
		return 0;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!idle(w) && rc == 0)
		rc = pthread_cond_timedwait(&w->idle, &w->mu, &until);
	bool done = idle(w);
	pthread_mutex_unlock(&w->mu);
	return done ? 0 : -ETIMEDOUT;
}

void go_worker_get_stats(struct go_worker *w, struct go_worker_stats *s)
{
	memset(s, 0, sizeof(*s));
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	*s = w->stats;
	pthread_mutex_unlock(&w->mu);
}
