/* libFuzzer harness for the /proc parsers (user/agent/proc_parse.c): a traced
 * process controls its environment, its arguments and its command name, all
 * read by weft as root. Each input goes to the three parsers; the first
 * byte picks the size of the environment value buffer. Results are checked
 * against plain reference implementations. Built and run by
 * tests/fuzz/run_proc. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proc_parse.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static const char NAME[] = "OTEL_SERVICE_NAME";

/* The first entry NAME=... of the NUL-separated block, or NULL. */
static const char *ref_environ(const char *env, size_t n, size_t *vlen)
{
	size_t nl = strlen(NAME), i = 0;

	while (i < n) {
		size_t j = i;
		while (j < n && env[j])
			j++;
		if (j - i > nl && !memcmp(env + i, NAME, nl) && env[i + nl] == '=') {
			*vlen = j - i - nl - 1;
			return env + i + nl + 1;
		}
		i = j + 1;
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!size)
		return 0;
	size_t outlen = data[0] % 64;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	/* exact-size copies: ASan sees any read past the input */
	char *env = malloc(n ? n : 1), *cmd = malloc(n + 1), *out = malloc(outlen ? outlen : 1);
	memcpy(env, in, n);
	memcpy(cmd, in, n);

	size_t vlen = 0;
	const char *want = ref_environ(env, n, &vlen);
	int ret = proc_environ_find(env, n, NAME, out, outlen);
	CHECK((ret == 0) == (want != NULL));
	if (!ret && outlen) {
		size_t got = strlen(out);
		CHECK(got == (vlen < outlen - 1 ? vlen : outlen - 1));
		CHECK(!memcmp(out, want, got));
	}

	size_t len = proc_cmdline_join(cmd, n);
	CHECK(len <= n && cmd[len] == '\0' && strlen(cmd) == len);
	CHECK(!len || cmd[len - 1] != ' ' || in[len - 1] == ' ');

	uint64_t st = proc_stat_start_time(env, n);
	if (st) { /* a number was found: it is field 22 after the last ')' */
		char *copy = malloc(n + 1), *p;
		memcpy(copy, in, n);
		copy[n] = '\0';
		p = strrchr(copy, ')');
		/* the kernel separates fields by single spaces: compare where
		 * sscanf's idea of white space is the same */
		if (p && memchr(in, '\0', n) == NULL && !strpbrk(p, "\t\v\f\r")) {
			unsigned long long v = 0;
			CHECK(sscanf(p + 1, " %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
					    "%*s %*s %*s %*s %*s %llu", &v) == 1 && v == st);
		}
		free(copy);
	}
	free(env);
	free(cmd);
	free(out);
	return 0;
}
