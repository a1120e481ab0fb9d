/* memcached text protocol decoding for database spans. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "memcached_proto.h"

static const char *const commands[] = {
	"get", "gets", "gat", "gats", "set", "add", "replace", "append", "prepend",
	"cas", "delete", "incr", "decr", "touch",
};

/* The command's table entry if word (n bytes) is one, else NULL. */
static const char *known_command(const uint8_t *word, size_t n)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strlen(commands[i]) == n && memcmp(commands[i], word, n) == 0)
			return commands[i];
	return NULL;
}

/* Length of the line at p (up to len), without its "\r\n" or "\n". */
static size_t line_len(const uint8_t *p, size_t len, bool *complete)
{
	const uint8_t *nl = memchr(p, '\n', len);
	*complete = nl != NULL;
	size_t n = nl ? (size_t)(nl - p) : len;
	return n && p[n - 1] == '\r' ? n - 1 : n;
}

/* "cmd ? ? ?": the command, then '?' for each argument. */
static void redact(const uint8_t *line, size_t n, const char *cmd, char *out, size_t cap)
{
	size_t o = 0, args = 0;
	for (size_t i = strlen(cmd); i < n; i++)
		if (line[i] != ' ' && (line[i - 1] == ' '))
			args++;
	db_copy_str(out, cap, cmd, strlen(cmd));
	o = strlen(out);
	for (size_t a = 0; a < args && o + 2 < cap; a++) {
		out[o++] = ' ';
		out[o++] = '?';
	}
	out[o] = '\0';
}

static bool starts_with(const uint8_t *p, size_t n, const char *word)
{
	size_t w = strlen(word);
	return n >= w && memcmp(p, word, w) == 0;
}

int memcached_parse_exchange(void *state, const uint8_t *req, size_t req_len, const uint8_t *resp,
			     size_t resp_len, struct db_op *out)
{
	(void)state;
	bool complete;
	size_t n = line_len(req, req_len, &complete);
	size_t w = 0;
	while (w < n && req[w] != ' ')
		w++;
	const char *cmd = known_command(req, w);
	if (!cmd)
		return -EINVAL;
	db_op_init(out, DB_SYSTEM_MEMCACHED, NULL);
	db_copy_str(out->operation, sizeof(out->operation), cmd, strlen(cmd));
	db_copy_str(out->query, sizeof(out->query), (const char *)req, n);
	out->query_truncated = !complete;
	redact(req, n, cmd, out->query_redacted, sizeof(out->query_redacted));

	size_t rn = line_len(resp, resp_len, &complete);
	static const char *const errors[] = { "ERROR", "CLIENT_ERROR", "SERVER_ERROR" };
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		size_t e = strlen(errors[i]);
		if (!starts_with(resp, rn, errors[i]) || (rn > e && resp[e] != ' '))
			continue;
		out->error = true;
		db_copy_str(out->status_code, sizeof(out->status_code), errors[i], e);
		if (rn > e + 1)
			db_copy_str(out->error_message, sizeof(out->error_message), (const char *)resp + e + 1,
				    rn - e - 1);
		break;
	}
	return 0;
}
