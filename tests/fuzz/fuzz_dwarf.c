/* libFuzzer harness for the DWARF reader alone (user/golang/godwarf.c, on
 * elfutils libdw): the input is split into .debug_abbrev, .debug_info and
 * .debug_str (two little-endian 16-bit lengths first, the rest is
 * .debug_str), wrapped in a minimal ELF64 file in memory, and searched for
 * the struct fields weft asks Go binaries for. fuzz_go reaches DWARF only
 * through whole ELF files; here every mutation lands in the DWARF. Seeds:
 * tests/fuzz/make_dwarf_seeds. Built and run by tests/fuzz/run_dwarf. */
#include <elf.h>
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "godwarf.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

static const char shstr[] = "\0.shstrtab\0.debug_abbrev\0.debug_info\0.debug_str";
enum { N_SHSTRTAB = 1, N_ABBREV = 11, N_INFO = 25, N_STR = 37 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int init;
	if (!init) {
		elf_version(EV_CURRENT);
		init = 1;
	}
	if (size < 4)
		return 0;
	size_t la = data[0] | data[1] << 8, li = data[2] | data[3] << 8;
	const uint8_t *p = data + 4;
	size_t rest = size - 4;
	la = la > rest ? rest : la;
	li = li > rest - la ? rest - la : li;
	size_t ls = rest - la - li;

	const uint8_t *secs[4] = { (const uint8_t *)shstr, p, p + la, p + la + li };
	size_t lens[4] = { sizeof(shstr), la, li, ls }, names[4] = { N_SHSTRTAB, N_ABBREV, N_INFO, N_STR };
	size_t off = sizeof(Elf64_Ehdr), offs[4];
	for (int i = 0; i < 4; i++) {
		offs[i] = off;
		off += lens[i];
	}
	off = (off + 7) & ~(size_t)7;
	size_t total = off + 5 * sizeof(Elf64_Shdr);
	uint8_t *f = calloc(1, total);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_ehsize = sizeof(Elf64_Ehdr);
	eh->e_shoff = off;
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 5;
	eh->e_shstrndx = 1;
	Elf64_Shdr *sh = (Elf64_Shdr *)(f + off);
	for (int i = 0; i < 4; i++) {
		memcpy(f + offs[i], secs[i], lens[i]);
		sh[i + 1] = (Elf64_Shdr){ .sh_name = names[i], .sh_type = i ? SHT_PROGBITS : SHT_STRTAB,
					  .sh_offset = offs[i], .sh_size = lens[i], .sh_addralign = 1 };
	}

	Elf *elf = elf_memory((char *)f, total);
	CHECK(elf);
	struct go_dwarf_field fields[] = {
		{ "runtime.g", "goid" },	  { "runtime.g", "m" },
		{ "net/http.Request", "ctx" },	  { "net/http.Request", "Method" },
		{ "internal/poll.FD", "Sysfd" }, { "net.TCPConn", "conn" },
		{ "point", "x" },		  { "point", "y" },
	};
	char err[256];
	int ret = go_dwarf_struct_offsets(elf, fields, 8, err, sizeof(err));
	if (getenv("FUZZ_DWARF_SHOW")) /* what a seed yields */
		fprintf(stderr, "fuzz_dwarf: %d fields found%s%s\n", ret, ret < 0 ? ": " : "", ret < 0 ? err : "");
	CHECK(ret >= -ENODATA && ret <= 8);
	for (int i = 0; ret >= 0 && i < 8; i++)
		CHECK(fields[i].offset >= -1 && fields[i].offset <= INT32_MAX &&
		      (fields[i].offset < 0 || fields[i].struct_found));
	if (ret < 0)
		CHECK(memchr(err, '\0', sizeof(err)) && err[0]);
	elf_end(elf);
	free(f);
	return 0;
}
