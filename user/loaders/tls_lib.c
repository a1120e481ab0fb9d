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

/* What an ELF file's .rodata says about the TLS library linked into it. */
struct rodata_facts {
	bool ssl_src;	/* OpenSSL's or BoringSSL's source file names (error reporting) */
	bool boring;	/* BoringSSL's own name */
	bool symtab;	/* the file has a .symtab (not stripped) */
	char version[64]; /* OpenSSL's version text, when linked in */
};

/* "OpenSSL 3.0.22 25 Aug 2026" (OPENSSL_VERSION_TEXT) in buf, if any. */
static void find_version(const char *buf, size_t n, char *out, size_t outlen)
{
	static const char pfx[] = "OpenSSL ";
	const char *p = buf, *end = buf + n;
	while ((p = memmem(p, (size_t)(end - p), pfx, sizeof(pfx) - 1))) {
		const char *v = p + sizeof(pfx) - 1;
		if (v < end && *v >= '0' && *v <= '9' && (p == buf || p[-1] == '\0')) {
			size_t len = strnlen(p, (size_t)(end - p));
			snprintf(out, outlen, "%.*s", (int)len, p);
			return;
		}
		p = v;
	}
}

/* Reads path's .rodata (at most 64 MiB) for rodata_facts: 0, or -errno. */
static int rodata_scan(const char *path, struct rodata_facts *f)
{
	memset(f, 0, sizeof(*f));
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = -ENOEXEC;
	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	size_t shstrndx;
	if (!e || elf_getshdrstrndx(e, &shstrndx))
		goto cleanup;
	err = 0;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type == SHT_SYMTAB)
			f->symtab = true;
		const char *name = elf_strptr(e, shstrndx, sh.sh_name);
		if (!name || strcmp(name, ".rodata") || sh.sh_type != SHT_PROGBITS || sh.sh_size > (64u << 20))
			continue;
		char *buf = malloc(sh.sh_size);
		if (!buf) {
			err = -ENOMEM;
			goto cleanup;
		}
		if (pread(fd, buf, sh.sh_size, (off_t)sh.sh_offset) == (ssize_t)sh.sh_size) {
			/* OpenSSL's ERR_raise names "../ssl/ssl_lib.c", BoringSSL's
			 * "ssl/ssl_lib.cc". */
			f->ssl_src = memmem(buf, sh.sh_size, "ssl/ssl_lib.c", 13) != NULL;
			f->boring = memmem(buf, sh.sh_size, "BoringSSL", 10) != NULL; /* with its NUL */
			find_version(buf, sh.sh_size, f->version, sizeof(f->version));
		}
		free(buf);
	}
cleanup:
	if (e)
		elf_end(e);
	close(fd);
	return err;
}

/* The version of the OpenSSL whose libssl is at path: libssl carries no
 * version text, the libcrypto beside it does. */
static void lib_version(const char *path, char *out, size_t n)
{
	char crypto[512];
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	out[0] = '\0';
	if (strncmp(base, "libssl", 6) ||
	    snprintf(crypto, sizeof(crypto), "%.*slibcrypto%s", (int)(base - path), path, base + 6) >= (int)sizeof(crypto))
		return;
	struct rodata_facts f;
	if (rodata_scan(crypto, &f) == 0)
		snprintf(out, n, "%s", f.version);
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
	int n = tls_lib_symbols(out->path, out->has, out->fn_off, out->at);
	if (n < 0)
		return n;
	lib_version(out->path, out->version, sizeof(out->version));
	return 0;
}

/* The executable's own SSL_read/SSL_write (static OpenSSL or BoringSSL):
 * 0 and *out filled, -ENOENT (it defines neither), -errno. */
static int fill_exe(uint32_t pid, struct tls_lib *out)
{
	struct stat st;
	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "/proc/%u/exe", pid);
	ssize_t len = readlink(out->path, out->shown, sizeof(out->shown) - 1);
	if (len < 0)
		return -errno;
	out->shown[len] = '\0';
	if (stat(out->path, &st))
		return -errno;
	int n = tls_lib_symbols(out->path, out->has, out->fn_off, out->at);
	if (n < 0)
		return n;
	if (!out->has[TLS_FN_READ] && !out->has[TLS_FN_READ_EX] && !out->has[TLS_FN_WRITE] && !out->has[TLS_FN_WRITE_EX])
		return -ENOENT;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->mapped = true;
	out->in_exe = true;
	struct rodata_facts f;
	if (rodata_scan(out->path, &f) == 0)
		snprintf(out->version, sizeof(out->version), "%s", f.boring ? "BoringSSL" : f.version);
	return 0;
}

/* Executables found to carry no TLS library of their own: looked at again
 * on every exec otherwise (`weft run` sees every program start). Keyed by
 * the file and its modification; a ring, replaced oldest first. Used by
 * the agent's event thread only. */
struct exe_seen {
	dev_t dev;
	ino_t ino;
	struct timespec mtime;
	off_t size;
	bool is_static; /* no program interpreter: it never loads a libssl */
};
static struct exe_seen plain_exes[64];
static size_t plain_next;

static bool exe_same(const struct exe_seen *e, const struct stat *st)
{
	return e->ino == st->st_ino && e->dev == st->st_dev && e->size == st->st_size &&
	       e->mtime.tv_sec == st->st_mtim.tv_sec && e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

static const struct exe_seen *exe_known_plain(const struct stat *st)
{
	for (size_t i = 0; i < sizeof(plain_exes) / sizeof(plain_exes[0]); i++)
		if (plain_exes[i].ino && exe_same(&plain_exes[i], st))
			return &plain_exes[i];
	return NULL;
}

/* Is the ELF file at path statically linked (no PT_INTERP)? Such a program
 * (busybox, a Go binary without cgo) has no dynamic loader to map a libssl
 * later. 1 yes, 0 no, -1 unsure (unreadable: an exiting process's exe). */
static int exe_static(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int stat_linked = -1;
	size_t n = 0;
	elf_version(EV_CURRENT);
	Elf *e = elf_begin(fd, ELF_C_READ, NULL);
	if (e && elf_kind(e) == ELF_K_ELF && elf_getphdrnum(e, &n) == 0 && n > 0) {
		stat_linked = 1;
		for (size_t i = 0; i < n; i++) {
			GElf_Phdr ph;
			if (!gelf_getphdr(e, (int)i, &ph)) {
				stat_linked = -1;
				break;
			}
			if (ph.p_type == PT_INTERP) {
				stat_linked = 0;
				break;
			}
		}
	}
	elf_end(e);
	close(fd);
	return stat_linked;
}

/* Notes the executable as one without a TLS library of its own; NULL when
 * what it is could not be read (not remembered: asked again next time). */
static const struct exe_seen *exe_note_plain(const struct stat *st, const char *path)
{
	int is_static = exe_static(path);
	if (is_static < 0)
		return NULL;
	struct exe_seen *e = &plain_exes[plain_next++ % (sizeof(plain_exes) / sizeof(plain_exes[0]))];
	*e = (struct exe_seen){ .dev = st->st_dev, .ino = st->st_ino, .mtime = st->st_mtim, .size = st->st_size,
				.is_static = is_static };
	return e;
}

int tls_lib_exe_unprobeable(uint32_t pid, char *why, size_t n)
{
	char exe[64];
	struct tls_lib lib;
	struct rodata_facts f;
	struct stat st;
	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	if (stat(exe, &st) == 0 && exe_known_plain(&st))
		return -ENOENT;
	int err = rodata_scan(exe, &f);
	if (err)
		return err;
	if (!f.ssl_src || fill_exe(pid, &lib) == 0)
		return -ENOENT;
	const char *what = f.boring ? "BoringSSL" : f.version[0] ? f.version : "OpenSSL";
	char path[256];
	ssize_t len = readlink(exe, path, sizeof(path) - 1);
	path[len > 0 ? len : 0] = '\0';
	if (f.symtab)
		snprintf(why, n, "%s linked into %s: not probeable: no SSL_read/SSL_write symbol (renamed or inlined)",
			 what, path);
	else
		snprintf(why, n, "%s linked into %s: not probeable: stripped (no .symtab: SSL_read/SSL_write cannot be "
			 "found)", what, path);
	return 0;
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
	/* OpenSSL or BoringSSL linked into the executable: probed there. */
	char exe[64];
	struct stat st;
	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	bool have_st = stat(exe, &st) == 0;
	if (!have_st && errno == ENOENT)
		return -ESRCH; /* exiting: its memory is gone already, its root not yet */
	const struct exe_seen *plain = have_st ? exe_known_plain(&st) : NULL;
	if (!plain) {
		if (fill_exe(pid, out) == 0)
			return 0;
		char why[512];
		if (tls_lib_exe_unprobeable(pid, why, sizeof(why)) == 0)
			return -ENOENT; /* it has its own TLS: a libssl on disk is not what it runs */
		if (have_st && !(plain = exe_note_plain(&st, exe)))
			return -ESRCH; /* its executable cannot be read: exiting */
	}
	/* A static program never maps a libssl: no probes waiting for one (each
	 * costs the agent's event thread uprobe attachments). */
	if (plain && plain->is_static)
		return -ENOENT;
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
 * be read. *fn_off (when asked): where fn starts in the file. */
static uint32_t entry_offset(int fd, Elf *e, int fn, const GElf_Sym *sym, uint64_t *fn_off)
{
	size_t nph;
	if (elf_getphdrnum(e, &nph))
		return 0;
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(e, i, &ph) || ph.p_type != PT_LOAD || !(ph.p_flags & PF_X) ||
		    sym->st_value < ph.p_vaddr || sym->st_value + sym->st_size > ph.p_vaddr + ph.p_filesz)
			continue;
		off_t off = (off_t)(sym->st_value - ph.p_vaddr + ph.p_offset);
		if (fn_off)
			*fn_off = (uint64_t)off;
		if (fn == TLS_FN_READ || fn == TLS_FN_READ_EX || !sym->st_size || sym->st_size > 65536)
			return 0;
		uint8_t *code = malloc(sym->st_size);
		uint32_t at = 0;
		if (code && pread(fd, code, sym->st_size, off) == (ssize_t)sym->st_size)
			at = tls_entry_probe_offset(code, sym->st_size);
		free(code);
		return at;
	}
	return 0;
}

int tls_lib_symbols(const char *path, bool has[TLS_FN_N], uint64_t fn_off[TLS_FN_N], uint32_t at[TLS_FN_N])
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), found = 0;
	if (fd < 0)
		return -errno;
	memset(has, 0, sizeof(bool) * TLS_FN_N);
	if (at)
		memset(at, 0, sizeof(uint32_t) * TLS_FN_N);
	if (fn_off)
		memset(fn_off, 0, sizeof(uint64_t) * TLS_FN_N);
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
					if (at || fn_off) {
						uint32_t a = entry_offset(fd, e, k, &sym, fn_off ? &fn_off[k] : NULL);
						if (at)
							at[k] = a;
					}
				}
			}
		}
	}
	elf_end(e);
	close(fd);
	return found;
}
