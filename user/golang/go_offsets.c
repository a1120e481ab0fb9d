/* Go struct field offsets: DWARF first, then the generated table. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GO_OFFSETS_TABLE_ROWS
#include "go_offsets.h"
#include "godwarf.h"

#define NROWS (sizeof(go_offsets_rows) / sizeof(go_offsets_rows[0]))

_Static_assert(GO_FIELD__COUNT == GO_OFFSETS_NFIELDS, "field list and table disagree");

static const char *const field_structs[] = {
#define S_(id, s, f) s,
	GO_OFFSET_FIELDS(S_)
#undef S_
};
static const char *const field_names[] = {
#define F_(id, s, f) f,
	GO_OFFSET_FIELDS(F_)
#undef F_
};

const char *go_field_struct(enum go_field f)
{
	return f < GO_FIELD__COUNT ? field_structs[f] : "?";
}

const char *go_field_name(enum go_field f)
{
	return f < GO_FIELD__COUNT ? field_names[f] : "?";
}

const char *go_off_source_name(enum go_off_source s)
{
	switch (s) {
	case GO_OFF_DWARF: return "DWARF";
	case GO_OFF_TABLE: return "table";
	case GO_OFF_TABLE_NEAREST: return "table (nearest version)";
	case GO_OFF_ABSENT: return "not in this Go version";
	default: return "missing";
	}
}

const struct go_offsets_row *go_offsets_table_get(size_t i)
{
	return i < NROWS ? &go_offsets_rows[i] : NULL;
}

const struct go_offsets_row *go_offsets_table_row(const char *goarch, int major, int minor,
						  bool *exact)
{
	const struct go_offsets_row *best = NULL;
	long best_d = 0;
	*exact = false;
	for (size_t i = 0; i < NROWS; i++) {
		const struct go_offsets_row *r = &go_offsets_rows[i];
		if (strcmp(r->goarch, goarch) != 0)
			continue;
		long d = (long)(r->major - major) * 1000 + (r->minor - minor);
		if (d == 0) {
			*exact = true;
			return r;
		}
		long ad = labs(d);
		/* nearest; on a tie the older version (its layout carried forward) */
		if (!best || ad < labs(best_d) || (ad == labs(best_d) && d < 0)) {
			best = r;
			best_d = d;
		}
	}
	return best;
}

/* Does field f have the same offset in every row for goarch? */
static bool field_stable(const char *goarch, size_t f)
{
	int32_t v = 0;
	bool seen = false;
	for (size_t i = 0; i < NROWS; i++) {
		if (strcmp(go_offsets_rows[i].goarch, goarch) != 0)
			continue;
		if (seen && go_offsets_rows[i].off[f] != v)
			return false;
		v = go_offsets_rows[i].off[f];
		seen = true;
	}
	return true;
}

__attribute__((format(printf, 2, 3))) static void warn_add(struct go_offsets *o, const char *fmt,
							  ...)
{
	size_t len = strlen(o->warning);
	if (len + 1 >= sizeof(o->warning))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->warning + len, sizeof(o->warning) - len, fmt, ap);
	va_end(ap);
}

static void known_versions(const char *goarch, char *buf, size_t len)
{
	size_t k = 0;
	buf[0] = 0;
	for (size_t i = 0; i < NROWS && k < len; i++) {
		const struct go_offsets_row *r = &go_offsets_rows[i];
		if (strcmp(r->goarch, goarch) != 0)
			continue;
		int n = snprintf(buf + k, len - k, "%sgo%d.%d", k ? ", " : "", r->major, r->minor);
		if (n < 0)
			break;
		k += (size_t)n;
	}
	if (!buf[0])
		snprintf(buf, len, "none");
}

int go_offsets_resolve(struct go_elf *ge, struct go_offsets *out)
{
	struct go_dwarf_field df[GO_FIELD__COUNT];
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < GO_FIELD__COUNT; i++) {
		out->f[i].value = -1;
		out->f[i].source = GO_OFF_MISSING;
		df[i].strct = field_structs[i];
		df[i].field = field_names[i];
	}

	if (!ge->is_go) {
		warn_add(out, "%s is not a Go executable", ge->path);
		return GO_FIELD__COUNT;
	}

	/* 1. DWARF */
	out->dwarf_rc = -ENODATA;
	if (ge->has_dwarf) {
		char err[256];
		out->dwarf_rc = go_dwarf_struct_offsets(ge->elf, df, GO_FIELD__COUNT, err, sizeof(err));
		if (out->dwarf_rc >= 0) {
			for (size_t i = 0; i < GO_FIELD__COUNT; i++) {
				if (df[i].offset >= 0) {
					out->f[i].value = df[i].offset;
					out->f[i].source = GO_OFF_DWARF;
				}
			}
		} else {
			warn_add(out, "DWARF unreadable (%s); ", err);
		}
	}
	size_t missing = 0;
	for (size_t i = 0; i < GO_FIELD__COUNT; i++)
		missing += out->f[i].source == GO_OFF_MISSING;
	if (!missing)
		return 0;

	/* 2. the table */
	const char *arch = go_elf_goarch(ge);
	char known[256];
	known_versions(arch, known, sizeof(known));
	int ma = 0, mi = 0, pa = 0;
	bool have_ver = ge->go_version && go_version_parse(ge->go_version, &ma, &mi, &pa) == 0;
	const struct go_offsets_row *row;
	bool exact = false;
	if (have_ver) {
		row = go_offsets_table_row(arch, ma, mi, &exact);
	} else {
		row = go_offsets_table_row(arch, 999, 0, &exact); /* newest */
		exact = false;
	}
	if (!row) {
		warn_add(out, "weft's offsets table has no rows for GOARCH=%s; %zu field(s) missing "
			 "without DWARF", arch, missing);
		return (int)missing;
	}
	out->row = row;
	out->row_exact = exact;
	char doubtful[512] = "";
	size_t nd = 0, used = 0;
	for (size_t i = 0; i < GO_FIELD__COUNT; i++) {
		if (out->f[i].source != GO_OFF_MISSING)
			continue;
		if (row->off[i] < 0) {
			/* The toolchain of this very version has no such field (g.parentGoid
			 * before Go 1.21): weft does without it. */
			if (exact)
				out->f[i].source = GO_OFF_ABSENT;
			continue;
		}
		out->f[i].value = row->off[i];
		out->f[i].source = exact ? GO_OFF_TABLE : GO_OFF_TABLE_NEAREST;
		used++;
		if (!exact && !field_stable(arch, i)) {
			size_t l = strlen(doubtful);
			snprintf(doubtful + l, sizeof(doubtful) - l, "%s%s.%s", nd ? ", " : "",
				 field_structs[i], field_names[i]);
			nd++;
		}
	}
	if (!exact && used) {
		if (have_ver)
			warn_add(out, "%s is not in weft's offsets table (%s: %s); using go%d.%d's "
				 "layout. ", ge->go_version, arch, known, row->major, row->minor);
		else
			warn_add(out, "Go version unknown; using the newest table layout (go%d.%d). ",
				 row->major, row->minor);
		if (nd)
			warn_add(out, "These fields differ between known versions and may be wrong: "
				 "%s. Regenerate the table with scripts/gen_go_offsets using that "
				 "toolchain.", doubtful);
		else
			warn_add(out, "Every field used has the same offset in all known versions, "
				 "but a newer layout may still differ.");
	}
	missing = 0;
	for (size_t i = 0; i < GO_FIELD__COUNT; i++)
		missing += out->f[i].source == GO_OFF_MISSING;
	return (int)missing;
}
