#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bpf_config.h"
#include "log.h"
#include "protocol.h"
#include "capture.skel.h"
#include "capture.h"

/* Exit tracepoints served by the one sys_exit_io program. */
static const char *const io_exit_tracepoints[] = {
	"sys_exit_read",  "sys_exit_recvfrom", "sys_exit_readv",  "sys_exit_recvmsg",   "sys_exit_write",
	"sys_exit_sendto", "sys_exit_writev",  "sys_exit_sendmsg", "sys_exit_sendfile64",
};
#define N_IO_EXIT (sizeof(io_exit_tracepoints) / sizeof(io_exit_tracepoints[0]))

/* Entry tracepoints of the write-like calls, served by sys_enter_io. */
static const char *const io_enter_tracepoints[] = {
	"sys_enter_write", "sys_enter_sendto", "sys_enter_writev", "sys_enter_sendmsg", "sys_enter_sendfile64",
};
#define N_IO_ENTER (sizeof(io_enter_tracepoints) / sizeof(io_enter_tracepoints[0]))

struct capture_tracer {
	struct capture_bpf *skel;
	struct bpf_link *io_exit_links[N_IO_EXIT];
	struct bpf_link *io_enter_links[N_IO_ENTER];
	uint64_t *traced_bits; /* the traced_bits map, mapped shared */
	uint64_t *go_bits;     /* the go_bits map (Go processes), mapped shared */
	int ncpu;
	uint64_t *txn_counts;  /* the txn_counts map (enum txn_count_slot), mapped shared */
	/* The stale sweep's walk of txns, a bounded share per tick. */
	struct conn_key sweep_at; /* the last key looked at */
	bool sweep_started;       /* sweep_at is set */
};

#define TRACED_BITS_BYTES ((size_t)TRACED_BITS_WORDS * sizeof(uint64_t))

/* An mmapable array map, mapped shared (what: for the error); NULL and
 * *err set when it cannot be. */
static uint64_t *map_shared(struct bpf_map *map, size_t bytes, const char *what, int *err)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, bpf_map__fd(map), 0);
	if (p == MAP_FAILED) {
		*err = -errno;
		log_error("cannot map %s: %s", what, strerror(-*err));
		return NULL;
	}
	return p;
}

/* The txn_counts map, mapped: a page. */
static size_t txn_counts_bytes(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Attaches prog to each syscalls/<name> in names; links[i] per name. */
static int attach_syscall_tracepoints(struct bpf_program *prog, const char *const *names, size_t n,
				      struct bpf_link **links)
{
	for (size_t i = 0; i < n; i++) {
		links[i] = bpf_program__attach_tracepoint(prog, "syscalls", names[i]);
		if (!links[i]) {
			int err = -errno;
			log_error("cannot attach to syscalls/%s: %s", names[i], strerror(-err));
			return err;
		}
	}
	return 0;
}

int capture_set_stream_programs(struct bpf_object *obj, int map_fd)
{
#define WEFT_PROTOCOL(NAME, id, value, flags)                                                       \
	if ((flags) & WEFT_PROTO_F_STREAM) {                                                        \
		__u32 key = value;                                                                  \
		struct bpf_program *p = bpf_object__find_program_by_name(obj, #id "_forward");      \
		int prog_fd = p ? bpf_program__fd(p) : -1;                                          \
		if (bpf_map_update_elem(map_fd, &key, &prog_fd, BPF_ANY)) {                         \
			int err = -errno;                                                           \
			log_error("cannot install the %s forwarding program: %s", #id, strerror(-err)); \
			return err;                                                                 \
		}                                                                                   \
	}
#include "abi/protocols.def"
#undef WEFT_PROTOCOL
	return 0;
}

int capture_load(const struct capture_opts *o, struct capture_tracer **out)
{
	struct capture_tracer *t = calloc(1, sizeof(*t));
	int err;
	if (!t)
		return -ENOMEM;
	t->ncpu = libbpf_num_possible_cpus();
	t->skel = capture_bpf__open();
	if (!t->skel) {
		err = -errno;
		log_error("cannot open the BPF object: %s", strerror(-err));
		goto fail;
	}
	err = capture_bpf_configure(t->skel, o);
	if (err)
		goto fail;
	err = capture_bpf__load(t->skel);
	if (err) {
		bpf_config_explain_refusal("capture", err, true,
					   "without it weft captures no traffic: it stops here");
		goto fail;
	}
	err = capture_set_stream_programs(t->skel->obj, bpf_map__fd(t->skel->maps.stream_progs));
	if (err)
		goto fail;
	t->traced_bits = map_shared(t->skel->maps.traced_bits, TRACED_BITS_BYTES, "the process filter", &err);
	if (!t->traced_bits)
		goto fail;
	t->go_bits = map_shared(t->skel->maps.go_bits, TRACED_BITS_BYTES, "the Go process table", &err);
	if (!t->go_bits)
		goto fail;
	t->txn_counts = map_shared(t->skel->maps.txn_counts, txn_counts_bytes(), "the exchange table's counts", &err);
	if (!t->txn_counts)
		goto fail;
	*out = t;
	return 0;
fail:
	capture_destroy(t);
	return err;
}

int capture_attach(struct capture_tracer *t)
{
	const char *why;
	enum capture_front front = bpf_config_capture_front(&why);
	int err = capture_bpf__attach(t->skel);
	if (err) {
		log_error("cannot attach the %s tracepoints: %s (run 'weft doctor')",
			  bpf_config_capture_front_name(front), strerror(-err));
		return err;
	}
	log_info("capture: %s front (%s)", bpf_config_capture_front_name(front), why);
	if (front == CAPTURE_FRONT_SOCKET)
		return 0;
	err = attach_syscall_tracepoints(t->skel->progs.sys_enter_io, io_enter_tracepoints, N_IO_ENTER,
					 t->io_enter_links);
	if (err)
		return err;
	return attach_syscall_tracepoints(t->skel->progs.sys_exit_io, io_exit_tracepoints, N_IO_EXIT,
					  t->io_exit_links);
}

int capture_trace_pid(struct capture_tracer *t, uint32_t pid)
{
	__u8 v = TRACED_EXPLICIT;
	if (pid / 64 >= TRACED_BITS_WORDS)
		return -EINVAL;
	int err = bpf_map__update_elem(t->skel->maps.traced_pids, &pid, sizeof(pid), &v, sizeof(v), BPF_ANY);
	if (err) {
		log_error("cannot select process %u: %s", pid, strerror(-err));
		return err;
	}
	/* The kernel side sets and clears other bits of this word meanwhile. */
	__atomic_fetch_or(&t->traced_bits[pid / 64], 1ull << (pid % 64), __ATOMIC_SEQ_CST);
	return 0;
}

void capture_untrace_pid(struct capture_tracer *t, uint32_t pid)
{
	if (pid / 64 >= TRACED_BITS_WORDS)
		return;
	__atomic_fetch_and(&t->traced_bits[pid / 64], ~(1ull << (pid % 64)), __ATOMIC_SEQ_CST);
	bpf_map__delete_elem(t->skel->maps.traced_pids, &pid, sizeof(pid), 0);
}

void capture_mark_go(struct capture_tracer *t, uint32_t pid, bool on)
{
	if (!t || !t->go_bits || pid / 64 >= TRACED_BITS_WORDS)
		return;
	/* The kernel clears other bits of this word meanwhile (exits, execs). */
	if (on)
		__atomic_fetch_or(&t->go_bits[pid / 64], 1ull << (pid % 64), __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(&t->go_bits[pid / 64], ~(1ull << (pid % 64)), __ATOMIC_SEQ_CST);
}

bool capture_pid_traced(struct capture_tracer *t, uint32_t pid)
{
	if (pid / 64 >= TRACED_BITS_WORDS)
		return false;
	return (__atomic_load_n(&t->traced_bits[pid / 64], __ATOMIC_RELAXED) >> (pid % 64)) & 1;
}

/* Deletes the entries of map whose key starts with tgid; how many went. */
static size_t delete_tgid_keys(struct bpf_map *map, uint32_t tgid)
{
	struct conn_key key, next, doomed[256];
	size_t n = 0;
	void *prev = NULL;
	int fd = bpf_map__fd(map);
	/* Collect first, then delete: deleting while walking restarts the walk. */
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (next.tgid == tgid && n < sizeof(doomed) / sizeof(doomed[0]))
			doomed[n++] = next;
		key = next;
		prev = &key;
	}
	size_t gone = 0;
	for (size_t i = 0; i < n; i++)
		gone += bpf_map_delete_elem(fd, &doomed[i]) == 0;
	return gone;
}

/* Which answered exchanges the agent takes from the kernel's table. */
struct txn_pick {
	uint32_t tgid;     /* only this process's; 0: any */
	uint64_t now_mono; /* only responses quiet for their protocol's idle_ns */
};

static bool txn_picked(const struct txn_event *ev, const struct txn_pick *p)
{
	if (ev->phase != TXN_PHASE_RESPONSE || (p->tgid && ev->pid != p->tgid))
		return false;
	if (!p->now_mono)
		return true;
	const struct protocol *proto = protocol_get(ev->proto);
	uint64_t idle_ns = proto ? proto->idle_ns : 1000000000ull;
	return p->now_mono >= ev->end_ns && p->now_mono - ev->end_ns >= idle_ns;
}

/* Entries of txns looked at per tick: it holds an entry per connection
 * that had an exchange (an idle slot between two: bpf/capture/exchange.bpf.h),
 * and each look copies a 2.8 KB value. */
#define SWEEP_BATCH 1024

/* The agent took n of what the kernel counts in slot (enum txn_count_slot:
 * entries of txns, which decide whether idle slots are kept; open server
 * responses): the count goes down as at the kernel's own deletes. */
static void txn_count_sub(struct capture_tracer *t, enum txn_count_slot slot, uint64_t n)
{
	if (n)
		__atomic_fetch_sub(&t->txn_counts[slot], n, __ATOMIC_SEQ_CST);
}

/* Hands the picked exchanges to cb and deletes them. Keys are collected
 * first: deleting while walking a hash map restarts the walk. A walk from
 * the table's start (from NULL) looks at every entry; from the sweep's
 * place (p->now_mono) at SWEEP_BATCH entries, then goes on next time. */
static void deliver_answered(struct capture_tracer *t, const struct txn_pick *p, txn_cb cb, void *ctx)
{
	static struct txn_event ev;
	struct conn_key key, next, picked[256];
	size_t n = 0, looked = 0;
	bool sweep = p->now_mono != 0;
	void *prev = NULL;
	int fd = bpf_map__fd(t->skel->maps.txns);
	if (sweep && t->sweep_started) {
		key = t->sweep_at;
		prev = &key;
	}
	for (;;) {
		if (n == sizeof(picked) / sizeof(picked[0]) || (sweep && looked == SWEEP_BATCH))
			break;
		if (bpf_map_get_next_key(fd, prev, &next)) {
			prev = NULL; /* the end of the table: the next pass starts over */
			break;
		}
		key = next;
		prev = &key;
		if (p->tgid && key.tgid != p->tgid)
			continue;
		looked++;
		if (bpf_map_lookup_elem(fd, &key, &ev) == 0 && txn_picked(&ev, p))
			picked[n++] = key;
	}
	if (sweep) {
		t->sweep_started = prev != NULL;
		if (prev)
			t->sweep_at = key;
	}
	for (size_t i = 0; i < n; i++) {
		/* Read, then delete: if the kernel finished it meanwhile, it sent it. */
		if (bpf_map_lookup_elem(fd, &picked[i], &ev) || bpf_map_delete_elem(fd, &picked[i]))
			continue;
		txn_count_sub(t, TXN_COUNT_ENTRIES, 1);
		if (ev.claimed != TXN_OPEN)
			continue; /* the kernel sends it (and counts it out) */
		if (ev.open_counted) /* its server's next read would have ended it */
			txn_count_sub(t, TXN_COUNT_OPEN, 1);
		ev.end_reason = 0;
		cb(ctx, &ev, WEFT_TXN_HDR_SIZE + ev.req_len + ev.resp_len);
	}
}

void capture_forget_process(struct capture_tracer *t, uint32_t tgid, txn_cb cb, void *ctx)
{
	struct txn_pick p = { .tgid = tgid };
	delete_tgid_keys(t->skel->maps.conns, tgid);
	/* A process that exits without close() (the kernel closes its sockets)
	 * still has its last answered exchange delivered. */
	deliver_answered(t, &p, cb, ctx);
	txn_count_sub(t, TXN_COUNT_ENTRIES, delete_tgid_keys(t->skel->maps.txns, tgid));
	delete_tgid_keys(t->skel->maps.stream_states, tgid);
}

void capture_deliver_answered(struct capture_tracer *t, txn_cb cb, void *ctx)
{
	struct txn_pick p = { 0 }; /* every process, however recent */
	deliver_answered(t, &p, cb, ctx);
}

int capture_events_fd(struct capture_tracer *t)
{
	return bpf_map__fd(t->skel->maps.events);
}

int capture_read_counters(struct capture_tracer *t, uint64_t *out)
{
	uint64_t vals[t->ncpu];
	for (uint32_t i = 0; i < WEFT_CNT_MAX; i++) {
		out[i] = 0;
		if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.counters), &i, vals))
			return -errno;
		for (int c = 0; c < t->ncpu; c++)
			out[i] += vals[c];
	}
	return 0;
}

void capture_sweep_stale(struct capture_tracer *t, uint64_t now_mono, txn_cb cb, void *ctx)
{
	struct txn_pick p = { .now_mono = now_mono };
	deliver_answered(t, &p, cb, ctx);
}

int capture_map_fd(struct capture_tracer *t, const char *name)
{
	struct bpf_map *m = bpf_object__find_map_by_name(t->skel->obj, name);
	return m ? bpf_map__fd(m) : -1;
}

int capture_share_maps(struct capture_tracer *t, struct bpf_object *obj, const char *who)
{
	struct bpf_map *map;
	bpf_object__for_each_map(map, obj) {
		/* A program table belongs to one program type (a tail call stays
		 * within it): an object of another type keeps its own. */
		if (bpf_map__type(map) == BPF_MAP_TYPE_PROG_ARRAY)
			continue;
		int err, fd = capture_map_fd(t, bpf_map__name(map));
		if (fd >= 0 && (err = bpf_map__reuse_fd(map, fd))) {
			log_error("%s: cannot share map %s: %s", who, bpf_map__name(map), strerror(-err));
			return err;
		}
	}
	return 0;
}

bool capture_trace_all(struct capture_tracer *t)
{
	return t->skel->rodata->trace_all;
}

int capture_set_proc_flags(struct capture_tracer *t, uint32_t pid, uint32_t flags)
{
	return bpf_map__update_elem(t->skel->maps.proc_flags, &pid, sizeof(pid), &flags, sizeof(flags), BPF_ANY);
}

int capture_get_proc_flags(struct capture_tracer *t, uint32_t pid, uint32_t *flags)
{
	return bpf_map__lookup_elem(t->skel->maps.proc_flags, &pid, sizeof(pid), flags, sizeof(*flags), 0);
}

void capture_clear_proc_flags(struct capture_tracer *t, uint32_t pid)
{
	bpf_map__delete_elem(t->skel->maps.proc_flags, &pid, sizeof(pid), 0);
}

void capture_destroy(struct capture_tracer *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < N_IO_EXIT; i++)
		bpf_link__destroy(t->io_exit_links[i]);
	for (size_t i = 0; i < N_IO_ENTER; i++)
		bpf_link__destroy(t->io_enter_links[i]);
	if (t->traced_bits)
		munmap(t->traced_bits, TRACED_BITS_BYTES);
	if (t->go_bits)
		munmap(t->go_bits, TRACED_BITS_BYTES);
	if (t->txn_counts)
		munmap(t->txn_counts, txn_counts_bytes());
	capture_bpf__destroy(t->skel);
	free(t);
}
