/* Go build info (the "\xff Go buildinf:" blob): Go version and modules,
 * for weft inspect and the choice of struct offsets. See goelf.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "goelf.h"
#include "goelf_internal.h"

#define GOSTRING_MAX (16u << 20) /* longest version/modinfo string we accept */

static void module_free(struct go_module *m)
{
	free(m->path);
	free(m->version);
	free(m->sum);
	free(m->repl_path);
	free(m->repl_version);
	memset(m, 0, sizeof(*m));
}

int go_buildinfo_cut(const struct go_buildinfo *bi, char *buf, size_t len)
{
	if (!bi->deps_cut && !bi->settings_cut && !bi->bytes_cut) {
		if (len)
			buf[0] = '\0';
		return 0;
	}
	snprintf(buf, len, "build info cut to weft's limits: %zu dependencies and %zu build settings not read "
		 "(at most %u and %u), %llu bytes of module information not read (at most %u)",
		 bi->deps_cut, bi->settings_cut, GO_BUILDINFO_MAX_DEPS, GO_BUILDINFO_MAX_SETTINGS,
		 (unsigned long long)bi->bytes_cut, GO_BUILDINFO_MAX_BYTES);
	return 1;
}

void go_buildinfo_free(struct go_buildinfo *bi)
{
	free(bi->go_version);
	free(bi->path);
	module_free(&bi->main);
	for (size_t i = 0; i < bi->n_deps; i++)
		module_free(&bi->deps[i]);
	free(bi->deps);
	for (size_t i = 0; i < bi->n_settings; i++)
		free(bi->settings[i]);
	free(bi->settings);
	memset(bi, 0, sizeof(*bi));
}

/* Unsigned LEB128 varint within [*p, end). */
static int uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0, i = 0; i < 10; i++, shift += 7) {
		if (*p >= end)
			return -EINVAL;
		uint8_t b = *(*p)++;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return -EINVAL;
}

/* Splits "a\tb\tc" into at most n fields (pointers into a modifiable copy). */
static size_t split_tabs(char *s, char **f, size_t n)
{
	size_t k = 0;
	while (k < n) {
		f[k++] = s;
		char *t = strchr(s, '\t');
		if (!t)
			break;
		*t = 0;
		s = t + 1;
	}
	return k;
}

static int module_set(struct go_module *m, char **f, size_t nf)
{
	m->path = strdup(nf > 1 ? f[1] : "");
	m->version = strdup(nf > 2 ? f[2] : "");
	m->sum = nf > 3 ? strdup(f[3]) : NULL;
	if (!m->path || !m->version || (nf > 3 && !m->sum))
		return -ENOMEM;
	return 0;
}

/* Room for one more element in a growing array of n (capacity doubles). */
static int grow(void **arr, size_t n, size_t *cap, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? 2 * *cap : 16;
	void *a = realloc(*arr, nc * elem);
	if (!a)
		return -ENOMEM;
	*arr = a;
	*cap = nc;
	return 0;
}

static int modinfo_parse(struct go_buildinfo *bi, const char *mod, size_t len)
{
	size_t deps_cap = 0, settings_cap = 0;
	/* Go wraps modinfo in two 16-byte sentinels; strip them when present. */
	if (len >= 33 && mod[len - 17] == '\n') {
		mod += 16;
		len -= 32;
	}
	/* At most GO_BUILDINFO_MAX_BYTES, cut after a whole line. */
	if (len > GO_BUILDINFO_MAX_BYTES) {
		const char *nl = memrchr(mod, '\n', GO_BUILDINFO_MAX_BYTES);
		size_t keep = nl ? (size_t)(nl - mod) + 1 : 0;
		bi->bytes_cut = len - keep;
		len = keep;
	}
	char *copy = strndup(mod, len);
	if (!copy)
		return -ENOMEM;
	for (unsigned char *c = (unsigned char *)copy; *c; c++) /* no terminal escapes */
		if ((*c < 0x20 && *c != '\n' && *c != '\t') || *c == 0x7f)
			*c = '?';
	int rc = 0;
	struct go_module *last = NULL;
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *f[4];
		size_t nf;
		if (strncmp(line, "build\t", 6) == 0) {
			if (bi->n_settings == GO_BUILDINFO_MAX_SETTINGS) {
				bi->settings_cut++;
				continue;
			}
			if (grow((void **)&bi->settings, bi->n_settings, &settings_cap, sizeof(char *)))
				goto nomem;
			if (!(bi->settings[bi->n_settings] = strdup(line + 6)))
				goto nomem;
			bi->n_settings++;
			continue;
		}
		nf = split_tabs(line, f, 4);
		if (strcmp(f[0], "path") == 0 && nf >= 2) {
			free(bi->path);
			if (!(bi->path = strdup(f[1])))
				goto nomem;
		} else if (strcmp(f[0], "mod") == 0 && nf >= 2) {
			module_free(&bi->main);
			if (module_set(&bi->main, f, nf))
				goto nomem;
			last = &bi->main;
		} else if (strcmp(f[0], "dep") == 0 && nf >= 2 && bi->n_deps == GO_BUILDINFO_MAX_DEPS) {
			bi->deps_cut++;
			last = NULL; /* its "=>" line goes with it */
		} else if (strcmp(f[0], "dep") == 0 && nf >= 2) {
			if (grow((void **)&bi->deps, bi->n_deps, &deps_cap, sizeof(*bi->deps)))
				goto nomem;
			struct go_module *d = bi->deps;
			memset(&d[bi->n_deps], 0, sizeof(*d));
			bi->n_deps++;
			last = &d[bi->n_deps - 1];
			if (module_set(last, f, nf))
				goto nomem;
		} else if (strcmp(f[0], "=>") == 0 && nf >= 2 && last) {
			free(last->repl_path);
			free(last->repl_version);
			last->repl_path = strdup(f[1]);
			last->repl_version = strdup(nf > 2 ? f[2] : "");
			if (!last->repl_path || !last->repl_version)
				goto nomem;
		}
	}
	goto out;
nomem:
	rc = -ENOMEM;
out:
	free(copy);
	return rc;
}

/* Reads a Go string header {ptr, len} at vaddr (pre-1.18 build info). */
int go_elf_read_gostring(struct go_elf *ge, uint64_t vaddr, size_t ptrsize, bool be,
			 const char **s, size_t *len)
{
	const uint8_t *h = go_elf_at_vaddr(ge, vaddr, 2 * ptrsize);
	if (!h)
		return go_elf_fail(ge, -EINVAL, "build info: string header at 0x%llx is outside the file",
			    (unsigned long long)vaddr);
	uint64_t p = go_elf_rd(h, ptrsize, be), n = go_elf_rd(h + ptrsize, ptrsize, be);
	if (n > GOSTRING_MAX)
		return go_elf_fail(ge, -EINVAL, "build info: string at 0x%llx claims %llu bytes",
			    (unsigned long long)vaddr, (unsigned long long)n);
	if (n == 0) {
		*s = "";
		*len = 0;
		return 0;
	}
	const uint8_t *d = go_elf_at_vaddr(ge, p, n);
	if (!d)
		return go_elf_fail(ge, -EINVAL, "build info: string data at 0x%llx (+%llu) is outside the file",
			    (unsigned long long)p, (unsigned long long)n);
	*s = (const char *)d;
	*len = n;
	return 0;
}

int go_buildinfo_parse(struct go_elf *ge, uint64_t off, uint64_t size)
{
	struct go_buildinfo *bi = &ge->bi;
	const uint8_t *h = go_elf_at_offset(ge, off, size);
	int rc;
	go_buildinfo_free(bi);
	if (!h || size < 32 || memcmp(h, BUILDINFO_MAGIC, BUILDINFO_MAGIC_LEN) != 0)
		return go_elf_fail(ge, -EINVAL, "build info: no '\\xff Go buildinf:' header at offset 0x%llx",
			    (unsigned long long)off);
	uint8_t ptrsize = h[14], flags = h[15];
	const char *ver, *mod;
	size_t vlen, mlen;
	if (flags & 2) { /* Go 1.18+: two varint-prefixed strings after the header */
		const uint8_t *p = h + 32, *end = h + size;
		uint64_t n;
		if (uvarint(&p, end, &n) || n > (uint64_t)(end - p))
			return go_elf_fail(ge, -EINVAL, "build info: corrupt version string length");
		ver = (const char *)p;
		vlen = n;
		p += n;
		if (uvarint(&p, end, &n) || n > (uint64_t)(end - p))
			return go_elf_fail(ge, -EINVAL, "build info: corrupt module info length");
		mod = (const char *)p;
		mlen = n;
		bi->inline_fmt = true;
	} else { /* before 1.18: pointers to Go string headers */
		if (ptrsize != 4 && ptrsize != 8)
			return go_elf_fail(ge, -EINVAL, "build info: bad pointer size %u", ptrsize);
		bool be = flags & 1;
		uint64_t vp = go_elf_rd(h + 16, ptrsize, be), mp = go_elf_rd(h + 16 + ptrsize, ptrsize, be);
		if ((rc = go_elf_read_gostring(ge, vp, ptrsize, be, &ver, &vlen)))
			return rc;
		if ((rc = go_elf_read_gostring(ge, mp, ptrsize, be, &mod, &mlen)))
			return rc;
	}
	if (vlen > GO_BUILDINFO_MAX_VERSION) { /* no Go version is that long: keep its start */
		bi->bytes_cut += vlen - GO_BUILDINFO_MAX_VERSION;
		vlen = GO_BUILDINFO_MAX_VERSION;
	}
	if (vlen) {
		if (!(bi->go_version = strndup(ver, vlen)))
			return -ENOMEM;
		for (unsigned char *c = (unsigned char *)bi->go_version; *c; c++)
			if (*c < 0x20 || *c >= 0x7f) /* keep it printable */
				*c = '?';
	}
	if ((rc = modinfo_parse(bi, mod, mlen)))
		return rc;
	bi->present = true;
	return 0;
}

