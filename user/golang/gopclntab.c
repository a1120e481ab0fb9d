/* Go pclntab function table reader. See gopclntab.h for the formats.
 * Layouts (offsets in bytes, P = pointer size):
 *   header: magic u32, 0, 0, quantum u8, ptrsize u8, then P-sized words:
 *     1.2:   nfunc; functab follows at 8+P
 *     1.16:  nfunc, nfiles, funcnameOff, cuOff, filetabOff, pctabOff, pclnOff
 *     1.18+: nfunc, nfiles, textStart, funcnameOff, cuOff, filetabOff, pctabOff, pclnOff
 *   functab: nfunc x (entry, funcoff) then one end entry.
 *     1.2/1.16: P-sized fields; 1.18+: u32 fields, entry relative to textStart
 *     funcoff: 1.2 relative to the table start, else to functab
 *   _func: entry (P, or u32 entryOff for 1.18+), nameOff i32
 *     nameOff: 1.2 relative to the table start, else to funcnametab */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gopclntab.h"

static uint64_t rd(const uint8_t *p, size_t n, bool be)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		size_t k = be ? i : n - 1 - i;
		v = (v << 8) | p[k];
	}
	return v;
}

const char *go_pclntab_version_name(enum go_pcln_version v)
{
	switch (v) {
	case GO_PCLN_12: return "go1.2";
	case GO_PCLN_116: return "go1.16";
	case GO_PCLN_118: return "go1.18";
	case GO_PCLN_120: return "go1.20";
	default: return "unknown";
	}
}

static enum go_pcln_version magic_version(uint32_t m)
{
	switch (m) {
	case GO_PCLN_MAGIC_12: return GO_PCLN_12;
	case GO_PCLN_MAGIC_116: return GO_PCLN_116;
	case GO_PCLN_MAGIC_118: return GO_PCLN_118;
	case GO_PCLN_MAGIC_120: return GO_PCLN_120;
	default: return GO_PCLN_UNKNOWN;
	}
}

static bool header_ok(const uint8_t *data, size_t size, bool *be)
{
	if (!data || size < 16)
		return false;
	if (data[4] != 0 || data[5] != 0)
		return false;
	uint8_t q = data[6], p = data[7];
	if (q != 1 && q != 2 && q != 4)
		return false;
	if (p != 4 && p != 8)
		return false;
	if (magic_version((uint32_t)rd(data, 4, false)) != GO_PCLN_UNKNOWN) {
		*be = false;
		return true;
	}
	if (magic_version((uint32_t)rd(data, 4, true)) != GO_PCLN_UNKNOWN) {
		*be = true;
		return true;
	}
	return false;
}

bool go_pclntab_header_ok(const uint8_t *data, size_t size)
{
	bool be;
	return header_ok(data, size, &be);
}

/* a + b * c <= lim without overflow */
static bool fits(uint64_t a, uint64_t b, uint64_t c, uint64_t lim)
{
	if (c && b > (UINT64_MAX - a) / c)
		return false;
	return a + b * c <= lim;
}

int go_pclntab_parse(const uint8_t *data, size_t size, struct go_pclntab *t, char *err,
		     size_t errlen)
{
	bool be = false;
	memset(t, 0, sizeof(*t));
	if (!header_ok(data, size, &be)) {
		snprintf(err, errlen, "pclntab: bad header (%zu bytes; magic/pad/quantum/ptrsize)",
			 size);
		return -EINVAL;
	}
	t->data = data;
	t->size = size;
	t->big_endian = be;
	t->version = magic_version((uint32_t)rd(data, 4, be));
	t->quantum = data[6];
	t->ptrsize = data[7];
	size_t P = t->ptrsize;
	size_t nwords = t->version == GO_PCLN_12 ? 1 : t->version == GO_PCLN_116 ? 7 : 8;
	if (!fits(8, nwords, P, size)) {
		snprintf(err, errlen, "pclntab: truncated header (%zu bytes)", size);
		return -EINVAL;
	}
#define W(i) rd(data + 8 + (size_t)(i) * P, P, be)
	t->nfunc = W(0);
	uint64_t functab_off, funcname_off = 0, cu_off = 0;
	switch (t->version) {
	case GO_PCLN_12:
		functab_off = 8 + P;
		t->field_size = P;
		break;
	case GO_PCLN_116:
		funcname_off = W(2);
		cu_off = W(3);
		functab_off = W(6);
		t->field_size = P;
		break;
	default: /* 1.18, 1.20 */
		t->text_start = W(2);
		t->text_start_field = 8 + 2 * P;
		funcname_off = W(3);
		cu_off = W(4);
		functab_off = W(7);
		t->field_size = 4;
		break;
	}
#undef W
	if (t->nfunc == 0) {
		snprintf(err, errlen, "pclntab: %s table lists no functions",
			 go_pclntab_version_name(t->version));
		return -EINVAL;
	}
	/* functab: nfunc pairs plus the end entry */
	if (functab_off >= size || t->nfunc > (UINT64_MAX / 2 - 1) ||
	    !fits(functab_off, t->nfunc * 2 + 1, t->field_size, size)) {
		snprintf(err, errlen,
			 "pclntab: function table (%llu functions at offset %llu) exceeds the "
			 "%zu-byte section",
			 (unsigned long long)t->nfunc, (unsigned long long)functab_off, size);
		return -EINVAL;
	}
	t->functab = data + functab_off;
	t->functab_size = (t->nfunc * 2 + 1) * t->field_size;
	if (t->version == GO_PCLN_12) {
		t->funcdata = data;
		t->funcdata_size = size;
		t->funcnames = data;
		t->funcnames_size = size;
	} else {
		if (funcname_off >= size) {
			snprintf(err, errlen, "pclntab: function name table offset %llu outside the "
				 "%zu-byte section", (unsigned long long)funcname_off, size);
			return -EINVAL;
		}
		t->funcdata = t->functab;
		t->funcdata_size = size - functab_off;
		t->funcnames = data + funcname_off;
		t->funcnames_size = size - funcname_off;
		/* the name table ends where the compilation-unit table starts */
		if (cu_off > funcname_off && cu_off <= size)
			t->funcnames_size = cu_off - funcname_off;
	}
	return 0;
}

static uint64_t ft_field(const struct go_pclntab *t, uint64_t idx)
{
	return rd(t->functab + idx * t->field_size, t->field_size, t->big_endian);
}

static uint64_t ft_entry(const struct go_pclntab *t, uint64_t i)
{
	uint64_t v = ft_field(t, 2 * i);
	if (t->version >= GO_PCLN_118)
		v += t->text_start;
	return v;
}

/* Where function i's name starts in the name table (no entry validation):
 * 0, or -EINVAL if its _func record or name offset is out of bounds. */
static int func_name_off(const struct go_pclntab *t, uint64_t i, size_t *name_off,
			 uint64_t *entry_out)
{
	uint64_t funcoff = ft_field(t, 2 * i + 1);
	size_t esz = t->version >= GO_PCLN_118 ? 4 : t->ptrsize;
	if (funcoff >= t->funcdata_size || t->funcdata_size - funcoff < esz + 4)
		return -EINVAL;
	const uint8_t *f = t->funcdata + funcoff;
	uint64_t fentry = rd(f, esz, t->big_endian);
	if (t->version >= GO_PCLN_118)
		fentry += t->text_start;
	int32_t nameoff = (int32_t)rd(f + esz, 4, t->big_endian);
	if (nameoff < 0 || (uint64_t)nameoff >= t->funcnames_size)
		return -EINVAL;
	*name_off = (size_t)nameoff;
	*entry_out = fentry;
	return 0;
}

/* Bytes a name may span from off: the rest of the name table, at most
 * GO_PCLN_NAME_MAX (+ its NUL). Every search stays within it, so looking at
 * all functions costs at most nfunc times that, never nfunc times the file. */
static size_t name_room(const struct go_pclntab *t, size_t off)
{
	size_t room = t->funcnames_size - off;
	return room > GO_PCLN_NAME_MAX + 1 ? GO_PCLN_NAME_MAX + 1 : room;
}

/* Name only (no end/entry validation). */
static const char *func_name(const struct go_pclntab *t, uint64_t i, uint64_t *entry_out)
{
	size_t off;
	if (func_name_off(t, i, &off, entry_out))
		return NULL;
	const char *name = (const char *)t->funcnames + off;
	if (!memchr(name, 0, name_room(t, off)))
		return NULL;
	return name;
}

/* Function i's name is exactly want (len bytes + NUL): compares len + 1
 * bytes at most, whatever the table holds. -EINVAL if the record is corrupt. */
static int func_name_is(const struct go_pclntab *t, uint64_t i, const char *want, size_t len)
{
	size_t off;
	uint64_t fentry;
	if (func_name_off(t, i, &off, &fentry))
		return -EINVAL;
	size_t room = t->funcnames_size - off;
	if (len + 1 > room) /* a shorter name, else one that runs off the table */
		return memchr(t->funcnames + off, 0, room) ? 0 : -EINVAL;
	return memcmp(t->funcnames + off, want, len + 1) == 0;
}

int go_pclntab_func(const struct go_pclntab *t, uint64_t i, struct go_pcln_func *f)
{
	if (!t->functab || i >= t->nfunc)
		return -EINVAL;
	size_t off;
	uint64_t fentry, entry = ft_entry(t, i), end = ft_entry(t, i + 1);
	/* the _func record repeats the entry: a cheap integrity check, first */
	if (func_name_off(t, i, &off, &fentry) || fentry != entry || end <= entry)
		return -EINVAL;
	const char *name = func_name(t, i, &fentry);
	if (!name)
		return -EINVAL;
	f->entry = entry;
	f->end = end;
	f->name = name;
	return 0;
}

int go_pclntab_find(const struct go_pclntab *t, const char *name, struct go_pcln_func *f)
{
	uint64_t corrupt = 0;
	size_t len = strlen(name);
	if (!t->functab || len > GO_PCLN_NAME_MAX)
		return -EINVAL;
	for (uint64_t i = 0; i < t->nfunc; i++) {
		int is = func_name_is(t, i, name, len);
		if (is < 0) {
			corrupt++;
			continue;
		}
		if (!is)
			continue;
		int r = go_pclntab_func(t, i, f);
		if (r == 0)
			return 0;
		corrupt++;
	}
	return corrupt ? -EINVAL : -ENOENT;
}
