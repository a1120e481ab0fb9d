/* Return points of Go functions, for entry-only uprobes. Go moves goroutine
 * stacks, which breaks uretprobes (they overwrite the return address on the
 * stack); weft instead places a uprobe on every RET instruction, found by
 * disassembling the function with capstone. x86-64 and arm64. */
#ifndef WEFT_GOASM_H
#define WEFT_GOASM_H

#include <stddef.h>
#include <stdint.h>

#include "goelf.h"

/* File offsets of every RET in fn (from go_elf_find_func), in address order,
 * in a malloc'd array the caller frees. Returns the count (>= 0; *n is set
 * too), or -ENOTSUP (machine), -EINVAL (function outside the file / too big;
 * message in ge->err), -ENOMEM. */
int go_func_ret_offsets(struct go_elf *ge, const struct go_func *fn, uint64_t **offsets,
			size_t *n);

/* The same on raw code: addresses (addr + offset in code) of every RET.
 * machine is an ELF EM_* value. */
int go_asm_find_rets(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
		     uint64_t **addrs, size_t *n);

#endif
