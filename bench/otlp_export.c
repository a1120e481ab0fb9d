/* Exporter throughput: feeds synthetic HTTP server spans (the attributes weft
 * produces) to the OTLP sink configured from OTEL_* variables, as fast as the
 * exporter drains them (never overflowing the queue), and reports spans/s
 * and CPU seconds (this process: emit + encode + compress + send) per 100k
 * spans. Usage: otlp_export [SPANS [PROCESSES]]; bench/export runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "otlp.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

static struct resource *make_resource(uint32_t pid)
{
	struct resource *r = calloc(1, sizeof(*r));
	char buf[64];

	r->refs = 1;
	r->pid = pid;
	snprintf(buf, sizeof(buf), "svc-%u", pid);
	attrs_set_str(&r->attrs, "service.name", buf);
	attrs_set_int(&r->attrs, "process.pid", pid);
	attrs_set_str(&r->attrs, "process.executable.name", "python3");
	attrs_set_str(&r->attrs, "process.command_line", "/usr/bin/python3 -m http.server 8080");
	attrs_set_str(&r->attrs, "host.name", "bench-host");
	attrs_set_str(&r->attrs, "telemetry.sdk.name", "weft");
	return r;
}

static void fill_span(struct span *s, struct resource *r, uint64_t i)
{
	char path[64];

	for (int b = 0; b < 16; b++)
		s->trace_id[b] = (uint8_t)(i >> (b % 8 * 8)) ^ (uint8_t)b;
	for (int b = 0; b < 8; b++) {
		s->span_id[b] = (uint8_t)(i >> (b * 8)) ^ 0x5a;
		s->parent_span_id[b] = i % 2 ? (uint8_t)(b + 1) : 0;
	}
	s->trace_flags = 1;
	s->name = strdup("GET /api/users/*");
	s->kind = SPAN_KIND_SERVER;
	s->start_ns = 1700000000000000000ull + i * 1000;
	s->end_ns = s->start_ns + 250000 + i % 1000;
	s->resource = resource_get(r);
	snprintf(path, sizeof(path), "/api/users/%llu", (unsigned long long)(i % 100000));
	attrs_set_str(&s->attrs, "http.request.method", "GET");
	attrs_set_str(&s->attrs, "url.path", path);
	attrs_set_str(&s->attrs, "url.scheme", "http");
	attrs_set_str(&s->attrs, "http.route", "/api/users/*");
	attrs_set_int(&s->attrs, "http.response.status_code", 200);
	attrs_set_str(&s->attrs, "server.address", "localhost");
	attrs_set_int(&s->attrs, "server.port", 8080);
	attrs_set_str(&s->attrs, "client.address", "127.0.0.1");
	attrs_set_int(&s->attrs, "network.peer.port", 40000 + i % 20000);
	attrs_set_str(&s->attrs, "network.protocol.version", "1.1");
	attrs_set_str(&s->attrs, "user_agent.original", "curl/7.88.1");
	attrs_set_int(&s->attrs, "http.response.body.size", 1024);
}

int main(int argc, char **argv)
{
	uint64_t total = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
	unsigned nproc = argc > 2 ? (unsigned)atoi(argv[2]) : 8;
	struct otlp_counters c0, c;
	struct otlp_config cfg;
	struct resource **res;
	struct span_sink *sink;
	char err[256];
	double t0, cpu0, wall, cpu;

	log_threshold = LOG_WARN;
	if (otlp_config_from_env(&cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	sink = otlp_sink_create(&cfg, NULL);
	if (!sink)
		return 1;
	res = calloc(nproc, sizeof(*res));
	for (unsigned p = 0; p < nproc; p++)
		res[p] = make_resource(1000 + p);

	/* a pool of prepared spans, so that only the exporter's work is timed */
	enum { POOL = 1024 };
	struct span **pool = calloc(POOL, sizeof(*pool));
	for (unsigned i = 0; i < POOL; i++) {
		pool[i] = span_new();
		fill_span(pool[i], res[i % nproc], i);
	}

	otlp_counters_get(&c0);
	t0 = now_s();
	cpu0 = cpu_s();
	for (uint64_t i = 0; i < total; i++) {
		/* backpressure: keep at most a queue's worth minus a batch pending */
		for (;;) {
			otlp_counters_get(&c);
			uint64_t pending = (c.spans_received - c0.spans_received) -
					   (c.spans_exported - c0.spans_exported) -
					   (otlp_counters_dropped(&c) - otlp_counters_dropped(&c0));
			if (pending + cfg.max_export_batch_size < cfg.max_queue_size)
				break;
			usleep(1000);
		}
		sink->emit(sink, pool[i % POOL]);
	}
	sink->close(sink);
	wall = now_s() - t0;
	cpu = cpu_s() - cpu0;
	otlp_counters_get(&c);
	printf("spans %llu exported %llu dropped %llu wall_s %.3f spans_per_s %.0f cpu_s_per_100k %.3f\n",
	       (unsigned long long)total, (unsigned long long)(c.spans_exported - c0.spans_exported),
	       (unsigned long long)(otlp_counters_dropped(&c) - otlp_counters_dropped(&c0)), wall,
	       (c.spans_exported - c0.spans_exported) / wall, cpu / total * 100000);
	for (unsigned i = 0; i < POOL; i++)
		span_free(pool[i]);
	free(pool);
	for (unsigned p = 0; p < nproc; p++)
		resource_put(res[p]);
	free(res);
	otlp_config_free(&cfg);
	return c.spans_exported - c0.spans_exported == total ? 0 : 1;
}
