/* Per-connection protocol state, kept between a connection's exchanges
 * (struct protocol's conn_new/conn_free), keyed by (pid, fd). Bounded:
 * past DB_CONN_MAX connections the oldest bucket's state is dropped. */
#include <stdlib.h>

#include "protocol.h"

#define CONN_BUCKETS 1024
#define CONN_MAX 65536

struct conn_state {
	uint32_t pid, fd;
	const struct protocol *proto;
	uint8_t tls; /* built from TLS plaintext: what came before TLS began is another state */
	void *state;
	struct conn_state *next;
};

static struct conn_state *buckets[CONN_BUCKETS];
static size_t n_conns;

static size_t bucket_of(uint32_t pid, uint32_t fd)
{
	return (pid * 2654435761u ^ fd) % CONN_BUCKETS;
}

static void conn_free(struct conn_state *c)
{
	c->proto->conn_free(c->state);
	free(c);
	n_conns--;
}

static void evict_one(void)
{
	for (size_t i = 0; i < CONN_BUCKETS; i++) {
		if (buckets[i]) {
			struct conn_state *c = buckets[i];
			buckets[i] = c->next;
			conn_free(c);
			return;
		}
	}
}

void *protocol_conn_state(const struct protocol *p, uint32_t pid, uint32_t fd, bool tls, const void *first)
{
	if (!p->conn_new)
		return NULL;
	struct conn_state **b = &buckets[bucket_of(pid, fd)];
	for (struct conn_state **q = b; *q; q = &(*q)->next) {
		if ((*q)->pid == pid && (*q)->fd == fd) {
			if ((*q)->proto == p && (*q)->tls == tls)
				return (*q)->state;
			struct conn_state *stale = *q;
			*q = stale->next;
			conn_free(stale);
			break;
		}
	}
	if (n_conns >= CONN_MAX)
		evict_one();
	struct conn_state *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->pid = pid;
	c->fd = fd;
	c->proto = p;
	c->tls = tls;
	c->state = p->conn_new(first);
	if (!c->state) {
		free(c);
		return NULL;
	}
	c->next = *b;
	*b = c;
	n_conns++;
	return c->state;
}

void protocol_conn_closed(uint32_t pid, uint32_t fd, const struct protocol_ctx *ctx)
{
	for (struct conn_state **p = &buckets[bucket_of(pid, fd)]; *p; p = &(*p)->next) {
		if ((*p)->pid == pid && (*p)->fd == fd) {
			struct conn_state *c = *p;
			*p = c->next;
			if (c->proto->conn_closed && ctx)
				c->proto->conn_closed(c->state, ctx);
			conn_free(c);
			return;
		}
	}
}

void protocol_forget_pid(uint32_t pid)
{
	for (size_t i = 0; i < CONN_BUCKETS; i++) {
		for (struct conn_state **p = &buckets[i]; *p;) {
			if ((*p)->pid == pid) {
				struct conn_state *c = *p;
				*p = c->next;
				conn_free(c);
			} else {
				p = &(*p)->next;
			}
		}
	}
}

void protocol_conns_clear(void)
{
	for (size_t i = 0; i < CONN_BUCKETS; i++)
		while (buckets[i]) {
			struct conn_state *c = buckets[i];
			buckets[i] = c->next;
			conn_free(c);
		}
}

size_t protocol_conns_count(void)
{
	return n_conns;
}
