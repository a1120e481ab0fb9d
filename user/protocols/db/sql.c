/* SQL redaction and summarisation over possibly truncated statements.
 *
 * Both functions share one small lexer. It never reads past len and treats
 * anything unterminated (a string, comment or quoted identifier cut off by the
 * capture limit) as running to the end of the input: for redaction that means
 * the tail is replaced by '?', which errs on the side of hiding data. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sql.h"

enum tok_type {
	T_END,
	T_SPACE,
	T_COMMENT,
	T_WORD,
	T_QIDENT, /* "ident" or `ident` */
	T_STRING, /* any string literal, dollar-quoted ones included */
	T_NUMBER,
	T_PARAM, /* $1, ? */
	T_PUNCT,
};

struct tok {
	enum tok_type type;
	size_t start, end; /* [start, end) in the input */
};

static bool is_word_start(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

static bool is_word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Index just past the closing quote q starting the scan at i (just after the
 * opening quote); a doubled quote is an escaped quote, and with backslash
 * set a backslash escapes the next byte. */
static size_t skip_quoted(const char *s, size_t len, size_t i, char q, bool backslash)
{
	while (i < len) {
		if (backslash && s[i] == '\\') {
			i += 2;
			continue;
		}
		if (s[i] == q) {
			if (i + 1 < len && s[i + 1] == q) {
				i += 2;
				continue;
			}
			return i + 1;
		}
		i++;
	}
	return len;
}

/* PostgreSQL dollar quoting: $tag$ ... $tag$ (tag may be empty). Returns the
 * end index, or 0 when s[i] does not open a dollar-quoted string. */
static size_t skip_dollar_string(const char *s, size_t len, size_t i)
{
	size_t j = i + 1;
	if (j < len && s[j] != '$') {
		if (!is_word_start((unsigned char)s[j]))
			return 0;
		while (j < len && s[j] != '$' && (isalnum((unsigned char)s[j]) || s[j] == '_' ||
						   (unsigned char)s[j] >= 0x80))
			j++;
	}
	if (j >= len || s[j] != '$')
		return 0;
	size_t tag_len = j - i + 1; /* "$tag$" */
	const char *body = s + j + 1;
	size_t body_len = len - (j + 1);
	const char *close = memmem(body, body_len, s + i, tag_len);
	if (!close)
		return len;
	return (size_t)(close - s) + tag_len;
}

static size_t skip_number(const char *s, size_t len, size_t i)
{
	if (s[i] == '0' && i + 1 < len && (s[i + 1] == 'x' || s[i + 1] == 'X')) {
		i += 2;
		while (i < len && isxdigit((unsigned char)s[i]))
			i++;
		return i;
	}
	while (i < len && isdigit((unsigned char)s[i]))
		i++;
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && isdigit((unsigned char)s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t j = i + 1;
		if (j < len && (s[j] == '+' || s[j] == '-'))
			j++;
		if (j < len && isdigit((unsigned char)s[j])) {
			i = j;
			while (i < len && isdigit((unsigned char)s[i]))
				i++;
		}
	}
	return i;
}

/* A one-letter word glued to a quote is a literal prefix: E'..' (escape
 * string), X'..' / B'..' (hex/bit string), N'..' (national). */
static bool is_literal_prefix(const char *s, size_t start, size_t end)
{
	if (end - start != 1)
		return false;
	switch (s[start]) {
	case 'e': case 'E': case 'x': case 'X': case 'b': case 'B': case 'n': case 'N':
		return true;
	}
	return false;
}

static void lex(const char *s, size_t len, size_t i, enum sql_dialect d, struct tok *t)
{
	t->start = i;
	if (i >= len) {
		t->type = T_END;
		t->end = len;
		return;
	}
	unsigned char c = (unsigned char)s[i];
	if (isspace(c)) {
		while (i < len && isspace((unsigned char)s[i]))
			i++;
		t->type = T_SPACE;
	} else if (c == '-' && i + 1 < len && s[i + 1] == '-') {
		const char *nl = memchr(s + i, '\n', len - i);
		i = nl ? (size_t)(nl - s) : len;
		t->type = T_COMMENT;
	} else if (c == '#' && d == SQL_DIALECT_MYSQL) {
		const char *nl = memchr(s + i, '\n', len - i);
		i = nl ? (size_t)(nl - s) : len;
		t->type = T_COMMENT;
	} else if (c == '/' && i + 1 < len && s[i + 1] == '*') {
		const char *e = i + 2 < len ? memmem(s + i + 2, len - i - 2, "*/", 2) : NULL;
		i = e ? (size_t)(e - s) + 2 : len;
		t->type = T_COMMENT;
	} else if (c == '\'') {
		/* Backslash escapes are honoured in every dialect: for a PostgreSQL
		 * standard string this can only extend the literal (more redacted),
		 * while ignoring them in MySQL would leak the text after \'. */
		i = skip_quoted(s, len, i + 1, '\'', true);
		t->type = T_STRING;
	} else if (c == '"') {
		bool str = d == SQL_DIALECT_MYSQL;
		i = skip_quoted(s, len, i + 1, '"', str);
		t->type = str ? T_STRING : T_QIDENT;
	} else if (c == '`') {
		i = skip_quoted(s, len, i + 1, '`', false);
		t->type = T_QIDENT;
	} else if (c == '$') {
		size_t e;
		if (i + 1 < len && isdigit((unsigned char)s[i + 1])) {
			i++;
			while (i < len && isdigit((unsigned char)s[i]))
				i++;
			t->type = T_PARAM;
		} else if ((e = skip_dollar_string(s, len, i)) != 0) {
			i = e;
			t->type = T_STRING;
		} else {
			i++;
			t->type = T_PUNCT;
		}
	} else if (c == '?') {
		i++;
		t->type = T_PARAM;
	} else if (isdigit(c) || (c == '.' && i + 1 < len && isdigit((unsigned char)s[i + 1]))) {
		i = skip_number(s, len, i);
		t->type = T_NUMBER;
	} else if (is_word_start(c)) {
		size_t start = i;
		while (i < len && is_word_char((unsigned char)s[i]))
			i++;
		if (i < len && s[i] == '\'' && is_literal_prefix(s, start, i)) {
			i = skip_quoted(s, len, i + 1, '\'', true);
			t->type = T_STRING;
		} else {
			t->type = T_WORD;
		}
	} else {
		i++;
		t->type = T_PUNCT;
	}
	t->end = i;
}

/* Next token that is not whitespace or a comment. */
static void lex_sig(const char *s, size_t len, size_t i, enum sql_dialect d, struct tok *t)
{
	do {
		lex(s, len, i, d, t);
		i = t->end;
	} while (t->type == T_SPACE || t->type == T_COMMENT);
}

static bool tok_is(const char *s, const struct tok *t, const char *word)
{
	size_t n = strlen(word);
	return t->type == T_WORD && t->end - t->start == n && strncasecmp(s + t->start, word, n) == 0;
}

static bool tok_is_punct(const char *s, const struct tok *t, char c)
{
	return t->type == T_PUNCT && s[t->start] == c;
}

/* ---- redaction ---- */

struct outbuf {
	char *p;
	size_t cap, len; /* cap excludes the NUL */
};

static void out_put(struct outbuf *o, const char *src, size_t n)
{
	if (n > o->cap - o->len)
		n = o->cap - o->len;
	memcpy(o->p + o->len, src, n);
	o->len += n;
}

static bool is_list_value(const char *s, const struct tok *t)
{
	switch (t->type) {
	case T_STRING: case T_NUMBER: case T_PARAM: case T_SPACE: case T_COMMENT:
		return true;
	case T_PUNCT:
		return s[t->start] == ',' || s[t->start] == '-' || s[t->start] == '+';
	case T_WORD:
		return tok_is(s, t, "TRUE") || tok_is(s, t, "FALSE") || tok_is(s, t, "NULL");
	default:
		return false;
	}
}

/* At an IN keyword ending at i: if "( literal, literal, ... )" follows,
 * returns the index just past ')' (or len when the capture ends inside the
 * list, in which case *closed is false). Returns 0 otherwise. */
static size_t literal_in_list_end(const char *s, size_t len, size_t i, enum sql_dialect d, bool *closed)
{
	struct tok t;
	lex_sig(s, len, i, d, &t);
	if (!tok_is_punct(s, &t, '('))
		return 0;
	size_t values = 0;
	for (i = t.end;;) {
		lex(s, len, i, d, &t);
		if (t.type == T_END) {
			*closed = false;
			return values ? len : 0;
		}
		if (tok_is_punct(s, &t, ')')) {
			*closed = true;
			return values ? t.end : 0;
		}
		if (!is_list_value(s, &t))
			return 0;
		if (t.type != T_SPACE && t.type != T_COMMENT && t.type != T_PUNCT)
			values++;
		i = t.end;
	}
}

int sql_redact_dialect(const char *in, size_t len, char *out, size_t outlen, enum sql_dialect d)
{
	if (!out || outlen == 0 || (!in && len))
		return -EINVAL;
	struct outbuf o = {.p = out, .cap = outlen - 1};
	struct tok t;
	for (size_t i = 0;; i = t.end) {
		lex(in, len, i, d, &t);
		if (t.type == T_END)
			break;
		if (t.type == T_STRING || t.type == T_NUMBER) {
			out_put(&o, "?", 1);
			continue;
		}
		out_put(&o, in + t.start, t.end - t.start);
		bool closed;
		size_t list_end;
		if (tok_is(in, &t, "IN") && (list_end = literal_in_list_end(in, len, t.end, d, &closed))) {
			out_put(&o, closed ? " (?)" : " (?", closed ? 4 : 3);
			t.end = list_end;
		}
	}
	out[o.len] = '\0';
	return (int)o.len;
}

int sql_redact(const char *in, size_t len, char *out, size_t outlen)
{
	return sql_redact_dialect(in, len, out, outlen, SQL_DIALECT_ANSI);
}

/* ---- summary ---- */

#define MAX_DEPTH 32

/* Keywords after which a table name follows. */
enum ref_kind { REF_NONE, REF_FROM, REF_INTO, REF_UPDATE, REF_TABLE };

struct summarizer {
	const char *s;
	size_t len;
	struct sql_summary *out;
	bool have_ref, ambiguous;
	int depth;
	/* Per parenthesis level: does it hold a query (SELECT/WITH/VALUES) or
	 * something else (function arguments, column lists)? -1: not known yet. */
	signed char query_ctx[MAX_DEPTH + 1];
	enum ref_kind expect;  /* a table name is expected next */
	int list_depth;        /* depth of a FROM list where ',' adds tables; -1: none */
};

static bool is_query_word(const char *s, const struct tok *t)
{
	return tok_is(s, t, "SELECT") || tok_is(s, t, "WITH") || tok_is(s, t, "VALUES");
}

/* Words between a ref keyword and the name: FROM ONLY t, JOIN LATERAL ...,
 * CREATE TABLE IF NOT EXISTS t, UPDATE LOW_PRIORITY t, TRUNCATE TABLE t. */
static bool is_ref_modifier(const char *s, const struct tok *t)
{
	static const char *const words[] = {"ONLY", "IF", "NOT", "EXISTS", "TABLE", "LOW_PRIORITY",
					    "IGNORE", "QUICK", "DELAYED", "HIGH_PRIORITY", NULL};
	for (size_t i = 0; words[i]; i++)
		if (tok_is(s, t, words[i]))
			return true;
	return false;
}

/* Words that end a FROM list: a ',' after them no longer adds a table. */
static bool ends_from_list(const char *s, const struct tok *t)
{
	static const char *const words[] = {"WHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "WINDOW",
					    "UNION", "EXCEPT", "INTERSECT", "ON", "SET", "RETURNING",
					    "FOR", "OFFSET", "FETCH", "VALUES", "SELECT", NULL};
	for (size_t i = 0; words[i]; i++)
		if (tok_is(s, t, words[i]))
			return true;
	return false;
}

/* Appends the unquoted identifier t to buf; false when it does not fit. */
static bool append_ident(const char *s, const struct tok *t, char *buf, size_t cap, size_t *n)
{
	size_t a = t->start, b = t->end;
	char q = 0;
	if (t->type == T_QIDENT) {
		q = s[a];
		a++;
		if (b > a && s[b - 1] == q)
			b--;
	}
	for (size_t i = a; i < b; i++) {
		if (q && s[i] == q && i + 1 < b && s[i + 1] == q)
			i++; /* doubled quote inside a quoted identifier */
		if (*n + 1 >= cap)
			return false;
		buf[(*n)++] = s[i];
	}
	buf[*n] = '\0';
	return true;
}

static void add_ref(struct summarizer *z, const char *name)
{
	if (!z->have_ref) {
		/* a bounded copy (snprintf's "%s" cost more than the copy) */
		size_t n = strnlen(name, sizeof(z->out->collection) - 1);
		memcpy(z->out->collection, name, n);
		z->out->collection[n] = '\0';
		z->have_ref = true;
	} else if (strcasecmp(z->out->collection, name) != 0) {
		z->ambiguous = true;
	}
}

/* Reads a possibly schema-qualified name starting at t; returns the index
 * after it. */
static size_t read_table_name(struct summarizer *z, struct tok *t, enum ref_kind kind)
{
	char name[SQL_COLLECTION_MAX];
	size_t n = 0;
	bool fits = append_ident(z->s, t, name, sizeof(name), &n);
	size_t i = t->end;
	struct tok dot, part;
	for (;;) {
		lex(z->s, z->len, i, SQL_DIALECT_ANSI, &dot);
		if (!tok_is_punct(z->s, &dot, '.'))
			break;
		lex(z->s, z->len, dot.end, SQL_DIALECT_ANSI, &part);
		if (part.type != T_WORD && part.type != T_QIDENT)
			break;
		fits = fits && n + 1 < sizeof(name);
		if (fits) {
			name[n++] = '.';
			fits = append_ident(z->s, &part, name, sizeof(name), &n);
		}
		i = part.end;
	}
	struct tok next;
	lex_sig(z->s, z->len, i, SQL_DIALECT_ANSI, &next);
	/* FROM f(...) is a set-returning function, not a table. After INTO,
	 * UPDATE or TABLE a '(' opens a column list. */
	if (!fits || (kind == REF_FROM && tok_is_punct(z->s, &next, '(')))
		z->ambiguous = true;
	else
		add_ref(z, name);
	if (kind == REF_FROM || kind == REF_UPDATE)
		z->list_depth = z->depth;
	return i;
}

static void set_operation(struct summarizer *z, const struct tok *t)
{
	size_t n = t->end - t->start;
	if (n >= sizeof(z->out->operation))
		n = sizeof(z->out->operation) - 1;
	for (size_t i = 0; i < n; i++)
		z->out->operation[i] = (char)toupper((unsigned char)z->s[t->start + i]);
	z->out->operation[n] = '\0';
}

/* What follows the operation keyword itself; returns where scanning for
 * table names goes on. */
static size_t after_operation(struct summarizer *z, size_t i)
{
	const char *op = z->out->operation;
	if (!strcmp(op, "UPDATE") || !strcmp(op, "TABLE") || !strcmp(op, "TRUNCATE") ||
	    !strcmp(op, "COPY")) {
		z->expect = !strcmp(op, "UPDATE") ? REF_UPDATE : REF_TABLE;
		return i;
	}
	if (strcmp(op, "CREATE") && strcmp(op, "DROP") && strcmp(op, "ALTER"))
		return i;
	size_t start = i;
	/* CREATE [TEMP|TEMPORARY|UNLOGGED|GLOBAL|LOCAL|OR REPLACE] TABLE name */
	struct tok t;
	for (int k = 0; k < 4; k++) {
		lex_sig(z->s, z->len, i, SQL_DIALECT_ANSI, &t);
		if (tok_is(z->s, &t, "TABLE")) {
			z->expect = REF_TABLE;
			return t.end;
		}
		if (t.type != T_WORD)
			return start;
		i = t.end;
	}
	return start;
}

static bool is_main_keyword(const char *s, const struct tok *t)
{
	static const char *const words[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE",
					    "VALUES", "TABLE", NULL};
	for (size_t i = 0; words[i]; i++)
		if (tok_is(s, t, words[i]))
			return true;
	return false;
}

static void on_open_paren(struct summarizer *z)
{
	z->depth++;
	if (z->depth <= MAX_DEPTH)
		z->query_ctx[z->depth] = -1;
}

static void on_close_paren(struct summarizer *z)
{
	if (z->depth > 0)
		z->depth--;
	if (z->list_depth > z->depth)
		z->list_depth = -1;
}

static bool in_query_ctx(const struct summarizer *z)
{
	return z->depth <= MAX_DEPTH && z->query_ctx[z->depth] == 1;
}

/* A name after FROM/JOIN/INTO/..., or a word that turns expectation off. */
static size_t on_expected(struct summarizer *z, struct tok *t)
{
	if (t->type == T_WORD && is_ref_modifier(z->s, t))
		return t->end;
	enum ref_kind kind = z->expect;
	z->expect = REF_NONE;
	if (t->type == T_WORD || t->type == T_QIDENT) {
		size_t i = read_table_name(z, t, kind);
		if (!strcmp(z->out->operation, "COPY"))
			z->len = i; /* COPY t FROM STDIN: the rest names no table */
		return i;
	}
	if (tok_is_punct(z->s, t, '('))
		z->ambiguous = true; /* derived table: unnamed */
	return t->start; /* reprocess as an ordinary token */
}

static void on_word(struct summarizer *z, const struct tok *t)
{
	if (z->depth <= MAX_DEPTH && z->query_ctx[z->depth] == -1)
		z->query_ctx[z->depth] = is_query_word(z->s, t);
	if (z->list_depth == z->depth && ends_from_list(z->s, t))
		z->list_depth = -1;
	if (!in_query_ctx(z))
		return;
	if (tok_is(z->s, t, "FROM") || tok_is(z->s, t, "JOIN"))
		z->expect = REF_FROM;
	else if (tok_is(z->s, t, "INTO"))
		z->expect = REF_INTO;
	else if (tok_is(z->s, t, "USING"))
		z->expect = REF_FROM; /* DELETE ... USING t; JOIN ... USING (col) is '(' */
}

/* Skips leading noise and the WITH clause; sets the operation. Returns the
 * index after the operation keyword, or 0 when there is none. */
static size_t find_operation(struct summarizer *z)
{
	struct tok t;
	size_t i = 0;
	for (;;) {
		lex_sig(z->s, z->len, i, SQL_DIALECT_ANSI, &t);
		if (t.type == T_WORD)
			break;
		if (!tok_is_punct(z->s, &t, '('))
			return 0;
		i = t.end; /* "(SELECT ...) UNION ..." */
	}
	set_operation(z, &t);
	if (strcmp(z->out->operation, "WITH"))
		return t.end;
	/* WITH [RECURSIVE] a AS (...), b AS (...) <main statement>: the CTE
	 * bodies are scanned for table names like any subquery. */
	z->query_ctx[0] = 1;
	int depth = 0;
	for (i = t.end;; i = t.end) {
		lex_sig(z->s, z->len, i, SQL_DIALECT_ANSI, &t);
		if (t.type == T_END || (depth == 0 && tok_is_punct(z->s, &t, ';')))
			return 0;
		if (depth == 0 && is_main_keyword(z->s, &t)) {
			set_operation(z, &t);
			z->len = t.end;
			return t.end;
		}
		if (tok_is_punct(z->s, &t, '('))
			depth++;
		else if (tok_is_punct(z->s, &t, ')') && depth > 0)
			depth--;
	}
}

static void scan_refs(struct summarizer *z, size_t i)
{
	struct tok t;
	for (;;) {
		lex_sig(z->s, z->len, i, SQL_DIALECT_ANSI, &t);
		if (t.type == T_END || (z->depth == 0 && tok_is_punct(z->s, &t, ';')))
			return;
		if (z->expect != REF_NONE) {
			size_t next = on_expected(z, &t);
			if (next != t.start) {
				i = next;
				continue;
			}
		}
		if (tok_is_punct(z->s, &t, '('))
			on_open_paren(z);
		else if (tok_is_punct(z->s, &t, ')'))
			on_close_paren(z);
		else if (tok_is_punct(z->s, &t, ',') && z->list_depth == z->depth)
			z->ambiguous = true; /* FROM a, b */
		else if (t.type == T_WORD)
			on_word(z, &t);
		i = t.end;
	}
}

int sql_summarize(const char *stmt, size_t len, struct sql_summary *out)
{
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!stmt)
		return -EINVAL;
	struct summarizer z = {.s = stmt, .len = len, .out = out, .list_depth = -1};
	z.query_ctx[0] = 1;
	size_t full_len = len;
	size_t op_end = find_operation(&z);
	if (!op_end)
		return out->operation[0] ? 0 : -EINVAL;
	/* For WITH, scan the CTE bodies too (from the start), then the main
	 * statement; find_operation shortened z.len to stop at the keyword. */
	if (z.len != full_len) {
		scan_refs(&z, 0);
		z.len = full_len;
		z.depth = 0;
		z.expect = REF_NONE;
		z.list_depth = -1;
		z.query_ctx[0] = 1;
	}
	scan_refs(&z, after_operation(&z, op_end));
	if (z.ambiguous || !z.have_ref)
		out->collection[0] = '\0';
	return 0;
}
