/* Go executable analysis: ELF layout, Go build info (.go.buildinfo), function
 * symbols (.symtab, else .gopclntab) and virtual address -> file offset
 * conversion for uprobes. Every byte read from the binary is bounds-checked:
 * a hostile or corrupt file yields an error, never a crash.
 *
 * Errors: functions return 0 or a negative errno; on error a message with
 * context is left in ge->err (go_elf_open writes to its err argument). */
#ifndef WEFT_GOELF_H
#define WEFT_GOELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct go_pclntab;

struct go_module {
	char *path;
	char *version;
	char *sum;	   /* may be NULL */
	char *repl_path;   /* "=>" replacement, or NULL */
	char *repl_version;
};

struct go_buildinfo {
	bool present;	   /* a .go.buildinfo blob was found and parsed */
	bool inline_fmt;   /* Go >= 1.18 inline strings (else pointer format) */
	char *go_version;  /* "go1.22.5"; NULL if absent */
	char *path;	   /* "path" line: main package path */
	struct go_module main; /* "mod" line; main.path NULL if absent */
	struct go_module *deps;
	size_t n_deps;
	char **settings;   /* "build" lines: "key=value" */
	size_t n_settings;
	/* What was not read (go_buildinfo_cut): a hostile binary's build info
	 * must not cost the agent more than these limits. */
	size_t deps_cut, settings_cut; /* "dep"/"build" lines over the count limits */
	uint64_t bytes_cut;	       /* bytes of module info (and version) over the byte limits */
};

#define GO_BUILDINFO_MAX_DEPS 4096u	   /* real programs: up to a few hundred */
#define GO_BUILDINFO_MAX_SETTINGS 256u	   /* real programs: about 15 */
#define GO_BUILDINFO_MAX_BYTES (1u << 20) /* of module information */
#define GO_BUILDINFO_MAX_VERSION 128u	   /* bytes of the Go version */

struct go_load {
	uint64_t vaddr, memsz, offset, filesz;
	uint32_t flags; /* PF_R | PF_W | PF_X */
};

struct go_range {
	bool found;
	uint64_t addr, offset, size; /* addr is 0 for a range found by scan only */
};

enum go_sym_source {
	GO_SYM_NONE = 0,
	GO_SYM_SYMTAB,	/* .symtab */
	GO_SYM_PCLNTAB, /* .gopclntab function table */
	GO_SYM_DISASM,	/* derived from the disassembly of a function that uses it */
};

struct go_func {
	uint64_t addr;	 /* virtual address of the entry */
	uint64_t size;	 /* bytes (pclntab: up to the next function) */
	uint64_t offset; /* file offset of the entry, for uprobes */
	enum go_sym_source source;
};

struct go_elf {
	char path[4096];
	const uint8_t *data; /* whole file, read into memory (never mapped) */
	size_t size;
	void *elf;	     /* Elf * (libelf) */

	bool is64, big_endian;
	uint16_t machine; /* EM_* */
	uint16_t type;	  /* ET_EXEC / ET_DYN */
	struct go_load *loads;
	size_t n_loads;

	bool has_symtab; /* .symtab with entries */
	bool has_dwarf;	 /* .debug_info or .zdebug_info */
	bool is_go;	 /* build info or a pclntab was found */

	struct go_buildinfo bi;
	const char *go_version; /* bi.go_version, else runtime.buildVersion; or NULL */
	char *go_version_sym;	/* owned copy when read from runtime.buildVersion */

	struct go_range text;	   /* .text section */
	struct go_range pclntab;   /* .gopclntab (or found by magic scan) */
	struct go_range buildinfo; /* .go.buildinfo (or found by magic scan) */
	struct go_pclntab *pcln;   /* parsed lazily; NULL if absent/corrupt */
	int pcln_err;		   /* result of the parse attempt, 0 = ok/not tried */
	bool pcln_tried;
	char pcln_msg[512];

	char err[512];
};

/* The Go functions weft needs (a uprobe on persistConn.roundTrip's entry;
 * for Go < 1.21, a uprobe on newproc.func1's CALL runqput, or else on every
 * RET of newproc1; allgadd's code is only read, to locate runtime.allgs);
 * `weft inspect` reports each of them. */
#define GO_PROBE_NFUNCS 7
extern const char *const go_probe_funcs[GO_PROBE_NFUNCS];

/* Opens and analyses an ELF file: program headers, sections, build info.
 * A non-Go ELF opens fine (ge->is_go false). Errors: -ENOENT, -EACCES (as
 * from open), -ENOEXEC (not ELF / truncated / corrupt headers), -ENOMEM. */
int go_elf_open(const char *path, struct go_elf **out, char *err, size_t errlen);

/* Largest file analysed (-EFBIG above): the file is read into memory. */
#define GO_ELF_MAX_SIZE (512ull << 20)

/* The same on an open file (not closed; name is for messages). The file is
 * read with pread, never mapped: truncating it meanwhile is an error, not a
 * SIGBUS. Anything but a regular file is refused before reading. */
int go_elf_open_fd(int fd, const char *name, struct go_elf **out, char *err, size_t errlen);

/* The same on a copy of size bytes at data (fuzzing, tests). */
int go_elf_open_mem(const uint8_t *data, size_t size, const char *name, struct go_elf **out, char *err,
		    size_t errlen);
void go_elf_close(struct go_elf *ge);

/* "amd64", "arm64", "386", ... from the ELF machine; "unknown" otherwise. */
const char *go_elf_goarch(const struct go_elf *ge);

/* Virtual address -> file offset via PT_LOAD headers. -ERANGE if the address
 * is in no file-backed part of a loadable segment. */
int go_elf_vaddr_to_offset(const struct go_elf *ge, uint64_t vaddr, uint64_t *offset);

/* Pointer to len bytes of the file at a virtual address / file offset, or
 * NULL if any of it is outside the file. */
const uint8_t *go_elf_at_vaddr(const struct go_elf *ge, uint64_t vaddr, uint64_t len);
const uint8_t *go_elf_at_offset(const struct go_elf *ge, uint64_t offset, uint64_t len);

/* Looks a function up by its Go symbol name ("net/http.(*Transport).roundTrip"):
 * .symtab first, then .gopclntab. -ENOENT if no table has it, -ENODATA if the
 * binary has neither table, -EINVAL for a corrupt table (message in ge->err). */
int go_elf_find_func(struct go_elf *ge, const char *name, struct go_func *fn);

/* The same, restricted to one source (for cross-checks and tests). */
int go_elf_find_func_in(struct go_elf *ge, const char *name, enum go_sym_source src,
			struct go_func *fn);

/* Link-time virtual address of the Go runtime's global runtime.allgs, the
 * []*g slice header {ptr, len, cap} (3 words: 24 bytes on 64-bit) listing every
 * goroutine's g. Sources, in order:
 *   GO_SYM_SYMTAB  the data symbol runtime.allgs in .symtab;
 *   GO_SYM_DISASM  stripped binaries: runtime.allgadd (found through the
 *                  pclntab) does `allgs = append(allgs, gp)`, so its code
 *                  loads and stores all three words of the header. Among the
 *                  PC-relative data references of its disassembly, the
 *                  address X in a writable segment with memory accesses at X,
 *                  X+8 and X+16 is allgs (see go_elf_find_allgs_in).
 * The address is not relocated: for a PIE (ge->type == ET_DYN) the caller
 * adds the load bias, the runtime address of the first PT_LOAD minus its
 * p_vaddr (page-aligned). That p_vaddr is not always 0: Go's own linker links
 * PIEs at 0x400000.
 * src may be NULL. Errors: -ENOENT (no symbol, no runtime.allgadd, or no slice
 * header in its code), -ENOTSUP (stripped, and no disassembler for the
 * machine: x86-64 and arm64 only), -EINVAL (corrupt: the symbol or the
 * function lies outside the file's segments), -ENOMEM; message in ge->err. */
int go_elf_find_allgs(struct go_elf *ge, uint64_t *vaddr, enum go_sym_source *src);

/* The same from one source only, GO_SYM_SYMTAB or GO_SYM_DISASM (which also
 * works on unstripped binaries: cross-checks and tests). The disassembly
 * candidate must be unique: the one whose three words have the most memory
 * accesses, with no tie. */
int go_elf_find_allgs_in(struct go_elf *ge, enum go_sym_source src, uint64_t *vaddr);

/* Parses the pclntab now if not yet done: 0, -ENODATA (none), -EINVAL. */
int go_elf_load_pclntab(struct go_elf *ge);

/* "go1.18+", "go1.16", ... of the loaded pclntab, or NULL. */
const char *go_elf_pclntab_format(const struct go_elf *ge);

/* Parses the .go.buildinfo blob of `size` bytes at file offset `off` (both
 * the pre-1.18 pointer format and the 1.18+ inline format) into ge->bi.
 * Called by go_elf_open; exposed for tests. */
int go_buildinfo_parse(struct go_elf *ge, uint64_t off, uint64_t size);
void go_buildinfo_free(struct go_buildinfo *bi);
/* 1 and a message in buf if the build info was cut to the limits above, else 0 ("" in buf). */
int go_buildinfo_cut(const struct go_buildinfo *bi, char *buf, size_t len);

/* "go1.21.5" -> major 1, minor 21, patch 5 (0 if absent); also accepts
 * "go1.22rc1", "devel go1.23-abcd". -EINVAL if no go1.N is found. */
int go_version_parse(const char *s, int *major, int *minor, int *patch);

const char *go_sym_source_name(enum go_sym_source s);

#endif
