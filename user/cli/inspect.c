/* `weft inspect`: a readable report of weft's analysis of one executable. */
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goasm.h"
#include "goelf.h"
#include "gogrpc.h"
#include "go_offsets.h"
#include "inspect.h"
#include "tls_lib.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: weft inspect PID|PATH\n"
		   "  Shows how weft sees an executable: language, Go version and modules,\n"
		   "  symbols, the functions weft probes (address, file offset, returns) and\n"
		   "  the struct offsets its probes read. Run it first when a Go program\n"
		   "  shows no spans.\n");
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static const char *elf_type_name(uint16_t t)
{
	switch (t) {
	case ET_EXEC: return "executable";
	case ET_DYN: return "position-independent executable or shared object";
	case ET_REL: return "relocatable object";
	case ET_CORE: return "core dump";
	default: return "unknown type";
	}
}

/* Settings worth showing from the build info (the rest is noise here). */
static bool interesting_setting(const char *kv)
{
	static const char *const keys[] = {"-buildmode=", "-compiler=", "-ldflags=", "-trimpath=",
					   "-tags=", "CGO_ENABLED=", "GOARCH=", "GOOS=", "vcs."};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strncmp(kv, keys[i], strlen(keys[i])) == 0)
			return true;
	return false;
}

#define KEYW 14

static void kv(const char *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kv(const char *k, const char *fmt, ...)
{
	va_list ap;
	printf("  %-*s ", KEYW, k);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static void print_module(const char *indent, const struct go_module *m)
{
	printf("%s%s %s", indent, m->path, m->version && *m->version ? m->version : "(no version)");
	if (m->repl_path)
		printf(" => %s %s", m->repl_path, m->repl_version ? m->repl_version : "");
	putchar('\n');
}

static void report_functions(struct go_elf *ge, int *resolved)
{
	size_t w = strlen("function");
	for (size_t i = 0; i < GO_PROBE_NFUNCS; i++)
		if (strlen(go_probe_funcs[i]) > w)
			w = strlen(go_probe_funcs[i]);
	printf("\nFunctions weft uses (roundTrip: 1 uprobe per client request; Go < 1.21 only: 1 uprobe per\n"
	       "goroutine created, on newproc.func1's CALL runqput, else on each RET of newproc1;\n"
	       "allgadd: read to locate runtime.allgs, not probed)\n");
	printf("  %-*s  %-8s  %-18s  %-11s  %6s  %-7s  %s\n", (int)w, "function", "status", "address",
	       "file offset", "size", "source", "RETs");
	*resolved = 0;
	for (size_t i = 0; i < GO_PROBE_NFUNCS; i++) {
		struct go_func fn;
		const char *name = go_probe_funcs[i];
		int rc = go_elf_find_func(ge, name, &fn);
		if (rc) {
			const char *why = ge->err;
			if (ge->pcln_err && ge->pcln_err != -ENODATA && !ge->has_symtab)
				why = "no usable function table (see .gopclntab above)";
			else if (rc == -ENOENT)
				why = "not in this binary (the program may not link it)";
			printf("  %-*s  %-8s  %-18s  %-11s  %6s  %-7s  %-4s  %s\n", (int)w, name,
			       "MISSING", "-", "-", "-", "-", "-", why);
			continue;
		}
		(*resolved)++;
		uint64_t *rets = NULL;
		size_t nrets = 0;
		char retbuf[sizeof(ge->err) + 16];
		rc = go_func_ret_offsets(ge, &fn, &rets, &nrets);
		if (rc < 0)
			snprintf(retbuf, sizeof(retbuf), "error: %s", ge->err);
		else
			snprintf(retbuf, sizeof(retbuf), "%zu", nrets);
		printf("  %-*s  %-8s  0x%016llx  0x%09llx  %6llu  %-7s  %s\n", (int)w, name, "ok",
		       (unsigned long long)fn.addr, (unsigned long long)fn.offset,
		       (unsigned long long)fn.size, go_sym_source_name(fn.source), retbuf);
		free(rets);
	}
}

/* Where goroutine creation is watched: only Go < 1.21 needs a probe. */
static void report_goroutine_creation(struct go_elf *ge, const struct go_offsets *o)
{
	if (o->f[GO_FIELD_G_PARENT_GOID].source != GO_OFF_MISSING &&
	    o->f[GO_FIELD_G_PARENT_GOID].source != GO_OFF_ABSENT) {
		kv("goroutines", "ancestry from runtime.g.parentGoid: no uprobe");
		return;
	}
	uint64_t at;
	if (go_newproc_runqput_call(ge, &at) == 0)
		kv("goroutines", "1 uprobe per goroutine created, on runtime.newproc.func1's CALL "
				 "runtime.runqput (file offset 0x%llx)", (unsigned long long)at);
	else
		kv("goroutines", "%s; fallback: a uprobe on each RET of runtime.newproc1 (two traps "
				 "per goroutine created)", ge->err);
}

/* grpc-go's client: where gRPC calls get their in-process parent. */
static void report_grpc(struct go_elf *ge)
{
	struct go_grpc g;
	int rc = go_grpc_analyse(ge, &g);
	if (rc == -ENOENT) {
		kv("grpc-go", "no grpc-go client");
		return;
	}
	if (rc) {
		kv("grpc-go", "%s%s: %s", g.version[0] ? "" : "version unknown", g.version, g.why);
		return;
	}
	kv("grpc-go", "%s; 1 uprobe hit per call, on the %zu RETs of (*http2Client).NewStream; offsets from "
		      "%s: Stream.id %d, Stream.ct %d, http2Client.conn %d",
	   g.version[0] ? g.version : "version unknown", g.n_rets, g.source, g.stream_id, g.stream_ct,
	   g.client_conn);
	go_grpc_free(&g);
}

static void report_offsets(const struct go_offsets *o, int *known)
{
	size_t w = strlen("field");
	char name[160];
	for (size_t i = 0; i < GO_FIELD__COUNT; i++) {
		size_t l = strlen(go_field_struct(i)) + 1 + strlen(go_field_name(i));
		if (l > w)
			w = l;
	}
	printf("\nStruct field offsets the probes read\n");
	printf("  %-*s  %6s  %s\n", (int)w, "field", "offset", "source");
	*known = 0;
	for (size_t i = 0; i < GO_FIELD__COUNT; i++) {
		const struct go_offset *f = &o->f[i];
		snprintf(name, sizeof(name), "%s.%s", go_field_struct(i), go_field_name(i));
		if (f->source == GO_OFF_MISSING) {
			printf("  %-*s  %6s  missing\n", (int)w, name, "-");
			continue;
		}
		(*known)++;
		if (f->source == GO_OFF_ABSENT)
			printf("  %-*s  %6s  not in go%d.%d (weft does without)\n", (int)w, name, "-",
			       o->row->major, o->row->minor);
		else if (f->source == GO_OFF_DWARF)
			printf("  %-*s  %6lld  DWARF\n", (int)w, name, (long long)f->value);
		else
			printf("  %-*s  %6lld  table for go%d.%d%s\n", (int)w, name, (long long)f->value,
			       o->row->major, o->row->minor,
			       f->source == GO_OFF_TABLE_NEAREST ? " (nearest known version)" : "");
	}
	if (o->warning[0])
		printf("\n  warning: %s\n", o->warning);
}

/* TLS: which library weft would read the plaintext of, per process
 * (docs/TLS.md). pid: NULL for a file (no process to look at). */
static void report_tls(const char *pid, struct go_elf *ge, const struct go_offsets *o)
{
	printf("\nTLS (plaintext read where the library is probed)\n");
	if (pid) {
		struct tls_lib lib;
		int rc = tls_lib_find((uint32_t)atoi(pid), &lib);
		if (rc == 0) {
			char names[128] = "";
			size_t n = 0;
			for (int i = 0; i < TLS_FN_N; i++)
				if (lib.has[i])
					n += snprintf(names + n, sizeof(names) - n, "%s%s", n ? ", " : "", tls_fn_names[i]);
			const char *version = lib.version[0] ? lib.version : "version unknown";
			if (lib.in_exe)
				kv("OpenSSL", "linked into the executable %s (static, %s): %s", lib.shown, version,
				   n ? names : "none of the functions weft probes: not probed");
			else
				kv("OpenSSL", "%s (%s, %s): %s", lib.shown, version,
				   lib.mapped ? "loaded" : "not loaded: probed if it is",
				   n ? names : "exports none of the functions weft probes: not probed");
		} else {
			char why[512];
			if (tls_lib_exe_unprobeable((uint32_t)atoi(pid), why, sizeof(why)) == 0)
				kv("OpenSSL", "%s", why);
			else
				kv("OpenSSL", "none mapped, none in the executable, none in its root (%s)", strerror(-rc));
		}
		char other[600];
		if (tls_lib_other((uint32_t)atoi(pid), other, sizeof(other)) == 0)
			kv("other", "%s: not probed: its TLS connections get no spans", other);
	} else {
		kv("OpenSSL", "(give a PID: the libssl a process maps)");
	}
	if (!ge)
		return;
	struct go_func w, r;
	uint64_t *rets = NULL;
	size_t n_rets = 0;
	if (go_elf_find_func(ge, "crypto/tls.(*Conn).Write", &w) || go_elf_find_func(ge, "crypto/tls.(*Conn).Read", &r)) {
		kv("crypto/tls", "not in this program");
		return;
	}
	int rc = go_func_ret_offsets(ge, &r, &rets, &n_rets);
	free(rets);
	const struct go_offset *c = &o->f[GO_FIELD_TLS_CONN_CONN];
	if (rc < 0 || !n_rets)
		kv("crypto/tls", "(*Conn).Read's RETs not found: not probed");
	else if (c->value < 0)
		kv("crypto/tls", "offset of crypto/tls.Conn.conn unknown: not probed");
	else
		kv("crypto/tls", "(*Conn).Write (entry), (*Conn).Read (entry and %zu RETs): probed", n_rets);
}

int inspect_main(int argc, char **argv)
{
	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	const char *arg = argv[1];
	char path[64], target[PATH_MAX] = "";
	const char *open_path = arg;
	if (all_digits(arg)) {
		char dir[64];
		snprintf(dir, sizeof(dir), "/proc/%s", arg);
		if (access(dir, F_OK) != 0) {
			fprintf(stderr, "weft inspect: no process with PID %s\n", arg);
			return 1;
		}
		snprintf(path, sizeof(path), "/proc/%s/exe", arg);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n < 0) {
			fprintf(stderr, "weft inspect: cannot read the executable of PID %s (%s): %s%s\n",
				arg, path, strerror(errno),
				errno == EACCES || errno == EPERM ? " (run weft as root?)" : "");
			return 1;
		}
		target[n] = 0;
		open_path = path;
	}

	char err[512];
	struct go_elf *ge;
	int rc = go_elf_open(open_path, &ge, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "weft inspect: %s\n", err);
		return 1;
	}
	printf("weft inspect %s\n", arg);
	if (target[0])
		kv("executable", "%s (PID %s)", target, arg);
	kv("file", "%s, ELF%d %s %s, %zu bytes", open_path, ge->is64 ? 64 : 32, go_elf_goarch(ge),
	   elf_type_name(ge->type), ge->size);
	if (!ge->is_go) {
		kv("language", "not Go (no Go build info, no .gopclntab)");
		report_tls(target[0] ? arg : NULL, NULL, NULL);
		printf("\nweft's Go-specific probes do not apply to it; nothing more to report.\n");
		go_elf_close(ge);
		return 0;
	}
	kv("language", "Go");
	if (ge->go_version)
		kv("go version", "%s (from %s)", ge->go_version,
		   ge->bi.go_version ? "build info" : "runtime.buildVersion");
	else
		kv("go version", "unknown (no build info, no runtime.buildVersion)");
	if (ge->bi.present) {
		kv("module", "%s %s", ge->bi.main.path ? ge->bi.main.path : "(none)",
		   ge->bi.main.version ? ge->bi.main.version : "");
		if (ge->bi.path && (!ge->bi.main.path || strcmp(ge->bi.path, ge->bi.main.path)))
			kv("main package", "%s", ge->bi.path);
		kv("dependencies", "%zu", ge->bi.n_deps);
		for (size_t i = 0; i < ge->bi.n_deps; i++)
			print_module("                   ", &ge->bi.deps[i]);
		bool first = true;
		for (size_t i = 0; i < ge->bi.n_settings; i++) {
			if (!interesting_setting(ge->bi.settings[i]))
				continue;
			if (first)
				printf("  %-*s", KEYW, "build");
			printf(" %s", ge->bi.settings[i]);
			first = false;
		}
		if (!first)
			putchar('\n');
		kv("build info", "%s format", ge->bi.inline_fmt ? "go1.18+ inline" : "pre-go1.18 pointer");
		char cut[256];
		if (go_buildinfo_cut(&ge->bi, cut, sizeof(cut)))
			kv("", "%s", cut);
	} else {
		kv("build info", "none (Go before 1.13, or stripped)");
	}
	kv(".symtab", "%s", ge->has_symtab ? "yes" : "no (stripped: -ldflags=-s)");
	kv("DWARF", "%s", ge->has_dwarf ? "yes" : "no (stripped: -ldflags=-w); offsets come from "
					      "weft's table");
	int prc = go_elf_load_pclntab(ge);
	if (prc == 0)
		kv(".gopclntab", "yes, %s format", go_elf_pclntab_format(ge));
	else if (prc == -ENODATA)
		kv(".gopclntab", "no");
	else
		kv(".gopclntab", "UNUSABLE: %s", ge->err);
	uint64_t allgs;
	enum go_sym_source asrc;
	if (go_elf_find_allgs(ge, &allgs, &asrc) == 0)
		kv("runtime.allgs", "0x%llx (%s%s)%s", (unsigned long long)allgs,
		   go_sym_source_name(asrc), asrc == GO_SYM_DISASM ? " of runtime.allgadd" : "",
		   ge->type == ET_DYN ? ", link-time address: add the load bias" : "");
	else
		kv("runtime.allgs", "missing: %s", ge->err);

	int resolved, known;
	report_functions(ge, &resolved);
	struct go_offsets o;
	go_offsets_resolve(ge, &o);
	report_offsets(&o, &known);
	printf("\n");
	report_goroutine_creation(ge, &o);
	report_grpc(ge);
	report_tls(target[0] ? arg : NULL, ge, &o);
	printf("\nsummary: %d/%d functions resolved, %d/%d offsets known\n", resolved,
	       GO_PROBE_NFUNCS, known, (int)GO_FIELD__COUNT);
	go_elf_close(ge);
	return 0;
}
