/* PostgreSQL protocol v3 decoding for database spans.
 *
 * A request buffer holds what the client wrote before reading: a startup
 * packet, or one or more typed messages (a simple Query, or an extended
 * query batch such as Parse/Bind/Describe/Execute/Sync). The response buffer
 * holds the start of what came back; we only need its ErrorResponse, if any,
 * and tolerate it being cut anywhere. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_stmt_cache.h"
#include "pg_proto.h"

#define PG_PROTOCOL_3 196608u /* 3.0 */
#define PG_SSL_REQUEST 80877103u
#define PG_GSSENC_REQUEST 80877104u
#define PG_CANCEL_REQUEST 80877102u
/* Larger frontend messages exist (COPY, huge binds) but never begin a
 * request we want to decode; refusing them keeps detection strict. */
#define PG_MAX_MESSAGE (1u << 24)

struct pg_conn_state {
	bool encrypted; /* SSL or GSS accepted: nothing more is readable */
	char database[DB_NAMESPACE_MAX];
	struct db_stmt_cache stmts;
};

struct pg_conn_state *pg_conn_state_new(void)
{
	return calloc(1, sizeof(struct pg_conn_state));
}

void pg_conn_state_free(struct pg_conn_state *st)
{
	if (!st)
		return;
	db_stmt_cache_clear(&st->stmts);
	free(st);
}

const char *pg_conn_state_statement(const struct pg_conn_state *st, const char *name)
{
	return st ? db_stmt_cache_peek(&st->stmts, name) : NULL;
}

size_t pg_conn_state_statement_count(const struct pg_conn_state *st)
{
	return st ? st->stmts.len : 0;
}

const char *pg_conn_state_database(const struct pg_conn_state *st)
{
	return st ? st->database : "";
}

bool pg_conn_state_encrypted(const struct pg_conn_state *st)
{
	return st && st->encrypted;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Text in queries and names: printable ASCII, whitespace or UTF-8 bytes. */
static bool is_text_byte(uint8_t c)
{
	return c >= 0x20 || c == '\t' || c == '\n' || c == '\r';
}

/* Length of the NUL-terminated text string at p[0..n): the index of the NUL,
 * or -1 if a non-text byte comes first, or n when no NUL is within n. */
static long text_string_len(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\0')
			return (long)i;
		if (!is_text_byte(p[i]))
			return -1;
	}
	return (long)n;
}

/* ---- detection ---- */

static bool startup_params_ok(const uint8_t *p, size_t n)
{
	/* key\0value\0 ... \0 with printable keys; n may be truncated. */
	size_t i = 0;
	while (i < n) {
		long k = text_string_len(p + i, n - i);
		if (k < 0)
			return false;
		if (k == 0)
			return i + 1 == n || i + 1 >= n; /* the final \0 */
		i += (size_t)k + 1;
		if (i >= n)
			return true;
		long v = text_string_len(p + i, n - i);
		if (v < 0)
			return false;
		i += (size_t)v + 1;
	}
	return true;
}

static bool looks_like_startup(const uint8_t *buf, size_t len)
{
	if (len < 8 || buf[0] != 0)
		return false;
	uint32_t mlen = be32(buf), code = be32(buf + 4);
	if (code == PG_SSL_REQUEST || code == PG_GSSENC_REQUEST)
		return mlen == 8;
	if (code == PG_CANCEL_REQUEST)
		return mlen == 16;
	if (code != PG_PROTOCOL_3 || mlen < 9 || mlen > 10000)
		return false;
	size_t avail = (len < mlen ? len : mlen) - 8;
	return startup_params_ok(buf + 8, avail);
}

/* Validates one typed frontend message body; body_len is the declared body
 * length, avail how much of it was captured. */
static bool frontend_body_ok(uint8_t type, const uint8_t *b, size_t body_len, size_t avail)
{
	bool whole = avail == body_len;
	long a, c;
	switch (type) {
	case 'S': case 'H': case 'X':
		return body_len == 0;
	case 'Q':
		a = text_string_len(b, avail);
		return a >= 0 && (whole ? (size_t)a == body_len - 1 : (size_t)a == avail) && body_len > 1;
	case 'D': case 'C':
		if (avail < 1 || (b[0] != 'S' && b[0] != 'P'))
			return false;
		a = text_string_len(b + 1, avail - 1);
		return a >= 0 && (!whole || (size_t)a + 2 == body_len);
	case 'E':
		a = text_string_len(b, avail);
		return a >= 0 && (!whole || (size_t)a + 5 == body_len);
	case 'P':
		a = text_string_len(b, avail);
		if (a < 0 || (size_t)a >= avail)
			return a >= 0 && !whole;
		c = text_string_len(b + a + 1, avail - (size_t)a - 1);
		if (c < 0)
			return false;
		if (!whole || (size_t)(a + 1 + c + 1) + 2 > body_len)
			return !whole;
		return (size_t)(a + 1 + c + 1) + 2 + 4u * be16(b + a + c + 2) == body_len;
	case 'B':
		a = text_string_len(b, avail);
		if (a < 0 || (size_t)a >= avail)
			return a >= 0 && !whole;
		c = text_string_len(b + a + 1, avail - (size_t)a - 1);
		return c >= 0 && body_len >= (size_t)(a + c + 2) + 6;
	default:
		return false;
	}
}

bool pg_looks_like_client_message(const uint8_t *buf, size_t len)
{
	if (!buf || len < 5)
		return buf && looks_like_startup(buf, len);
	if (looks_like_startup(buf, len))
		return true;
	size_t off = 0;
	int msgs = 0;
	while (off + 5 <= len && msgs < 16) {
		uint8_t type = buf[off];
		uint32_t mlen = be32(buf + off + 1);
		if (mlen < 4 || mlen > PG_MAX_MESSAGE)
			return false;
		size_t body_len = mlen - 4, avail = len - off - 5;
		if (avail > body_len)
			avail = body_len;
		if (!frontend_body_ok(type, buf + off + 5, body_len, avail))
			return false;
		msgs++;
		off += 5 + avail;
		if (avail < body_len)
			break; /* the capture ends inside this message */
	}
	/* A few trailing bytes can be the start of the next message header. */
	return msgs > 0;
}

static bool is_backend_type(uint8_t t)
{
	return strchr("RSKZTDCEN123ntsIGHWAVvc", t) != NULL && t != 0;
}

bool pg_looks_like_server_message(const uint8_t *buf, size_t len)
{
	if (!buf || len < 5 || !is_backend_type(buf[0]))
		return false;
	uint32_t mlen = be32(buf + 1);
	if (mlen < 4 || mlen > PG_MAX_MESSAGE)
		return false;
	switch (buf[0]) {
	case 'Z':
		return mlen == 5 && (len < 6 || buf[5] == 'I' || buf[5] == 'T' || buf[5] == 'E');
	case '1': case '2': case '3': case 'n': case 'I':
		return mlen == 4;
	case 'E': case 'N':
		return len < 6 || buf[5] == 'S' || buf[5] == 'V' || buf[5] == 'C' || buf[5] == 'M';
	case 'R':
		return mlen >= 8 && (len < 9 || be32(buf + 5) <= 12);
	default:
		return true;
	}
}

/* ---- response ---- */

/* Reads the fields of an ErrorResponse body into out. */
static void parse_error_fields(const uint8_t *b, size_t n, struct db_op *out)
{
	size_t i = 0;
	while (i < n && b[i] != 0) {
		uint8_t field = b[i++];
		const uint8_t *val = b + i;
		const uint8_t *nul = memchr(val, 0, n - i);
		size_t vlen = nul ? (size_t)(nul - val) : n - i;
		if (field == 'C')
			db_copy_str(out->status_code, sizeof(out->status_code), (const char *)val, vlen);
		else if (field == 'M')
			db_copy_str(out->error_message, sizeof(out->error_message), (const char *)val, vlen);
		i += vlen + 1;
	}
}

/* Walks backend messages until ReadyForQuery, recording the first error. */
static void parse_response(const uint8_t *resp, size_t len, struct db_op *out)
{
	size_t off = 0;
	while (off + 5 <= len) {
		uint8_t type = resp[off];
		uint32_t mlen = be32(resp + off + 1);
		if (!is_backend_type(type) || mlen < 4)
			return;
		size_t avail = len - off - 5;
		if (avail > mlen - 4)
			avail = mlen - 4;
		if (type == 'E' && !out->error) {
			out->error = true;
			parse_error_fields(resp + off + 5, avail, out);
		}
		if (type == 'Z')
			return;
		if (mlen - 4 > len - off - 5)
			return; /* cut off */
		off += 1 + mlen;
	}
}

/* ---- request ---- */

/* A batch of typed frontend messages, as far as we care about it. */
struct pg_batch {
	const char *query; /* text to report: from Q, or the statement executed */
	size_t query_len;
	bool query_cut;      /* capture ended inside the text */
	bool have_query;     /* Q seen */
	bool executed;       /* Execute seen */
	bool parsed;         /* Parse seen */
	bool bound_unknown;  /* Bind of a statement we never saw prepared */
	/* The bound statement's text is copied: a later Parse in the same batch
	 * may replace the cache entry it came from. */
	char bound_text[DB_QUERY_MAX];
	const char *parse_text; /* text of the last Parse, for Parse-only batches */
	size_t parse_len;
	bool parse_cut;
};

static void on_parse(struct pg_conn_state *st, const uint8_t *b, size_t avail, size_t body_len,
		     struct pg_batch *bt)
{
	const uint8_t *nul = memchr(b, 0, avail);
	if (!nul)
		return;
	size_t name_len = (size_t)(nul - b);
	const char *text = (const char *)nul + 1;
	size_t rest = avail - name_len - 1;
	const uint8_t *tnul = memchr(text, 0, rest);
	size_t text_len = tnul ? (size_t)(tnul - (const uint8_t *)text) : rest;
	bt->parsed = true;
	bt->parse_text = text;
	bt->parse_len = text_len;
	bt->parse_cut = !tnul;
	char name[DB_STMT_KEY_MAX];
	if (name_len < sizeof(name)) {
		memcpy(name, b, name_len);
		name[name_len] = '\0';
		db_stmt_cache_put(&st->stmts, name, text, text_len);
	}
	(void)body_len;
}

static void on_bind(struct pg_conn_state *st, const uint8_t *b, size_t avail, struct pg_batch *bt)
{
	const uint8_t *pnul = memchr(b, 0, avail);
	if (!pnul)
		return;
	size_t rest = avail - (size_t)(pnul - b) - 1;
	const char *stmt = (const char *)pnul + 1;
	if (!memchr(stmt, 0, rest))
		return;
	const char *text = db_stmt_cache_get(&st->stmts, stmt);
	if (!text) {
		bt->bound_unknown = true;
		return;
	}
	if (!bt->query) {
		db_copy_str(bt->bound_text, sizeof(bt->bound_text), text, strlen(text));
		bt->query = bt->bound_text;
		bt->query_len = strlen(bt->bound_text);
		bt->query_cut = false;
	}
}

static void on_close(struct pg_conn_state *st, const uint8_t *b, size_t avail)
{
	if (avail >= 2 && b[0] == 'S' && memchr(b + 1, 0, avail - 1))
		db_stmt_cache_del(&st->stmts, (const char *)b + 1);
}

/* Applies one frontend message. Returns false for an unknown type. */
static bool on_message(struct pg_conn_state *st, uint8_t type, const uint8_t *b, size_t avail,
		       size_t body_len, struct pg_batch *bt)
{
	switch (type) {
	case 'Q':
		if (!bt->query) {
			const uint8_t *nul = memchr(b, 0, avail);
			bt->query = (const char *)b;
			bt->query_len = nul ? (size_t)(nul - b) : avail;
			bt->query_cut = !nul;
			bt->have_query = true;
		}
		return true;
	case 'P':
		on_parse(st, b, avail, body_len, bt);
		return true;
	case 'B':
		on_bind(st, b, avail, bt);
		return true;
	case 'E':
		bt->executed = true;
		return true;
	case 'C':
		on_close(st, b, avail);
		return true;
	case 'D': case 'S': case 'H':
	case 'X': case 'p': case 'd': case 'c': case 'f': case 'F':
		return true;
	default:
		return false;
	}
}

static int parse_startup(struct pg_conn_state *st, const uint8_t *req, size_t len,
			 const uint8_t *resp, size_t resp_len)
{
	uint32_t code = be32(req + 4);
	if (code == PG_SSL_REQUEST || code == PG_GSSENC_REQUEST) {
		/* 'S' / 'G': the server agreed; the rest of the session is
		 * encrypted. 'N' (or an ErrorResponse from old servers): plain. */
		if (resp_len >= 1 && (resp[0] == 'S' || resp[0] == 'G'))
			st->encrypted = true;
		return DB_PARSE_NO_SPAN;
	}
	if (code != PG_PROTOCOL_3)
		return DB_PARSE_NO_SPAN; /* CancelRequest */
	uint32_t mlen = be32(req);
	size_t end = len < mlen ? len : mlen;
	const char *user = NULL, *db = NULL;
	size_t user_len = 0, db_len = 0;
	for (size_t i = 8; i < end;) {
		const char *key = (const char *)req + i;
		const uint8_t *knul = memchr(req + i, 0, end - i);
		if (!knul || knul == req + i)
			break;
		size_t vi = (size_t)(knul - req) + 1;
		if (vi >= end)
			break;
		const uint8_t *vnul = memchr(req + vi, 0, end - vi);
		if (!vnul)
			break; /* a truncated value is not trusted */
		size_t vlen = (size_t)(vnul - req) - vi;
		if (!strcmp(key, "database")) {
			db = (const char *)req + vi;
			db_len = vlen;
		} else if (!strcmp(key, "user")) {
			user = (const char *)req + vi;
			user_len = vlen;
		}
		i = vi + vlen + 1;
	}
	/* The server defaults the database to the user name. Nothing else from
	 * the startup packet is kept: no credentials travel in it, and the
	 * password messages that follow are never read. */
	if (db && db_len)
		db_copy_str(st->database, sizeof(st->database), db, db_len);
	else if (user && user_len)
		db_copy_str(st->database, sizeof(st->database), user, user_len);
	return DB_PARSE_NO_SPAN;
}

/* Walks the typed messages of a request. Returns 0, -EINVAL or -EAGAIN. */
static int parse_batch(struct pg_conn_state *st, const uint8_t *req, size_t len, struct pg_batch *bt)
{
	size_t off = 0;
	int msgs = 0;
	while (off + 5 <= len) {
		uint8_t type = req[off];
		uint32_t mlen = be32(req + off + 1);
		if (mlen < 4 || mlen > PG_MAX_MESSAGE)
			return msgs ? 0 : -EINVAL;
		size_t body_len = mlen - 4, avail = len - off - 5;
		if (avail > body_len)
			avail = body_len;
		if (!on_message(st, type, req + off + 5, avail, body_len, bt))
			return msgs ? 0 : -EINVAL;
		msgs++;
		if (avail < body_len)
			break;
		off += 5 + body_len;
	}
	return msgs ? 0 : -EAGAIN;
}

static int fill_op(const struct pg_conn_state *st, const struct pg_batch *bt, const uint8_t *resp,
		   size_t resp_len, struct db_op *out)
{
	db_op_init(out, DB_SYSTEM_POSTGRESQL, st->database);
	parse_response(resp, resp_len, out);
	if (bt->query) {
		db_op_set_sql(out, bt->query, bt->query_len, bt->query_cut);
	} else if (bt->executed && bt->parse_text) {
		db_op_set_sql(out, bt->parse_text, bt->parse_len, bt->parse_cut);
	} else if (bt->executed) {
		/* Prepared before we started watching: the text is unknown. */
		db_copy_str(out->operation, sizeof(out->operation), "EXECUTE", 7);
	} else if (bt->parsed && out->error) {
		/* A prepare that failed never reaches Execute: report it now. */
		db_op_set_sql(out, bt->parse_text, bt->parse_len, bt->parse_cut);
	} else {
		return DB_PARSE_NO_SPAN;
	}
	return 0;
}

int pg_parse_exchange(struct pg_conn_state *st, const uint8_t *req, size_t req_len,
		      const uint8_t *resp, size_t resp_len, struct db_op *out)
{
	if (!st || !out || (!req && req_len) || (!resp && resp_len))
		return -EINVAL;
	if (st->encrypted)
		return -EPROTONOSUPPORT;
	if (!resp)
		resp_len = 0;
	if (req_len < 5) {
		if (req_len >= 1 && req_len < 5)
			return -EAGAIN;
		return req_len == 0 ? -EAGAIN : -EINVAL;
	}
	if (req[0] == 0) {
		if (req_len < 8)
			return -EAGAIN;
		if (!looks_like_startup(req, req_len))
			return -EINVAL;
		return parse_startup(st, req, req_len, resp, resp_len);
	}
	struct pg_batch bt = {0};
	int rc = parse_batch(st, req, req_len, &bt);
	if (rc < 0)
		return rc;
	if (!bt.query && !bt.executed && !bt.parsed)
		return DB_PARSE_NO_SPAN; /* Sync, Terminate, password, COPY data ... */
	return fill_op(st, &bt, resp, resp_len, out);
}
