#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "caps.h"
#include "capture.h"
#include "clock.h"
#include "discovery.h"
#include "link_reaper.h"
#include "go_user.h"
#include "go_worker.h"
#include "h2_conn.h"
#include "log.h"
#include "map_sweep.h"
#include "metadata.h"
#include "metrics.h"
#include "mounts.h"
#include "otlp.h"
#include "proc.h"
#include "prometheus.h"
#include "propagation.h"
#include "protocol.h"
#include "sinks.h"
#include "tls.h"
#include "uprobes.h"

#define TICK_NS 100000000ull          /* sinks' tick and housekeeping */
#define GO_STARTUP_WAIT_MS 10000      /* for the analysis of the executables of -p PIDs */
#define SWEEP_NS 2000000000ull        /* processes gone without an exit event */

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	if (stop_signal) {
		/* Second Ctrl-C while flushing: leave now. Links and maps are fd-based:
		 * the kernel detaches everything as the process ends. */
		static const char msg[] = "weft: second signal: exiting without flushing\n";
		ssize_t unused = write(2, msg, sizeof(msg) - 1);
		(void)unused;
		_exit(130);
	}
	stop_signal = sig;
}

struct agent {
	struct agent_opts *o;
	struct capture_tracer *capture;
	struct propagation *propagation;
	struct go_tracer *go;
	struct tls_tracer *tls;	/* OpenSSL's plaintext; NULL if refused */
	/* TLS probes of processes that exited (handed to the link reaper:
	 * unregistering a uprobe waits ~80 ms for the kernel, which on this
	 * thread made a short program exec'd meanwhile go unlooked-at) and of
	 * processes that exec'd (attached), done once the events at hand are
	 * read: an exec in the same batch is looked at (discovery) first. */
	uint32_t tls_gone[64], tls_pending[64];
	size_t n_tls_gone, n_tls_pending;
	struct go_worker *gw;	/* Go binary analysis, off this thread */
	struct discovery *discovery;   /* weft run with a selection, else NULL */
	struct metrics *metrics;       /* NULL: no metrics output configured */
	struct prometheus *prometheus;
	struct otlp_metrics_exporter *otlp_metrics;
	int64_t mono_to_real;
	uint64_t spans, unparsed, exited, sampled_out, kept_errors;
	size_t live_pids;
};

/* The TLS probe work deferred by on_event: exits first (a PID exec'd
 * again after its exit in the same batch is a new process). */
static void tls_pending_run(struct agent *a)
{
	for (size_t i = 0; i < a->n_tls_gone; i++)
		tls_tracer_forget(a->tls, a->tls_gone[i]);
	for (size_t i = 0; i < a->n_tls_pending; i++)
		tls_tracer_exec(a->tls, a->tls_pending[i]);
	a->n_tls_gone = a->n_tls_pending = 0;
}

static void process_exited(struct agent *a, uint32_t pid);

/* A process's executable was analysed: tell the kernel whether a thread's
 * requests may parent the requests it sends (not in Go, whose goroutines
 * move between threads), and follow a Go program's goroutines. */
static void apply_analysis(void *ctx, const struct go_result *r)
{
	struct agent *a = ctx;
	if (r->err || !proc_exists(r->pid))
		return; /* gone meanwhile */
	if (!proc_same_process(r->pid)) {
		/* Gone meanwhile and its PID taken by another process (no exit
		 * event: weft looked at it before the kernel knew it): the
		 * analysis, Go offsets included, is not the new process's. */
		log_debug("pid %u: reused by another process before its analysis was applied", r->pid);
		process_exited(a, r->pid);
		return;
	}
	capture_set_proc_flags(a->capture, r->pid, r->bin->is_go ? 0 : PROC_THREAD_CTX);
	/* goroutines stand in for threads; crypto/tls needs the offsets
	 * go_tracer_apply registers */
	if (r->bin->is_go && go_tracer_apply(a->go, r) == 0)
		tls_tracer_add_go(a->tls, r->pid, r->bin);
}

/* First sight of a process: its executable goes to the analysis worker
 * (a binary already known not to be Go is answered at once). */
static void vet_process(struct agent *a, uint32_t pid)
{
	if (!proc_vet_first(pid))
		return;
	if (go_worker_submit(a->gw, pid) == 1 && proc_exists(pid))
		capture_set_proc_flags(a->capture, pid, PROC_THREAD_CTX);
}

/* A span a protocol built: metrics, the sampler's verdict, the sinks.
 * Takes s. */
static void deliver_span(void *ctx, struct span *s, uint32_t pid)
{
	struct agent *a = ctx;
	s->resource = proc_resource(pid, s->start_ns);
	if (a->metrics) /* every exchange, whatever the sampler decided */
		metrics_record(a->metrics, s, clock_ns(CLOCK_MONOTONIC));
	if (!(s->trace_flags & 1) && a->o->keep_errors && s->status == SPAN_STATUS_ERROR) {
		/* Sampled out but failed: exported alone, as a trace of its own
		 * (its parent and children are not). */
		memset(s->parent_span_id, 0, sizeof(s->parent_span_id));
		s->trace_flags |= 1;
		a->kept_errors++;
	}
	if (!(s->trace_flags & 1)) {
		/* Sampled out (decided in the kernel, at the trace's root). */
		a->sampled_out++;
		span_free(s);
		return;
	}
	for (size_t i = 0; i < a->o->n_sinks; i++)
		a->o->sinks[i]->emit(a->o->sinks[i], s);
	a->spans++;
	span_free(s);
}

static struct protocol_ctx protocol_ctx_of(struct agent *a)
{
	return (struct protocol_ctx){ .mono_to_real = a->mono_to_real,
				      .db_statement = a->o->db_statement,
				      .emit = deliver_span,
				      .emit_ctx = a,
				      .sampler_word = sampler_word(&a->o->sampler) };
}

static void deliver_txn(void *ctx, const struct txn_event *ev, size_t len)
{
	struct agent *a = ctx;
	if (len < WEFT_TXN_HDR_SIZE) {
		a->unparsed++;
		return;
	}
	if (a->discovery && discovery_drops(a->discovery, ev->pid))
		return; /* a new program traced until it was found unwanted */
	vet_process(a, ev->pid);
	if (len >= offsetof(struct txn_event, data) && ev->role == WEFT_ROLE_SERVER)
		go_tracer_served(a->go, ev->pid);
	/* Sampled out (the kernel decided at the trace's root) and wanted by
	 * nothing else (no metrics, no per-connection state to follow): not
	 * even parsed. */
	if (len >= offsetof(struct txn_event, data) && !(ev->trace_flags & 1) && !a->metrics &&
	    !a->o->keep_errors && !(weft_proto_flags(ev->proto) & WEFT_PROTO_F_CONN_STATE)) {
		a->sampled_out++;
		return;
	}
	struct span *s = span_new();
	if (!s)
		return;
	struct protocol_ctx pc = protocol_ctx_of(a);
	int rc = protocol_span(ev, len, &pc, s);
	if (rc != 0) {
		if (rc < 0) {
			a->unparsed++;
			if (log_threshold >= LOG_DEBUG) {
				char shown[200];
				size_t n = ev->req_len < 96 ? ev->req_len : 96, o = 0;
				for (size_t i = 0; i < n; i++)
					o += snprintf(shown + o, sizeof(shown) - o, "%c",
						      ev->data[i] >= 32 && ev->data[i] < 127 ? ev->data[i] : '.');
				shown[o] = '\0';
				log_debug("pid %u fd %u: exchange not parsable (proto %u, %u request bytes): %s", ev->pid,
					  ev->fd, ev->proto, ev->req_len, shown);
			}
		}
		span_free(s);
		return;
	}
	deliver_span(a, s, ev->pid);
}

/* A stream protocol's bytes (HTTP/2): its spans come through deliver_span. */
static void deliver_stream_event(struct agent *a, const void *ev, size_t len)
{
	if (len < 8) {
		a->unparsed++;
		return;
	}
	if (a->discovery && discovery_drops(a->discovery, ((const uint32_t *)ev)[1]))
		return;
	vet_process(a, ((const uint32_t *)ev)[1]);
	struct protocol_ctx pc = protocol_ctx_of(a);
	if (protocol_stream_event(ev, len, &pc) < 0)
		a->unparsed++;
}

/* The kernel decides at each trace's root (bpf/context/assign.bpf.h). */
static int set_sampler(struct agent *a)
{
	uint32_t zero = 0;
	uint64_t word = sampler_word(&a->o->sampler);
	char desc[64];
	int fd = capture_map_fd(a->capture, "sampler");
	if (fd < 0 || bpf_map_update_elem(fd, &zero, &word, BPF_ANY)) {
		int err = fd < 0 ? -ENOENT : -errno;
		log_error("sampler: cannot configure the kernel's sampler: %s", strerror(-err));
		return err;
	}
	sampler_describe(&a->o->sampler, desc, sizeof(desc));
	log_debug("sampler: %s", desc);
	return 0;
}

static void process_exited(struct agent *a, uint32_t pid)
{
	capture_forget_process(a->capture, pid, deliver_txn, a);
	go_worker_cancel(a->gw, pid);
	go_tracer_forget(a->go, pid);
	if (a->n_tls_gone < sizeof(a->tls_gone) / sizeof(a->tls_gone[0]))
		a->tls_gone[a->n_tls_gone++] = pid;
	else
		tls_tracer_forget(a->tls, pid);
	protocol_forget_pid(pid);
	proc_forget(pid);
	if (a->discovery)
		discovery_forget(a->discovery, pid);
	a->exited++;
	for (size_t i = 0; i < a->o->n_pids; i++) {
		if (a->o->pids[i] == pid) {
			log_info("process %u exited", pid);
			a->o->pids[i] = 0;
			a->live_pids--;
		}
	}
}

/* Processes gone without an exit event (weft run sends none; one can be
 * lost to a full ring buffer): forget them, and any per-process kernel
 * entry written after the kernel deleted its own at exit. */
static void sweep_gone(struct agent *a)
{
	uint32_t gone[64]; /* each costs a walk of the connection tables: a bounded share per sweep */
	size_t n = proc_gone(gone, 64);
	for (size_t i = 0; i < n; i++)
		process_exited(a, gone[i]);
	int f = map_sweep_dead_tgids(capture_map_fd(a->capture, "proc_flags"));
	int g = go_tracer_sweep(a->go);
	tls_tracer_sync(a->tls, a->capture); /* processes forked by traced ones */
	if (n || f > 0 || g > 0)
		log_debug("sweep: %zu processes gone, %d + %d stale kernel entries", n, f > 0 ? f : 0, g > 0 ? g : 0);
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct agent *a = ctx;
	if (len < sizeof(uint32_t))
		return 0;
	switch (*(uint32_t *)data) {
	case WEFT_EV_TXN:
		deliver_txn(a, data, len);
		break;
	case WEFT_EV_STREAM_CHUNK:
	case WEFT_EV_STREAM_INJECT:
	case WEFT_EV_H2_PARENT:
		deliver_stream_event(a, data, len);
		break;
	case WEFT_EV_PROC_EXIT:
		if (len >= sizeof(struct proc_exit_event))
			process_exited(a, ((struct proc_exit_event *)data)->pid);
		break;
	case WEFT_EV_CONN_CLOSE:
		if (len >= sizeof(struct conn_close_event)) {
			struct protocol_ctx pc = protocol_ctx_of(a);
			protocol_conn_closed(((struct conn_close_event *)data)->pid,
					     ((struct conn_close_event *)data)->fd, &pc);
		}
		break;
	case WEFT_EV_PROC_EXEC:
		if (len >= sizeof(struct proc_exec_event)) {
			const struct proc_exec_event *ex = data;
			uint32_t pid = ex->pid;
			char path[WEFT_EXEC_PATH_MAX];
			memcpy(path, ex->filename, sizeof(path));
			path[sizeof(path) - 1] = '\0';
			/* With a selection, every exec comes here: is it wanted? */
			int look = a->discovery ? discovery_look(a->discovery, pid, path) : 1;
			if (look < 0)
				process_exited(a, pid); /* traced until now: what weft knew goes */
			if (look <= 0)
				break;
			proc_forget(pid); /* a new program: new resource, new language */
			go_worker_cancel(a->gw, pid);
			go_tracer_forget(a->go, pid);
			if (a->n_tls_pending < sizeof(a->tls_pending) / sizeof(a->tls_pending[0]))
				a->tls_pending[a->n_tls_pending++] = pid;
			else
				tls_tracer_exec(a->tls, pid);
			vet_process(a, pid);
		}
		break;
	case WEFT_EV_PROC_LISTEN:
		if (len >= sizeof(struct proc_listen_event) && a->discovery) {
			const struct proc_listen_event *l = data;
			if (discovery_on_listen(a->discovery, l->pid, l->port) < 0)
				process_exited(a, l->pid);
		}
		break;
	}
	return 0;
}

static void report_counters(struct agent *a)
{
	uint64_t c[WEFT_CNT_MAX] = {};
	if (capture_read_counters(a->capture, c))
		return;
	uint64_t sampled_out = a->sampled_out + c[WEFT_CNT_SAMPLED_OUT]; /* here, or dropped in the kernel */
	if (sampled_out || a->kept_errors)
		log_info("sampler: %llu spans sampled out (not exported; %llu of them dropped in the kernel); %llu "
			 "error spans of sampled-out traces exported alone (--keep-errors)",
			 (unsigned long long)sampled_out, (unsigned long long)c[WEFT_CNT_SAMPLED_OUT],
			 (unsigned long long)a->kept_errors);
	log_info("%llu spans; kernel sent %llu exchanges; dropped: %llu ring buffer full, %llu connection table "
		 "full, %llu exchange table full; %llu not parsable; %llu connections of "
		 "no known protocol skipped; traceparent injected %llu, left alone %llu; %llu client requests not "
		 "parented (ambiguous thread); %llu Go requests served without goroutine context (table full); "
		 "%llu socket calls whose buffer is out of reach (io_uring, sendmmsg)",
		 (unsigned long long)a->spans, (unsigned long long)c[WEFT_CNT_TXN_EMITTED],
		 (unsigned long long)c[WEFT_CNT_RINGBUF_FULL], (unsigned long long)c[WEFT_CNT_CONN_MAP_FULL],
		 (unsigned long long)c[WEFT_CNT_TXN_MAP_FULL],
		 (unsigned long long)a->unparsed, (unsigned long long)c[WEFT_CNT_CONN_IGNORED],
		 (unsigned long long)c[WEFT_CNT_INJECTED], (unsigned long long)c[WEFT_CNT_INJECT_SKIPPED],
		 (unsigned long long)c[WEFT_CNT_CTX_AMBIGUOUS], (unsigned long long)c[WEFT_CNT_GO_SERVING_FULL],
		 (unsigned long long)c[WEFT_CNT_IO_UNREACHABLE]);
	if (c[WEFT_CNT_STREAM_EVENTS] || c[WEFT_CNT_STREAM_GAP])
		log_info("stream protocols (HTTP/2): kernel sent %llu frame events; %llu gaps (connections given up)",
			 (unsigned long long)c[WEFT_CNT_STREAM_EVENTS], (unsigned long long)c[WEFT_CNT_STREAM_GAP]);
	if (c[WEFT_CNT_TCPOPT_SENT] || c[WEFT_CNT_TCPOPT_NO_ROOM] || c[WEFT_CNT_TCPOPT_RECEIVED])
		log_info("TLS context in TCP options: %llu sent, %llu left out (no room in the segment), %llu received",
			 (unsigned long long)c[WEFT_CNT_TCPOPT_SENT], (unsigned long long)c[WEFT_CNT_TCPOPT_NO_ROOM],
			 (unsigned long long)c[WEFT_CNT_TCPOPT_RECEIVED]);
	if (c[WEFT_CNT_CONN_CLOSE_RACE])
		log_info("socket front: %llu connections recorded again (an fd reused while its previous socket's "
			 "close was being handled on another CPU; nothing lost)",
			 (unsigned long long)c[WEFT_CNT_CONN_CLOSE_RACE]);
	protocol_report_all();
}

/* Every loss counted so far, kernel's and agent's, into weft.dropped. */
static void update_drop_metrics(struct agent *a)
{
	uint64_t c[WEFT_CNT_MAX] = {}, d[DROP_CAUSE_COUNT] = {};
	struct go_worker_stats gs = {};
	struct h2_stats hs;
	struct otlp_counters oc;
	if (!a->metrics || capture_read_counters(a->capture, c))
		return;
	if (a->gw)
		go_worker_get_stats(a->gw, &gs);
	h2_get_stats(&hs);
	otlp_counters_get(&oc);
	d[DROP_RINGBUF_FULL] = c[WEFT_CNT_RINGBUF_FULL];
	d[DROP_CONN_TABLE_FULL] = c[WEFT_CNT_CONN_MAP_FULL];
	d[DROP_TXN_TABLE_FULL] = c[WEFT_CNT_TXN_MAP_FULL];
	d[DROP_STREAM_GAP] = c[WEFT_CNT_STREAM_GAP];
	d[DROP_IO_UNREACHABLE] = c[WEFT_CNT_IO_UNREACHABLE];
	d[DROP_GO_CONTEXT_TABLE_FULL] = c[WEFT_CNT_GO_SERVING_FULL];
	d[DROP_NOT_PARSABLE] = a->unparsed;
	d[DROP_ANALYSIS_QUEUE_FULL] = gs.queue_full;
	d[DROP_HTTP2_CONN_LOST] = hs.conns_lost;
	d[DROP_HTTP2_CONN_MIDWAY] = hs.conns_midway;
	d[DROP_HTTP2_STREAM_UNFINISHED] = hs.streams_dropped;
	d[DROP_OTLP_QUEUE_FULL] = oc.dropped_queue_full;
	d[DROP_OTLP_REJECTED] = oc.dropped_rejected;
	d[DROP_OTLP_PARTIAL] = oc.dropped_partial;
	d[DROP_OTLP_SHUTDOWN] = oc.dropped_shutdown;
	d[DROP_OTLP_OTHER] = oc.dropped_other;
	d[DROP_CONSOLE_OMITTED] = console_sink_omitted();
	metrics_drops(a->metrics, d);
}

static void report_go_worker(struct go_worker *gw)
{
	struct go_worker_stats st;
	go_worker_get_stats(gw, &st);
	log_info("executables: %llu processes looked at, %llu binaries analysed (slowest %.1f ms), %llu from the "
		 "cache; %llu not looked at (analysis queue full)", (unsigned long long)st.submitted,
		 (unsigned long long)st.analysed, st.max_analysis_ns / 1e6, (unsigned long long)st.cache_hits,
		 (unsigned long long)st.queue_full);
	if (proc_gone_count())
		log_info("resources: %llu looked up after their process had exited (its spans name "
			 "process.pid and at most its command name: service.name unknown_service[:NAME])",
			 (unsigned long long)proc_gone_count());
}

/* go_tracer_load on a thread of its own, while the TLS object loads. */
struct go_object_load {
	pthread_t thread;
	struct capture_tracer *capture;
	bool uprobes;
	struct go_tracer *go;
	int err;
};

static void *go_load_main(void *arg)
{
	struct go_object_load *l = arg;
	l->err = go_tracer_load(l->capture, l->uprobes, &l->go);
	return NULL;
}

int agent_run(struct agent_opts *o)
{
	struct agent a = { .o = o };
	struct ring_buffer *rb = NULL;
	int err;

	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	for (size_t i = 0; i < o->n_pids; i++) {
		if (!proc_exists(o->pids[i])) {
			log_error("process %u does not exist", o->pids[i]);
			err = -ESRCH;
			goto cleanup;
		}
	}
	a.live_pids = o->n_pids;

	err = caps_check(caps_effective(), &o->propagation);
	if (err)
		goto cleanup;
	err = mounts_ensure();
	if (err)
		goto cleanup;
	bool selecting = o->config && config_selects(o->config);
	if (o->config && (err = metadata_start(o->config)))
		goto cleanup;

	struct capture_opts so = {
		.trace_all = o->trace_all && !selecting,
		.discovery = selecting,
		.self_tgid = getpid(),
		.req_capture = o->req_capture,
		.resp_capture = o->resp_capture,
		.ringbuf_bytes = o->ringbuf_bytes,
		/* Sampled-out exchanges that nothing here wants never leave the kernel. */
		.drop_sampled_out = !o->prometheus && !o->otlp_metrics.enabled && !o->keep_errors,
	};
	err = capture_load(&so, &a.capture);
	if (err)
		goto cleanup;
	for (size_t i = 0; i < o->n_pids; i++) {
		err = capture_trace_pid(a.capture, o->pids[i]);
		if (err)
			goto cleanup;
	}
	err = set_sampler(&a);
	if (err)
		goto cleanup;
	if (o->prometheus || o->otlp_metrics.enabled) {
		a.metrics = metrics_create(clock_ns(CLOCK_REALTIME));
		if (!a.metrics) {
			err = -ENOMEM;
			goto cleanup;
		}
	}
	if (o->prometheus && (err = prometheus_start(o->prometheus, a.metrics, &a.prometheus)))
		goto cleanup;
	if (o->otlp_metrics.enabled && (err = otlp_metrics_start(&o->otlp_metrics, a.metrics, &a.otlp_metrics)))
		goto cleanup;
	rb = ring_buffer__new(capture_events_fd(a.capture), on_event, &a, NULL);
	if (!rb) {
		err = -errno;
		log_error("cannot read the event ring buffer: %s", strerror(-err));
		goto cleanup;
	}
	/* Per-process uprobes are detached off this thread (link_reaper.h). */
	link_reaper_start();
	/* The Go and TLS objects load side by side: each parses the kernel's
	 * BTF and has its programs verified, CPU work of ~0.1-0.2 s apiece
	 * that two threads overlap (each object is its own; they only read
	 * the capture object's map fds). The kernel's features are probed
	 * first, here, so the threads find them known. */
	uprobe_multi_supported();
	struct go_object_load go_load = { .capture = a.capture, .uprobes = !o->no_uprobes };
	bool go_thread = pthread_create(&go_load.thread, NULL, go_load_main, &go_load) == 0;
	if (!go_thread)
		go_load_main(&go_load);
	if (o->no_uprobes) {
		log_info("uprobes off: TLS plaintext (OpenSSL, Go crypto/tls) is not seen, and Go net/http and "
			 "gRPC client calls are not children of the requests that make them");
		err = 0;
	} else {
		err = tls_tracer_load(a.capture, &so, &a.tls);
	}
	if (go_thread)
		pthread_join(go_load.thread, NULL);
	a.go = go_load.go;
	if (!err)
		err = go_load.err;
	if (err)
		goto cleanup;
	err = go_worker_start(NULL, &a.gw);
	if (err)
		goto cleanup;
	if (so.trace_all)
		tls_tracer_add(a.tls, getpid()); /* the host's libssl, for every process */
	for (size_t i = 0; i < o->n_pids; i++)
		tls_tracer_add(a.tls, o->pids[i]);
	/* The processes named on the command line are followed before "ready". */
	for (size_t i = 0; i < o->n_pids; i++)
		vet_process(&a, o->pids[i]);
	if (go_worker_wait_idle(a.gw, GO_STARTUP_WAIT_MS))
		log_warn("go: the analysis of the traced executables takes over %d s: going on without waiting",
			 GO_STARTUP_WAIT_MS / 1000);
	go_worker_collect(a.gw, apply_analysis, &a);
	if (o->propagation) {
		err = propagation_start(a.capture, o->cgroup, o->propagation_tcp, &a.propagation);
		if (err)
			goto cleanup;
	}
	err = capture_attach(a.capture);
	if (err)
		goto cleanup;
	size_t selected = 0;
	if (selecting) {
		/* After attaching: a process that execs meanwhile is reported. */
		if ((err = discovery_create(o->config, a.capture, &a.discovery)))
			goto cleanup;
		selected = discovery_scan(a.discovery);
	}

	a.mono_to_real = clock_mono_to_real_offset();
	if (a.discovery)
		log_info("ready: tracing %zu running process%s selected by the configuration, and those that "
			 "start later", selected, selected == 1 ? "" : "es");
	else if (o->trace_all)
		log_info("ready: tracing every process on this host");
	else
		log_info("ready: tracing %zu process%s", o->n_pids, o->n_pids == 1 ? "" : "es");

	uint64_t started = clock_ns(CLOCK_MONOTONIC), last_tick = started, last_sweep = started;
	while (!stop_signal) {
		/* The kernel wakes us only when much is waiting (rb_flags()): read
		 * what is there after every timeout too. */
		int n = ring_buffer__poll(rb, go_worker_pending(a.gw) ? 10 : 100);
		if (n >= 0)
			n = ring_buffer__consume(rb);
		go_worker_collect(a.gw, apply_analysis, &a);
		tls_pending_run(&a);
		if (n < 0 && n != -EINTR) {
			err = n;
			log_error("reading events: %s", strerror(-n));
			break;
		}
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		if (now - last_tick >= TICK_NS) {
			last_tick = now;
			for (size_t i = 0; i < o->n_sinks; i++)
				if (o->sinks[i]->tick)
					o->sinks[i]->tick(o->sinks[i], clock_ns(CLOCK_MONOTONIC));
			capture_sweep_stale(a.capture, now, deliver_txn, &a);
			if (a.discovery)
				discovery_tick(a.discovery);
			if (a.metrics) {
				metrics_tick(a.metrics, now);
				update_drop_metrics(&a);
			}
			/* Exit events can be lost to a full ring buffer: check too. */
			for (size_t i = 0; i < o->n_pids; i++)
				if (o->pids[i] && !proc_exists(o->pids[i]))
					process_exited(&a, o->pids[i]);
			if (now - last_sweep >= SWEEP_NS) {
				last_sweep = now;
				sweep_gone(&a);
			}
		}
		if (!o->trace_all && !a.discovery && a.live_pids == 0) {
			log_info("every traced process has exited");
			break;
		}
		if (o->duration_s > 0 && now - started >= (uint64_t)(o->duration_s * 1e9))
			break;
	}
	/* Drain what the kernel already sent, then the answered exchanges it
	 * still holds (a keep-alive connection's last response, a connection
	 * whose close the kernel has not seen yet). */
	ring_buffer__consume(rb);
	capture_deliver_answered(a.capture, deliver_txn, &a);
	if (stop_signal)
		log_info("stopping on signal %d", (int)stop_signal);
	/* Detach first (nothing new arrives), then flush sinks, then counters. */
	propagation_stop(a.propagation);
	a.propagation = NULL;
	report_go_worker(a.gw);
	update_drop_metrics(&a); /* the worker's count, before it goes */
	go_worker_stop(a.gw);
	a.gw = NULL;
	go_tracer_destroy(a.go);
	a.go = NULL;
	tls_tracer_destroy(a.tls);
	a.tls = NULL;
	link_reaper_stop(); /* every uprobe detached before weft says it stopped */
	for (size_t i = 0; i < o->n_sinks; i++)
		o->sinks[i]->close(o->sinks[i]);
	o->n_sinks = 0;
	report_counters(&a);
	update_drop_metrics(&a); /* the final counts (OTLP shutdown drops included) for the last export */
	if (a.discovery) {
		struct discovery_stats ds;
		discovery_get_stats(a.discovery, &ds);
		log_info("discovery: %llu looks at processes, %llu selected, %llu no longer traced after exec; %llu "
			 "not kept (table full); %llu events of new programs not selected dropped",
			 (unsigned long long)ds.looked_at, (unsigned long long)ds.selected,
			 (unsigned long long)ds.unselected, (unsigned long long)ds.not_kept,
			 (unsigned long long)ds.provisional_dropped);
	}
	err = err == -EINTR ? 0 : err;

cleanup:
	otlp_metrics_stop(a.otlp_metrics); /* exports the final counts */
	otlp_metrics_config_free(&o->otlp_metrics);
	prometheus_stop(a.prometheus); /* before the metrics it reads */
	metrics_free(a.metrics);
	ring_buffer__free(rb);
	propagation_stop(a.propagation);
	go_worker_stop(a.gw);
	go_tracer_destroy(a.go);
	tls_tracer_destroy(a.tls);
	link_reaper_stop();
	capture_destroy(a.capture);
	discovery_destroy(a.discovery);
	metadata_stop();
	for (size_t i = 0; i < o->n_sinks; i++)
		o->sinks[i]->close(o->sinks[i]);
	o->n_sinks = 0;
	proc_cache_clear();
	protocol_conns_clear();
	return err;
}
