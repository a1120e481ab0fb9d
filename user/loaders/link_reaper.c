// SPDX-License-Identifier: BSD-3-Clause
/* Uprobe links destroyed off the event thread (link_reaper.h says why). */
#include "link_reaper.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define REAPER_THREADS 16

static void destroy(struct probe_link r)
{
	if (r.link)
		bpf_link__destroy(r.link);
	else if (r.fd >= 0)
		close(r.fd);
}

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct probe_link *queue; /* a stack: the order links go in does not matter */
	size_t n, cap;
	size_t busy; /* links taken by a thread, being destroyed */
	bool running, stopping;
	pthread_t threads[REAPER_THREADS];
	size_t n_threads;
} reaper = { .lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER };

static void *reaper_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&reaper.lock);
	for (;;) {
		while (!reaper.n && !reaper.stopping)
			pthread_cond_wait(&reaper.more, &reaper.lock);
		if (!reaper.n)
			break; /* stopping, and nothing is left */
		struct probe_link r = reaper.queue[--reaper.n];
		reaper.busy++;
		pthread_mutex_unlock(&reaper.lock);
		destroy(r);
		pthread_mutex_lock(&reaper.lock);
		reaper.busy--;
	}
	pthread_mutex_unlock(&reaper.lock);
	return NULL;
}

int link_reaper_start(void)
{
	pthread_mutex_lock(&reaper.lock);
	if (reaper.running) {
		pthread_mutex_unlock(&reaper.lock);
		return 0;
	}
	reaper.stopping = false;
	reaper.n_threads = 0;
	int err = 0;
	for (size_t i = 0; i < REAPER_THREADS; i++) {
		err = pthread_create(&reaper.threads[i], NULL, reaper_main, NULL);
		if (err)
			break;
		reaper.n_threads++;
	}
	reaper.running = reaper.n_threads > 0;
	pthread_mutex_unlock(&reaper.lock);
	if (err && !reaper.n_threads) {
		log_warn("uprobes: cannot start the detaching threads (%s): the event thread detaches them",
			 strerror(err));
		return -err;
	}
	return 0;
}

void link_reaper_put_probe(struct probe_link r)
{
	if (!r.link && r.fd < 0)
		return;
	pthread_mutex_lock(&reaper.lock);
	if (reaper.running && reaper.n == reaper.cap) {
		size_t cap = reaper.cap ? 2 * reaper.cap : 64;
		struct probe_link *q = realloc(reaper.queue, cap * sizeof(*q));
		if (q) {
			reaper.queue = q;
			reaper.cap = cap;
		}
	}
	bool queued = false;
	if (reaper.running && reaper.n < reaper.cap) {
		reaper.queue[reaper.n++] = r;
		pthread_cond_signal(&reaper.more);
		queued = true;
	}
	pthread_mutex_unlock(&reaper.lock);
	if (!queued)
		destroy(r); /* no reaper, or no memory: the slow way, here */
}

void link_reaper_put(struct bpf_link *l)
{
	if (l)
		link_reaper_put_probe((struct probe_link){ .link = l, .fd = -1 });
}

size_t link_reaper_pending(void)
{
	pthread_mutex_lock(&reaper.lock);
	size_t n = reaper.n + reaper.busy;
	pthread_mutex_unlock(&reaper.lock);
	return n;
}

void link_reaper_stop(void)
{
	pthread_mutex_lock(&reaper.lock);
	if (!reaper.running) {
		pthread_mutex_unlock(&reaper.lock);
		return;
	}
	reaper.stopping = true;
	pthread_cond_broadcast(&reaper.more);
	pthread_mutex_unlock(&reaper.lock);
	for (size_t i = 0; i < reaper.n_threads; i++)
		pthread_join(reaper.threads[i], NULL);
	pthread_mutex_lock(&reaper.lock);
	reaper.running = false;
	free(reaper.queue);
	reaper.queue = NULL;
	reaper.n = reaper.cap = 0;
	pthread_mutex_unlock(&reaper.lock);
}
