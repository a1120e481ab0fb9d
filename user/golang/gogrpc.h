/* grpc-go in a Go executable: where its client streams start
 * ((*http2Client).NewStream) and the struct offsets the uprobe there reads
 * (Stream.id, Stream.ct, http2Client.conn): from the binary's DWARF, else
 * from a table by grpc-go version (read from the binary's "grpc-go/1.N"
 * user-agent string), else none (the probe is not placed). */
#ifndef WEFT_GOGRPC_H
#define WEFT_GOGRPC_H

#include <stddef.h>
#include <stdint.h>

#include "goelf.h"

#define GRPC_NEWSTREAM_FUNC "google.golang.org/grpc/internal/transport.(*http2Client).NewStream"

struct go_grpc {
	int16_t stream_id, stream_ct, client_conn; /* -1: unknown */
	char version[32];  /* "1.33.3" from the user agent, or "" */
	const char *source; /* "DWARF", "table (grpc-go 1.33)" */
	uint64_t *rets;    /* file offsets of NewStream's RETs (malloc'd) */
	size_t n_rets;
	char why[256];     /* why there is no probe */
};

/* Fills g. 0: probe at g->rets; -ENOENT: no grpc-go client in the binary;
 * -ENODATA: offsets unknown (why); -ENOMEM. */
int go_grpc_analyse(struct go_elf *ge, struct go_grpc *g);
void go_grpc_free(struct go_grpc *g);

/* The grpc-go version in a user-agent string inside data ("grpc-go/1.33.3"
 * -> "1.33.3"), for tests. 0 or -ENOENT. */
int go_grpc_version_scan(const uint8_t *data, size_t size, char *out, size_t outlen);

#endif
