/* Redis RESP decoding for database spans.
 *
 * Clients send commands as arrays of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").
 * A pipeline is several such arrays in one write, and its replies come back
 * in order, so the k-th top-level reply belongs to the k-th command. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis_proto.h"

#define REDIS_MAX_ARGS (1 << 20)
#define REDIS_MAX_BULK (512u << 20) /* proto-max-bulk-len default */
#define REDIS_REPLY_DEPTH 8
#define REDIS_TRACKED 64 /* commands whose SELECT index we remember */

struct redis_conn_state {
	bool db_known;
	long db;
	bool resp3;
};

struct redis_conn_state *redis_conn_state_new(bool fresh)
{
	struct redis_conn_state *st = calloc(1, sizeof(*st));
	if (st)
		st->db_known = fresh;
	return st;
}

void redis_conn_state_free(struct redis_conn_state *st)
{
	free(st);
}

bool redis_conn_state_db(const struct redis_conn_state *st, long *db)
{
	if (!st || !st->db_known)
		return false;
	if (db)
		*db = st->db;
	return true;
}

bool redis_conn_state_resp3(const struct redis_conn_state *st)
{
	return st && st->resp3;
}

/* ---- RESP lines ---- */

/* Parses "<digits>\r\n" (optionally "-1") at buf[*i]. Returns 1 on success,
 * 0 when the capture ends first, -1 on malformed input. */
static int read_int_line(const uint8_t *buf, size_t len, size_t *i, long long *v)
{
	size_t j = *i;
	bool neg = false;
	if (j < len && buf[j] == '-') {
		neg = true;
		j++;
	}
	size_t start = j;
	long long n = 0;
	while (j < len && isdigit(buf[j]) && j - start < 12)
		n = n * 10 + (buf[j++] - '0');
	if (j == len)
		return 0;
	if (j == start || j - start >= 12 || buf[j] != '\r')
		return -1;
	if (j + 1 == len)
		return 0;
	if (buf[j + 1] != '\n')
		return -1;
	*v = neg ? -n : n;
	*i = j + 2;
	return 1;
}

/* ---- commands ---- */

struct arg {
	const uint8_t *p;
	size_t len;  /* bytes captured */
	bool cut;    /* the capture ended inside it */
};

/* One command: up to the first few arguments are kept. */
#define CMD_ARGS_KEPT 32
struct cmd {
	struct arg args[CMD_ARGS_KEPT];
	size_t nargs;     /* arguments declared */
	size_t nseen;     /* arguments captured (at most CMD_ARGS_KEPT kept) */
	bool cut;
};

/* Parses one command array at *i. Returns 1 (complete), 0 (cut by the
 * capture; what was read is in c), -1 (not a RESP command). */
static int read_command(const uint8_t *buf, size_t len, size_t *i, struct cmd *c)
{
	memset(c, 0, sizeof(*c));
	if (*i >= len || buf[*i] != '*')
		return -1;
	size_t j = *i + 1;
	long long n;
	int rc = read_int_line(buf, len, &j, &n);
	if (rc <= 0)
		return rc;
	if (n < 1 || n > REDIS_MAX_ARGS)
		return -1;
	c->nargs = (size_t)n;
	for (size_t k = 0; k < c->nargs; k++) {
		if (j >= len)
			goto cut;
		if (buf[j] != '$')
			return -1;
		j++;
		long long blen;
		rc = read_int_line(buf, len, &j, &blen);
		if (rc < 0 || (rc == 1 && (blen < 0 || blen > REDIS_MAX_BULK)))
			return -1;
		if (rc == 0)
			goto cut;
		size_t avail = len - j < (size_t)blen ? len - j : (size_t)blen;
		if (k < CMD_ARGS_KEPT)
			c->args[k] = (struct arg){.p = buf + j, .len = avail, .cut = avail < (size_t)blen};
		c->nseen = k + 1;
		if (avail < (size_t)blen || len - j - avail < 2)
			goto cut;
		j += avail;
		if (buf[j] != '\r' || buf[j + 1] != '\n')
			return -1;
		j += 2;
	}
	*i = j;
	return 1;
cut:
	c->cut = true;
	*i = len;
	return 0;
}

static bool is_name_char(uint8_t c)
{
	return isalpha(c) || c == '_' || c == '-' || c == '|' || c == '.' || isdigit(c);
}

static bool command_name(const struct cmd *c, char *name, size_t cap)
{
	if (c->nseen == 0 || c->args[0].len == 0 || c->args[0].len >= cap || !isalpha(c->args[0].p[0]))
		return false;
	for (size_t k = 0; k < c->args[0].len; k++) {
		if (!is_name_char(c->args[0].p[k]))
			return false;
		name[k] = (char)toupper(c->args[0].p[k]);
	}
	name[c->args[0].len] = '\0';
	return true;
}

/* ---- text rendering ---- */

struct text {
	char *p;
	size_t cap, len; /* cap includes the NUL */
	bool full;
};

static void text_put(struct text *t, const char *s, size_t n)
{
	if (t->full || t->len + n + 1 > t->cap) {
		t->full = true;
		return;
	}
	memcpy(t->p + t->len, s, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static bool needs_quotes(const struct arg *a)
{
	if (a->len == 0)
		return true;
	for (size_t k = 0; k < a->len; k++) {
		uint8_t c = a->p[k];
		if (c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '\\' || c == ';')
			return true;
	}
	return false;
}

/* Like redis-cli: "..." with \" \\ \n \r \t and \xHH escapes, so the
 * text stays one line of valid UTF-8 whatever the value holds. */
static void put_arg(struct text *t, const struct arg *a)
{
	if (!needs_quotes(a)) {
		text_put(t, (const char *)a->p, a->len);
	} else {
		text_put(t, "\"", 1);
		for (size_t k = 0; k < a->len; k++) {
			uint8_t c = a->p[k];
			char esc[5];
			if (c == '"' || c == '\\') {
				esc[0] = '\\';
				esc[1] = (char)c;
				text_put(t, esc, 2);
			} else if (c == '\n') {
				text_put(t, "\\n", 2);
			} else if (c == '\r') {
				text_put(t, "\\r", 2);
			} else if (c == '\t') {
				text_put(t, "\\t", 2);
			} else if (c < ' ' || c >= 0x7f) {
				snprintf(esc, sizeof(esc), "\\x%02x", c);
				text_put(t, esc, 4);
			} else {
				text_put(t, (const char *)&c, 1);
			}
		}
		if (!a->cut)
			text_put(t, "\"", 1);
	}
	if (a->cut)
		text_put(t, "...", 3);
}

static bool arg_is(const struct arg *a, const char *word)
{
	size_t n = strlen(word);
	return a->len == n && strncasecmp((const char *)a->p, word, n) == 0;
}

/* Arguments that are credentials, masked even in raw text. */
static bool is_secret_arg(const char *name, const struct cmd *c, size_t k)
{
	if (!strcmp(name, "AUTH"))
		return true;
	if (strcmp(name, "HELLO") && strcmp(name, "MIGRATE"))
		return false;
	/* HELLO 3 AUTH user pass; MIGRATE ... AUTH pass | AUTH2 user pass */
	for (size_t j = 1; j < k && j < CMD_ARGS_KEPT; j++)
		if (arg_is(&c->args[j], "AUTH") || arg_is(&c->args[j], "AUTH2"))
			return k - j <= 2;
	return false;
}

/* In redacted text only the command name and its key (first argument) stay,
 * except where the first argument is a message or a script. */
static bool keeps_first_arg(const char *name)
{
	return strcmp(name, "ECHO") && strcmp(name, "PING") && strcmp(name, "EVAL") &&
	       strcmp(name, "EVAL_RO");
}

static void render_command(const struct cmd *c, const char *name, struct text *raw,
			   struct text *red)
{
	text_put(raw, name, strlen(name));
	text_put(red, name, strlen(name));
	size_t shown = c->nseen < CMD_ARGS_KEPT ? c->nseen : CMD_ARGS_KEPT;
	for (size_t k = 1; k < c->nargs; k++) {
		text_put(raw, " ", 1);
		text_put(red, " ", 1);
		bool secret = is_secret_arg(name, c, k);
		if (k >= shown) {
			text_put(raw, "...", 3); /* not captured or not kept */
			text_put(red, "...", 3);
			break;
		}
		if (secret)
			text_put(raw, "?", 1);
		else
			put_arg(raw, &c->args[k]);
		if (k == 1 && !secret && keeps_first_arg(name))
			put_arg(red, &c->args[k]);
		else
			text_put(red, "?", 1);
	}
}

/* ---- replies ---- */

struct reply_scan {
	const uint8_t *buf;
	size_t len, i;
	bool error_found;
	const uint8_t *err;   /* first error text */
	size_t err_len;
};

/* Reads one line body at s->i (for +, -, :, _, #, ,, () and returns its
 * extent; false when the capture ends first. */
static bool read_line(struct reply_scan *s, const uint8_t **p, size_t *n)
{
	const uint8_t *start = s->buf + s->i;
	const uint8_t *cr = memchr(start, '\r', s->len - s->i);
	*p = start;
	*n = cr ? (size_t)(cr - start) : s->len - s->i;
	if (!cr || (size_t)(cr - s->buf) + 1 >= s->len)
		return false;
	s->i = (size_t)(cr - s->buf) + 2;
	return true;
}

static void note_error(struct reply_scan *s, const uint8_t *p, size_t n)
{
	if (s->error_found)
		return;
	s->error_found = true;
	s->err = p;
	s->err_len = n;
}

/* Skips one reply, noting errors at any depth (EXEC returns them inside an
 * array). Returns 1 complete, 0 cut by the capture, -1 malformed. */
static int skip_reply(struct reply_scan *s, int depth)
{
	if (s->i >= s->len)
		return 0;
	if (depth > REDIS_REPLY_DEPTH)
		return -1;
	uint8_t type = s->buf[s->i++];
	const uint8_t *p;
	size_t n;
	long long count;
	int rc;
	switch (type) {
	case '+': case ':': case '_': case '#': case ',': case '(':
		return read_line(s, &p, &n) ? 1 : 0;
	case '-':
		rc = read_line(s, &p, &n) ? 1 : 0;
		note_error(s, p, n);
		return rc;
	case '$': case '!': case '=':
		rc = read_int_line(s->buf, s->len, &s->i, &count);
		if (rc <= 0)
			return rc;
		if (count < 0)
			return 1; /* null bulk */
		p = s->buf + s->i;
		n = s->len - s->i < (size_t)count ? s->len - s->i : (size_t)count;
		if (type == '!')
			note_error(s, p, n);
		if (s->len - s->i < (size_t)count + 2) {
			s->i = s->len;
			return 0;
		}
		s->i += (size_t)count + 2;
		return 1;
	case '*': case '~': case '>': case '%': case '|':
		rc = read_int_line(s->buf, s->len, &s->i, &count);
		if (rc <= 0)
			return rc;
		if (count < 0)
			return 1; /* null array */
		if (type == '%' || type == '|')
			count *= 2;
		for (long long k = 0; k < count; k++) {
			rc = skip_reply(s, depth + 1);
			if (rc <= 0)
				return rc;
		}
		/* An attribute precedes the reply it describes. */
		return type == '|' ? skip_reply(s, depth) : 1;
	default:
		return -1;
	}
}

/* "WRONGTYPE Operation against ..." -> status WRONGTYPE, message as is. */
static void set_error(struct db_op *out, const uint8_t *p, size_t n)
{
	out->error = true;
	size_t w = 0;
	while (w < n && w + 1 < sizeof(out->status_code) && isupper(p[w]))
		w++;
	db_copy_str(out->status_code, sizeof(out->status_code), (const char *)p, w ? w : 0);
	if (!w)
		db_copy_str(out->status_code, sizeof(out->status_code), "ERR", 3);
	db_copy_str(out->error_message, sizeof(out->error_message), (const char *)p, n);
}

/* ---- detection ---- */

bool redis_looks_like_client_message(const uint8_t *buf, size_t len)
{
	if (!buf || len < 4)
		return false;
	size_t i = 0;
	struct cmd c;
	if (read_command(buf, len, &i, &c) < 0 || c.nseen == 0)
		return false;
	char name[32];
	if (c.args[0].cut) {
		for (size_t k = 0; k < c.args[0].len; k++)
			if (!is_name_char(c.args[0].p[k]))
				return false;
		return c.args[0].len > 0 && isalpha(c.args[0].p[0]);
	}
	return command_name(&c, name, sizeof(name));
}

bool redis_looks_like_server_message(const uint8_t *buf, size_t len)
{
	if (!buf || len < 3 || !strchr("+-:$*_#,(!=%~>|", buf[0]) || buf[0] == 0)
		return false;
	size_t i = 1;
	long long n;
	switch (buf[0]) {
	case '+': case '-': case '(': case ',':
		for (; i < len && buf[i] != '\r'; i++)
			if (buf[i] < 0x20 && buf[i] != '\t')
				return false;
		return i == len || (i + 1 < len ? buf[i + 1] == '\n' : true);
	case '_':
		return buf[1] == '\r';
	case '#':
		return (buf[1] == 't' || buf[1] == 'f') && (len < 3 || buf[2] == '\r');
	default:
		return read_int_line(buf, len, &i, &n) >= 0 && i > 1 && n >= -1;
	}
}

/* ---- exchange ---- */

struct batch {
	size_t count;
	char first_name[DB_OPERATION_MAX];
	bool same_name;
	long select_db[REDIS_TRACKED]; /* -1: not a SELECT */
	bool hello3;
};

static void note_command(struct batch *b, const char *name, const struct cmd *c)
{
	if (b->count == 0)
		db_copy_str(b->first_name, sizeof(b->first_name), name, strlen(name));
	else if (strcmp(b->first_name, name))
		b->same_name = false;
	if (b->count < REDIS_TRACKED) {
		b->select_db[b->count] = -1;
		if (!strcmp(name, "SELECT") && c->nseen >= 2 && !c->args[1].cut && c->args[1].len &&
		    c->args[1].len < 6) {
			long v = 0;
			bool digits = true;
			for (size_t k = 0; k < c->args[1].len; k++) {
				digits = digits && isdigit(c->args[1].p[k]);
				v = v * 10 + (c->args[1].p[k] - '0');
			}
			if (digits)
				b->select_db[b->count] = v;
		}
	}
	if (!strcmp(name, "HELLO") && c->nseen >= 2 && arg_is(&c->args[1], "3"))
		b->hello3 = true;
	b->count++;
}

static int parse_commands(const uint8_t *req, size_t len, struct batch *b, struct db_op *out)
{
	struct text raw = {.p = out->query, .cap = sizeof(out->query)};
	struct text red = {.p = out->query_redacted, .cap = sizeof(out->query_redacted)};
	b->same_name = true;
	size_t i = 0;
	while (i < len) {
		struct cmd c;
		int rc = read_command(req, len, &i, &c);
		if (rc < 0)
			return b->count ? 0 : -EINVAL;
		char name[DB_OPERATION_MAX];
		if (!command_name(&c, name, sizeof(name))) {
			if (rc == 0 && b->count) {
				out->query_truncated = true; /* the next command's name was cut off */
				break;
			}
			return rc == 0 && c.nseen == 0 ? -EAGAIN : -EINVAL;
		}
		if (b->count) {
			text_put(&raw, "; ", 2);
			text_put(&red, "; ", 2);
		}
		render_command(&c, name, &raw, &red);
		note_command(b, name, &c);
		if (rc == 0)
			out->query_truncated = true;
	}
	if (raw.full || red.full)
		out->query_truncated = true;
	return b->count ? 0 : -EAGAIN;
}

/* Walks the replies: first error, and SELECTs that succeeded. */
static void parse_replies(struct redis_conn_state *st, const struct batch *b, const uint8_t *resp,
			  size_t len, struct db_op *out)
{
	struct reply_scan s = {.buf = resp, .len = resp ? len : 0};
	for (size_t k = 0; k < b->count && s.i < s.len; k++) {
		size_t start = s.i;
		if (s.buf[s.i] == '>') { /* RESP3 push: out of band, not a reply */
			if (skip_reply(&s, 0) <= 0)
				break;
			k--;
			continue;
		}
		int rc = skip_reply(&s, 0);
		bool ok = rc == 1 && s.i - start == 5 && !memcmp(resp + start, "+OK\r\n", 5);
		if (k < REDIS_TRACKED && b->select_db[k] >= 0 && ok) {
			st->db = b->select_db[k];
			st->db_known = true;
		}
		if (k < REDIS_TRACKED && b->hello3 && rc == 1 && resp[start] == '%')
			st->resp3 = true;
		if (rc <= 0)
			break;
	}
	if (s.error_found)
		set_error(out, s.err, s.err_len);
}

int redis_parse_exchange(struct redis_conn_state *st, const uint8_t *req, size_t req_len,
			 const uint8_t *resp, size_t resp_len, struct db_op *out)
{
	if (!st || !out || (!req && req_len) || (!resp && resp_len))
		return -EINVAL;
	char ns[24] = "";
	if (st->db_known)
		snprintf(ns, sizeof(ns), "%ld", st->db);
	db_op_init(out, DB_SYSTEM_REDIS, ns);
	if (req_len == 0)
		return -EAGAIN;
	struct batch b = {0};
	int rc = parse_commands(req, req_len, &b, out);
	if (rc < 0)
		return rc;
	if (b.count == 1) {
		db_copy_str(out->operation, sizeof(out->operation), b.first_name, sizeof(b.first_name));
	} else {
		/* Semantic conventions for batches: "BATCH <op>" when all
		 * operations share a name, else "BATCH". */
		snprintf(out->operation, sizeof(out->operation), b.same_name ? "BATCH %s" : "BATCH",
			 b.first_name);
		out->batch_size = (uint32_t)b.count;
	}
	parse_replies(st, &b, resp, resp_len, out);
	return 0;
}
