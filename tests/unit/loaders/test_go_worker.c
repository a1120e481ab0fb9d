/* The Go binary analysis worker (user/loaders/go_worker.c): analyses never
 * run on the caller's (event) thread, the queue is bounded, and one binary
 * is analysed once whatever the number of its processes. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "go_worker.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A fake analysis: counts its calls, takes fake_ms, says "Go". */
static volatile int fake_calls;
static volatile int fake_ms;
static volatile int fake_hold; /* > 0: wait until it is 0 */

static int fake_analyse(int fd, const char *name, struct go_binary *b)
{
	memset(b, 0, sizeof(*b));
	__atomic_add_fetch(&fake_calls, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&fake_hold, __ATOMIC_SEQ_CST))
		usleep(1000);
	usleep((useconds_t)fake_ms * 1000);
	b->is_go = true;
	snprintf(b->version, sizeof(b->version), "go1.22.0");
	return 0;
}

static void fake_reset(int ms, int hold)
{
	fake_calls = 0;
	fake_ms = ms;
	fake_hold = hold;
}

struct collected {
	size_t n;
	uint32_t pids[2 * GO_WORKER_QUEUE];
	const struct go_binary *bin;
	bool same_bin, errors;
};

static void on_result(void *ctx, const struct go_result *r)
{
	struct collected *c = ctx;
	if (r->err || !r->bin) {
		c->errors = true;
		return;
	}
	if (c->n == 0)
		c->bin = r->bin;
	else if (r->bin != c->bin)
		c->same_bin = false;
	c->pids[c->n++] = r->pid;
}

/* n children of this test program (one binary), each waiting to be killed. */
static pid_t *spawn_copies(size_t n)
{
	pid_t *p = calloc(n, sizeof(*p));
	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		p[i] = fork();
		assert_true(p[i] >= 0);
		if (p[i] == 0) {
			pause();
			_exit(0);
		}
	}
	return p;
}

static void reap(pid_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		kill(p[i], SIGKILL);
	for (size_t i = 0; i < n; i++)
		waitpid(p[i], NULL, 0);
	free(p);
}

static void test_thousand_copies_one_analysis(void **state)
{
	const size_t n = 1000;
	struct go_worker *w;
	struct go_worker_stats st;
	fake_reset(20, 0);
	pid_t *kids = spawn_copies(n);
	assert_int_equal(go_worker_start(fake_analyse, &w), 0);
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < n; i++)
		assert_int_equal(go_worker_submit(w, (uint32_t)kids[i]), 0);
	double submit_ms = (now_ns() - t0) / 1e6;
	assert_int_equal(go_worker_wait_idle(w, 20000), 0);
	struct collected c = {.same_bin = true};
	assert_int_equal(go_worker_collect(w, on_result, &c), n);
	assert_false(c.errors);
	assert_true(c.same_bin);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(c.pids[i], kids[i]); /* in order */
	go_worker_get_stats(w, &st);
	print_message("1000 copies of one binary: submitted in %.1f ms, %llu analysis, %llu cache hits\n", submit_ms,
		      (unsigned long long)st.analysed, (unsigned long long)st.cache_hits);
	assert_int_equal(fake_calls, 1);
	assert_int_equal(st.analysed, 1);
	assert_int_equal(st.cache_hits, n - 1);
	assert_int_equal(go_worker_pending(w), 0);
	go_worker_stop(w);
	reap(kids, n);
}

static void test_caller_never_waits(void **state)
{
	struct go_worker *w;
	fake_reset(1500, 0); /* a binary that takes 1.5 s to analyse */
	assert_int_equal(go_worker_start(fake_analyse, &w), 0);
	uint64_t t0 = now_ns();
	assert_int_equal(go_worker_submit(w, (uint32_t)getpid()), 0);
	struct collected c = {.same_bin = true};
	assert_int_equal(go_worker_collect(w, on_result, &c), 0);
	double ms = (now_ns() - t0) / 1e6;
	assert_true(ms < 100);
	assert_int_equal(go_worker_pending(w), 1);
	assert_int_equal(go_worker_wait_idle(w, 100), -ETIMEDOUT);
	assert_int_equal(go_worker_wait_idle(w, 10000), 0);
	assert_int_equal(go_worker_collect(w, on_result, &c), 1);
	assert_true(c.bin->is_go);
	assert_string_equal(c.bin->version, "go1.22.0");
	go_worker_stop(w);
}

static void test_queue_bounded_and_counted(void **state)
{
	struct go_worker *w;
	struct go_worker_stats st;
	fake_reset(0, 1); /* the first analysis holds the worker */
	assert_int_equal(go_worker_start(fake_analyse, &w), 0);
	size_t queued = 0, full = 0;
	for (size_t i = 0; i < GO_WORKER_QUEUE + 10; i++) {
		int rc = go_worker_submit(w, (uint32_t)getpid());
		assert_true(rc == 0 || rc == -EAGAIN);
		rc == 0 ? queued++ : full++;
	}
	assert_int_equal(queued, GO_WORKER_QUEUE);
	assert_int_equal(full, 10);
	go_worker_get_stats(w, &st);
	assert_int_equal(st.queue_full, 10);
	__atomic_store_n(&fake_hold, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(go_worker_wait_idle(w, 10000), 0);
	struct collected *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->same_bin = true;
	assert_int_equal(go_worker_collect(w, on_result, c), GO_WORKER_QUEUE);
	free(c);
	/* room again */
	assert_int_equal(go_worker_submit(w, (uint32_t)getpid()), 0);
	go_worker_stop(w); /* with a result not collected: freed */
}

static void test_cancel(void **state)
{
	struct go_worker *w;
	fake_reset(0, 1);
	pid_t *kids = spawn_copies(2);
	assert_int_equal(go_worker_start(fake_analyse, &w), 0);
	assert_int_equal(go_worker_submit(w, (uint32_t)kids[0]), 0);
	assert_int_equal(go_worker_submit(w, (uint32_t)kids[1]), 0);
	while (!__atomic_load_n(&fake_calls, __ATOMIC_SEQ_CST))
		usleep(1000);
	go_worker_cancel(w, (uint32_t)kids[0]); /* being analysed */
	go_worker_cancel(w, (uint32_t)kids[1]); /* queued */
	__atomic_store_n(&fake_hold, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(go_worker_wait_idle(w, 10000), 0);
	struct collected c = {.same_bin = true};
	assert_int_equal(go_worker_collect(w, on_result, &c), 0);
	/* done, then cancelled before collection */
	assert_int_equal(go_worker_submit(w, (uint32_t)kids[1]), 0);
	assert_int_equal(go_worker_wait_idle(w, 10000), 0);
	go_worker_cancel(w, (uint32_t)kids[1]);
	assert_int_equal(go_worker_collect(w, on_result, &c), 0);
	assert_int_equal(go_worker_pending(w), 0);
	go_worker_stop(w);
	reap(kids, 2);
}

/* Waits until pid runs exe. */
static void wait_exec(pid_t pid, const char *exe)
{
	char link[64], got[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/%d/exe", (int)pid);
	for (int i = 0; i < 10000; i++) {
		ssize_t n = readlink(link, got, sizeof(got) - 1);
		if (n > 0) {
			got[n] = 0;
			if (!strcmp(got, exe))
				return;
		}
		usleep(1000);
	}
	fail_msg("pid %d did not exec %s", (int)pid, exe);
}

/* The real analysis, keyed by the executable: a second process of a binary
 * known not to be Go is answered at once; a new mtime is a new binary. */
static void test_cache_key(void **state)
{
	char dir[] = "/tmp/weft-worker-XXXXXX", exe[PATH_MAX], cmd[2 * PATH_MAX];
	struct go_worker *w;
	struct go_worker_stats st;
	assert_non_null(mkdtemp(dir));
	snprintf(exe, sizeof(exe), "%s/sleep", dir);
	snprintf(cmd, sizeof(cmd), "cp /bin/sleep %s", exe);
	assert_int_equal(system(cmd), 0);
	pid_t kid[3];
	assert_int_equal(go_worker_start(NULL, &w), 0);
	struct collected c = {.same_bin = true};
	for (int i = 0; i < 3; i++) {
		if (i == 2) { /* the file changes: a new mtime */
			struct timespec t[2] = {{.tv_nsec = UTIME_NOW}, {.tv_sec = 1000000000}};
			assert_int_equal(utimensat(AT_FDCWD, exe, t, 0), 0);
		}
		kid[i] = fork();
		assert_true(kid[i] >= 0);
		if (kid[i] == 0) {
			execl(exe, "sleep", "30", (char *)NULL);
			_exit(127);
		}
		wait_exec(kid[i], exe);
		if (i == 0) {
			assert_int_equal(go_worker_submit(w, (uint32_t)kid[0]), 0);
			assert_int_equal(go_worker_wait_idle(w, 10000), 0);
			assert_int_equal(go_worker_collect(w, on_result, &c), 1);
			assert_false(c.bin->is_go);
		} else if (i == 1) {
			assert_int_equal(go_worker_submit(w, (uint32_t)kid[1]), 1); /* known, not Go */
		}
	}
	assert_int_equal(go_worker_submit(w, (uint32_t)kid[2]), 0); /* same path, new mtime */
	assert_int_equal(go_worker_wait_idle(w, 10000), 0);
	assert_int_equal(go_worker_collect(w, on_result, &c), 1);
	go_worker_get_stats(w, &st);
	assert_int_equal(st.analysed, 2);
	/* a process that is gone: an error, no analysis */
	kill(kid[2], SIGKILL);
	waitpid(kid[2], NULL, 0);
	assert_int_equal(go_worker_submit(w, (uint32_t)kid[2]), 0);
	assert_int_equal(go_worker_wait_idle(w, 10000), 0);
	c.errors = false;
	assert_int_equal(go_worker_collect(w, on_result, &c), 1);
	assert_true(c.errors);
	go_worker_stop(w);
	for (int i = 0; i < 2; i++) {
		kill(kid[i], SIGKILL);
		waitpid(kid[i], NULL, 0);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thousand_copies_one_analysis),
		cmocka_unit_test(test_caller_never_waits),
		cmocka_unit_test(test_queue_bounded_and_counted),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_cache_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
