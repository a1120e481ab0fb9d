/* Where a process's OpenSSL is: the libssl it has mapped, or the one its
 * root filesystem holds (for a process that loads it later: Python's ssl
 * module on first use), and which of the functions weft probes it exports.
 * Pure lookups in /proc and ELF files: the TLS loader and `weft inspect`
 * share them. */
#ifndef WEFT_TLS_LIB_H
#define WEFT_TLS_LIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "abi/tls.h" /* enum tls_fn */

/* The functions whose entries weft probes (bpf/uprobes/tls.bpf.c).
 * SSL_set_fd ties an SSL* to its socket before its first write. */
extern const char *const tls_fn_names[TLS_FN_N];

struct tls_lib {
	char path[512];	/* as the agent opens it (/proc/PID/root/...) */
	char shown[256];	/* as the process names it */
	bool mapped;		/* in /proc/PID/maps now (else: where it would load from) */
	bool in_exe;		/* linked into the executable itself (static OpenSSL/BoringSSL) */
	char version[64];	/* "OpenSSL 3.0.22 25 Aug 2026", "BoringSSL", or "" (unknown) */
	bool has[TLS_FN_N];	/* exported by the file */
	uint64_t fn_off[TLS_FN_N]; /* where each function starts in the file */
	uint32_t at[TLS_FN_N];	/* entry probe's offset in the function (tls_entry.h; reads: 0,
				 * where their return probe must be anyway) */
	uint64_t dev, ino;	/* the file: one library, whatever path names it */
};

/* The process's OpenSSL: the libssl it maps, else the functions its
 * executable defines (.dynsym or .symtab: OpenSSL or BoringSSL linked in),
 * else the libssl its root holds where Debian, Fedora or Alpine put it
 * (loaded later). 0 and *out filled, -ENOENT (none; also for an executable
 * that carries a TLS library it cannot probe: tls_lib_exe_unprobeable
 * says why), or -errno. */
int tls_lib_find(uint32_t pid, struct tls_lib *out);
/* The executable of pid carries OpenSSL or BoringSSL (its source file
 * names in .rodata) but none of the functions weft probes by name (no
 * .symtab: stripped): 0 and the reason in why ("OpenSSL linked into /usr/bin/x:
 * not probeable: stripped (...)"), or -ENOENT (no such library, or it has the symbols),
 * -errno. */
int tls_lib_exe_unprobeable(uint32_t pid, char *why, size_t n);
/* A TLS library weft does not read (GnuTLS, NSS, wolfSSL, mbed TLS) that
 * pid maps: 0 and "GnuTLS (/usr/lib/.../libgnutls.so.30)" in out, or
 * -ENOENT (none), -errno. */
int tls_lib_other(uint32_t pid, char *out, size_t n);
/* The same two, reading a maps file already open (tests/fuzz/fuzz_tls.c:
 * the lines are whatever the process mapped, named as it likes). */
int tls_lib_find_in(FILE *maps, uint32_t pid, struct tls_lib *out);
int tls_lib_other_in(FILE *maps, char *out, size_t n);
/* Which of tls_fn_names path's dynamic or static symbol table defines:
 * the count, or -errno. fn_off (NULL: not wanted): where each one starts in
 * the file (0: not in a loaded segment); at (NULL: not wanted): where each
 * one's entry probe goes, relative to the function. */
int tls_lib_symbols(const char *path, bool has[TLS_FN_N], uint64_t fn_off[TLS_FN_N], uint32_t at[TLS_FN_N]);

#endif
