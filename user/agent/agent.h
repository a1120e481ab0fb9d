/* The tracing session: load, attach, read events, assemble spans, hand
 * them to sinks, and tear everything down on any exit path. */
#ifndef WEFT_AGENT_H
#define WEFT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "db.h"
#include "otlp_metrics.h"
#include "sampler.h"
#include "sink.h"

#define AGENT_MAX_PIDS 256
#define AGENT_MAX_SINKS 4

struct agent_opts {
	bool trace_all;
	uint32_t pids[AGENT_MAX_PIDS];
	size_t n_pids;
	uint32_t req_capture, resp_capture;
	uint32_t ringbuf_bytes;
	double duration_s; /* 0: until SIGINT/SIGTERM */
	bool propagation;   /* inject traceparent (sockops + sk_msg) */
	bool propagation_tcp; /* and TLS requests' context in a TCP option (sockops) */
	enum db_statement_mode db_statement; /* db.query.text: redacted, raw, off */
	const char *cgroup; /* for propagation; NULL: the cgroup v2 root */
	struct sampler sampler; /* zero: parentbased_always_on */
	bool keep_errors;       /* export error spans of sampled-out traces, alone */
	bool no_uprobes;        /* --uprobes off: no Go or TLS uprobe (docs/GO.md, docs/TLS.md) */
	const char *prometheus; /* ADDR:PORT of /metrics, or NULL */
	struct otlp_metrics_config otlp_metrics; /* .enabled: OTEL_METRICS_EXPORTER=otlp */
	const struct weft_config *config; /* weft run: selection, Kubernetes (NULL: none) */
	struct span_sink *sinks[AGENT_MAX_SINKS];
	size_t n_sinks;
};

/* Runs until a signal, the duration, or (attach) the exit of every
 * selected process. Closes the sinks. Returns 0 or a negative errno. */
int agent_run(struct agent_opts *o);

#endif
