/* libFuzzer harness for the Go binary readers: every byte of an executable
 * is chosen by whoever can start a process under `weft run`. The first
 * input byte picks the reader, the rest is its input:
 *   0  a whole ELF file: open, look every probed function up (.symtab,
 *      .gopclntab), runtime.allgs (disassembly), struct offsets (DWARF,
 *      table), build info limits
 *   1  a raw .gopclntab: parse, read functions, find names
 *   2  a .go.buildinfo blob (both formats) in a one-segment file
 *   3  machine code for the disassembler: x86-64 or arm64 (next byte)
 * What a reader returns is checked to lie within its input. Built and run
 * by tests/fuzz/run_go. */
#include <elf.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "go_offsets.h"
#include "goasm.h"
#include "goelf.h"
#include "gogrpc.h"
#include "gopclntab.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static void whole_elf(const uint8_t *d, size_t n)
{
	struct go_elf *ge;
	char err[512];
	if (go_elf_open_mem(d, n, "fuzz", &ge, err, sizeof(err))) {
		CHECK(err[0]); /* every refusal says why */
		return;
	}
	struct go_func fn;
	for (size_t i = 0; i < GO_PROBE_NFUNCS; i++) {
		if (go_elf_find_func(ge, go_probe_funcs[i], &fn) == 0) {
			CHECK(fn.offset < ge->size);
			uint64_t *offs = NULL, at;
			size_t k = 0;
			if (go_func_ret_offsets(ge, &fn, &offs, &k) == 0)
				for (size_t j = 0; j < k; j++)
					CHECK(offs[j] >= fn.offset && offs[j] < fn.offset + fn.size);
			free(offs);
			(void)go_func_entry_probe_offset(ge, &fn, &at);
		}
	}
	uint64_t allgs, call;
	(void)go_elf_find_allgs(ge, &allgs, NULL);
	(void)go_newproc_runqput_call(ge, &call);
	CHECK(ge->bi.n_deps <= GO_BUILDINFO_MAX_DEPS && ge->bi.n_settings <= GO_BUILDINFO_MAX_SETTINGS);
	char cut[256];
	(void)go_buildinfo_cut(&ge->bi, cut, sizeof(cut));
	struct go_offsets o;
	(void)go_offsets_resolve(ge, &o);
	struct go_grpc g;
	(void)go_grpc_analyse(ge, &g); /* DWARF offsets and NewStream's RETs, if it is there */
	char gv[32];
	(void)go_grpc_version_scan(d, n, gv, sizeof(gv)); /* whether or not */
	go_grpc_free(&g);
	go_elf_close(ge);
}

static void raw_pclntab(const uint8_t *d, size_t n)
{
	struct go_pclntab t;
	struct go_pcln_func f;
	char err[256];
	if (go_pclntab_parse(d, n, &t, err, sizeof(err)))
		return;
	for (uint64_t i = 0; i < t.nfunc && i < 4096; i++) {
		if (go_pclntab_func(&t, i, &f))
			continue;
		const uint8_t *name = (const uint8_t *)f.name;
		CHECK(name >= d && name < d + n);
		CHECK(memchr(name, 0, (size_t)(d + n - name)));
		CHECK(f.end > f.entry);
	}
	(void)go_pclntab_find(&t, "runtime.newproc1", &f);
	/* a name taken from the input itself */
	char want[64];
	size_t k = n < sizeof(want) - 1 ? n : sizeof(want) - 1;
	memcpy(want, d, k);
	want[k] = 0;
	if (go_pclntab_find(&t, want, &f) == 0)
		CHECK(!strcmp(f.name, want));
}

static void buildinfo(const uint8_t *d, size_t n)
{
	struct go_load load = {.vaddr = 0x1000, .memsz = n, .offset = 0, .filesz = n, .flags = PF_R | PF_W};
	struct go_elf *ge = calloc(1, sizeof(*ge));
	if (!ge)
		return;
	ge->data = d;
	ge->size = n;
	ge->loads = &load;
	ge->n_loads = 1;
	ge->is64 = true;
	if (go_buildinfo_parse(ge, 0, n) == 0) {
		CHECK(ge->bi.n_deps <= GO_BUILDINFO_MAX_DEPS);
		CHECK(ge->bi.n_settings <= GO_BUILDINFO_MAX_SETTINGS);
		CHECK(!ge->bi.go_version || strlen(ge->bi.go_version) <= GO_BUILDINFO_MAX_VERSION);
	}
	go_buildinfo_free(&ge->bi);
	free(ge);
}

static void machine_code(const uint8_t *d, size_t n)
{
	if (n < 1)
		return;
	uint16_t m = d[0] & 1 ? EM_AARCH64 : EM_X86_64;
	const uint8_t *code = d + 1;
	size_t len = n - 1;
	const uint64_t addr = 0x401000;
	uint64_t *a = NULL, probe;
	size_t k = 0;
	if (go_asm_find_rets(m, code, len, addr, &a, &k) == 0)
		for (size_t i = 0; i < k; i++)
			CHECK(a[i] >= addr && a[i] < addr + len);
	free(a);
	a = NULL;
	if (go_asm_find_calls(m, code, len, addr, addr + 0x40, &a, &k) == 0)
		for (size_t i = 0; i < k; i++)
			CHECK(a[i] >= addr && a[i] < addr + len);
	free(a);
	if (go_asm_entry_probe_addr(m, code, len, addr, &probe) == 0)
		CHECK(probe == addr || (probe > addr && probe < addr + len)); /* the entry itself, or in the code */
	struct go_asm_ref *refs = NULL;
	if (go_asm_data_refs(m, code, len, addr, &refs, &k) == 0)
		for (size_t i = 0; i < k; i++)
			CHECK(refs[i].insn >= addr && refs[i].insn < addr + len);
	free(refs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const uint8_t *d = data + 1;
	size_t n = size - 1;
	switch (data[0] & 3) {
	case 0: whole_elf(d, n); break;
	case 1: raw_pclntab(d, n); break;
	case 2: buildinfo(d, n); break;
	case 3: machine_code(d, n); break;
	}
	return 0;
}
