/* What the kernel sends the agent on the events ring buffer: every record
 * starts with its __u32 type. */
#ifndef WEFT_ABI_EVENTS_H
#define WEFT_ABI_EVENTS_H

#include "abi/types.h"
#include "abi/exchange.h"

enum weft_event_type {
	WEFT_EV_TXN = 1,       /* struct txn_event */
	WEFT_EV_PROC_EXIT = 2, /* struct proc_exit_event */
	WEFT_EV_PROC_EXEC = 3, /* struct proc_exec_event: a traced process exec'd
				 * (any process, with discovery) */
	WEFT_EV_CONN_CLOSE = 4, /* struct conn_close_event: a connection whose
				 * protocol keeps agent-side state closed */
	WEFT_EV_PROC_LISTEN = 5, /* struct proc_listen_event: discovery (weft run
				  * with a selection): a process listens */
	WEFT_EV_STREAM_CHUNK = 6, /* struct stream_chunk_event (abi/stream.h) */
	WEFT_EV_STREAM_INJECT = 7, /* struct stream_inject_event (abi/stream.h) */
	WEFT_EV_H2_PARENT = 8,     /* struct h2_parent_event (abi/h2_parent.h) */
};

struct proc_exit_event {
	__u32 type; /* WEFT_EV_PROC_EXIT */
	__u32 pid;
};

#define WEFT_EXEC_PATH_MAX 256

struct proc_exec_event {
	__u32 type; /* WEFT_EV_PROC_EXEC */
	__u32 pid;
	/* The program's path as exec was given it (cut; "" unknown): what
	 * discovery decides by when the process is gone before the agent could
	 * read its /proc (a static client lives a millisecond). */
	char filename[WEFT_EXEC_PATH_MAX];
};

struct conn_close_event {
	__u32 type; /* WEFT_EV_CONN_CLOSE */
	__u32 pid;
	__u32 fd;
	__u32 pad;
};

struct proc_listen_event {
	__u32 type; /* WEFT_EV_PROC_LISTEN */
	__u32 pid;
	__u16 port; /* host order; 0 when the socket was not bound first */
	__u16 pad;
	__u32 pad2;
};

_Static_assert(sizeof(struct proc_listen_event) == 16, "proc_listen_event layout");
_Static_assert(sizeof(struct proc_exit_event) == 8, "proc_exit_event layout");
_Static_assert(sizeof(struct proc_exec_event) == 8 + WEFT_EXEC_PATH_MAX, "proc_exec_event layout");
_Static_assert(sizeof(struct conn_close_event) == 16, "conn_close_event layout");

#endif
