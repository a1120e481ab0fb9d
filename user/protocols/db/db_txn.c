#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "db_span.h"
#include "db_txn.h"
#include "http_span.h"
#include "mysql_proto.h"
#include "pg_proto.h"
#include "redis_proto.h"

#define DB_CONN_BUCKETS 1024
#define DB_CONN_MAX 65536 /* bounded: past this, the oldest state is dropped */

struct db_conn {
	uint32_t pid, fd;
	uint8_t proto;
	void *state;
	struct db_conn *next;
};

static struct db_conn *buckets[DB_CONN_BUCKETS];
static size_t n_conns;

static size_t bucket_of(uint32_t pid, uint32_t fd)
{
	return (pid * 2654435761u ^ fd) % DB_CONN_BUCKETS;
}

static void conn_free(struct db_conn *c)
{
	switch (c->proto) {
	case WEFT_PROTO_PGSQL: pg_conn_state_free(c->state); break;
	case WEFT_PROTO_MYSQL: mysql_conn_state_free(c->state); break;
	case WEFT_PROTO_REDIS: redis_conn_state_free(c->state); break;
	}
	free(c);
	n_conns--;
}

static void evict_one(void)
{
	for (size_t i = 0; i < DB_CONN_BUCKETS; i++) {
		if (buckets[i]) {
			struct db_conn *c = buckets[i];
			buckets[i] = c->next;
			conn_free(c);
			return;
		}
	}
}

/* The state of (pid, fd) for proto; a new one if absent or of another
 * protocol (the fd was reused). */
static struct db_conn *conn_state(uint32_t pid, uint32_t fd, uint8_t proto, bool opened)
{
	struct db_conn **b = &buckets[bucket_of(pid, fd)];
	for (struct db_conn **p = b; *p; p = &(*p)->next) {
		if ((*p)->pid == pid && (*p)->fd == fd) {
			if ((*p)->proto == proto)
				return *p;
			struct db_conn *stale = *p;
			*p = stale->next;
			conn_free(stale);
			break;
		}
	}
	if (n_conns >= DB_CONN_MAX)
		evict_one();
	struct db_conn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->pid = pid;
	c->fd = fd;
	c->proto = proto;
	switch (proto) {
	case WEFT_PROTO_PGSQL: c->state = pg_conn_state_new(); break;
	case WEFT_PROTO_MYSQL: c->state = mysql_conn_state_new(); break;
	case WEFT_PROTO_REDIS: c->state = redis_conn_state_new(opened); break;
	}
	if (!c->state) {
		free(c);
		return NULL;
	}
	c->next = *b;
	*b = c;
	n_conns++;
	return c;
}

void db_conn_closed(uint32_t pid, uint32_t fd)
{
	for (struct db_conn **p = &buckets[bucket_of(pid, fd)]; *p; p = &(*p)->next) {
		if ((*p)->pid == pid && (*p)->fd == fd) {
			struct db_conn *c = *p;
			*p = c->next;
			conn_free(c);
			return;
		}
	}
}

void db_conns_forget_pid(uint32_t pid)
{
	for (size_t i = 0; i < DB_CONN_BUCKETS; i++) {
		for (struct db_conn **p = &buckets[i]; *p;) {
			if ((*p)->pid == pid) {
				struct db_conn *c = *p;
				*p = c->next;
				conn_free(c);
			} else {
				p = &(*p)->next;
			}
		}
	}
}

void db_conns_clear(void)
{
	for (size_t i = 0; i < DB_CONN_BUCKETS; i++)
		while (buckets[i]) {
			struct db_conn *c = buckets[i];
			buckets[i] = c->next;
			conn_free(c);
		}
}

size_t db_conns_count(void)
{
	return n_conns;
}

int db_span_from_txn(const struct txn_event *ev, size_t ev_len, int64_t mono_to_real,
		     enum db_statement_mode mode, struct span *s)
{
	static struct db_op op; /* large: not on the stack */
	size_t req_len = ev->req_len, resp_len = ev->resp_len;
	if (ev_len < WEFT_TXN_HDR_SIZE || req_len + resp_len > ev_len - WEFT_TXN_HDR_SIZE)
		return -EINVAL;
	struct db_conn *c = conn_state(ev->pid, ev->fd, ev->proto, ev->conn_opened);
	if (!c)
		return -ENOMEM;
	const uint8_t *req = ev->data, *resp = ev->data + req_len;
	int rc;
	memset(&op, 0, sizeof(op));
	switch (ev->proto) {
	case WEFT_PROTO_PGSQL: rc = pg_parse_exchange(c->state, req, req_len, resp, resp_len, &op); break;
	case WEFT_PROTO_MYSQL: rc = mysql_parse_exchange(c->state, req, req_len, resp, resp_len, &op); break;
	case WEFT_PROTO_REDIS: rc = redis_parse_exchange(c->state, req, req_len, resp, resp_len, &op); break;
	default: return -EINVAL;
	}
	if (rc != 0)
		return rc;
	if (op.query[0] && ev->req_bytes > req_len)
		op.query_truncated = true; /* the capture ended inside the statement */

	memcpy(s->trace_id, ev->trace_id, 16);
	memcpy(s->span_id, ev->span_id, 8);
	memcpy(s->parent_span_id, ev->parent_span_id, 8);
	s->trace_flags = ev->trace_flags;
	s->kind = SPAN_KIND_CLIENT;
	s->start_ns = ev->start_ns + mono_to_real;
	s->end_ns = (ev->end_ns > ev->start_ns ? ev->end_ns : ev->start_ns) + mono_to_real;
	rc = db_span_fill(&op, mode, s);
	if (rc)
		return rc;
	if (op.batch_size && ev->req_bytes > req_len)
		/* A pipeline longer than the capture: its size is unknown, and the
		 * count of commands that fit would be a wrong number. */
		attrs_remove(&s->attrs, "db.operation.batch.size");

	if (ev->addr.family == AF_UNIX) {
		/* The server's socket path, e.g. /var/run/postgresql/.s.PGSQL.5432. */
		size_t n = strnlen(ev->addr.unix_path, WEFT_UNIX_PATH_MAX);
		attrs_add_str(&s->attrs, "network.transport", "unix");
		attrs_add_strn(&s->attrs, "server.address", n ? ev->addr.unix_path : "unix", n ? n : 4);
		attrs_add_strn(&s->attrs, "network.peer.address", n ? ev->addr.unix_path : "unix", n ? n : 4);
		return 0;
	}
	char remote[64];
	conn_addr_format(ev->addr.raddr, ev->addr.family, remote, sizeof(remote));
	attrs_add_str(&s->attrs, "server.address", remote);
	attrs_add_int(&s->attrs, "server.port", ev->addr.rport);
	attrs_add_str(&s->attrs, "network.peer.address", remote);
	attrs_add_int(&s->attrs, "network.peer.port", ev->addr.rport);
	return 0;
}
