/* Hostile executables: files any local user can write and run under
 * `weft run`, crafted to stall or kill the analysis of Go binaries. Each
 * file is generated here: no fixture, nothing downloaded. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <malloc.h>
#include <pthread.h>
#include <signal.h>

#include <cmocka.h>

#include "gobinary.h"
#include "goelf.h"
#include "inspect.h"

static char tmpdir[PATH_MAX];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time this process used: what the lookups cost, whatever else the
 * machine runs (wall time on a loaded 2-core CI machine varied 10-fold and
 * failed the budget; the quadratic search this guards against burnt
 * seconds of CPU either way). */
static uint64_t cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); /* little-endian host (x86-64) */
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

static void tmp_path(char *buf, size_t len, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", tmpdir, name);
	assert_true(n > 0 && (size_t)n < len);
}

static void write_file(const char *path, const uint8_t *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	close(fd);
}

#define TEXT_OFF 0x1000u
#define TEXT_VADDR 0x401000u
#define PCLN_OFF 0x2000u
#define PCLN_VADDR 0x402000u
#define BI_OFF 0x1800u
#define BI_VADDR 0x601800u
#define BI_SIZE 0x100u
#define LAST_ENTRY 0xff0u
#define END_ENTRY 0xfffu

static void phdr(uint8_t *p, uint32_t flags, uint64_t off, uint64_t vaddr, uint64_t size)
{
	Elf64_Phdr ph = {.p_type = PT_LOAD, .p_flags = flags, .p_offset = off, .p_vaddr = vaddr,
			 .p_paddr = vaddr, .p_filesz = size, .p_memsz = size, .p_align = 0x1000};
	memcpy(p, &ph, sizeof(ph));
}

static void shdr(uint8_t *p, uint32_t name, uint32_t type, uint64_t addr, uint64_t off, uint64_t size)
{
	Elf64_Shdr sh = {.sh_name = name, .sh_type = type, .sh_flags = addr ? SHF_ALLOC : 0, .sh_addr = addr,
			 .sh_offset = off, .sh_size = size, .sh_addralign = 1};
	memcpy(p, &sh, sizeof(sh));
}

/* The Go 1.20 pclntab of the attack, size bytes at p: function 0 is
 * "main.a", the last is "main.z", and the names of all the others start at
 * different places of one run of 'A's that ends only at "main.z\0", the
 * section's last bytes. The header's cuOff (where the name table ends) is 0:
 * the table claims no end. A search that looks for each name's NUL reads to
 * the end of the section once per function: quadratic in the file size. */
static void craft_pclntab(uint8_t *p, size_t size)
{
	uint32_t n = (uint32_t)(size / 32);
	size_t functab = 72, funcs = functab + ((size_t)2 * n + 1) * 4;
	size_t names = funcs + (size_t)n * 8, room = size - names;
	memcpy(p, "\xf1\xff\xff\xff\0\0\x01\x08", 8);
	put64(p + 8, n);		  /* nfunc */
	put64(p + 8 + 2 * 8, TEXT_VADDR); /* textStart */
	put64(p + 8 + 3 * 8, names);	  /* funcnameOff; cuOff (word 4) stays 0 */
	put64(p + 8 + 7 * 8, functab);	  /* pclnOff: the function table */
	for (uint32_t i = 0; i < n; i++) {
		uint32_t nameoff = (uint32_t)(7 + (uint64_t)i * 2654435761u % (room - 16));
		if (i == 0)
			nameoff = 0;
		else if (i == n - 1)
			nameoff = (uint32_t)(room - 7);
		/* entries within the 4 KiB of .text; only the looked-up ones need
		 * to be ordered (main.z: LAST_ENTRY up to END_ENTRY) */
		uint32_t entry = i == n - 1 ? LAST_ENTRY : i < 0x800 ? i : 0x800;
		put32(p + functab + 8 * i, entry);				   /* entryOff */
		put32(p + functab + 8 * i + 4, (uint32_t)(funcs + 8 * i - functab)); /* funcoff */
		put32(p + funcs + 8 * i, entry);
		put32(p + funcs + 8 * i + 4, nameoff);
	}
	put32(p + functab + 8 * n, END_ENTRY); /* end entry */
	memset(p + names, 'A', room);
	memcpy(p + names, "main.a", 7);
	memcpy(p + size - 7, "main.z", 7);
}

/* A static x86-64 executable of about total bytes holding that pclntab: in
 * a .gopclntab section, or (sections false) only in a read-only segment,
 * where weft finds it by scanning. Returns the file's size; *nfunc the
 * number of functions. */
static size_t craft_elf(const char *path, size_t total, bool sections, uint32_t *nfunc)
{
	static const char shstr[] = "\0.text\0.gopclntab\0.shstrtab\0.go.buildinfo";
	size_t tail = sections ? sizeof(shstr) + 7 + 5 * sizeof(Elf64_Shdr) : 0;
	size_t pcln = (total - PCLN_OFF - tail) & ~(size_t)7;
	size_t size = PCLN_OFF + pcln + tail;
	uint8_t *buf = calloc(1, size);
	assert_non_null(buf);
	Elf64_Ehdr eh = {.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			 .e_entry = TEXT_VADDR, .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
			 .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 3, .e_shentsize = sizeof(Elf64_Shdr)};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	phdr(buf + eh.e_phoff, PF_R | PF_X, 0, TEXT_VADDR - TEXT_OFF, PCLN_OFF);
	phdr(buf + eh.e_phoff + sizeof(Elf64_Phdr), PF_R, PCLN_OFF, PCLN_VADDR, pcln);
	phdr(buf + eh.e_phoff + 2 * sizeof(Elf64_Phdr), PF_R | PF_W, BI_OFF, BI_VADDR, BI_SIZE);
	memset(buf + TEXT_OFF, 0xc3, BI_OFF - TEXT_OFF); /* RET */
	/* Go 1.18+ build info: a Go version, so that the agent goes on to
	 * look its functions up */
	memcpy(buf + BI_OFF, "\xff Go buildinf:\x08\x02", 16);
	memcpy(buf + BI_OFF + 32, "\x08go1.22.0\x00", 10);
	craft_pclntab(buf + PCLN_OFF, pcln);
	*nfunc = (uint32_t)(pcln / 32);
	if (sections) {
		size_t stroff = PCLN_OFF + pcln, shoff = (stroff + sizeof(shstr) + 7) & ~(size_t)7;
		memcpy(buf + stroff, shstr, sizeof(shstr));
		eh.e_shoff = shoff;
		eh.e_shnum = 5;
		eh.e_shstrndx = 3;
		shdr(buf + shoff + 1 * sizeof(Elf64_Shdr), 1, SHT_PROGBITS, TEXT_VADDR, TEXT_OFF, PCLN_OFF - TEXT_OFF);
		shdr(buf + shoff + 2 * sizeof(Elf64_Shdr), 7, SHT_PROGBITS, PCLN_VADDR, PCLN_OFF, pcln);
		shdr(buf + shoff + 3 * sizeof(Elf64_Shdr), 18, SHT_STRTAB, 0, stroff, sizeof(shstr));
		shdr(buf + shoff + 4 * sizeof(Elf64_Shdr), 28, SHT_PROGBITS, BI_VADDR, BI_OFF, BI_SIZE);
	}
	memcpy(buf, &eh, sizeof(eh));
	write_file(path, buf, size);
	free(buf);
	return size;
}

#define BUDGET_MS 250 /* CPU time per file; measured: a few ms (quadratic: seconds) */

static void test_pclntab_names_without_end(void **state)
{
	static const size_t sizes[] = {1 << 20, 2 << 20, 4 << 20};
	char path[PATH_MAX];
	tmp_path(path, sizeof(path), "pclntab-bomb");
	for (int sections = 1; sections >= 0; sections--) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			uint32_t nfunc;
			size_t size = craft_elf(path, sizes[i], sections, &nfunc);
			/* what `weft inspect` does: open, look up each probed function */
			uint64_t t0 = cpu_ns();
			struct go_elf *ge = NULL;
			char err[512];
			assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), 0);
			assert_true(ge->is_go);
			struct go_func fn;
			for (size_t f = 0; f < GO_PROBE_NFUNCS; f++)
				assert_int_equal(go_elf_find_func(ge, go_probe_funcs[f], &fn), -ENOENT);
			/* the whole table is searched: its first and last functions */
			assert_int_equal(go_elf_find_func(ge, "main.a", &fn), 0);
			assert_int_equal(fn.addr, TEXT_VADDR);
			assert_int_equal(go_elf_find_func(ge, "main.z", &fn), 0);
			assert_int_equal(fn.addr, TEXT_VADDR + LAST_ENTRY);
			assert_int_equal(fn.size, END_ENTRY - LAST_ENTRY);
			assert_true(nfunc >= sizes[i] / 40);
			go_elf_close(ge);
			double inspect_ms = (cpu_ns() - t0) / 1e6;

			/* what the agent's analysis does */
			struct go_binary b;
			t0 = cpu_ns();
			go_binary_analyse(path, &b);
			double agent_ms = (cpu_ns() - t0) / 1e6;
			assert_true(b.is_go);
			assert_string_equal(b.version, "go1.22.0");
			assert_false(b.roundtrip); /* looked up, not found */
			assert_int_equal(b.info.allgs, 0);
			assert_non_null(strstr(b.allgs_why, "runtime.allgadd"));
			go_binary_free(&b);
			print_message("pclntab bomb %zu bytes (%s): lookups %.1f ms, agent analysis %.1f ms\n", size,
				      sections ? ".gopclntab section" : "found by scan", inspect_ms, agent_ms);
			if (inspect_ms > BUDGET_MS || agent_ms > BUDGET_MS)
				fail_msg("%zu-byte crafted pclntab: %.0f / %.0f ms, over %d ms", size, inspect_ms,
					 agent_ms, BUDGET_MS);
		}
	}
	unlink(path);
}

/* A static executable whose Go 1.18+ build info lists ndeps dependencies
 * and nsettings build settings (only in a writable segment: found by the
 * scan Go's debug/buildinfo does too). Returns the file's size. */
static size_t craft_buildinfo_elf(const char *path, size_t ndeps, size_t nsettings)
{
	static const char sentinel[] = "0w\xaf\x0c\x92t\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6";
	size_t cap = 64 + 64 * (ndeps + nsettings), n = 0;
	char *mod = malloc(cap);
	assert_non_null(mod);
	memcpy(mod, sentinel, 16);
	n = 16;
	n += (size_t)sprintf(mod + n, "path\tevil/app\nmod\tevil/app\t(devel)\t\n");
	for (size_t i = 0; i < ndeps; i++)
		n += (size_t)sprintf(mod + n, "dep\tgithub.com/evil/m%07zu\tv1.0.0\th1:x=\n", i);
	for (size_t i = 0; i < nsettings; i++)
		n += (size_t)sprintf(mod + n, "build\tk%zu=v\n", i);
	memcpy(mod + n, sentinel, 16);
	n += 16;

	size_t blob = 32 + 1 + 8 + 10 + n, size = 0x1000 + blob;
	uint8_t *buf = calloc(1, size);
	assert_non_null(buf);
	Elf64_Ehdr eh = {.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
			 .e_phoff = sizeof(Elf64_Ehdr), .e_ehsize = sizeof(Elf64_Ehdr),
			 .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &eh, sizeof(eh));
	phdr(buf + eh.e_phoff, PF_R | PF_W, 0x1000, 0x601000, blob);
	uint8_t *p = buf + 0x1000;
	memcpy(p, "\xff Go buildinf:\x08\x02", 16);
	p += 32;
	memcpy(p, "\x08go1.22.0", 9);
	p += 9;
	for (uint64_t v = n; ; v >>= 7) { /* uvarint */
		*p++ = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		if (v < 0x80)
			break;
	}
	memcpy(p, mod, n);
	write_file(path, buf, size);
	free(buf);
	free(mod);
	return size;
}

static void test_buildinfo_capped(void **state)
{
	char path[PATH_MAX], cut[256];
	tmp_path(path, sizeof(path), "buildinfo-bomb");
	/* 200,000 dependencies: an 8 MB file */
	size_t size = craft_buildinfo_elf(path, 200000, 1000);
	struct mallinfo2 before = mallinfo2();
	uint64_t t0 = now_ns();
	struct go_elf *ge = NULL;
	char err[512];
	assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), 0);
	double ms = (now_ns() - t0) / 1e6;
	struct mallinfo2 after = mallinfo2();
	size_t heap = after.uordblks + after.hblkhd - before.uordblks - before.hblkhd;
	print_message("build info bomb, %zu bytes: %.1f ms, %zu KiB held (the file itself: %zu KiB)\n", size, ms,
		      heap >> 10, size >> 10);
	assert_true(ge->bi.present);
	assert_string_equal(ge->go_version, "go1.22.0");
	assert_string_equal(ge->bi.main.path, "evil/app");
	assert_true(ge->bi.n_deps <= GO_BUILDINFO_MAX_DEPS);
	assert_true(ge->bi.n_deps > 0);
	assert_string_equal(ge->bi.deps[0].path, "github.com/evil/m0000000");
	assert_true(ge->bi.deps_cut > 0 || ge->bi.bytes_cut > 0);
	assert_true(ge->bi.bytes_cut > 0);
	assert_int_equal(go_buildinfo_cut(&ge->bi, cut, sizeof(cut)), 1);
	assert_non_null(strstr(cut, "not read"));
	/* what is held beyond the file: at most the limits' worth */
	if (heap > size + (8u << 20))
		fail_msg("build info of a %zu-byte file holds %zu bytes", size, heap);
	go_elf_close(ge);

	/* within the byte limit, the counts cut */
	craft_buildinfo_elf(path, 5000, 300);
	assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), 0);
	assert_int_equal(ge->bi.n_deps, GO_BUILDINFO_MAX_DEPS);
	assert_int_equal(ge->bi.deps_cut, 5000 - GO_BUILDINFO_MAX_DEPS);
	assert_int_equal(ge->bi.n_settings, GO_BUILDINFO_MAX_SETTINGS);
	assert_int_equal(ge->bi.settings_cut, 300 - GO_BUILDINFO_MAX_SETTINGS);
	assert_int_equal(ge->bi.bytes_cut, 0);
	assert_int_equal(go_buildinfo_cut(&ge->bi, cut, sizeof(cut)), 1);
	assert_non_null(strstr(cut, "904 dependencies and 44 build settings not read"));
	go_elf_close(ge);

	/* a normal one: nothing cut */
	craft_buildinfo_elf(path, 10, 5);
	assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), 0);
	assert_int_equal(ge->bi.n_deps, 10);
	assert_int_equal(go_buildinfo_cut(&ge->bi, cut, sizeof(cut)), 0);
	go_elf_close(ge);
	unlink(path);
}

/* `weft inspect FIFO` used to block in open() until a writer came. */
static void test_fifo_does_not_hang(void **state)
{
	char path[PATH_MAX], err[512];
	struct go_elf *ge = NULL;
	tmp_path(path, sizeof(path), "fifo");
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(10); /* a hang kills the test */
	assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "is a FIFO (named pipe), not an executable file"));
	char *argv[] = {"inspect", path, NULL};
	int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
	dup2(devnull, 2);
	int rc = inspect_main(2, argv);
	dup2(saved, 2);
	close(saved);
	close(devnull);
	assert_int_equal(rc, 1);
	assert_int_equal(go_elf_open("/dev/null", &ge, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "is a character device"));
	alarm(0);
	unlink(path);
}

struct truncater {
	const char *path;
	const uint8_t *buf;
	size_t size;
	volatile bool stop;
};

static void *truncate_loop(void *arg)
{
	struct truncater *t = arg;
	int fd = open(t->path, O_WRONLY | O_CLOEXEC);
	while (fd >= 0 && !t->stop) {
		if (ftruncate(fd, 4096) || pwrite(fd, t->buf, t->size, 0) != (ssize_t)t->size)
			break;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* A file cut short while weft reads it: an error with a message (or a
 * consistent read), never SIGBUS as when the file was mapped. */
static void test_truncated_while_read(void **state)
{
	char path[PATH_MAX], err[512];
	uint32_t nfunc;
	tmp_path(path, sizeof(path), "shrinking");
	size_t size = craft_elf(path, 4 << 20, true, &nfunc);
	struct truncater t = {.path = path, .size = size};
	uint8_t *buf = malloc(size);
	assert_non_null(buf);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
	close(fd);
	t.buf = buf;
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, truncate_loop, &t), 0);
	int ok = 0, failed = 0;
	for (int i = 0; i < 300; i++) {
		struct go_elf *ge = NULL;
		int rc = go_elf_open(path, &ge, err, sizeof(err));
		if (rc == 0) {
			struct go_func fn;
			go_elf_find_func(ge, "main.z", &fn);
			go_elf_close(ge);
			ok++;
		} else {
			assert_true(err[0] != '\0');
			assert_null(strstr(err, "no error"));
			failed++;
		}
	}
	t.stop = true;
	pthread_join(th, NULL);
	free(buf);
	print_message("file rewritten while read 300 times: %d opened, %d refused with a message\n", ok, failed);
	unlink(path);
}

static void write_elf_header(const char *path, uint8_t cls, uint64_t phoff, uint16_t phnum, size_t size)
{
	uint8_t *buf = calloc(1, size);
	assert_non_null(buf);
	Elf64_Ehdr eh = {.e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT, .e_phoff = phoff,
			 .e_ehsize = sizeof(Elf64_Ehdr), .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = phnum};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = cls;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	memcpy(buf, &eh, size < sizeof(eh) ? size : sizeof(eh));
	write_file(path, buf, size);
	free(buf);
}

/* Messages a user can act on: what is wrong and where, not "no error" or a
 * sum that overflowed. */
static void test_corrupt_header_messages(void **state)
{
	char path[PATH_MAX], err[512];
	struct go_elf *ge = NULL;
	tmp_path(path, sizeof(path), "corrupt");
	write_elf_header(path, 7, 64, 1, 256);
	assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "unknown class 7 at byte 4 (1 = 32-bit, 2 = 64-bit)"));
	write_elf_header(path, ELFCLASS64, 64, 1, 40);
	assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "truncated ELF file: 40 bytes, shorter than its own 64-byte header"));
	write_elf_header(path, ELFCLASS64, 0x4000000000000000ull, 2, 256);
	assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "program header table starts at offset 4611686018427387904, past the end "
				    "of the file (256 bytes)"));
	write_elf_header(path, ELFCLASS64, 200, 2, 256);
	assert_int_equal(go_elf_open(path, &ge, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "program header table (2 entries of 56 bytes at offset 200) runs past the "
				    "end of the file (256 bytes)"));
	for (const char *c = err; *c; c++)
		assert_true(*c >= 0x20 && *c < 0x7f);
	unlink(path);
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/weft-hostile-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pclntab_names_without_end),
		cmocka_unit_test(test_buildinfo_capped),
		cmocka_unit_test(test_fifo_does_not_hang),
		cmocka_unit_test(test_truncated_while_read),
		cmocka_unit_test(test_corrupt_header_messages),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
