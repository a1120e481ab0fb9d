/* Service graph with Tempo's metrics-generator names and labels: an edge
 * client -> server for each request between two traced services, joined
 * through propagation (the CLIENT span's id is the SERVER span's parent),
 * whichever of the two spans comes first; edges to peers that are not
 * traced: databases (connection_type="database") at once, HTTP servers
 * (connection_type="virtual_node") once the client span waited SG_WAIT_NS
 * for its server in vain, both named by server.address; and requests of
 * untraced clients to a service, from the node "user". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

#define SG_BUCKETS 16384
#define SG_MAX_PENDING 65536 /* beyond, the oldest waiting side is given up */

struct sg_side {
	struct sg_side *next;             /* bucket chain */
	struct sg_side *older, *newer;    /* arrival order, for expiry */
	uint64_t key;                     /* client: its span id; server: its parent */
	bool client;
	bool failed;
	uint64_t dur_ns, arrived;
	char *service, *peer;             /* peer: a client's server.address */
};

struct service_graph {
	struct sg_side *buckets[SG_BUCKETS];
	struct sg_side *oldest, *newest;
	size_t pending;
	uint64_t expired_servers, given_up;
};

struct service_graph *service_graph_create(void)
{
	return calloc(1, sizeof(struct service_graph));
}

static void side_free(struct sg_side *e)
{
	free(e->service);
	free(e->peer);
	free(e);
}

void service_graph_free(struct service_graph *g)
{
	if (!g)
		return;
	for (struct sg_side *e = g->oldest, *n; e; e = n) {
		n = e->newer;
		side_free(e);
	}
	free(g);
}

static uint64_t id64(const uint8_t *id)
{
	uint64_t v;
	memcpy(&v, id, 8);
	return v;
}

static size_t bucket(uint64_t key)
{
	return (key * 0x9E3779B97F4A7C15ull) >> 50; /* 14 bits */
}

static void unlink_side(struct service_graph *g, struct sg_side *e)
{
	struct sg_side **pp = &g->buckets[bucket(e->key)];
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp)
		*pp = e->next;
	if (e->older)
		e->older->newer = e->newer;
	else
		g->oldest = e->newer;
	if (e->newer)
		e->newer->older = e->older;
	else
		g->newest = e->older;
	g->pending--;
}

/* The waiting other side of an edge (client: the server's key is its parent). */
static struct sg_side *take(struct service_graph *g, uint64_t key, bool client)
{
	for (struct sg_side *e = g->buckets[bucket(key)]; e; e = e->next) {
		if (e->key == key && e->client == client) {
			unlink_side(g, e);
			return e;
		}
	}
	return NULL;
}

static void edge(struct metrics *m, const char *client, const char *server, const char *type, bool failed,
		 uint64_t client_ns, uint64_t server_ns)
{
	const char *v[INSTR_MAX_LABELS] = { client, server, type };
	instrument_add(&m->in[METRIC_SG_REQUESTS], v, 1);
	if (failed)
		instrument_add(&m->in[METRIC_SG_FAILED], v, 1);
	else
		instrument_series(&m->in[METRIC_SG_FAILED], v); /* 0, so that rates exist */
	if (client_ns != UINT64_MAX)
		instrument_record(&m->in[METRIC_SG_CLIENT], v, client_ns, NULL, NULL, 0);
	if (server_ns != UINT64_MAX)
		instrument_record(&m->in[METRIC_SG_SERVER], v, server_ns, NULL, NULL, 0);
}

static void expire_one(struct metrics *m, struct sg_side *e)
{
	if (e->client)
		edge(m, e->service, e->peer ? e->peer : "unknown", "virtual_node", e->failed, e->dur_ns, UINT64_MAX);
	else
		m->graph->expired_servers++; /* a caller weft does not see */
	side_free(e);
}

static void wait_for_other(struct metrics *m, const struct span *s, uint64_t key, bool client, bool failed,
			   uint64_t dur, const char *peer, uint64_t now)
{
	struct service_graph *g = m->graph;
	if (g->pending >= SG_MAX_PENDING) {
		struct sg_side *old = g->oldest;
		unlink_side(g, old);
		g->given_up++;
		expire_one(m, old);
	}
	struct sg_side *e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->key = key;
	e->client = client;
	e->failed = failed;
	e->dur_ns = dur;
	e->arrived = now;
	e->service = strdup(span_service_name(s));
	e->peer = peer ? strdup(peer) : NULL;
	if (!e->service || (peer && !e->peer)) {
		side_free(e);
		return;
	}
	size_t b = bucket(key);
	e->next = g->buckets[b];
	g->buckets[b] = e;
	e->older = g->newest;
	if (g->newest)
		g->newest->newer = e;
	else
		g->oldest = e;
	g->newest = e;
	g->pending++;
}

void service_graph_record(struct metrics *m, const struct span *s, uint64_t now_mono)
{
	const struct attr *db = attrs_get(&s->attrs, "db.system.name");
	/* HTTP and RPC spans: requests from one service to another. */
	const struct attr *http = attrs_get(&s->attrs, "http.request.method");
	if (!http)
		http = attrs_get(&s->attrs, "rpc.system");
	const struct attr *addr = attrs_get(&s->attrs, "server.address");
	const char *peer = addr && addr->type == ATTR_STR ? addr->str : NULL;
	uint64_t dur = s->end_ns > s->start_ns ? s->end_ns - s->start_ns : 0;
	bool failed = s->status == SPAN_STATUS_ERROR;
	const char *service = span_service_name(s);

	if (s->kind == SPAN_KIND_CLIENT && db) {
		edge(m, service, peer ? peer : db->str, "database", failed, dur, UINT64_MAX);
	} else if (s->kind == SPAN_KIND_CLIENT && http) {
		struct sg_side *srv = take(m->graph, id64(s->span_id), false);
		if (srv) {
			edge(m, service, srv->service, "", failed || srv->failed, dur, srv->dur_ns);
			side_free(srv);
		} else {
			wait_for_other(m, s, id64(s->span_id), true, failed, dur, peer, now_mono);
		}
	} else if (s->kind == SPAN_KIND_SERVER && http) {
		if (!span_has_parent(s)) {
			edge(m, "user", service, "virtual_node", failed, UINT64_MAX, dur);
			return;
		}
		struct sg_side *cli = take(m->graph, id64(s->parent_span_id), true);
		if (cli) {
			edge(m, cli->service, service, "", failed || cli->failed, cli->dur_ns, dur);
			side_free(cli);
		} else {
			wait_for_other(m, s, id64(s->parent_span_id), false, failed, dur, NULL, now_mono);
		}
	}
}

void service_graph_expire(struct metrics *m, uint64_t now_mono)
{
	struct service_graph *g = m->graph;
	while (g->oldest && now_mono - g->oldest->arrived >= SG_WAIT_NS) {
		struct sg_side *e = g->oldest;
		unlink_side(g, e);
		expire_one(m, e);
	}
}
