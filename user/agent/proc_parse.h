/* Parsers of the /proc files a traced process controls (environ, cmdline,
 * stat: its command name is any text it chose). Pure functions on buffers,
 * bounded by their length, fuzzed by tests/fuzz/fuzz_proc.c. */
#ifndef WEFT_PROC_PARSE_H
#define WEFT_PROC_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* The value of NAME in an environ block (NUL-separated NAME=value, n bytes,
 * the last entry possibly unterminated) copied into out (truncated to
 * outlen - 1, always terminated). 0, or -ENOENT. */
int proc_environ_find(const char *env, size_t n, const char *name, char *out, size_t outlen);

/* A cmdline block (NUL-separated arguments, n bytes) made one line in place:
 * trailing NULs dropped, inner ones become spaces, terminated at the
 * returned length. buf must hold n + 1 bytes. */
size_t proc_cmdline_join(char *buf, size_t n);

/* Field 22 of /proc/PID/stat (the start time in clock ticks since boot),
 * found after the last ')' (the command name may hold spaces and parens).
 * 0 when the text is not a stat line. */
uint64_t proc_stat_start_time(const char *buf, size_t n);

#endif
