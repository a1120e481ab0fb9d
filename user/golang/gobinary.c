/* One Go executable's analysis for the uprobe loader. See gobinary.h. */
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "go_offsets.h"
#include "goasm.h"
#include "gobinary.h"
#include "goelf.h"

#define ROUNDTRIP_FUNC "net/http.(*persistConn).roundTrip"
#define NEWPROC1_FUNC "runtime.newproc1"
#define TLS_WRITE_FUNC "crypto/tls.(*Conn).Write"
#define TLS_READ_FUNC "crypto/tls.(*Conn).Read"

static int16_t off16(const struct go_offsets *o, enum go_field f)
{
	const struct go_offset *x = &o->f[f];
	if (x->source == GO_OFF_MISSING || x->source == GO_OFF_ABSENT || x->value < 0 || x->value > 0x7fff)
		return -1;
	return (int16_t)x->value;
}

static void fill_offsets(struct go_binary *b, const struct go_offsets *o)
{
	struct go_proc_info *i = &b->info;
	i->g_goid = off16(o, GO_FIELD_G_GOID);
	i->g_parent_goid = off16(o, GO_FIELD_G_PARENT_GOID);
	i->g_m = off16(o, GO_FIELD_G_M);
	i->m_curg = off16(o, GO_FIELD_M_CURG);
	i->pc_conn = off16(o, GO_FIELD_PERSIST_CONN_CONN);
	i->pc_tls_state = off16(o, GO_FIELD_PERSIST_CONN_TLS_STATE);
	i->tcpconn_conn = off16(o, GO_FIELD_TCP_CONN_CONN);
	i->conn_fd = off16(o, GO_FIELD_NET_CONN_FD);
	i->netfd_pfd = off16(o, GO_FIELD_NETFD_PFD);
	i->pfd_sysfd = off16(o, GO_FIELD_POLL_FD_SYSFD);
	i->tlsconn_conn = off16(o, GO_FIELD_TLS_CONN_CONN);
	snprintf(b->warning, sizeof(b->warning), "%s", o->warning);
}

static void find_first_vaddr(struct go_binary *b, const struct go_elf *ge)
{
	uint64_t first = UINT64_MAX;
	for (size_t i = 0; i < ge->n_loads; i++)
		if (ge->loads[i].offset == 0 && ge->loads[i].vaddr < first)
			first = ge->loads[i].vaddr;
	b->pie = ge->type == ET_DYN;
	b->first_vaddr_ok = first != UINT64_MAX;
	b->first_vaddr = b->first_vaddr_ok ? first : 0;
}

static void find_roundtrip(struct go_binary *b, struct go_elf *ge)
{
	const struct go_proc_info *i = &b->info;
	struct go_func fn;
	if (i->pc_conn < 0 || i->tcpconn_conn < 0 || i->conn_fd < 0 || i->netfd_pfd < 0 || i->pfd_sysfd < 0 ||
	    go_elf_find_func(ge, ROUNDTRIP_FUNC, &fn) != 0)
		return;
	if (go_func_entry_probe_offset(ge, &fn, &b->roundtrip_at) < 0)
		b->roundtrip_at = fn.offset;
	b->roundtrip = true;
}

/* grpc-go's client streams, when the fd behind a net.Conn can be read. */
static void find_grpc(struct go_binary *b, struct go_elf *ge)
{
	struct go_proc_info *i = &b->info;
	i->grpc_stream_id = i->grpc_stream_ct = i->grpc_client_conn = -1;
	b->grpc_rc = go_grpc_analyse(ge, &b->grpc);
	if (b->grpc_rc)
		return;
	/* The probe reads NewStream's result in AX: Go's register ABI (1.17+). */
	int major = 0, minor = 0, patch = 0;
	if (!ge->go_version || go_version_parse(ge->go_version, &major, &minor, &patch) ||
	    (major == 1 && minor < 17)) {
		snprintf(b->grpc.why, sizeof(b->grpc.why), "Go %s: results are not in registers before 1.17",
			 ge->go_version ? ge->go_version : "version unknown");
		go_grpc_free(&b->grpc);
		b->grpc_rc = -ENODATA;
		return;
	}
	if (i->tcpconn_conn < 0 || i->conn_fd < 0 || i->netfd_pfd < 0 || i->pfd_sysfd < 0) {
		snprintf(b->grpc.why, sizeof(b->grpc.why), "offsets of net.TCPConn's fd unknown");
		go_grpc_free(&b->grpc);
		b->grpc_rc = -ENODATA;
		return;
	}
	i->grpc_stream_id = b->grpc.stream_id;
	i->grpc_stream_ct = b->grpc.stream_ct;
	i->grpc_client_conn = b->grpc.client_conn;
}

/* crypto/tls.(*Conn).Write and Read (docs/TLS.md). A missing function or
 * offset is not an error: the program gets no Go TLS plaintext (tls_why). */
static int find_tls(struct go_binary *b, struct go_elf *ge)
{
	const struct go_proc_info *i = &b->info;
	struct go_func wr, rd;
	int rc;
	if (i->tlsconn_conn < 0 || i->tcpconn_conn < 0 || i->conn_fd < 0 || i->netfd_pfd < 0 || i->pfd_sysfd < 0) {
		snprintf(b->tls_why, sizeof(b->tls_why), "offsets from crypto/tls.Conn to its fd unknown");
		return 0;
	}
	if ((rc = go_elf_find_func(ge, TLS_WRITE_FUNC, &wr)) || (rc = go_elf_find_func(ge, TLS_READ_FUNC, &rd))) {
		snprintf(b->tls_why, sizeof(b->tls_why), "%s",
			 rc == -ENOENT ? "no crypto/tls in this program" : ge->err);
		return 0;
	}
	/* Write's plaintext is taken at its entry, once per call: the PUSH RBP
	 * after the stack check (Go >= 1.21, emulated: one trap) is passed once;
	 * the check's jump of older Go is passed twice when the stack grows,
	 * so there the probe goes on the first instruction (single-stepped). */
	uint64_t at = wr.offset;
	if (go_func_entry_probe_offset(ge, &wr, &at) < 0)
		at = wr.offset;
	const uint8_t *insn = go_elf_at_offset(ge, at, 1);
	b->tls_write_at = insn && insn[0] == 0x55 ? at : wr.offset;
	/* Read's entry only notes the buffer: passing it twice is harmless. */
	if (go_func_entry_probe_offset(ge, &rd, &b->tls_read_at) < 0)
		b->tls_read_at = rd.offset;
	rc = go_func_ret_offsets(ge, &rd, &b->tls_read_rets, &b->n_tls_read_rets);
	if (rc == -ENOMEM)
		return -ENOMEM;
	if (rc < 0 || b->n_tls_read_rets == 0) {
		snprintf(b->tls_why, sizeof(b->tls_why), "returns of %s: %.200s", TLS_READ_FUNC,
			 rc < 0 ? ge->err : "no RET found");
		return 0;
	}
	b->tls = true;
	return 0;
}

/* Go < 1.21: where goroutine creation can be watched. */
static int find_newproc(struct go_binary *b, struct go_elf *ge)
{
	struct go_func fn;
	b->watch_newproc = b->info.g_parent_goid < 0 && b->info.g_m >= 0 && b->info.m_curg >= 0;
	if (!b->watch_newproc)
		return 0;
	b->call_rc = go_newproc_runqput_call(ge, &b->call_at);
	if (b->call_rc == -ENOMEM)
		return -ENOMEM;
	if (b->call_rc)
		snprintf(b->call_why, sizeof(b->call_why), "%.250s", ge->err);
	int rc = go_elf_find_func(ge, NEWPROC1_FUNC, &fn);
	if (rc == 0)
		rc = go_func_ret_offsets(ge, &fn, &b->rets, &b->n_rets);
	if (rc == -ENOMEM)
		return -ENOMEM;
	if (rc < 0 || b->n_rets == 0)
		snprintf(b->rets_why, sizeof(b->rets_why), "%.250s", rc < 0 ? ge->err : "no RET found");
	return 0;
}

static int analyse(int fd, const char *path, struct go_binary *b)
{
	struct go_elf *ge = NULL;
	struct go_offsets o;
	int err;

	memset(b, 0, sizeof(*b));
	b->call_rc = -ENOENT;
	b->grpc_rc = -ENOENT;
	b->info.grpc_stream_id = b->info.grpc_stream_ct = b->info.grpc_client_conn = -1;
	err = fd >= 0 ? go_elf_open_fd(fd, path, &ge, b->why, sizeof(b->why))
		      : go_elf_open(path, &ge, b->why, sizeof(b->why));
	if (err)
		goto out;
	if (ge->go_version)
		snprintf(b->version, sizeof(b->version), "%s", ge->go_version);
	b->is_go = ge->is_go;
	if (!ge->is_go) {
		err = -ENOEXEC;
		snprintf(b->why, sizeof(b->why), "not a Go program");
		goto out;
	}
	if (strcmp(go_elf_goarch(ge), "amd64") != 0) {
		err = -ENOTSUP;
		snprintf(b->why, sizeof(b->why), "%s binaries: goroutine tracking is implemented for amd64 only; "
			 "its handlers' outgoing calls start their own traces", go_elf_goarch(ge));
		goto out;
	}
	go_offsets_resolve(ge, &o);
	fill_offsets(b, &o);
	if (b->info.g_goid < 0) {
		err = -ENODATA;
		snprintf(b->why, sizeof(b->why), "offset of runtime.g.goid unknown: goroutines cannot be followed");
		goto out;
	}
	find_first_vaddr(b, ge);
	uint64_t allgs = 0;
	if (go_elf_find_allgs(ge, &allgs, NULL) == 0) {
		b->info.allgs = allgs;
	} else {
		snprintf(b->allgs_why, sizeof(b->allgs_why), "%.250s", ge->err);
	}
	find_roundtrip(b, ge);
	find_grpc(b, ge);
	err = find_newproc(b, ge);
	if (!err)
		err = find_tls(b, ge);
out:
	go_elf_close(ge);
	b->err = err;
	return err;
}

int go_binary_analyse(const char *path, struct go_binary *b)
{
	return analyse(-1, path, b);
}

int go_binary_analyse_fd(int fd, const char *name, struct go_binary *b)
{
	return analyse(fd, name, b);
}

void go_binary_free(struct go_binary *b)
{
	if (!b)
		return;
	free(b->rets);
	b->rets = NULL;
	b->n_rets = 0;
	go_grpc_free(&b->grpc);
	free(b->tls_read_rets);
	b->tls_read_rets = NULL;
	b->n_tls_read_rets = 0;
}
