/* Go's pclntab function table (.gopclntab), enough to map function names to
 * entry addresses and sizes in binaries without .symtab (-ldflags='-s -w').
 * Formats by header magic:
 *   0xfffffffb  Go 1.2 - 1.15
 *   0xfffffffa  Go 1.16 - 1.17
 *   0xfffffff0  Go 1.18 - 1.19
 *   0xfffffff1  Go 1.20 and later
 * The table is a read-only view of caller-owned bytes; every access is
 * bounds-checked against them. */
#ifndef WEFT_GOPCLNTAB_H
#define WEFT_GOPCLNTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum go_pcln_version {
	GO_PCLN_UNKNOWN = 0,
	GO_PCLN_12,  /* 1.2 - 1.15 */
	GO_PCLN_116, /* 1.16 - 1.17 */
	GO_PCLN_118, /* 1.18 - 1.19 */
	GO_PCLN_120, /* 1.20+ */
};

#define GO_PCLN_MAGIC_12 0xfffffffbu
#define GO_PCLN_MAGIC_116 0xfffffffau
#define GO_PCLN_MAGIC_118 0xfffffff0u
#define GO_PCLN_MAGIC_120 0xfffffff1u

/* Longest function name read (Go's longest real ones, generic instantiations,
 * are a few KiB): a name without its NUL within this many bytes is corrupt. */
#define GO_PCLN_NAME_MAX 16384

struct go_pclntab {
	const uint8_t *data;
	size_t size;
	bool big_endian;
	enum go_pcln_version version;
	uint8_t quantum, ptrsize;
	uint64_t nfunc;
	uint64_t text_start;	   /* 1.18+: entries are offsets from it */
	uint64_t text_start_field; /* file offset within data of that header field */
	const uint8_t *functab;	   /* nfunc pairs + final end entry */
	size_t functab_size;
	size_t field_size;	   /* size of one functab field: 4 or ptrsize */
	const uint8_t *funcdata;   /* base that funcoff is relative to */
	size_t funcdata_size;
	const uint8_t *funcnames;  /* base that nameoff is relative to */
	size_t funcnames_size;	   /* up to the next table (1.16+), else the section's end */
};

struct go_pcln_func {
	uint64_t entry, end;
	const char *name; /* NUL-terminated, inside the table */
};

/* Validates the header and locates the sub-tables. For 1.18+ the header's
 * textStart is read; the caller may override t->text_start afterwards (PIE
 * binaries keep it in a relocation). -EINVAL with a message on failure. */
int go_pclntab_parse(const uint8_t *data, size_t size, struct go_pclntab *t, char *err,
		     size_t errlen);

/* True if data looks like a pclntab header (magic, pad, quantum, ptrsize). */
bool go_pclntab_header_ok(const uint8_t *data, size_t size);

/* Function i (0 <= i < nfunc). -EINVAL if that entry is corrupt. */
int go_pclntab_func(const struct go_pclntab *t, uint64_t i, struct go_pcln_func *f);

/* Finds a function by exact name, comparing at most strlen(name) + 1 bytes
 * per function (linear in the table). -ENOENT if absent, -EINVAL if the
 * table is corrupt where it matters (or name is over GO_PCLN_NAME_MAX). */
int go_pclntab_find(const struct go_pclntab *t, const char *name, struct go_pcln_func *f);

const char *go_pclntab_version_name(enum go_pcln_version v);

#endif
