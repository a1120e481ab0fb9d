/* Finding a process's libssl and its probed symbols (tls_lib.h). */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tls_entry.h"
#include "tls_lib.h"

const char *const tls_fn_names[TLS_FN_N] = { "SSL_read", "SSL_read_ex", "SSL_write", "SSL_write_ex", "SSL_set_fd" };

/* Where distributions install libssl, newest soname first. */
static const char *const default_paths[] = {
	"/usr/lib/x86_64-linux-gnu/libssl.so.3", "/usr/lib64/libssl.so.3",     "/usr/lib/libssl.so.3",
	"/lib/libssl.so.3",			 "/usr/lib/x86_64-linux-gnu/libssl.so.1.1",
	"/usr/lib64/libssl.so.1.1",		 "/usr/lib/libssl.so.1.1",
};

/* Is this mapped file name a libssl (libssl.so.3, libssl.so.1.1, libssl-abc.so.3)? */
static bool is_libssl(const char *name)
{
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	return strncmp(base, "libssl", 6) == 0 && strstr(base, ".so");
}

static int fill(uint32_t pid, const char *shown, bool mapped, struct tls_lib *out)
{
	struct stat st;
	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "/proc/%u/root%s", pid, shown);
	snprintf(out->shown, sizeof(out->shown), "%s", shown);
	out->mapped = mapped;
	if (stat(out->path, &st))
		return -errno;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	int n = tls_lib_symbols(out->path, out->has, out->at);
	return n < 0 ? n : 0;
}

int tls_lib_other_in(FILE *f, char *out, size_t n)
{
	static const struct {
		const char *prefix, *name;
	} others[] = { { "libgnutls.so", "GnuTLS" }, { "libnss3.so", "NSS" }, { "libwolfssl.so", "wolfSSL" },
		       { "libmbedtls.so", "mbed TLS" } };
	char line[1024];
	int err = -ENOENT;
	while (err && fgets(line, sizeof(line), f)) {
		char *name = strchr(line, '/');
		if (!name)
			continue;
		name[strcspn(name, "\n")] = '\0';
		const char *base = strrchr(name, '/') + 1;
		for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
			if (!strncmp(base, others[i].prefix, strlen(others[i].prefix))) {
				snprintf(out, n, "%s (%s)", others[i].name, name);
				err = 0;
				break;
			}
		}
	}
	return err;
}

int tls_lib_other(uint32_t pid, char *out, size_t n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int err = tls_lib_other_in(f, out, n);
	fclose(f);
	return err;
}

int tls_lib_find_in(FILE *f, uint32_t pid, struct tls_lib *out)
{
	char line[1024];
	int err = -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		char *name = strchr(line, '/');
		if (!name)
			continue;
		name[strcspn(name, "\n")] = '\0';
		if (is_libssl(name) && !strstr(name, " (deleted)")) {
			err = fill(pid, name, true, out);
			break;
		}
	}
	if (err != -ENOENT)
		return err;
	for (size_t i = 0; i < sizeof(default_paths) / sizeof(default_paths[0]); i++)
		if (fill(pid, default_paths[i], false, out) == 0)
			return 0;
	return -ENOENT;
}

int tls_lib_find(uint32_t pid, struct tls_lib *out)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%u/maps", pid);
	FILE *f = fopen(path, "re");
	if (!f)
		return -errno;
	int err = tls_lib_find_in(f, pid, out);
	fclose(f);
	return err;
}

/* Where fn's entry probe costs one trap (tls_entry.h): 0 for the reads,
 * whose return probe traps at the entry anyway, and when the code cannot
 * be read. */
static uint32_t entry_offset(int fd, Elf *e, int fn, const GElf_Sym *sym)
{
	if (fn == TLS_FN_READ || fn == TLS_FN_READ_EX || !sym->st_size || sym->st_size > 65536)
		return 0;
	size_t nph;
	if (elf_getphdrnum(e, &nph))
		return 0;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) ||
		    sym->st_value < ph.p_vaddr || sym->st_value + sym->st_size > ph.p_vaddr + ph.p_filesz)
			continue;
		uint8_t *code = malloc(sym->st_size);
		off_t off = (off_t)(sym->st_value - ph.p_vaddr + ph.p_offset);
		uint32_t at = 0;
		if (code && pread(fd, code, sym->st_size, off) == (ssize_t)sym->st_size)
			at = tls_entry_probe_offset(code, sym->st_size);
		free(code);
		return at;
	}
	return 0;
}

int tls_lib_symbols(const char *path, bool has[TLS_FN_N], uint32_t at[TLS_FN_N])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), found = 0;
	if (fd < 0)
		return -errno;
	memset(has, 0, sizeof(bool) * TLS_FN_N);
	if (at)
		memset(at, 0, sizeof(uint32_t) * TLS_FN_N);
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (!e) {
		close(fd);
		return -ENOEXEC;
	}
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_DYNSYM && sh.sh_type != SHT_SYMTAB) || !sh.sh_entsize)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		size_t n = d ? sh.sh_size / sh.sh_entsize : 0;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym sym;
			if (!gelf_getsym(d, i, &sym) || sym.st_shndx == SHN_UNDEF || GELF_ST_TYPE(sym.st_info) != STT_FUNC)
				continue;
			const char *s = elf_strptr(e, sh.sh_link, sym.st_name);
			for (int k = 0; s && k < TLS_FN_N; k++) {
				if (!has[k] && strcmp(s, tls_fn_names[k]) == 0) {
					has[k] = true;
					found++;
					if (at)
						at[k] = entry_offset(fd, e, k, &sym);
				}
			}
		}
	}
	elf_end(e);
	close(fd);
	return found;
}
