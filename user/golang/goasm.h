/* Disassembly of Go functions with capstone, x86-64 and arm64.
 *
 * Return points, for entry-only uprobes: Go moves goroutine stacks, which
 * breaks uretprobes (they overwrite the return address on the stack); weft
 * instead places a uprobe on every RET instruction.
 *
 * Data references: the absolute addresses a function's code reads, writes or
 * takes the address of, to locate Go globals in stripped binaries
 * (go_elf_find_allgs). */
#ifndef WEFT_GOASM_H
#define WEFT_GOASM_H

#include <stdbool.h>
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

/* Where an entry uprobe on fn costs least: on x86-64, an instruction of
 * Go's prologue the kernel emulates, instead of the first one (a compare,
 * which it single-steps out of line: a second trap, which on a VM costs
 * several times the first). That is the PUSH RBP after the stack bound
 * check (Go >= 1.21), else the bound check's conditional jump (older Go
 * frames start with SUB RSP; a goroutine whose stack must grow passes that
 * jump twice, so a probe there must be idempotent). The registers a probe
 * reads there (arguments, R14) still hold their entry values: the check
 * writes none of them. Falls back to the entry itself (other prologues,
 * arm64). *offset: a file offset. 0, or -EINVAL (function outside the file;
 * message in ge->err), -ENOMEM. */
int go_func_entry_probe_offset(struct go_elf *ge, const struct go_func *fn, uint64_t *offset);

/* The same on raw code at addr: *probe_addr is an address in it. */
int go_asm_entry_probe_addr(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
			    uint64_t *probe_addr);

/* Addresses of every direct call (x86-64 CALL rel32, arm64 BL) in code at
 * addr whose target is target, in address order, in a malloc'd array the
 * caller frees. A call is a place a probe costs one trap: the kernel
 * emulates it instead of single-stepping it. Returns the count (>= 0; *n is
 * set too), or -ENOTSUP (machine), -ENOMEM. */
int go_asm_find_calls(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
		      uint64_t target, uint64_t **addrs, size_t *n);

/* The same in fn, calls to callee (both from go_elf_find_func): file
 * offsets. -EINVAL: a function outside the file (message in ge->err). */
int go_func_call_offsets(struct go_elf *ge, const struct go_func *fn, const struct go_func *callee,
			 uint64_t **offsets, size_t *n);

/* Where goroutine creation is watched with one trap the kernel emulates
 * (Go < 1.21 has no g.parentGoid): the one CALL runtime.runqput in
 * runtime.newproc.func1, newproc's system-stack closure, which queues the g
 * newproc1 just made (runqput's second argument) before it can run. The
 * alternative, every RET of newproc1, is single-stepped: two traps.
 * 0 with *offset (a file offset), or -ENOENT (a function is missing),
 * -ESRCH (not exactly one such call), -EINVAL, -ENOTSUP, -ENOMEM; the
 * message in ge->err. */
int go_newproc_runqput_call(struct go_elf *ge, uint64_t *offset);

/* A PC-relative data reference: x86-64 [rip + disp]; arm64 ADRP Xn followed
 * at once by a load/store [Xn, #lo12] or by ADD Xd, Xn, #lo12 (an address;
 * a load/store [Xd, #off] right after it is an access too), the sequences Go's
 * assembler emits. Addresses are link-time virtual addresses. */
struct go_asm_ref {
	uint64_t target; /* the address referenced */
	uint64_t insn;	 /* address of the instruction that uses it */
	bool mem;	 /* a memory access (load, store, compare, xchg, ...); false when
			  * only the address is computed (x86 LEA, arm64 ADRP+ADD) */
};

/* Every data reference in code at addr, in address order, in a malloc'd array
 * the caller frees. Returns the count (>= 0; *n is set too), or -ENOTSUP
 * (machine), -ENOMEM. Undecodable bytes are skipped. */
int go_asm_data_refs(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
		     struct go_asm_ref **refs, size_t *n);

/* The same for fn (from go_elf_find_func): the count, or -ENOTSUP, -EINVAL
 * (function outside the file / too big), -ENOMEM; message in ge->err. */
int go_func_data_refs(struct go_elf *ge, const struct go_func *fn, struct go_asm_ref **refs,
		      size_t *n);

#endif
