#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "log.h"

enum log_level log_threshold = LOG_INFO;

static const char *const level_names[] = { "error", "warning", "info", "debug" };

void log_msg(enum log_level level, const char *fmt, ...)
{
	if (level > log_threshold)
		return;
	char buf[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	size_t n = strlen(buf);
	while (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	fprintf(stderr, "weft: %s: %s\n", level_names[level], buf);
}

/* The last program the kernel refused: its name and the tail of the
 * verifier's log, which libbpf hands us in one message. Per thread:
 * objects load on two threads at once (agent.c), and libbpf logs on the
 * loading thread, where the loader reads it back. */
static _Thread_local char refused_prog[64];
static _Thread_local char refused_tail[4096];

/* Keeps a refused program's name and log tail; true if msg was such a log. */
static bool keep_refusal(const char *msg)
{
	const char *p = strstr(msg, "prog '"), *begin = strstr(msg, "-- BEGIN PROG LOAD LOG --\n");
	if (!p || !begin)
		return false;
	p += 6;
	snprintf(refused_prog, sizeof(refused_prog), "%.*s", (int)strcspn(p, "'"), p);
	begin += strlen("-- BEGIN PROG LOAD LOG --\n");
	const char *end = strstr(begin, "-- END PROG LOAD LOG --");
	size_t n = end ? (size_t)(end - begin) : strlen(begin);
	if (n >= sizeof(refused_tail)) {
		begin += n - (sizeof(refused_tail) - 1);
		n = sizeof(refused_tail) - 1;
	}
	memcpy(refused_tail, begin, n);
	refused_tail[n] = '\0';
	return true;
}

const char *log_refused_program(const char **log_tail)
{
	if (log_tail)
		*log_tail = refused_tail;
	return refused_prog[0] ? refused_prog : NULL;
}

void log_refusal_clear(void)
{
	refused_prog[0] = refused_tail[0] = '\0';
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level l = level == LIBBPF_WARN ? LOG_WARN : LOG_DEBUG;
	/* A probed file that cannot be opened, a uprobe that cannot be made
	 * (mostly: the process exited meanwhile): the caller says so once, with
	 * the process and the function, or knows the process is gone. */
	if (level == LIBBPF_WARN &&
	    (!strcmp(fmt, "libbpf: failed to open %s: %s\n") || !strcmp(fmt, "libbpf: elf: failed to open %s: %s\n") ||
	     !strcmp(fmt, "libbpf: prog '%s': failed to create %s '%s:0x%zx' perf event: %s\n")))
		l = LOG_DEBUG;
	if (level == LIBBPF_WARN && strstr(fmt, "BEGIN PROG LOAD LOG")) {
		/* A verifier log (megabytes, at times): kept for the loader's
		 * explanation (log_refused_program), printed whole only with -v. */
		va_list aq;
		va_copy(aq, ap);
		int len = vsnprintf(NULL, 0, fmt, aq);
		va_end(aq);
		char *msg = len >= 0 ? malloc((size_t)len + 1) : NULL;
		if (msg) {
			va_copy(aq, ap);
			vsnprintf(msg, (size_t)len + 1, fmt, aq);
			va_end(aq);
			bool kept = keep_refusal(msg);
			if (!kept || log_threshold >= LOG_INFO + 1)
				fprintf(stderr, "weft: %s", msg);
			free(msg);
			return len;
		}
	}
	if (l > log_threshold || (level == LIBBPF_DEBUG && log_threshold < LOG_DEBUG))
		return 0;
	fprintf(stderr, "weft: ");
	return vfprintf(stderr, fmt, ap);
}

void log_setup_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
