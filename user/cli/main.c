/* weft: command line. */
#include <errno.h>
#include <getopt.h>
#include <linux/magic.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "doctor.h"
#include "inspect.h"
#include "log.h"
#include "otlp.h"
#include "prometheus.h"
#include "sampler.h"
#include "sinks.h"
#include "abi/weft.h"
#include "version.h"

static const char usage_text[] =
	"Usage: weft <command> [options]\n"
	"\n"
	"weft traces the HTTP/1, HTTP/2 and gRPC requests and the PostgreSQL,\n"
	"MySQL/MariaDB and Redis queries of unmodified programs with eBPF, joins\n"
	"services into one trace with W3C traceparent, and prints or exports\n"
	"OpenTelemetry spans. It needs root.\n"
	"Go programs (1.19+, stripped or not) are followed per goroutine: a handler's\n"
	"outgoing calls, also from goroutines it starts, are children of its request\n"
	"(one uprobe hit per net/http client request; see docs/GO.md).\n"
	"\n"
	"Commands:\n"
	"  attach -p PID ...  trace these processes (all their threads, and processes they fork)\n"
	"  run                trace every process on this host except weft itself, or those\n"
	"                     that --config selects (executable, port, container, pod)\n"
	"  doctor             check, by loading tiny programs, what this kernel allows, and\n"
	"                     whether it accepts each of weft's programs (--programs: only\n"
	"                     that; --strict: fail above half the verifier's limit too)\n"
	"  inspect PID|PATH   how weft sees an executable: Go version, probe points, offsets\n"
	"  version            print weft's version\n"
	"\n"
	"Options of attach and run:\n"
	"  -p, --pid PID          a process to trace; repeat it or give PID,PID,...\n"
	"  -o, --output LIST      where spans go, comma-separated (default: console):\n"
	"                           console  a waterfall of each trace once it is complete\n"
	"                           json     one span per line on stdout (logs stay on stderr)\n"
	"                           otlp     OpenTelemetry collector (OTLP/HTTP or gRPC, see below)\n"
	"                         weft run exports to OTLP by default when an OTLP endpoint is set\n"
	"  -d, --duration SECS    stop after SECS seconds (default: until Ctrl-C or SIGTERM)\n"
	"      --capture-bytes N  request bytes kept per exchange (default 1024, at most 2048)\n"
	"      --response-bytes N response bytes kept per exchange (default 512, at most 512)\n"
	"      --ringbuf-mb N     kernel-to-weft event buffer in MiB, a power of two (default 8)\n"
	"      --propagation MODE headers,tcp (default): inject W3C traceparent into the HTTP/1\n"
	"                         requests and HTTP/2 (gRPC) request HEADERS traced processes\n"
	"                         send, so the next service joins the trace, and carry the\n"
	"                         context of TLS requests in a TCP header option between\n"
	"                         traced processes (docs/PROPAGATION.md); headers: the\n"
	"                         headers only; off: never touch traffic\n"
	"      --db-statement M   db.query.text of database spans: redacted (default: literals\n"
	"                         and values become ?), raw, or off\n"
	"      --uprobes on|off   on (default): the few uprobes weft needs: one hit per Go\n"
	"                         net/http client request and per gRPC call (to parent them),\n"
	"                         per OpenSSL or Go crypto/tls read and write (to see TLS\n"
	"                         plaintext). A hit is a trap, ~10 us on some VMs (docs/\n"
	"                         PERFORMANCE.md). off: none: TLS plaintext is not seen, and\n"
	"                         Go HTTP/gRPC client calls start traces of their own\n"
	"      --cgroup PATH      cgroup v2 whose sockets may carry injected headers\n"
	"                         (default: the cgroup v2 root, i.e. the whole host)\n"
	"      --sampler NAME     which traces are exported (OTEL_TRACES_SAMPLER): always_on,\n"
	"                         always_off, traceidratio, parentbased_always_on (default),\n"
	"                         parentbased_always_off, parentbased_traceidratio. Decided\n"
	"                         once per trace at its root from the trace id (so weft\n"
	"                         instances agree); injected traceparent carries it on\n"
	"                         (flags 00: sampled out). Metrics count every request\n"
	"      --sampler-arg R    ratio of the traceidratio samplers, 0 to 1 (default 1;\n"
	"                         OTEL_TRACES_SAMPLER_ARG), e.g. --sampler-arg 0.01\n"
	"      --keep-errors      export the spans that ended in error even when their trace\n"
	"                         is sampled out, each as a trace of its own (counted apart)\n"
	"      --prometheus ADDR:PORT  serve RED metrics (http.server.request.duration, ...)\n"
	"                         and the service graph of every request at\n"
	"                         http://ADDR:PORT/metrics, e.g. --prometheus :9400\n"
	"                         OTEL_METRICS_EXPORTER=otlp: the same metrics to the OTLP\n"
	"                         endpoint's /v1/metrics (docs/METRICS.md)\n"
	"      --config FILE      weft run: YAML file choosing what to trace (discovery:\n"
	"                         instrument / exclude_instrument selectors by exe_path glob,\n"
	"                         open_ports, container_name, k8s_namespace, k8s_pod_name,\n"
	"                         k8s_deployment_name, k8s_pod_labels, ...) and the Kubernetes\n"
	"                         API to ask; WEFT_DISCOVERY_* variables set the same keys\n"
	"                         (docs/DEPLOY.md). Processes started later are picked up\n"
	"      --kubeconfig FILE  weft run: Kubernetes API outside a cluster (default:\n"
	"                         $KUBECONFIG; in a pod, its service account). Spans get\n"
	"                         k8s.pod.name, k8s.deployment.name, ...; service.name is the\n"
	"                         workload's (OTEL_SERVICE_NAME of the process first)\n"
	"  -v, --verbose          more logs; twice for libbpf's debug output\n"
	"  -q, --quiet            log errors only\n"
	"\n"
	"OTLP export (OTEL_EXPORTER_OTLP_* and OTEL_BSP_* variables; these options override them):\n"
	"      --otlp-endpoint URL       collector, e.g. http://localhost:4318 (/v1/traces is added)\n"
	"      --otlp-protocol P         http/protobuf (default) or grpc\n"
	"      --otlp-headers K=V,...    request headers, e.g. api-key=secret (repeatable)\n"
	"      --otlp-timeout MS         per-request timeout in milliseconds (default 10000)\n"
	"      --otlp-compression C      gzip or none (default)\n"
	"      --otlp-certificate FILE   CA certificate (PEM) to verify the collector\n"
	"      --otlp-insecure[=BOOL]    plaintext gRPC to an endpoint given without scheme\n"
	"\n"
	"Examples:\n"
	"  weft attach -p $(pgrep -o nginx)        live waterfall of nginx's requests\n"
	"  weft attach -p 1234 -o json | jq .name  span names, one per line\n"
	"  weft run -o json -d 60 > spans.jsonl    one minute of every HTTP exchange on the host\n"
	"  OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 weft run\n"
	"                                          the whole host, exported to a Collector/Tempo/Jaeger\n"
	"  weft doctor                             what works on this kernel, and what weft does without it\n"	"  weft doctor --programs                  which of weft's BPF programs this kernel refuses, and why\n"
	"  weft inspect $(pgrep -o myservice)      a Go service without parents? what weft found in it\n";

static void usage(FILE *f)
{
	fputs(usage_text, f);
}

static int parse_u32(const char *s, const char *what, uint32_t min, uint32_t max, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		log_error("%s: '%s' is not a number from %u to %u", what, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int add_pids(struct agent_opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL;
	int err = 0;
	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		uint32_t pid;
		if ((err = parse_u32(tok, "--pid", 1, 0x3fffffff, &pid)))
			break;
		if (o->n_pids == AGENT_MAX_PIDS) {
			log_error("--pid: at most %d processes", AGENT_MAX_PIDS);
			err = -E2BIG;
			break;
		}
		o->pids[o->n_pids++] = pid;
	}
	free(copy);
	return err;
}

#define DURATION_MAX_S (366.0 * 24 * 3600)

/* A positive, finite number of seconds, at most a year. */
static int parse_duration(const char *s, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !isfinite(v) || v <= 0 || v > DURATION_MAX_S) {
		log_error("--duration: '%s' is not a number of seconds above 0 and at most %.0f (a year)", s,
			  DURATION_MAX_S);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* A cgroup v2 directory: checked now, not after seconds of BPF loading. */
static int check_cgroup(const char *path)
{
	struct stat st;
	struct statfs fs;
	if (!*path || stat(path, &st) < 0) {
		int err = *path ? -errno : -ENOENT;
		log_error("--cgroup: '%s': %s", path, strerror(-err));
		return err;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("--cgroup: '%s' is not a directory (a cgroup v2 directory, e.g. "
			  "/sys/fs/cgroup/system.slice)", path);
		return -ENOTDIR;
	}
	if (statfs(path, &fs) < 0 || fs.f_type != CGROUP2_SUPER_MAGIC) {
		log_error("--cgroup: '%s' is not in a cgroup v2 file system", path);
		return -EINVAL;
	}
	return 0;
}

static const char *const output_names[] = { "console", "json", "otlp" };
#define N_OUTPUTS (sizeof(output_names) / sizeof(output_names[0]))

/* The --output list before anything is created: known names, each once,
 * no empty member, at least one. */
static int check_outputs(const char *list)
{
	bool seen[N_OUTPUTS] = {};
	const char *p = list;
	if (!*list) {
		log_error("--output: empty: choose one or more of console, json, otlp");
		return -EINVAL;
	}
	for (;;) {
		size_t len = strcspn(p, ","), i;
		for (i = 0; i < N_OUTPUTS; i++)
			if (strlen(output_names[i]) == len && !strncmp(p, output_names[i], len))
				break;
		if (len == 0) {
			log_error("--output: empty name in '%s' (choose from console, json, otlp)", list);
			return -EINVAL;
		}
		if (i == N_OUTPUTS) {
			log_error("--output: unknown output '%.*s' (choose from console, json, otlp)", (int)len, p);
			return -EINVAL;
		}
		if (seen[i]) {
			log_error("--output: '%s' is given twice", output_names[i]);
			return -EINVAL;
		}
		seen[i] = true;
		if (!p[len])
			return 0;
		p += len + 1;
	}
}

static int add_outputs(struct agent_opts *o, const char *list, const struct otlp_config *otlp)
{
	char *copy = strdup(list), *save = NULL;
	int err = 0;
	if (!copy)
		return -ENOMEM;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct span_sink *s = NULL;
		if (strcmp(tok, "console") == 0) {
			s = console_sink_create(stdout);
		} else if (strcmp(tok, "json") == 0) {
			s = json_sink_create();
		} else if (strcmp(tok, "otlp") == 0) {
			s = otlp_sink_create_from_env(otlp);
		} else {
			log_error("--output: unknown output '%s' (choose from console, json, otlp)", tok);
			err = -EINVAL;
			break;
		}
		if (!s || o->n_sinks == AGENT_MAX_SINKS) {
			err = s ? -E2BIG : -ENOMEM;
			if (s)
				log_error("--output: at most %d outputs", AGENT_MAX_SINKS);
			else
				log_error("--output: cannot create the %s output", tok);
			if (s)
				s->close(s);
			break;
		}
		o->sinks[o->n_sinks++] = s;
	}
	free(copy);
	return err;
}

enum long_only { OPT_CAPTURE = 256, OPT_RESPONSE, OPT_RINGBUF, OPT_OTLP, OPT_PROPAGATION, OPT_CGROUP, OPT_DB_STATEMENT,
		 OPT_SAMPLER, OPT_SAMPLER_ARG, OPT_PROMETHEUS,
		 OPT_KEEP_ERRORS, OPT_CONFIG, OPT_KUBECONFIG, OPT_UPROBES };

static int trace_main(int argc, char **argv, bool run)
{
	static const struct option longopts[] = {
		{ "pid", required_argument, NULL, 'p' },
		{ "output", required_argument, NULL, 'o' },
		{ "duration", required_argument, NULL, 'd' },
		{ "capture-bytes", required_argument, NULL, OPT_CAPTURE },
		{ "response-bytes", required_argument, NULL, OPT_RESPONSE },
		{ "ringbuf-mb", required_argument, NULL, OPT_RINGBUF },
		{ "propagation", required_argument, NULL, OPT_PROPAGATION },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "db-statement", required_argument, NULL, OPT_DB_STATEMENT },
		{ "uprobes", required_argument, NULL, OPT_UPROBES },
		{ "sampler", required_argument, NULL, OPT_SAMPLER },
		{ "sampler-arg", required_argument, NULL, OPT_SAMPLER_ARG },
		{ "prometheus", required_argument, NULL, OPT_PROMETHEUS },
		{ "keep-errors", no_argument, NULL, OPT_KEEP_ERRORS },
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "kubeconfig", required_argument, NULL, OPT_KUBECONFIG },
		{ "otlp-endpoint", required_argument, NULL, OPT_OTLP },
		{ "otlp-protocol", required_argument, NULL, OPT_OTLP },
		{ "otlp-headers", required_argument, NULL, OPT_OTLP },
		{ "otlp-timeout", required_argument, NULL, OPT_OTLP },
		{ "otlp-compression", required_argument, NULL, OPT_OTLP },
		{ "otlp-certificate", required_argument, NULL, OPT_OTLP },
		{ "otlp-insecure", optional_argument, NULL, OPT_OTLP },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	static struct agent_opts o;
	static struct weft_config cfg;
	struct otlp_config otlp;
	const char *config_path = NULL, *kubeconfig = NULL;
	const char *outputs = NULL, *sampler = NULL, *sampler_arg = NULL;
	char otlp_err[256], otlp_flag[64];
	bool otlp_flags = false;
	uint32_t mb = 8;
	int c, idx = 0, err = 0, ret;

	memset(&o, 0, sizeof(o));
	o.trace_all = run;
	o.req_capture = WEFT_REQ_CAP_DEFAULT;
	o.resp_capture = WEFT_RESP_CAP_DEFAULT;
	o.propagation = true;
	o.propagation_tcp = true; /* only ever between traced processes (docs/PROPAGATION.md) */
	if (otlp_config_from_env(&otlp, otlp_err, sizeof(otlp_err))) {
		log_error("%s", otlp_err);
		otlp_config_free(&otlp);
		return 2;
	}
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:o:d:vqh", longopts, &idx)) != -1) {
		switch (c) {
		case 'p': err = add_pids(&o, optarg); break;
		case 'o': outputs = optarg; err = check_outputs(optarg); break;
		case 'd': err = parse_duration(optarg, &o.duration_s); break;
		case OPT_CAPTURE: err = parse_u32(optarg, "--capture-bytes", 64, WEFT_REQ_CAP_MAX, &o.req_capture); break;
		case OPT_RESPONSE: err = parse_u32(optarg, "--response-bytes", 16, WEFT_RESP_CAP_MAX, &o.resp_capture); break;
		case OPT_RINGBUF:
			err = parse_u32(optarg, "--ringbuf-mb", 1, 1024, &mb);
			if (!err && (mb & (mb - 1))) {
				log_error("--ringbuf-mb: %u is not a power of two", mb);
				err = -EINVAL;
			}
			break;
		case OPT_PROPAGATION:
			if (strcmp(optarg, "headers") == 0) {
				o.propagation = true;
				o.propagation_tcp = false;
			} else if (strcmp(optarg, "headers,tcp") == 0 || strcmp(optarg, "tcp,headers") == 0) {
				o.propagation = true;
				o.propagation_tcp = true;
			} else if (strcmp(optarg, "off") == 0) {
				o.propagation = false;
				o.propagation_tcp = false;
			} else {
				log_error("--propagation: '%s' is not one of: headers, headers,tcp, off", optarg);
				err = -EINVAL;
			}
			break;
		case OPT_CGROUP: o.cgroup = optarg; err = check_cgroup(optarg); break;
		case OPT_SAMPLER: sampler = optarg; break;
		case OPT_SAMPLER_ARG: sampler_arg = optarg; break;
		case OPT_KEEP_ERRORS: o.keep_errors = true; break;
		case OPT_CONFIG: config_path = optarg; break;
		case OPT_KUBECONFIG: kubeconfig = optarg; break;
		case OPT_PROMETHEUS:
			o.prometheus = optarg;
			if (prometheus_check_listen(optarg)) {
				log_error("--prometheus: '%s' is not ADDR:PORT (e.g. 127.0.0.1:9400, :9400)", optarg);
				err = -EINVAL;
			}
			break;
		case OPT_DB_STATEMENT:
			if (strcmp(optarg, "redacted") == 0) {
				o.db_statement = DB_STATEMENT_REDACTED;
			} else if (strcmp(optarg, "raw") == 0) {
				o.db_statement = DB_STATEMENT_RAW;
			} else if (strcmp(optarg, "off") == 0) {
				o.db_statement = DB_STATEMENT_OFF;
			} else {
				log_error("--db-statement: '%s' is not one of: redacted, raw, off", optarg);
				err = -EINVAL;
			}
			break;
		case OPT_UPROBES:
			if (strcmp(optarg, "on") == 0) {
				o.no_uprobes = false;
			} else if (strcmp(optarg, "off") == 0) {
				o.no_uprobes = true;
			} else {
				log_error("--uprobes: '%s' is not one of: on, off", optarg);
				err = -EINVAL;
			}
			break;
		case 'v': log_threshold = log_threshold < LOG_DEBUG ? log_threshold + 1 : LOG_DEBUG; break;
		case 'q': log_threshold = LOG_ERROR; break;
		case OPT_OTLP:
			snprintf(otlp_flag, sizeof(otlp_flag), "--%s", longopts[idx].name);
			otlp_flags = true;
			if (otlp_config_set_flag(&otlp, otlp_flag, optarg, otlp_err, sizeof(otlp_err))) {
				log_error("%s", otlp_err);
				err = -EINVAL;
			}
			break;
		case 'h': otlp_config_free(&otlp); usage(stdout); return 0;
		default: otlp_config_free(&otlp); usage(stderr); return 2;
		}
		if (err) {
			otlp_config_free(&otlp);
			return 2;
		}
	}
	/* weft run exports to OTLP by default once an endpoint is configured */
	if (!outputs)
		outputs = run && otlp_config_endpoint_set(&otlp) ? "otlp" : "console";
	if (otlp_flags && !strstr(outputs, "otlp"))
		log_warn("--otlp-* options have no effect without --output otlp");
	if (optind < argc) {
		log_error("unexpected argument '%s' (see weft --help)", argv[optind]);
		return 2;
	}
	if (run && o.n_pids) {
		log_error("weft run traces every process: use weft attach -p PID to choose");
		return 2;
	}
	if (!run && (config_path || kubeconfig)) {
		log_error("--config and --kubeconfig are options of weft run");
		return 2;
	}
	if (!run && !o.n_pids) {
		log_error("weft attach needs at least one -p PID (or use weft run for every process)");
		return 2;
	}
	if (otlp_metrics_config(&otlp, &o.otlp_metrics, otlp_err, sizeof(otlp_err)) ||
	    sampler_configure(sampler, sampler_arg, &o.sampler, otlp_err, sizeof(otlp_err))) {
		log_error("%s", otlp_err);
		otlp_config_free(&otlp);
		return 2;
	}
	if (run) {
		if (config_load(&cfg, config_path, otlp_err, sizeof(otlp_err))) {
			log_error("%s", otlp_err);
			otlp_config_free(&otlp);
			return 2;
		}
		if (kubeconfig) {
			free(cfg.kubeconfig);
			cfg.kubeconfig = strdup(kubeconfig);
		}
		o.config = &cfg;
	}
	if (geteuid() != 0)
		log_warn("not running as root: loading BPF programs will likely fail");
	o.ringbuf_bytes = mb << 20;
	ret = add_outputs(&o, outputs, &otlp);
	otlp_config_free(&otlp);
	if (ret) {
		for (size_t i = 0; i < o.n_sinks; i++)
			o.sinks[i]->close(o.sinks[i]);
		config_free(&cfg);
		return 2;
	}
	log_setup_libbpf();
	err = agent_run(&o);
	config_free(&cfg);
	return err ? 1 : 0;
}

int main(int argc, char **argv)
{
	/* Whole executables are read into the heap for analysis (up to 512 MiB,
	 * user/golang/goelf.c). glibc raises its mmap threshold to the size of
	 * each large block freed, so after the first one every later file
	 * buffer came from a thread's arena and stayed there once freed: weft
	 * run's RSS climbed by steps (36 -> 63 MB over a few hundred binaries,
	 * docs/RELIABILITY.md). A fixed threshold keeps large blocks mmap'd and
	 * returns them at free. (No effect under ASan, whose allocator is its
	 * own.) */
	mallopt(M_MMAP_THRESHOLD, 256 << 10);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "attach") == 0)
		return trace_main(argc - 1, argv + 1, false);
	if (strcmp(cmd, "run") == 0)
		return trace_main(argc - 1, argv + 1, true);
	if (strcmp(cmd, "doctor") == 0) {
		log_threshold = LOG_ERROR;
		return doctor_main(argc - 1, argv + 1);
	}
	if (strcmp(cmd, "inspect") == 0)
		return inspect_main(argc - 1, argv + 1);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("weft %s\n", WEFT_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
		usage(stdout);
		return 0;
	}
	log_error("unknown command '%s'", cmd);
	usage(stderr);
	return 2;
}
