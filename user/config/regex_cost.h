/* What a selector's regular expression would cost glibc, refused before
 * regcomp(3) sees it. glibc expands every repetition into copies (a{0,n}
 * is n copies, a+ is a a*) and computes closures over them: a 40-character
 * pattern of stacked or repeated loops ("a+++++++++++++++++++",
 * "(()*){0,24}") takes seconds to gigabytes to compile, and large
 * expansions take tens of milliseconds per name matched. Back-references
 * make matching exponential. Found by tests/fuzz/fuzz_config.c. */
#ifndef WEFT_CONFIG_REGEX_COST_H
#define WEFT_CONFIG_REGEX_COST_H

#include <stddef.h>

/* Positions of the expanded pattern (a name is at most 253 characters). */
#define REGEX_POSITIONS_MAX 256
/* Repetitions of a group or of a repetition ("(a?)*", "a?*"), counted in
 * the expanded pattern: compile time doubles with each. */
#define REGEX_LOOPS_MAX 12
#define REGEX_DEPTH_MAX 32 /* nested groups */

/* 0 when text (a POSIX extended regular expression) is cheap enough, else
 * -EINVAL with why (what: the key, for the message) in err. Its syntax is
 * regcomp's to judge: an invalid pattern may pass this. */
int regex_cost_check(const char *what, const char *text, char *err, size_t errlen);

#endif
