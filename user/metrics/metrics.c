#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "metrics.h"

/* The semantic conventions' advised buckets (seconds). */
static const double http_bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10 };
static const double db_bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10 };
/* Tempo's metrics-generator default service-graph buckets. */
static const double sg_bounds[] = { 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 12.8 };

static const char *const http_server_keys[] = { "service.name", "http.request.method", "http.response.status_code",
						"http.route", "error.type" };
static const char *const http_client_keys[] = { "service.name", "http.request.method", "http.response.status_code",
						"server.address", "server.port", "error.type" };
static const char *const db_keys[] = { "service.name", "db.system.name", "db.operation.name", "server.address",
				       "server.port", "error.type" };
static const char *const rpc_server_keys[] = { "service.name", "rpc.system", "rpc.service", "rpc.method",
						"rpc.grpc.status_code" };
static const char *const rpc_client_keys[] = { "service.name", "rpc.system", "rpc.service", "rpc.method",
						"rpc.grpc.status_code", "server.address", "server.port" };
static const char *const sg_keys[] = { "client", "server", "connection_type" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct metrics *metrics_create(uint64_t now_ns)
{
	struct metrics *m = calloc(1, sizeof(*m));
	int err = 0;
	if (!m)
		return NULL;
	m->start_ns = now_ns;
	err = err ?: instrument_init(&m->in[METRIC_HTTP_SERVER], "http.server.request.duration", "s",
				     "Duration of HTTP server requests.", INSTR_HISTOGRAM, http_bounds,
				     N(http_bounds), http_server_keys, N(http_server_keys));
	err = err ?: instrument_init(&m->in[METRIC_HTTP_CLIENT], "http.client.request.duration", "s",
				     "Duration of HTTP client requests.", INSTR_HISTOGRAM, http_bounds,
				     N(http_bounds), http_client_keys, N(http_client_keys));
	err = err ?: instrument_init(&m->in[METRIC_DB_CLIENT], "db.client.operation.duration", "s",
				     "Duration of database client operations.", INSTR_HISTOGRAM, db_bounds,
				     N(db_bounds), db_keys, N(db_keys));
	/* Seconds, as the HTTP ones (and Beyla/OBI's); the RPC conventions'
	 * older text says milliseconds. */
	err = err ?: instrument_init(&m->in[METRIC_RPC_SERVER], "rpc.server.duration", "s",
				     "Duration of RPCs served (gRPC: from the request's HEADERS to the end of both streams).",
				     INSTR_HISTOGRAM, http_bounds, N(http_bounds), rpc_server_keys, N(rpc_server_keys));
	err = err ?: instrument_init(&m->in[METRIC_RPC_CLIENT], "rpc.client.duration", "s",
				     "Duration of RPCs made.", INSTR_HISTOGRAM, http_bounds, N(http_bounds),
				     rpc_client_keys, N(rpc_client_keys));
	err = err ?: instrument_init(&m->in[METRIC_SG_REQUESTS], "traces_service_graph_request", "",
				     "Requests between two nodes of the service graph.", INSTR_COUNTER, NULL, 0,
				     sg_keys, N(sg_keys));
	err = err ?: instrument_init(&m->in[METRIC_SG_FAILED], "traces_service_graph_request_failed", "",
				     "Failed requests between two nodes of the service graph.", INSTR_COUNTER, NULL,
				     0, sg_keys, N(sg_keys));
	err = err ?: instrument_init(&m->in[METRIC_SG_SERVER], "traces_service_graph_request_server", "s",
				     "Duration of requests between two nodes, seen by the server.", INSTR_HISTOGRAM,
				     sg_bounds, N(sg_bounds), sg_keys, N(sg_keys));
	err = err ?: instrument_init(&m->in[METRIC_SG_CLIENT], "traces_service_graph_request_client", "s",
				     "Duration of requests between two nodes, seen by the client.", INSTR_HISTOGRAM,
				     sg_bounds, N(sg_bounds), sg_keys, N(sg_keys));
	if (!err && !(m->graph = service_graph_create()))
		err = -ENOMEM;
	if (err) {
		log_error("metrics: cannot set up: %d", err);
		metrics_free(m);
		return NULL;
	}
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (int i = 0; i < METRIC_COUNT; i++)
		instrument_free(&m->in[i]);
	service_graph_free(m->graph);
	free(m);
}

void metrics_record(struct metrics *m, const struct span *s, uint64_t now_mono)
{
	red_record(m, s);
	service_graph_record(m, s, now_mono);
}

void metrics_tick(struct metrics *m, uint64_t now_mono)
{
	service_graph_expire(m, now_mono);
}
