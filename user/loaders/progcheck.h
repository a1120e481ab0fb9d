/* The program check: weft's own BPF programs (capture, propagation, go
 * objects), each loaded on its own on this kernel, configured exactly as
 * `weft attach` configures them (user/bpf_config.h), with the verifier's
 * statistics. `weft doctor` prints it, tests/unit/test_bpf_verifier and the
 * kernel matrix (make test-kernels) fail on it. Needs root. Nothing stays
 * loaded. */
#ifndef WEFT_PROGCHECK_H
#define WEFT_PROGCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The verifier refuses a program once it has processed this many
 * instructions (BPF_COMPLEXITY_LIMIT_INSNS). */
#define PROGCHECK_INSN_LIMIT 1000000L
/* weft's own ceiling, half of it: kernels differ in how much they process. */
#define PROGCHECK_INSN_BUDGET 500000L
/* The stack a program (all its frames) may use (MAX_BPF_STACK). */
#define PROGCHECK_STACK_MAX 512L
/* weft's own ceiling, 64 bytes under it: kernels differ in what they count
 * (frame rounding, which paths they explore, the room an inlined bpf_loop
 * takes), and one build of 6.18 counted 592 where another counted 408. */
#define PROGCHECK_STACK_LIMIT 448L

struct progcheck_result {
	char object[16];   /* "capture", "propagation", "go" */
	char program[64];
	bool loaded;
	int err;           /* 0, or the load's -errno */
	long insns;        /* instructions the verifier processed, -1 if unknown */
	long insn_limit;   /* the verifier's limit (as it prints it) */
	long stack;        /* bytes of stack of its deepest chain of calls (callbacks
			    * included), as the verifier counts them against its 512: each
			    * frame rounded up to 32 (6.1's rule; 6.10+ JIT rounds to 16 and
			    * may count less); -1 if unknown */
	long stack_sum;    /* sum of the "stack depth" numbers: all frames, -1 if unknown */
	char chain[256];   /* the deepest chain, "prog 24 > func 152 > ...": each frame as the
			    * verifier reports it, before rounding; "" if unknown */
	char reason[256];  /* refused: the verifier's (or libbpf's) last meaningful line */
	char where[128];   /* refused: the instruction it was at, if the log says */
};

/* Loads each program weft's configuration leaves on, one at a time; *out
 * (free() it) gets one result per program, refused or not. 0, or -errno
 * (logged) when a check could not run at all (out of memory, an object
 * that does not open). */
int progcheck_run(struct progcheck_result **out, size_t *n);
/* Refused, or over weft's ceilings (instructions, stack)? */
bool progcheck_failed(const struct progcheck_result *r);
/* "ok|no  object/program  N insns (P% of limit)  stack S  [reason]", one
 * line per program, each indented by indent. */
void progcheck_print(FILE *f, const struct progcheck_result *r, size_t n, const char *indent);

#endif
