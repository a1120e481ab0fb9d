/* Parsers of /proc/PID/{environ,cmdline,stat} text (proc_parse.h). */
#include <errno.h>
#include <string.h>

#include "proc_parse.h"

int proc_environ_find(const char *env, size_t n, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < n;) {
		const char *e = env + i;
		size_t el = strnlen(e, n - i);
		if (el > nl && memcmp(e, name, nl) == 0 && e[nl] == '=') {
			size_t vl = el - nl - 1;
			if (outlen) {
				if (vl > outlen - 1)
					vl = outlen - 1;
				memcpy(out, e + nl + 1, vl);
				out[vl] = '\0';
			}
			return 0;
		}
		i += el + 1;
	}
	return -ENOENT;
}

size_t proc_cmdline_join(char *buf, size_t n)
{
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return n;
}

uint64_t proc_stat_start_time(const char *buf, size_t n)
{
	const char *p = NULL, *end = buf + n;
	uint64_t v = 0;

	for (size_t i = n; i > 0; i--) {
		if (buf[i - 1] == ')') {
			p = buf + i;
			break;
		}
	}
	if (!p)
		return 0;
	/* after ") ": field 3 (state) ... field 22 (starttime): 19 fields to skip */
	for (int field = 3; field < 22; field++) {
		while (p < end && *p == ' ')
			p++;
		if (p == end || *p == '\n')
			return 0;
		while (p < end && *p != ' ' && *p != '\n')
			p++;
	}
	while (p < end && *p == ' ')
		p++;
	if (p == end || *p < '0' || *p > '9')
		return 0;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v;
}
