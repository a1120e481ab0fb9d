/* Database exchanges captured by the kernel (struct txn_event with a
 * PostgreSQL, MySQL or Redis proto) into CLIENT spans, with the protocol
 * state each connection needs (prepared statements, database name) kept
 * here between exchanges, in order. */
#ifndef WEFT_DB_TXN_H
#define WEFT_DB_TXN_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "sockets.h"
#include "span.h"

/* 0: s (new, from span_new) filled; DB_PARSE_NO_SPAN: only connection state
 * changed (startup, prepare); negative errno: not parsable (the caller
 * counts it). */
int db_span_from_txn(const struct txn_event *ev, size_t ev_len, int64_t mono_to_real,
		     enum db_statement_mode mode, struct span *s);
/* The connection closed / the process exited: drop their state. */
void db_conn_closed(uint32_t pid, uint32_t fd);
void db_conns_forget_pid(uint32_t pid);
void db_conns_clear(void);
size_t db_conns_count(void);

#endif
