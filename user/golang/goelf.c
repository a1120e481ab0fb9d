/* Go executable analysis with libelf: segments, sections, build info,
 * function lookup (.symtab, then .gopclntab). See goelf.h. */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "goasm.h"
#include "goelf.h"
#include "gopclntab.h"
#include "goelf_internal.h"


#ifndef R_AARCH64_RELATIVE
#define R_AARCH64_RELATIVE 1027
#endif

int go_elf_fail(struct go_elf *ge, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ge->err, sizeof(ge->err), fmt, ap);
	va_end(ap);
	return rc;
}

uint64_t go_elf_rd(const uint8_t *p, size_t n, bool be)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[be ? i : n - 1 - i];
	return v;
}

const char *const go_probe_funcs[GO_PROBE_NFUNCS] = {
	"net/http.(*persistConn).roundTrip", /* entry: a client request's context -> its connection */
	"runtime.newproc.func1",	     /* Go < 1.21 only: its CALL runqput, goroutine inheritance */
	"runtime.runqput",		     /* not probed: the call above is found by its address */
	"runtime.newproc1",		     /* every RET, Go < 1.21 only, if the CALL is not found */
	"runtime.allgadd",		     /* not probed: its code locates runtime.allgs */
	"crypto/tls.(*Conn).Write",	     /* entry: TLS plaintext written (docs/TLS.md) */
	"crypto/tls.(*Conn).Read",	     /* entry and every RET: TLS plaintext read */
};

const char *go_sym_source_name(enum go_sym_source s)
{
	switch (s) {
	case GO_SYM_SYMTAB: return "symtab";
	case GO_SYM_PCLNTAB: return "pclntab";
	case GO_SYM_DISASM: return "disassembly";
	default: return "none";
	}
}

const char *go_elf_goarch(const struct go_elf *ge)
{
	switch (ge->machine) {
	case EM_X86_64: return "amd64";
	case EM_AARCH64: return "arm64";
	case EM_386: return "386";
	case EM_ARM: return "arm";
	case EM_PPC64: return ge->big_endian ? "ppc64" : "ppc64le";
	case EM_S390: return "s390x";
	case EM_RISCV: return "riscv64";
	case EM_MIPS: return ge->is64 ? "mips64" : "mips";
	default: return "unknown";
	}
}

const uint8_t *go_elf_at_offset(const struct go_elf *ge, uint64_t offset, uint64_t len)
{
	if (offset > ge->size || len > ge->size - offset)
		return NULL;
	return ge->data + offset;
}

int go_elf_vaddr_to_offset(const struct go_elf *ge, uint64_t vaddr, uint64_t *offset)
{
	for (size_t i = 0; i < ge->n_loads; i++) {
		const struct go_load *l = &ge->loads[i];
		if (vaddr >= l->vaddr && vaddr - l->vaddr < l->filesz) {
			*offset = l->offset + (vaddr - l->vaddr);
			return 0;
		}
	}
	return -ERANGE;
}

const uint8_t *go_elf_at_vaddr(const struct go_elf *ge, uint64_t vaddr, uint64_t len)
{
	for (size_t i = 0; i < ge->n_loads; i++) {
		const struct go_load *l = &ge->loads[i];
		if (vaddr >= l->vaddr && vaddr - l->vaddr < l->filesz) {
			uint64_t rel = vaddr - l->vaddr;
			if (len > l->filesz - rel)
				return NULL; /* crosses the end of the segment */
			return go_elf_at_offset(ge, l->offset + rel, len);
		}
	}
	return NULL;
}

static bool in_exec_segment(const struct go_elf *ge, uint64_t vaddr)
{
	for (size_t i = 0; i < ge->n_loads; i++) {
		const struct go_load *l = &ge->loads[i];
		if ((l->flags & PF_X) && vaddr >= l->vaddr && vaddr - l->vaddr < l->filesz)
			return true;
	}
	return false;
}

int go_version_parse(const char *s, int *major, int *minor, int *patch)
{
	const char *p = s ? strstr(s, "go1") : NULL;
	if (!p)
		return -EINVAL;
	p += 2;
	char *end;
	long ma = strtol(p, &end, 10);
	if (end == p)
		return -EINVAL;
	long mi = 0, pa = 0;
	if (*end == '.') {
		p = end + 1;
		mi = strtol(p, &end, 10);
		if (end == p)
			return -EINVAL;
		if (*end == '.') {
			p = end + 1;
			pa = strtol(p, &end, 10);
			if (end == p)
				pa = 0;
		}
	}
	if (ma < 0 || mi < 0 || pa < 0 || ma > 1000 || mi > 100000 || pa > 100000)
		return -EINVAL;
	*major = (int)ma;
	*minor = (int)mi;
	if (patch)
		*patch = (int)pa;
	return 0;
}

/* ---- symbols ------------------------------------------------------------- */

/* Finds a symbol of the given STT_* type (or -1 for any) in .symtab. */
static int symtab_find(struct go_elf *ge, const char *name, int type, uint64_t *value,
		       uint64_t *size)
{
	Elf *elf = ge->elf;
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		size_t entsz = gelf_fsize(elf, ELF_T_SYM, 1, EV_CURRENT);
		if (!entsz)
			continue;
		size_t n = d->d_size / entsz;
		for (size_t i = 0; i < n; i++) {
			GElf_Sym s;
			if (!gelf_getsym(d, (int)i, &s))
				break;
			if (type >= 0 && GELF_ST_TYPE(s.st_info) != type)
				continue;
			const char *sn = elf_strptr(elf, sh.sh_link, s.st_name);
			if (sn && strcmp(sn, name) == 0) {
				*value = s.st_value;
				*size = s.st_size;
				return 0;
			}
		}
	}
	return -ENOENT;
}

/* R_*_RELATIVE addend applied at vaddr, for PIE binaries whose pclntab
 * header keeps textStart in a dynamic relocation. */
static int rela_relative(struct go_elf *ge, uint64_t vaddr, uint64_t *value)
{
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(ge->elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_RELA)
			continue;
		Elf_Data *d = elf_getdata(scn, NULL);
		if (!d || !d->d_buf)
			continue;
		size_t entsz = gelf_fsize(ge->elf, ELF_T_RELA, 1, EV_CURRENT);
		if (!entsz)
			continue;
		for (size_t i = 0, n = d->d_size / entsz; i < n; i++) {
			GElf_Rela r;
			if (!gelf_getrela(d, (int)i, &r))
				break;
			uint64_t t = ge->is64 ? GELF_R_TYPE(r.r_info) : ELF32_R_TYPE(r.r_info);
			if (r.r_offset == vaddr && (t == R_X86_64_RELATIVE || t == R_AARCH64_RELATIVE)) {
				*value = (uint64_t)r.r_addend;
				return 0;
			}
		}
	}
	return -ENOENT;
}

const char *go_elf_pclntab_format(const struct go_elf *ge)
{
	if (!ge->pcln)
		return NULL;
	switch (ge->pcln->version) {
	case GO_PCLN_12: return "go1.2-1.15";
	case GO_PCLN_116: return "go1.16-1.17";
	case GO_PCLN_118: return "go1.18-1.19";
	case GO_PCLN_120: return "go1.20+";
	default: return "unknown";
	}
}

int go_elf_load_pclntab(struct go_elf *ge)
{
	if (ge->pcln_tried) {
		if (ge->pcln_err)
			snprintf(ge->err, sizeof(ge->err), "%s", ge->pcln_msg);
		return ge->pcln_err;
	}
	ge->pcln_tried = true;
	int rc = 0;
	struct go_pclntab *t = NULL;
	if (!ge->pclntab.found) {
		rc = go_elf_fail(ge, -ENODATA, "no .gopclntab in %s", ge->path);
		goto out;
	}
	const uint8_t *p = go_elf_at_offset(ge, ge->pclntab.offset, ge->pclntab.size);
	if (!p) {
		rc = go_elf_fail(ge, -EINVAL, ".gopclntab extends past the end of the file");
		goto out;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		rc = -ENOMEM;
		goto out;
	}
	char msg[256];
	if ((rc = go_pclntab_parse(p, ge->pclntab.size, t, msg, sizeof(msg)))) {
		rc = go_elf_fail(ge, rc, "%s: %s", ge->path, msg);
		goto out;
	}
	if (t->version >= GO_PCLN_118) {
		/* textStart: header value, else its relocation (PIE), else runtime.text,
		 * else the .text section. */
		uint64_t v, sz;
		if (!in_exec_segment(ge, t->text_start)) {
			if (ge->pclntab.addr &&
			    rela_relative(ge, ge->pclntab.addr + t->text_start_field, &v) == 0)
				t->text_start = v;
			else if (symtab_find(ge, "runtime.text", -1, &v, &sz) == 0)
				t->text_start = v;
			else if (ge->text.found)
				t->text_start = ge->text.addr;
		}
	}
	/* sanity: the first function must start in executable code */
	struct go_pcln_func f;
	if (go_pclntab_func(t, 0, &f) || !in_exec_segment(ge, f.entry)) {
		rc = go_elf_fail(ge, -EINVAL,
			  "%s: .gopclntab (%s format) is corrupt: its first function is not in "
			  "executable code", ge->path, go_pclntab_version_name(t->version));
		goto out;
	}
	ge->pcln = t;
	t = NULL;
out:
	free(t);
	ge->pcln_err = rc;
	if (rc)
		snprintf(ge->pcln_msg, sizeof(ge->pcln_msg), "%s", ge->err);
	return rc;
}

int go_elf_find_func_in(struct go_elf *ge, const char *name, enum go_sym_source src,
			struct go_func *fn)
{
	uint64_t addr, size;
	int rc;
	memset(fn, 0, sizeof(*fn));
	if (src == GO_SYM_SYMTAB) {
		if (!ge->has_symtab)
			return go_elf_fail(ge, -ENODATA, "%s has no .symtab", ge->path);
		if ((rc = symtab_find(ge, name, STT_FUNC, &addr, &size)))
			return go_elf_fail(ge, rc, "%s not in .symtab", name);
	} else if (src == GO_SYM_PCLNTAB) {
		if ((rc = go_elf_load_pclntab(ge)))
			return rc;
		struct go_pcln_func f;
		rc = go_pclntab_find(ge->pcln, name, &f);
		if (rc == -ENOENT)
			return go_elf_fail(ge, rc, "%s not in .gopclntab", name);
		if (rc)
			return go_elf_fail(ge, rc, "%s: .gopclntab entries are corrupt", ge->path);
		addr = f.entry;
		size = f.end - f.entry;
	} else {
		return -EINVAL;
	}
	if (go_elf_vaddr_to_offset(ge, addr, &fn->offset))
		return go_elf_fail(ge, -EINVAL, "%s at 0x%llx (%s) is in no loadable segment", name,
			    (unsigned long long)addr, go_sym_source_name(src));
	if (!in_exec_segment(ge, addr))
		return go_elf_fail(ge, -EINVAL, "%s at 0x%llx (%s) is not in executable code", name,
			    (unsigned long long)addr, go_sym_source_name(src));
	fn->addr = addr;
	fn->size = size;
	fn->source = src;
	return 0;
}

int go_elf_find_func(struct go_elf *ge, const char *name, struct go_func *fn)
{
	int rc = -ENODATA;
	if (ge->has_symtab && (rc = go_elf_find_func_in(ge, name, GO_SYM_SYMTAB, fn)) == 0)
		return 0;
	if (ge->pclntab.found)
		return go_elf_find_func_in(ge, name, GO_SYM_PCLNTAB, fn);
	if (!ge->has_symtab)
		return go_elf_fail(ge, -ENODATA, "%s has neither .symtab nor .gopclntab", ge->path);
	return rc;
}

/* ---- runtime.allgs -------------------------------------------------------- */

#define ALLGS_SYM "runtime.allgs"
#define ALLGADD_FUNC "runtime.allgadd"

/* [vaddr, vaddr + len) lies in one writable loadable segment (.bss included). */
static bool in_writable_segment(const struct go_elf *ge, uint64_t vaddr, uint64_t len)
{
	for (size_t i = 0; i < ge->n_loads; i++) {
		const struct go_load *l = &ge->loads[i];
		if ((l->flags & PF_W) && vaddr >= l->vaddr && vaddr - l->vaddr < l->memsz &&
		    len <= l->memsz - (vaddr - l->vaddr))
			return true;
	}
	return false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Memory accesses at t among the sorted targets v[0..n). */
static size_t accesses(const uint64_t *v, size_t n, uint64_t t)
{
	size_t lo = 0, hi = n;
	while (lo < hi) { /* first index with v[i] >= t */
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid] < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t k = 0;
	while (lo + k < n && v[lo + k] == t)
		k++;
	return k;
}

/* The slice header allgadd appends to: an address X in a writable segment
 * whose words X (ptr), X+W (len) and X+2W (cap) are all accessed in memory
 * (loads and stores, not address computations: allglock and allglen, adjacent
 * globals whose addresses allgadd passes to lock/xchg, must not count). */
static int allgs_from_code(struct go_elf *ge, uint64_t *vaddr)
{
	if (ge->machine != EM_X86_64 && ge->machine != EM_AARCH64)
		return go_elf_fail(ge, -ENOTSUP, "no disassembler for %s binaries: cannot derive "
			    ALLGS_SYM " from code", go_elf_goarch(ge));
	struct go_func fn;
	int rc = go_elf_find_func(ge, ALLGADD_FUNC, &fn);
	if (rc) {
		char why[sizeof(ge->err)];
		memcpy(why, ge->err, sizeof(why));
		if (rc != -EINVAL && rc != -ENOMEM)
			rc = -ENOENT;
		return go_elf_fail(ge, rc, ALLGS_SYM ": cannot find " ALLGADD_FUNC ": %.400s", why);
	}
	struct go_asm_ref *refs;
	size_t nrefs;
	if ((rc = go_func_data_refs(ge, &fn, &refs, &nrefs)) < 0) {
		if (rc == -ENOMEM)
			return rc;
		char why[sizeof(ge->err)];
		memcpy(why, ge->err, sizeof(why));
		return go_elf_fail(ge, rc, ALLGS_SYM ": " ALLGADD_FUNC ": %.400s", why);
	}
	uint64_t *mem = malloc((nrefs ? nrefs : 1) * sizeof(*mem));
	if (!mem) {
		free(refs);
		return -ENOMEM;
	}
	size_t nmem = 0;
	for (size_t i = 0; i < nrefs; i++)
		if (refs[i].mem)
			mem[nmem++] = refs[i].target;
	free(refs);
	qsort(mem, nmem, sizeof(*mem), cmp_u64);

	const uint64_t W = ge->is64 ? 8 : 4;
	uint64_t best = 0;
	size_t best_score = 0, ncand = 0;
	bool tie = false;
	for (size_t i = 0; i < nmem; i++) {
		uint64_t x = mem[i];
		if ((i && mem[i - 1] == x) || x > UINT64_MAX - 3 * W ||
		    !in_writable_segment(ge, x, 3 * W))
			continue;
		size_t a = accesses(mem, nmem, x), b = accesses(mem, nmem, x + W),
		       c = accesses(mem, nmem, x + 2 * W);
		if (!a || !b || !c)
			continue;
		ncand++;
		size_t score = a + b + c;
		if (score > best_score) {
			best = x;
			best_score = score;
			tie = false;
		} else if (score == best_score) {
			tie = true;
		}
	}
	free(mem);
	if (!ncand)
		return go_elf_fail(ge, -ENOENT, ALLGS_SYM ": no slice header {ptr, len, cap} among the %zu "
			    "data references of " ALLGADD_FUNC " at 0x%llx (%zu bytes)", nrefs,
			    (unsigned long long)fn.addr, (size_t)fn.size);
	if (tie)
		return go_elf_fail(ge, -ENOENT, ALLGS_SYM ": %zu candidate slice headers in the code of "
			    ALLGADD_FUNC " at 0x%llx, none stands out", ncand,
			    (unsigned long long)fn.addr);
	*vaddr = best;
	return 0;
}

int go_elf_find_allgs_in(struct go_elf *ge, enum go_sym_source src, uint64_t *vaddr)
{
	if (src == GO_SYM_DISASM)
		return allgs_from_code(ge, vaddr);
	if (src != GO_SYM_SYMTAB)
		return go_elf_fail(ge, -EINVAL, ALLGS_SYM ": no lookup by %s", go_sym_source_name(src));
	if (!ge->has_symtab)
		return go_elf_fail(ge, -ENOENT, "%s has no .symtab", ge->path);
	uint64_t v, size;
	if (symtab_find(ge, ALLGS_SYM, STT_OBJECT, &v, &size))
		return go_elf_fail(ge, -ENOENT, ALLGS_SYM " not in .symtab");
	const uint64_t W = ge->is64 ? 8 : 4;
	if (!in_writable_segment(ge, v, 3 * W))
		return go_elf_fail(ge, -EINVAL, ALLGS_SYM " at 0x%llx (symtab) is not in a writable segment",
			    (unsigned long long)v);
	*vaddr = v;
	return 0;
}

int go_elf_find_allgs(struct go_elf *ge, uint64_t *vaddr, enum go_sym_source *src)
{
	if (src)
		*src = GO_SYM_NONE;
	if (ge->has_symtab && go_elf_find_allgs_in(ge, GO_SYM_SYMTAB, vaddr) == 0) {
		if (src)
			*src = GO_SYM_SYMTAB;
		return 0;
	}
	int rc = go_elf_find_allgs_in(ge, GO_SYM_DISASM, vaddr);
	if (rc == 0 && src)
		*src = GO_SYM_DISASM;
	return rc;
}

/* ---- open ---------------------------------------------------------------- */

static const struct go_load *first_writable_load(const struct go_elf *ge)
{
	for (size_t i = 0; i < ge->n_loads; i++)
		if (ge->loads[i].flags & PF_W)
			return &ge->loads[i];
	return NULL;
}

/* No .go.buildinfo section (section headers stripped): scan the first
 * writable segment at 16-byte alignment, as Go's debug/buildinfo does. */
static void scan_buildinfo(struct go_elf *ge)
{
	const struct go_load *l = first_writable_load(ge);
	if (!l || !go_elf_at_offset(ge, l->offset, l->filesz))
		return;
	for (uint64_t o = 0; o + 32 <= l->filesz; o += 16) {
		if (memcmp(ge->data + l->offset + o, BUILDINFO_MAGIC, BUILDINFO_MAGIC_LEN) == 0) {
			ge->buildinfo.found = true;
			ge->buildinfo.addr = l->vaddr + o;
			ge->buildinfo.offset = l->offset + o;
			ge->buildinfo.size = l->filesz - o;
			return;
		}
	}
}

/* No .gopclntab section (external linkers merge it into .data.rel.ro in PIE
 * builds; section headers may be stripped): look for a valid header whose
 * first function lies in executable code, in non-executable segments. */
static void scan_pclntab(struct go_elf *ge)
{
	for (size_t i = 0; i < ge->n_loads; i++) {
		const struct go_load *l = &ge->loads[i];
		if ((l->flags & PF_X) || !go_elf_at_offset(ge, l->offset, l->filesz))
			continue;
		const uint8_t *base = ge->data + l->offset;
		for (uint64_t o = 0; o + 64 <= l->filesz; o += 8) {
			if (!go_pclntab_header_ok(base + o, l->filesz - o))
				continue;
			struct go_pclntab t;
			char msg[128];
			if (go_pclntab_parse(base + o, l->filesz - o, &t, msg, sizeof(msg)))
				continue;
			uint64_t v;
			if (t.version >= GO_PCLN_118 && !in_exec_segment(ge, t.text_start) &&
			    rela_relative(ge, l->vaddr + o + t.text_start_field, &v) == 0)
				t.text_start = v;
			struct go_pcln_func f;
			if (go_pclntab_func(&t, 0, &f) || !in_exec_segment(ge, f.entry))
				continue;
			ge->pclntab.found = true;
			ge->pclntab.addr = l->vaddr + o;
			ge->pclntab.offset = l->offset + o;
			ge->pclntab.size = l->filesz - o;
			return;
		}
	}
}

static int load_sections(struct go_elf *ge)
{
	Elf *elf = ge->elf;
	size_t shstrndx;
	if (elf_getshdrstrndx(elf, &shstrndx) != 0)
		return 0; /* no usable section headers: fall back to scans */
	Elf_Scn *scn = NULL;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		if (!gelf_getshdr(scn, &sh))
			return go_elf_fail(ge, -ENOEXEC, "%s: corrupt section header: %s", ge->path,
				    elf_errmsg(-1));
		const char *name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name)
			continue;
		bool in_file = sh.sh_type != SHT_NOBITS && go_elf_at_offset(ge, sh.sh_offset, sh.sh_size);
		size_t nl = strlen(name);
		struct go_range *r = NULL;
		if (sh.sh_type == SHT_SYMTAB && sh.sh_size > 0)
			ge->has_symtab = true;
		else if (!strcmp(name, ".debug_info") || !strcmp(name, ".zdebug_info"))
			ge->has_dwarf = sh.sh_size > 0;
		else if (!strcmp(name, ".text"))
			r = &ge->text;
		/* ".gopclntab", or ".data.rel.ro.gopclntab" in PIE builds */
		else if (nl >= 10 && !strcmp(name + nl - 10, ".gopclntab"))
			r = &ge->pclntab;
		else if (!strcmp(name, ".go.buildinfo"))
			r = &ge->buildinfo;
		if (r && in_file) {
			r->found = true;
			r->addr = sh.sh_addr;
			r->offset = sh.sh_offset;
			r->size = sh.sh_size;
		} else if (r && r != &ge->text && sh.sh_size) {
			return go_elf_fail(ge, -ENOEXEC,
				    "%s: section %s (offset %llu, %llu bytes) extends past the end "
				    "of the file (%zu bytes): truncated?", ge->path, name,
				    (unsigned long long)sh.sh_offset,
				    (unsigned long long)sh.sh_size, ge->size);
		}
	}
	return 0;
}

/* What a file that is not a regular file is, for the message. */
static const char *file_type(mode_t m)
{
	if (S_ISDIR(m))
		return "a directory";
	if (S_ISFIFO(m))
		return "a FIFO (named pipe)";
	if (S_ISSOCK(m))
		return "a socket";
	if (S_ISCHR(m))
		return "a character device";
	if (S_ISBLK(m))
		return "a block device";
	return "not a regular file";
}

/* Reads the whole file with pread: a file truncated meanwhile gives a short
 * read and a message, where a mapping would kill the process with SIGBUS. */
static int read_whole(struct go_elf *ge, int fd, size_t size)
{
	uint8_t *buf = malloc(size);
	if (!buf)
		return go_elf_fail(ge, -ENOMEM, "%s: cannot allocate %zu bytes to read it", ge->path, size);
	size_t got = 0;
	while (got < size) {
		ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int rc = -errno;
			free(buf);
			return go_elf_fail(ge, rc, "cannot read %s: %s", ge->path, strerror(-rc));
		}
		if (n == 0) {
			free(buf);
			return go_elf_fail(ge, -ENOEXEC, "%s shrank from %zu to %zu bytes while being read: "
					   "truncated or being rewritten; try again once it is complete",
					   ge->path, size, got);
		}
		got += (size_t)n;
	}
	ge->data = buf;
	ge->size = size;
	return 0;
}

/* Why the ELF identification or header is unusable, in terms a user can
 * check (libelf often has no message of its own for these). */
static int bad_ehdr(struct go_elf *ge)
{
	const uint8_t *id = ge->data;
	const char *why = elf_errno() ? elf_errmsg(-1) : NULL;
	if (id[EI_CLASS] != ELFCLASS32 && id[EI_CLASS] != ELFCLASS64)
		return go_elf_fail(ge, -ENOEXEC, "%s: not a usable ELF file: unknown class %u at byte 4 "
				   "(1 = 32-bit, 2 = 64-bit)", ge->path, id[EI_CLASS]);
	if (id[EI_DATA] != ELFDATA2LSB && id[EI_DATA] != ELFDATA2MSB)
		return go_elf_fail(ge, -ENOEXEC, "%s: not a usable ELF file: unknown byte order %u at byte 5 "
				   "(1 = little-endian, 2 = big-endian)", ge->path, id[EI_DATA]);
	size_t need = id[EI_CLASS] == ELFCLASS64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
	if (ge->size < need)
		return go_elf_fail(ge, -ENOEXEC, "%s: truncated ELF file: %zu bytes, shorter than its own "
				   "%zu-byte header", ge->path, ge->size, need);
	if (id[EI_VERSION] != EV_CURRENT)
		return go_elf_fail(ge, -ENOEXEC, "%s: not a usable ELF file: version %u at byte 6 (expected 1)",
				   ge->path, id[EI_VERSION]);
	return go_elf_fail(ge, -ENOEXEC, "%s: corrupt ELF header%s%s", ge->path, why ? ": " : "",
			   why ? why : "");
}

/* A header table (program or section headers) that lies outside the file. */
static int bad_table(struct go_elf *ge, const char *what, uint64_t off, uint64_t num, uint64_t entsize)
{
	if (off >= ge->size)
		return go_elf_fail(ge, -ENOEXEC, "%s: corrupt or truncated ELF: its %s header table starts at "
				   "offset %llu, past the end of the file (%zu bytes)", ge->path, what,
				   (unsigned long long)off, ge->size);
	return go_elf_fail(ge, -ENOEXEC, "%s: truncated ELF: its %s header table (%llu entries of %llu bytes "
			   "at offset %llu) runs past the end of the file (%zu bytes)", ge->path, what,
			   (unsigned long long)num, (unsigned long long)entsize, (unsigned long long)off, ge->size);
}

/* Everything after the file is in memory (ge->data, ge->size): headers,
 * segments, sections, build info. */
static int parse_loaded(struct go_elf *ge)
{
	const char *path = ge->path;
	int rc = 0;
	if (memcmp(ge->data, ELFMAG, SELFMAG) != 0) {
		rc = go_elf_fail(ge, -ENOEXEC, "%s is not an ELF file (no \\x7fELF magic)", path);
		goto out;
	}
	Elf *elf = elf_memory((char *)ge->data, ge->size);
	ge->elf = elf;
	GElf_Ehdr eh;
	if (!elf || elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &eh)) {
		rc = bad_ehdr(ge);
		goto out;
	}
	ge->is64 = gelf_getclass(elf) == ELFCLASS64;
	ge->big_endian = eh.e_ident[EI_DATA] == ELFDATA2MSB;
	ge->machine = eh.e_machine;
	ge->type = eh.e_type;

	/* header tables cut off by truncation: say so rather than see nothing */
	uint64_t phsize = (uint64_t)eh.e_phnum * eh.e_phentsize;
	uint64_t shsize = (uint64_t)eh.e_shnum * eh.e_shentsize;
	if (eh.e_phnum && (eh.e_phoff > ge->size || phsize > ge->size - eh.e_phoff)) {
		rc = bad_table(ge, "program", eh.e_phoff, eh.e_phnum, eh.e_phentsize);
		goto out;
	}
	if (eh.e_shnum && (eh.e_shoff > ge->size || shsize > ge->size - eh.e_shoff)) {
		rc = bad_table(ge, "section", eh.e_shoff, eh.e_shnum, eh.e_shentsize);
		goto out;
	}
	size_t nph;
	if (elf_getphdrnum(elf, &nph) != 0) {
		rc = go_elf_fail(ge, -ENOEXEC, "%s: corrupt program headers: %s", path, elf_errmsg(-1));
		goto out;
	}
	if (nph > 65535) {
		rc = go_elf_fail(ge, -ENOEXEC, "%s: %zu program headers", path, nph);
		goto out;
	}
	ge->loads = calloc(nph ? nph : 1, sizeof(*ge->loads));
	if (!ge->loads) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;
		if (!gelf_getphdr(elf, (int)i, &ph)) {
			rc = go_elf_fail(ge, -ENOEXEC, "%s: program header %zu is unreadable (truncated?): %s",
				  path, i, elf_errmsg(-1));
			goto out;
		}
		if (ph.p_type != PT_LOAD)
			continue;
		if (!go_elf_at_offset(ge, ph.p_offset, ph.p_filesz)) {
			rc = go_elf_fail(ge, -ENOEXEC,
				  "%s: loadable segment %zu (offset %llu, %llu bytes) extends past the "
				  "end of the file (%zu bytes): truncated?", path, i,
				  (unsigned long long)ph.p_offset, (unsigned long long)ph.p_filesz,
				  ge->size);
			goto out;
		}
		struct go_load *l = &ge->loads[ge->n_loads++];
		l->vaddr = ph.p_vaddr;
		l->memsz = ph.p_memsz;
		l->offset = ph.p_offset;
		l->filesz = ph.p_filesz;
		l->flags = ph.p_flags;
	}
	if ((rc = load_sections(ge)))
		goto out;
	if (!ge->buildinfo.found)
		scan_buildinfo(ge);
	if (!ge->pclntab.found)
		scan_pclntab(ge);

	if (ge->buildinfo.found) {
		/* A corrupt build info is reported but does not fail the open:
		 * symbols and offsets may still be usable. */
		rc = go_buildinfo_parse(ge, ge->buildinfo.offset, ge->buildinfo.size);
		if (rc == -ENOMEM)
			goto out;
		rc = 0;
	}
	ge->go_version = ge->bi.go_version;
	if (!ge->go_version && ge->has_symtab) {
		/* before build info existed: the runtime.buildVersion string */
		uint64_t v, sz;
		const char *s;
		size_t n;
		size_t P = ge->is64 ? 8 : 4;
		char saved[sizeof(ge->err)];
		memcpy(saved, ge->err, sizeof(saved));
		if (symtab_find(ge, "runtime.buildVersion", -1, &v, &sz) == 0 &&
		    go_elf_read_gostring(ge, v, P, ge->big_endian, &s, &n) == 0 && n && n < 64) {
			ge->go_version_sym = strndup(s, n);
			ge->go_version = ge->go_version_sym;
		}
		memcpy(ge->err, saved, sizeof(saved));
	}
	ge->is_go = ge->bi.present || ge->pclntab.found;
out:
	return rc;
}

/* A new, empty analysis named name (libelf set up once). */
static int ge_new(const char *name, struct go_elf **out, char *err, size_t errlen)
{
	static bool elf_init;
	struct go_elf *ge = calloc(1, sizeof(*ge));
	*out = NULL;
	if (!ge) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	snprintf(ge->path, sizeof(ge->path), "%s", name);
	if (!elf_init) {
		if (elf_version(EV_CURRENT) == EV_NONE) {
			snprintf(err, errlen, "libelf: %s", elf_errmsg(-1));
			free(ge);
			return -ENOTSUP;
		}
		elf_init = true;
	}
	*out = ge;
	return 0;
}

int go_elf_open_fd(int fd, const char *name, struct go_elf **out, char *err, size_t errlen)
{
	struct go_elf *ge;
	int rc = ge_new(name, &ge, err, errlen);
	if (rc)
		return rc;
	const char *path = ge->path;
	struct stat st;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		go_elf_fail(ge, rc, "cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = go_elf_fail(ge, -ENOEXEC, "%s is %s, not an executable file", path, file_type(st.st_mode));
		goto out;
	}
	if (st.st_size < EI_NIDENT) {
		rc = go_elf_fail(ge, -ENOEXEC, "%s is not an ELF file (%lld bytes)", path,
			  (long long)st.st_size);
		goto out;
	}
	if ((uint64_t)st.st_size > GO_ELF_MAX_SIZE) {
		rc = go_elf_fail(ge, -EFBIG, "%s is %lld MiB: larger than the %llu MiB weft analyses", path,
				 (long long)(st.st_size >> 20), (unsigned long long)(GO_ELF_MAX_SIZE >> 20));
		goto out;
	}
	if ((rc = read_whole(ge, fd, (size_t)st.st_size)))
		goto out;
	rc = parse_loaded(ge);
out:
	if (rc) {
		snprintf(err, errlen, "%s", ge->err);
		go_elf_close(ge);
		return rc;
	}
	*out = ge;
	return 0;
}

int go_elf_open_mem(const uint8_t *data, size_t size, const char *name, struct go_elf **out, char *err,
		    size_t errlen)
{
	struct go_elf *ge;
	int rc = ge_new(name, &ge, err, errlen);
	if (rc)
		return rc;
	*out = NULL;
	uint8_t *copy = NULL;
	if (size < EI_NIDENT) {
		rc = go_elf_fail(ge, -ENOEXEC, "%s is not an ELF file (%zu bytes)", ge->path, size);
	} else if (size > GO_ELF_MAX_SIZE) {
		rc = go_elf_fail(ge, -EFBIG, "%s: %zu bytes: larger than weft analyses", ge->path, size);
	} else if (!(copy = malloc(size))) {
		rc = go_elf_fail(ge, -ENOMEM, "%s: out of memory", ge->path);
	} else {
		memcpy(copy, data, size);
		ge->data = copy;
		ge->size = size;
		rc = parse_loaded(ge);
	}
	if (rc) {
		snprintf(err, errlen, "%s", ge->err);
		go_elf_close(ge);
		return rc;
	}
	*out = ge;
	return 0;
}

int go_elf_open(const char *path, struct go_elf **out, char *err, size_t errlen)
{
	/* O_NONBLOCK: opening a FIFO must not wait for a writer (the file type
	 * is checked next); it has no effect on regular files. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	*out = NULL;
	if (fd < 0) {
		int rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	int rc = go_elf_open_fd(fd, path, out, err, errlen);
	close(fd);
	return rc;
}

void go_elf_close(struct go_elf *ge)
{
	if (!ge)
		return;
	if (ge->elf)
		elf_end(ge->elf);
	free((void *)ge->data);
	go_buildinfo_free(&ge->bi);
	free(ge->go_version_sym);
	free(ge->pcln);
	free(ge->loads);
	free(ge);
}
