/* MySQL / MariaDB client/server protocol over captured exchanges (client
 * request bytes, server response bytes; each possibly truncated). */
#ifndef WEFT_MYSQL_PROTO_H
#define WEFT_MYSQL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"

struct mysql_conn_state;

struct mysql_conn_state *mysql_conn_state_new(void);
void mysql_conn_state_free(struct mysql_conn_state *st);
/* Text of prepared statement id, or NULL. At most DB_STMT_CACHE_MAX (256)
 * statements are remembered, least recently used evicted. */
const char *mysql_conn_state_statement(const struct mysql_conn_state *st, uint32_t id);
size_t mysql_conn_state_statement_count(const struct mysql_conn_state *st);
const char *mysql_conn_state_database(const struct mysql_conn_state *st); /* "" unknown */
/* DB_SYSTEM_MARIADB once the server greeting named MariaDB, else MYSQL. */
enum db_system mysql_conn_state_system(const struct mysql_conn_state *st);
bool mysql_conn_state_encrypted(const struct mysql_conn_state *st);

/* Detection. Client: a command packet (sequence id 0: COM_QUERY with text,
 * COM_STMT_PREPARE/EXECUTE/CLOSE/RESET, COM_INIT_DB, COM_PING, COM_QUIT) or
 * a protocol-4.1 handshake response / SSL request (sequence id 1), with the
 * packet length consistent with the bytes. Server: the initial handshake
 * (protocol 10) or an OK/ERR/EOF/result-set packet. */
bool mysql_looks_like_client_message(const uint8_t *buf, size_t len);
bool mysql_looks_like_server_message(const uint8_t *buf, size_t len);

/* Decodes one exchange. The server speaks first: an exchange with an empty
 * request and the greeting as response records the server kind (MariaDB or
 * MySQL). Returns 0 with out filled (COM_QUERY, COM_STMT_EXECUTE, COM_INIT_DB,
 * COM_PING, or a COM_STMT_PREPARE that failed), DB_PARSE_NO_SPAN for state
 * only (greeting, handshake response, authentication, successful prepare,
 * statement close/reset, quit), -EINVAL for bytes that are not MySQL client
 * packets, -EAGAIN when too little was captured, -EPROTONOSUPPORT once the
 * connection switched to TLS. */
int mysql_parse_exchange(struct mysql_conn_state *st, const uint8_t *req, size_t req_len,
			 const uint8_t *resp, size_t resp_len, struct db_op *out);

#endif
