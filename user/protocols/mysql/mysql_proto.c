/* MySQL / MariaDB protocol decoding for database spans.
 *
 * Every message is a packet: 3-byte little-endian payload length, 1-byte
 * sequence id, payload. A command starts a new sequence (id 0); the
 * handshake response is id 1 after the server's greeting (id 0). The client
 * may write several packets at once (libmariadb sends COM_STMT_CLOSE, which
 * has no reply, together with the next command). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_stmt_cache.h"
#include "mysql_proto.h"

enum {
	COM_QUIT = 0x01,
	COM_INIT_DB = 0x02,
	COM_QUERY = 0x03,
	COM_PING = 0x0e,
	COM_CHANGE_USER = 0x11,
	COM_STMT_PREPARE = 0x16,
	COM_STMT_EXECUTE = 0x17,
	COM_STMT_SEND_LONG_DATA = 0x18,
	COM_STMT_CLOSE = 0x19,
	COM_STMT_RESET = 0x1a,
	COM_SET_OPTION = 0x1b,
	COM_RESET_CONNECTION = 0x1f,
};

#define CLIENT_CONNECT_WITH_DB 0x00000008u
#define CLIENT_PROTOCOL_41 0x00000200u
#define CLIENT_SSL 0x00000800u
#define CLIENT_SECURE_CONNECTION 0x00008000u
#define CLIENT_PLUGIN_AUTH_LENENC 0x00200000u
#define CLIENT_SESSION_TRACK 0x00800000u
#define CLIENT_QUERY_ATTRIBUTES 0x08000000u
#define SERVER_SESSION_STATE_CHANGED 0x4000u
#define SESSION_TRACK_SCHEMA 1

#define HANDSHAKE_FIXED 32 /* caps, max packet, charset, 23 filler bytes */

struct mysql_conn_state {
	enum db_system system;
	bool encrypted;
	bool caps_known;
	uint32_t client_caps;
	char database[DB_NAMESPACE_MAX];
	struct db_stmt_cache stmts;
};

struct mysql_conn_state *mysql_conn_state_new(void)
{
	struct mysql_conn_state *st = calloc(1, sizeof(*st));
	if (st)
		st->system = DB_SYSTEM_MYSQL;
	return st;
}

void mysql_conn_state_free(struct mysql_conn_state *st)
{
	if (!st)
		return;
	db_stmt_cache_clear(&st->stmts);
	free(st);
}

static void stmt_key(uint32_t id, char key[DB_STMT_KEY_MAX])
{
	snprintf(key, DB_STMT_KEY_MAX, "%u", id);
}

const char *mysql_conn_state_statement(const struct mysql_conn_state *st, uint32_t id)
{
	char key[DB_STMT_KEY_MAX];
	stmt_key(id, key);
	return st ? db_stmt_cache_peek(&st->stmts, key) : NULL;
}

size_t mysql_conn_state_statement_count(const struct mysql_conn_state *st)
{
	return st ? st->stmts.len : 0;
}

const char *mysql_conn_state_database(const struct mysql_conn_state *st)
{
	return st ? st->database : "";
}

enum db_system mysql_conn_state_system(const struct mysql_conn_state *st)
{
	return st ? st->system : DB_SYSTEM_MYSQL;
}

bool mysql_conn_state_encrypted(const struct mysql_conn_state *st)
{
	return st && st->encrypted;
}

/* ---- byte reading ---- */

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le24(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

static uint32_t le32(const uint8_t *p)
{
	return le24(p) | (uint32_t)p[3] << 24;
}

/* A bounded reader over one payload; any overrun sets bad. */
struct rd {
	const uint8_t *p;
	size_t n, i;
	bool bad;
};

static uint64_t rd_lenenc(struct rd *r)
{
	if (r->i >= r->n) {
		r->bad = true;
		return 0;
	}
	uint8_t c = r->p[r->i++];
	size_t w = c < 0xfb ? 0 : c == 0xfc ? 2 : c == 0xfd ? 3 : c == 0xfe ? 8 : 0;
	if (c >= 0xfb && w == 0) {
		r->bad = true; /* NULL (0xfb) or error marker: not a length */
		return 0;
	}
	if (w == 0)
		return c;
	if (r->n - r->i < w) {
		r->bad = true;
		return 0;
	}
	uint64_t v = 0;
	for (size_t k = 0; k < w; k++)
		v |= (uint64_t)r->p[r->i + k] << (8 * k);
	r->i += w;
	return v;
}

static void rd_skip(struct rd *r, uint64_t k)
{
	if (r->bad || k > r->n - r->i)
		r->bad = true;
	else
		r->i += (size_t)k;
}

static bool is_text_byte(uint8_t c)
{
	return c >= 0x20 || c == '\t' || c == '\n' || c == '\r';
}

static bool all_text(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!is_text_byte(p[i]))
			return false;
	return true;
}

/* ---- detection ---- */

static bool handshake_response_ok(const uint8_t *pl, size_t plen, size_t avail)
{
	if (plen < HANDSHAKE_FIXED || avail < HANDSHAKE_FIXED)
		return false;
	uint32_t caps = le32(pl);
	if (!(caps & CLIENT_PROTOCOL_41))
		return false;
	/* The first 19 filler bytes are zero (MariaDB uses the last 4). */
	for (size_t i = 9; i < 9 + 19; i++)
		if (pl[i] != 0)
			return false;
	return plen == HANDSHAKE_FIXED ? (caps & CLIENT_SSL) != 0 : true;
}

/* Checks one command payload; plen is declared, avail captured. */
static bool command_ok(const uint8_t *pl, size_t plen, size_t avail)
{
	if (avail < 1)
		return false;
	switch (pl[0]) {
	case COM_QUERY:
	case COM_STMT_PREPARE:
		/* MySQL 8 query attributes prefix: 0x00 0x01 */
		if (avail >= 3 && pl[0] == COM_QUERY && pl[1] == 0 && pl[2] == 1)
			return plen > 3 && all_text(pl + 3, avail - 3);
		return plen > 1 && all_text(pl + 1, avail - 1);
	case COM_INIT_DB:
		return plen > 1 && plen < 256 && all_text(pl + 1, avail - 1);
	case COM_STMT_EXECUTE:
		/* id(4) flags(1) iteration-count(4) == 1 */
		return plen >= 10 && (avail < 10 || (pl[5] <= 0x0f && le32(pl + 6) == 1));
	case COM_STMT_CLOSE:
	case COM_STMT_RESET:
		return plen == 5;
	case COM_QUIT:
	case COM_PING:
	case COM_RESET_CONNECTION:
		return plen == 1;
	default:
		return false;
	}
}

bool mysql_looks_like_client_message(const uint8_t *buf, size_t len)
{
	if (!buf || len < 5)
		return false;
	size_t off = 0;
	int packets = 0;
	while (off + 4 < len && packets < 8) {
		size_t plen = le24(buf + off);
		uint8_t seq = buf[off + 3];
		const uint8_t *pl = buf + off + 4;
		size_t avail = len - off - 4;
		if (avail > plen)
			avail = plen;
		bool ok = seq == 0 ? command_ok(pl, plen, avail)
				   : seq == 1 && packets == 0 && handshake_response_ok(pl, plen, avail);
		if (!ok)
			return false;
		packets++;
		if (avail < plen)
			break;
		off += 4 + plen;
	}
	return packets > 0;
}

bool mysql_looks_like_server_message(const uint8_t *buf, size_t len)
{
	if (!buf || len < 5)
		return false;
	size_t plen = le24(buf);
	uint8_t seq = buf[3], first = buf[4];
	if (plen == 0)
		return false;
	if (seq == 0 && first == 0x0a) { /* greeting: version string */
		size_t avail = len - 4 < plen ? len - 4 : plen;
		const uint8_t *nul = memchr(buf + 5, 0, avail - 1);
		size_t vlen = nul ? (size_t)(nul - (buf + 5)) : avail - 1;
		return vlen > 0 && vlen < 64 && all_text(buf + 5, vlen);
	}
	if (seq == 0)
		return false;
	if (first == 0xff)
		return plen >= 3;
	if (first == 0x00)
		return plen >= 7;
	if (first == 0xfe)
		return plen < 9;
	return first < 0xfb && plen < 10; /* result set: column count */
}

/* ---- response ---- */

static void parse_err(const uint8_t *pl, size_t avail, struct db_op *out)
{
	if (avail < 3)
		return;
	uint32_t code = le16(pl + 1);
	out->error = true;
	snprintf(out->status_code, sizeof(out->status_code), "%u", code);
	size_t msg = 3;
	if (avail >= 9 && pl[3] == '#')
		msg = 9; /* '#' + 5-byte SQL state */
	if (avail > msg)
		db_copy_str(out->error_message, sizeof(out->error_message), (const char *)pl + msg,
			    avail - msg);
}

/* The current schema from an OK packet's session-state information (sent
 * after COM_INIT_DB, USE, or the handshake when the client asked for it). */
static void parse_ok_schema(struct mysql_conn_state *st, const uint8_t *pl, size_t avail)
{
	if (!st->caps_known || !(st->client_caps & CLIENT_SESSION_TRACK))
		return;
	struct rd r = {.p = pl, .n = avail, .i = 1};
	rd_lenenc(&r); /* affected rows */
	rd_lenenc(&r); /* last insert id */
	if (r.bad || r.n - r.i < 4)
		return;
	uint32_t status = le16(pl + r.i);
	r.i += 4; /* status, warnings */
	if (!(status & SERVER_SESSION_STATE_CHANGED) || r.i >= r.n)
		return;
	rd_skip(&r, rd_lenenc(&r)); /* info */
	uint64_t total = rd_lenenc(&r);
	if (r.bad || total > r.n - r.i)
		return;
	size_t end = r.i + (size_t)total;
	while (!r.bad && r.i < end) {
		uint8_t type = pl[r.i++];
		uint64_t dlen = rd_lenenc(&r);
		if (r.bad || dlen > end - r.i)
			return;
		if (type == SESSION_TRACK_SCHEMA) {
			struct rd d = {.p = pl + r.i, .n = (size_t)dlen};
			uint64_t nlen = rd_lenenc(&d);
			if (!d.bad && nlen <= d.n - d.i)
				db_copy_str(st->database, sizeof(st->database), (const char *)d.p + d.i,
					    (size_t)nlen);
		}
		r.i += (size_t)dlen;
	}
}

/* The first packet of the response; *first is its first payload byte (or
 * -1 when nothing usable was captured). */
static const uint8_t *response_payload(const uint8_t *resp, size_t len, size_t *avail, int *first)
{
	*first = -1;
	if (!resp || len < 5)
		return NULL;
	size_t plen = le24(resp);
	*avail = len - 4 < plen ? len - 4 : plen;
	if (*avail == 0)
		return NULL;
	*first = resp[4];
	return resp + 4;
}

/* ---- request ---- */

static int on_greeting(struct mysql_conn_state *st, const uint8_t *resp, size_t resp_len)
{
	size_t avail;
	int first;
	const uint8_t *pl = response_payload(resp, resp_len, &avail, &first);
	if (!pl || resp[3] != 0)
		return -EAGAIN;
	if (first != 0x0a)
		return first == 0xff ? DB_PARSE_NO_SPAN : -EINVAL;
	if (memmem(pl + 1, avail - 1, "MariaDB", 7))
		st->system = DB_SYSTEM_MARIADB;
	return DB_PARSE_NO_SPAN;
}

static int on_handshake_response(struct mysql_conn_state *st, const uint8_t *pl, size_t plen,
				 size_t avail, const uint8_t *resp, size_t resp_len)
{
	if (!handshake_response_ok(pl, plen, avail))
		return -EINVAL;
	uint32_t caps = le32(pl);
	st->caps_known = true;
	st->client_caps = caps;
	if (plen == HANDSHAKE_FIXED) {
		st->encrypted = true; /* SSLRequest: TLS handshake follows */
		return DB_PARSE_NO_SPAN;
	}
	/* username, auth data (never kept), then the database. */
	struct rd r = {.p = pl, .n = avail, .i = HANDSHAKE_FIXED};
	const uint8_t *nul = memchr(pl + r.i, 0, r.n - r.i);
	if (!nul)
		return DB_PARSE_NO_SPAN;
	r.i = (size_t)(nul - pl) + 1;
	if (caps & CLIENT_PLUGIN_AUTH_LENENC)
		rd_skip(&r, rd_lenenc(&r));
	else if ((caps & CLIENT_SECURE_CONNECTION) && r.i < r.n)
		rd_skip(&r, pl[r.i] + 1u);
	else if ((nul = memchr(pl + r.i, 0, r.n - r.i)))
		r.i = (size_t)(nul - pl) + 1;
	else
		r.bad = true;
	if (!r.bad && (caps & CLIENT_CONNECT_WITH_DB) && r.i < r.n) {
		nul = memchr(pl + r.i, 0, r.n - r.i);
		if (nul && nul > pl + r.i)
			db_copy_str(st->database, sizeof(st->database), (const char *)pl + r.i,
				    (size_t)(nul - pl) - r.i);
	}
	size_t ravail;
	int first;
	const uint8_t *rpl = response_payload(resp, resp_len, &ravail, &first);
	if (rpl && first == 0x00)
		parse_ok_schema(st, rpl, ravail);
	return DB_PARSE_NO_SPAN;
}

/* The text of a COM_QUERY / COM_STMT_PREPARE payload after the command
 * byte, skipping MySQL 8's query-attributes prefix when it is empty. */
static bool query_text(const struct mysql_conn_state *st, const uint8_t *pl, size_t avail,
		       const char **text, size_t *len)
{
	size_t skip = 1;
	bool attrs = st->caps_known ? (st->client_caps & CLIENT_QUERY_ATTRIBUTES) != 0
				    : avail >= 3 && pl[1] == 0 && pl[2] == 1;
	if (attrs && pl[0] == COM_QUERY) {
		if (avail < 3 || pl[1] != 0)
			return false; /* bound attributes: not decoded */
		skip = 3;
	}
	if (avail < skip)
		return false;
	*text = (const char *)pl + skip;
	*len = avail - skip;
	return true;
}

/* The command packet that expects the response: the first one that is
 * not COM_STMT_CLOSE / SEND_LONG_DATA (no reply) or RESET. */
static int find_command(struct mysql_conn_state *st, const uint8_t *req, size_t len,
			const uint8_t **pl, size_t *plen, size_t *avail)
{
	size_t off = 0;
	while (off + 4 < len) {
		*plen = le24(req + off);
		*pl = req + off + 4;
		*avail = len - off - 4 < *plen ? len - off - 4 : *plen;
		if (req[off + 3] != 0 || *plen == 0 || !command_ok(*pl, *plen, *avail))
			return off ? DB_PARSE_NO_SPAN : -EINVAL;
		uint8_t cmd = (*pl)[0];
		if (cmd == COM_STMT_CLOSE && *avail >= 5) {
			char key[DB_STMT_KEY_MAX];
			stmt_key(le32(*pl + 1), key);
			db_stmt_cache_del(&st->stmts, key);
		}
		if (cmd != COM_STMT_CLOSE && cmd != COM_STMT_SEND_LONG_DATA && cmd != COM_STMT_RESET)
			return 0;
		if (*avail < *plen)
			break;
		off += 4 + *plen;
	}
	return off ? DB_PARSE_NO_SPAN : -EAGAIN;
}

static int on_prepare(struct mysql_conn_state *st, const char *text, size_t tlen, bool cut,
		      const uint8_t *rpl, size_t ravail, int first, struct db_op *out)
{
	if (first == 0x00 && ravail >= 5) {
		char key[DB_STMT_KEY_MAX];
		stmt_key(le32(rpl + 1), key);
		db_stmt_cache_put(&st->stmts, key, text, tlen);
		return DB_PARSE_NO_SPAN;
	}
	if (first != 0xff)
		return DB_PARSE_NO_SPAN;
	/* A prepare that failed never reaches execute: report it. */
	db_op_set_sql(out, text, tlen, cut);
	parse_err(rpl, ravail, out);
	return 0;
}

static int on_command(struct mysql_conn_state *st, const uint8_t *pl, size_t plen, size_t avail,
		      const uint8_t *resp, size_t resp_len, struct db_op *out)
{
	size_t ravail = 0;
	int first;
	const uint8_t *rpl = response_payload(resp, resp_len, &ravail, &first);
	db_op_init(out, st->system, st->database);
	const char *text;
	size_t tlen;
	char key[DB_STMT_KEY_MAX];
	switch (pl[0]) {
	case COM_QUERY:
		if (!query_text(st, pl, avail, &text, &tlen))
			return -EINVAL;
		db_op_set_sql(out, text, tlen, avail < plen);
		break;
	case COM_STMT_PREPARE:
		if (!query_text(st, pl, avail, &text, &tlen))
			return -EINVAL;
		return on_prepare(st, text, tlen, avail < plen, rpl, ravail, first, out);
	case COM_STMT_EXECUTE:
		if (avail < 5)
			return -EAGAIN;
		stmt_key(le32(pl + 1), key);
		text = db_stmt_cache_get(&st->stmts, key);
		if (text)
			db_op_set_sql(out, text, strlen(text), false);
		else /* prepared before we started watching */
			db_copy_str(out->operation, sizeof(out->operation), "EXECUTE", 7);
		break;
	case COM_INIT_DB:
		db_copy_str(out->operation, sizeof(out->operation), "USE", 3);
		if (first == 0x00 && avail == plen) {
			db_copy_str(st->database, sizeof(st->database), (const char *)pl + 1, avail - 1);
			db_copy_str(out->db_namespace, sizeof(out->db_namespace), st->database,
				    sizeof(st->database));
		}
		break;
	case COM_PING:
		db_copy_str(out->operation, sizeof(out->operation), "PING", 4);
		break;
	default: /* COM_QUIT, COM_RESET_CONNECTION */
		return DB_PARSE_NO_SPAN;
	}
	if (first == 0xff)
		parse_err(rpl, ravail, out);
	else if (first == 0x00)
		parse_ok_schema(st, rpl, ravail); /* USE db via COM_QUERY */
	return 0;
}

int mysql_parse_exchange(struct mysql_conn_state *st, const uint8_t *req, size_t req_len,
			 const uint8_t *resp, size_t resp_len, struct db_op *out)
{
	if (!st || !out || (!req && req_len) || (!resp && resp_len))
		return -EINVAL;
	if (st->encrypted)
		return -EPROTONOSUPPORT;
	if (req_len == 0)
		return on_greeting(st, resp, resp_len);
	if (req_len < 5)
		return -EAGAIN;
	uint8_t seq = req[3];
	size_t plen = le24(req);
	size_t avail = req_len - 4 < plen ? req_len - 4 : plen;
	if (seq == 1)
		return on_handshake_response(st, req + 4, plen, avail, resp, resp_len);
	if (seq > 1) /* authentication continues (auth switch data): one whole packet */
		return avail == plen && req_len == plen + 4 ? DB_PARSE_NO_SPAN : -EINVAL;
	const uint8_t *pl;
	int rc = find_command(st, req, req_len, &pl, &plen, &avail);
	if (rc)
		return rc;
	return on_command(st, pl, plen, avail, resp, resp_len, out);
}
