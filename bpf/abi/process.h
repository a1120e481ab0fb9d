/* Which processes are traced, and what the agent tells the kernel about
 * them. */
#ifndef WEFT_ABI_PROCESS_H
#define WEFT_ABI_PROCESS_H

/* Words of the traced_bits process filter: one bit per possible tgid. */
#define TRACED_BITS_WORDS ((1u << 22) / 64) /* PID_MAX_LIMIT on 64-bit */

/* Values in the traced_pids map. */
#define TRACED_EXPLICIT 1 /* selected by the user (-p) or forked from one */
#define TRACED_SEEN 2     /* weft run: has connection state to clean at exit */

/* Bits in the proc_flags map. */
#define PROC_THREAD_CTX 1 /* thread-based parenting is safe in this process (not Go) */
/* A new program the agent has not vetted yet: only a context inherited from
 * the parent process (a child spawned while a request was served) is used
 * meanwhile, so that a short-lived client (curl) that connects before the
 * agent looked at it still acts for that request. */
#define PROC_UNVETTED 2
/* Discovery (weft run with a selection): a new program the kernel traces
 * from its exec until the agent decides about it, so that one that connects
 * at once (a static client) is not missed; the agent drops what it sent if
 * it is not selected. PROC_TOUCHED: it opened a connection meanwhile (the
 * agent then cleans its connection state). */
#define PROC_PROVISIONAL 4
#define PROC_TOUCHED 8

#endif
