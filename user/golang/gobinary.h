/* Everything weft needs from one Go executable to follow its processes,
 * computed once per binary (user/loaders/go_worker.c caches it by device,
 * inode, size and mtime) and then applied to each process that runs it
 * (user/loaders/go.c): struct offsets, runtime.allgs, and where the uprobes
 * go. Plain data: no file stays open, nothing refers to the ELF. */
#ifndef WEFT_GOBINARY_H
#define WEFT_GOBINARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/go.h"
#include "gogrpc.h"

struct go_binary {
	/* 0: a Go binary whose goroutines weft can follow; -ENOEXEC: not Go;
	 * else why not (why[]): -ENOTSUP other architecture, -ENODATA no
	 * g.goid offset, or go_elf_open's error. */
	int err;
	bool is_go;		/* opened, and a Go program (whatever err says) */
	char why[512];
	char warning[1024];	/* doubtful struct offsets ("" if none) */
	char version[64];	/* "go1.22.5", or "" */
	bool pie;		/* ET_DYN: uprobes need the load bias */
	uint64_t first_vaddr;	/* p_vaddr of the PT_LOAD at file offset 0 */
	bool first_vaddr_ok;
	struct go_proc_info info; /* offsets; allgs is the link-time address (0: not found) */
	char allgs_why[256];	/* why allgs is 0 */
	bool roundtrip;		/* net/http.(*persistConn).roundTrip and its offsets */
	uint64_t roundtrip_at;	/* file offset of its probe */
	/* Go < 1.21 (no g.parentGoid): the CALL runtime.runqput in
	 * runtime.newproc.func1 (call_rc 0), else the RETs of runtime.newproc1. */
	bool watch_newproc;	/* g.parentGoid absent, g.m and m.curg known */
	int call_rc;
	uint64_t call_at;
	char call_why[256];
	uint64_t *rets;
	size_t n_rets;
	char rets_why[256];
	/* grpc-go's (*http2Client).NewStream: grpc_rc 0 when its RETs are
	 * probed (offsets in info.grpc_*), else why not (grpc.why). */
	int grpc_rc;
	struct go_grpc grpc;
	/* crypto/tls (docs/TLS.md): (*Conn).Write's entry, (*Conn).Read's
	 * entry and every RET. tls: all found, with the offsets from the
	 * tls.Conn to its socket's fd; else tls_why says what is missing. */
	bool tls;
	uint64_t tls_write_at;
	uint64_t tls_read_at;
	uint64_t *tls_read_rets;
	size_t n_tls_read_rets;
	char tls_why[256];
};

/* Analyses the executable at path into b (always filled: b->err says what
 * came of it). Returns b->err. */
int go_binary_analyse(const char *path, struct go_binary *b);
/* The same on an open file (not closed; name is for messages). */
int go_binary_analyse_fd(int fd, const char *name, struct go_binary *b);
void go_binary_free(struct go_binary *b);

#endif
