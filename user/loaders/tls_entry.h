/* Where an entry uprobe on an OpenSSL function costs one trap (x86-64). */
#ifndef WEFT_TLS_ENTRY_H
#define WEFT_TLS_ENTRY_H

#include <stddef.h>
#include <stdint.h>

/* code: a function's len bytes. The offset of its first
 * instruction the kernel emulates for a uprobe (a relative CALL, JMP or
 * conditional jump) if no instruction before it branches or writes an
 * argument register (rdi, rsi, rdx, rcx), so a probe there reads the
 * arguments the function was called with, and no direct branch of the
 * function leads back to it or before it (passed once per call); else 0 (the entry, whose
 * instruction, typically `sub rsp, N`, is single-stepped: a second trap). */
uint32_t tls_entry_probe_offset(const uint8_t *code, size_t len);

#endif
