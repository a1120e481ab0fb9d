/* Database wire protocols in the kernel: only recognising a client's
 * connection and where a response ends. Parsing is in userspace
 * (user/pg_proto.c, mysql_proto.c, redis_proto.c). */
#ifndef WEFT_DB_BPF_H
#define WEFT_DB_BPF_H

#include "common.bpf.h"

static __always_inline __u32 be32(const __u8 *b)
{
	return (__u32)b[0] << 24 | (__u32)b[1] << 16 | (__u32)b[2] << 8 | b[3];
}

/* PostgreSQL StartupMessage, SSLRequest or GSSENCRequest: the first bytes a
 * client sends (length, then protocol 3.0 or a request code). */
static __always_inline bool pg_is_startup(const __u8 *b, __u32 n)
{
	if (n < 8)
		return false;
	__u32 len = be32(b), code = be32(b + 4);
	return len >= 8 && len <= 10000 && (code == 196608 || code == 80877103 || code == 80877104);
}

/* A simple Query message filling this write: for sessions that predate weft. */
static __always_inline bool pg_is_query(const __u8 *b, __u32 n, long ret)
{
	return n >= 5 && b[0] == 'Q' && be32(b + 1) + 1 == ret;
}

/* RESP command: an array "*<count>\r\n$". */
static __always_inline bool redis_is_command(const __u8 *b, __u32 n)
{
	if (n < 5 || b[0] != '*' || b[1] < '1' || b[1] > '9')
		return false;
	if (b[2] == '\r')
		return b[3] == '\n' && b[4] == '$';
	return b[2] >= '0' && b[2] <= '9' && b[3] == '\r' && b[4] == '\n';
}

/* MySQL/MariaDB server greeting: packet of sequence 0, protocol 10. */
static __always_inline bool mysql_is_greeting(const __u8 *b, __u32 n)
{
	if (n < 5)
		return false;
	__u32 len = b[0] | (__u32)b[1] << 8 | (__u32)b[2] << 16;
	return b[3] == 0 && b[4] == 10 && len >= 20 && len < 1024;
}

/* COM_QUERY filling this write: for sessions that predate weft. */
static __always_inline bool mysql_is_query(const __u8 *b, __u32 n, long ret)
{
	if (n < 5)
		return false;
	__u32 len = b[0] | (__u32)b[1] << 8 | (__u32)b[2] << 16;
	return b[3] == 0 && b[4] == 3 && len + 4 == ret;
}

/* Protocol of a client connection from the first request bytes it writes. */
static __always_inline __u8 db_detect_request(struct conn_info *c, const __u8 *b, __u32 n, long ret, bool first)
{
	if (c->proto >= WEFT_PROTO_PGSQL)
		return c->proto;
	if (c->role == WEFT_ROLE_SERVER)
		return 0;
	if (redis_is_command(b, n))
		return WEFT_PROTO_REDIS;
	if ((first && pg_is_startup(b, n)) || (c->role == WEFT_ROLE_UNKNOWN && pg_is_query(b, n, ret)))
		return WEFT_PROTO_PGSQL;
	if (c->role == WEFT_ROLE_UNKNOWN && mysql_is_query(b, n, ret))
		return WEFT_PROTO_MYSQL;
	return 0;
}

#endif
