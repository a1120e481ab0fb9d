/* libFuzzer harness for the TLS plumbing's decoders (user/loaders/tls_lib.c,
 * tls_entry.c): what weft, as root, reads to find and probe a process's
 * OpenSSL. A traced process chooses the files it maps (any name, any
 * bytes), so each of these gets any input. The first byte picks:
 *   0: a function's code -> tls_entry_probe_offset (capstone): the offset
 *      is within the code and the same on a second call;
 *   1: an ELF file -> tls_lib_symbols (libelf, the probed functions and
 *      their probe offsets): the count is the functions marked found, a
 *      read's offset 0, an offset only for a function found;
 *   2: a /proc/PID/maps text -> tls_lib_find_in (for a PID that cannot
 *      exist, so that no real file is read: the lines' parsing only);
 *   3: the same -> tls_lib_other_in: a NUL-terminated name within bounds.
 * Built and run by tests/fuzz/run_tls. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tls_entry.h"
#include "tls_lib.h"

#define CHECK(cond)              \
	do {                     \
		if (!(cond))     \
			abort(); \
	} while (0)

/* Above PID_MAX_LIMIT (4,194,304): /proc/NOPID/root/... never exists. */
#define NOPID 4194305u

static void entry(const uint8_t *code, size_t n)
{
	uint32_t at = tls_entry_probe_offset(code, n);
	CHECK(at == 0 || at < n);
	CHECK(tls_entry_probe_offset(code, n) == at);
}

static void symbols(const uint8_t *elf, size_t n)
{
	bool has[TLS_FN_N];
	uint32_t at[TLS_FN_N];
	uint64_t fn_off[TLS_FN_N];
	char path[64];
	int fd = memfd_create("fuzz-tls", MFD_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(write(fd, elf, n) == (ssize_t)n);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	int found = tls_lib_symbols(path, has, fn_off, at);
	if (found >= 0) {
		int marked = 0;
		for (int k = 0; k < TLS_FN_N; k++) {
			marked += has[k];
			CHECK(has[k] || (at[k] == 0 && fn_off[k] == 0));
			CHECK(at[k] < 65536);
		}
		CHECK(found == marked);
		CHECK(at[TLS_FN_READ] == 0 && at[TLS_FN_READ_EX] == 0);
		/* without offsets wanted: the same functions */
		bool has2[TLS_FN_N];
		CHECK(tls_lib_symbols(path, has2, NULL, NULL) == found);
		CHECK(!memcmp(has, has2, sizeof(has)));
	}
	close(fd);
}

static void maps(const uint8_t *text, size_t n, int other)
{
	char *buf = malloc(n);
	CHECK(buf);
	memcpy(buf, text, n);
	FILE *f = fmemopen(buf, n, "r");
	CHECK(f);
	if (other) {
		char out[96];
		memset(out, 0x55, sizeof(out));
		if (tls_lib_other_in(f, out, sizeof(out)) == 0)
			CHECK(memchr(out, '\0', sizeof(out)));
	} else {
		struct tls_lib lib;
		CHECK(tls_lib_find_in(f, NOPID, &lib) < 0); /* nothing can be read there */
	}
	fclose(f);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2) /* fmemopen refuses an empty buffer */
		return 0;
	switch (data[0] & 3) {
	case 0:
		entry(data + 1, size - 1);
		break;
	case 1:
		symbols(data + 1, size - 1);
		break;
	default:
		maps(data + 1, size - 1, data[0] & 1);
		break;
	}
	return 0;
}
