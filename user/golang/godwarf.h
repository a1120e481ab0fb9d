/* Struct field offsets from a binary's DWARF (elfutils libdw). Go names its
 * struct types by package path: "runtime.g", "net/http.Request",
 * "internal/poll.FD"; embedded fields are members named after their type
 * ("conn" in net.TCPConn). */
#ifndef WEFT_GODWARF_H
#define WEFT_GODWARF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct go_dwarf_field {
	const char *strct; /* in: "net/http.Request" */
	const char *field; /* in: "Method" */
	int64_t offset;	   /* out: byte offset, or -1 if not found */
	bool struct_found; /* out: the struct type exists in the DWARF */
};

/* Fills offset/struct_found for each field, in one pass over the DWARF of the
 * ELF file elf (an Elf *: the file in memory, never mapped). Returns the
 * number of fields found (>= 0), -ENODATA if the file has no DWARF, -EINVAL
 * on corrupt DWARF (message in err). */
int go_dwarf_struct_offsets(void *elf, struct go_dwarf_field *fields, size_t n, char *err,
			    size_t errlen);

#endif
