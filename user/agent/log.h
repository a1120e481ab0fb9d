/* Logging to stderr: "weft: level: message". Errors are logged once, with
 * context, where they are handled. */
#ifndef WEFT_LOG_H
#define WEFT_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern enum log_level log_threshold;

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Route libbpf's messages through log_msg (warnings only, debug with -v -v). */
void log_setup_libbpf(void);
/* The program the kernel refused last (NULL if none since log_refusal_clear)
 * and the tail of its verifier log. */
const char *log_refused_program(const char **log_tail);
void log_refusal_clear(void);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
