/* grpc-go client streams: see gogrpc.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goasm.h"
#include "godwarf.h"
#include "gogrpc.h"

#define TRANSPORT "google.golang.org/grpc/internal/transport."

/* Offsets without DWARF, by grpc-go major.minor, read from the DWARF of a
 * build against that version (Stream.id, Stream.ct, http2Client.conn;
 * tests/unit/golang/test_gogrpc.c checks the row of the installed version
 * against DWARF). A version not listed gets no probe: a wrong offset could
 * read another connection's fd. */
static const struct {
	int minor;
	int16_t stream_id, stream_ct, client_conn;
} grpc_rows[] = {
	{ 33, 0, 24, 72 },
};

int go_grpc_version_scan(const uint8_t *data, size_t size, char *out, size_t outlen)
{
	static const char tag[] = "grpc-go/1.";
	const size_t tl = sizeof(tag) - 1;
	for (const uint8_t *p = data; size >= tl && p <= data + size - tl;) {
		p = memmem(p, data + size - p, tag, tl);
		if (!p)
			break;
		size_t n = tl;
		while (p + n < data + size && n < tl + 12 && ((p[n] >= '0' && p[n] <= '9') || p[n] == '.'))
			n++;
		if (n > tl && p[tl] >= '0' && p[tl] <= '9') {
			size_t v = n - (tl - 2); /* from "1." */
			if (v >= outlen)
				return -ENOENT;
			memcpy(out, p + tl - 2, v);
			out[v] = '\0';
			return 0;
		}
		p += tl;
	}
	return -ENOENT;
}

static int from_dwarf(struct go_elf *ge, struct go_grpc *g)
{
	struct go_dwarf_field f[] = {
		{ TRANSPORT "Stream", "id" },
		{ TRANSPORT "Stream", "ct" },
		{ TRANSPORT "http2Client", "conn" },
	};
	char err[256];
	if (!ge->has_dwarf || go_dwarf_struct_offsets(ge->elf, f, 3, err, sizeof(err)) != 3)
		return -ENODATA;
	for (int i = 0; i < 3; i++)
		if (f[i].offset < 0 || f[i].offset > 0x7fff)
			return -ENODATA;
	g->stream_id = (int16_t)f[0].offset;
	g->stream_ct = (int16_t)f[1].offset;
	g->client_conn = (int16_t)f[2].offset;
	g->source = "DWARF";
	return 0;
}

static int from_table(struct go_grpc *g)
{
	int major = 0, minor = 0;
	if (!g->version[0] || sscanf(g->version, "%d.%d", &major, &minor) != 2 || major != 1)
		return -ENODATA;
	for (size_t i = 0; i < sizeof(grpc_rows) / sizeof(grpc_rows[0]); i++) {
		if (grpc_rows[i].minor != minor)
			continue;
		g->stream_id = grpc_rows[i].stream_id;
		g->stream_ct = grpc_rows[i].stream_ct;
		g->client_conn = grpc_rows[i].client_conn;
		g->source = "table";
		return 0;
	}
	return -ENODATA;
}

int go_grpc_analyse(struct go_elf *ge, struct go_grpc *g)
{
	struct go_func fn;
	memset(g, 0, sizeof(*g));
	g->stream_id = g->stream_ct = g->client_conn = -1;
	if (go_elf_find_func(ge, GRPC_NEWSTREAM_FUNC, &fn) != 0) {
		snprintf(g->why, sizeof(g->why), "no grpc-go client");
		return -ENOENT;
	}
	go_grpc_version_scan(ge->data, ge->size, g->version, sizeof(g->version));
	if (from_dwarf(ge, g) && from_table(g)) {
		snprintf(g->why, sizeof(g->why),
			 "grpc-go %s without DWARF: its struct offsets are not in weft's table "
			 "(gRPC calls are not parented to the requests that make them)",
			 g->version[0] ? g->version : "(version unknown)");
		return -ENODATA;
	}
	int rc = go_func_ret_offsets(ge, &fn, &g->rets, &g->n_rets);
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0 || !g->n_rets) {
		snprintf(g->why, sizeof(g->why), "%s: %.200s", GRPC_NEWSTREAM_FUNC,
			 rc < 0 ? ge->err : "no RET found");
		go_grpc_free(g);
		return -ENODATA;
	}
	return 0;
}

void go_grpc_free(struct go_grpc *g)
{
	free(g->rets);
	g->rets = NULL;
	g->n_rets = 0;
}
