/* Helpers the Go ELF readers (goelf.c, gobuildinfo.c) share; not for
 * other callers. */
#ifndef WEFT_GOELF_INTERNAL_H
#define WEFT_GOELF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "goelf.h"

#define BUILDINFO_MAGIC "\xff Go buildinf:"
#define BUILDINFO_MAGIC_LEN 14

/* Sets ge->err to the formatted message; returns rc. */
__attribute__((format(printf, 3, 4))) int go_elf_fail(struct go_elf *ge, int rc, const char *fmt, ...);
/* An n-byte unsigned integer at p, big-endian if be. */
uint64_t go_elf_rd(const uint8_t *p, size_t n, bool be);
/* A Go string header (pointer, length) at vaddr: its bytes in the file. */
int go_elf_read_gostring(struct go_elf *ge, uint64_t vaddr, size_t ptrsize, bool be, const char **s, size_t *n);

#endif
