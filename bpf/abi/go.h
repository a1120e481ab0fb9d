/* Structs shared by the Go goroutine-context code (bpf/context/goroutine.bpf.h,
 * bpf/uprobes/go.bpf.c) and the agent (user/loaders/go.c). Fixed-width types only. */
#ifndef WEFT_GO_H
#define WEFT_GO_H

#include "abi/types.h"

/* go_proc_info.flags */
#define GO_PROC_ROUNDTRIP 1 /* the program has net/http's Transport, whose writer
			     * goroutine writes its HTTP/1 requests: a request's context
			     * comes from the persistConn.roundTrip probe only, none when
			     * that probe is not attached (--uprobes off, or refused):
			     * the writer's own ancestry names the goroutine that dialed
			     * the connection, not the one that asked for the request */

/* What the kernel side needs to know about one Go process, written by the
 * agent once it has analysed the executable. Offsets are bytes, -1 when
 * unknown (the feature that needs them is then off). */
struct go_proc_info {
	__u64 allgs;       /* run-time address of runtime.allgs ([]*g), 0 unknown */
	__s16 g_goid;      /* runtime.g.goid */
	__s16 g_parent_goid; /* runtime.g.parentGoid (Go >= 1.21) */
	__s16 g_m;         /* runtime.g.m */
	__s16 m_curg;      /* runtime.m.curg */
	__s16 pc_conn;     /* net/http.persistConn.conn (a net.Conn interface) */
	__s16 pc_tls_state; /* net/http.persistConn.tlsState (nil: plaintext) */
	__s16 tcpconn_conn; /* net.TCPConn.conn */
	__s16 conn_fd;     /* net.conn.fd (*netFD) */
	__s16 netfd_pfd;   /* net.netFD.pfd */
	__s16 pfd_sysfd;   /* internal/poll.FD.Sysfd */
	__s16 grpc_stream_id; /* google.golang.org/grpc/internal/transport.Stream.id */
	__s16 grpc_stream_ct; /* ... Stream.ct (*http2Client) */
	__u32 flags;       /* GO_PROC_* */
	__u32 serving;     /* go_serving entries, serving or idle (kernel-maintained): 0, nothing is served */
	__s16 grpc_client_conn; /* ... http2Client.conn (a net.Conn interface) */
	__s16 tlsconn_conn; /* crypto/tls.Conn.conn (a net.Conn interface) */
	__u16 pad[2];
};

_Static_assert(sizeof(struct go_proc_info) == 48, "go_proc_info layout");

#endif
