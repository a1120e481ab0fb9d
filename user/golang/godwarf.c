/* Struct field offsets from DWARF with libdw. See godwarf.h. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "godwarf.h"

/* Records the members of one struct DIE that are asked for. */
static void scan_struct(Dwarf_Die *st, const char *name, struct go_dwarf_field *fields,
			size_t n, size_t *found)
{
	bool wanted = false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(fields[i].strct, name) == 0 && !fields[i].struct_found) {
			fields[i].struct_found = true;
			wanted = true;
		}
	}
	if (!wanted)
		return;
	Dwarf_Die m;
	if (dwarf_child(st, &m) != 0)
		return;
	do {
		if (dwarf_tag(&m) != DW_TAG_member)
			continue;
		const char *mn = dwarf_diename(&m);
		if (!mn)
			continue;
		for (size_t i = 0; i < n; i++) {
			if (fields[i].offset >= 0 || strcmp(fields[i].strct, name) != 0 ||
			    strcmp(fields[i].field, mn) != 0)
				continue;
			Dwarf_Attribute a;
			Dwarf_Word off;
			if (!dwarf_attr(&m, DW_AT_data_member_location, &a) ||
			    dwarf_formudata(&a, &off) != 0 || off > INT32_MAX)
				continue;
			fields[i].offset = (int64_t)off;
			(*found)++;
		}
	} while (dwarf_siblingof(&m, &m) == 0);
}

int go_dwarf_struct_offsets(void *elf, struct go_dwarf_field *fields, size_t n, char *err,
			    size_t errlen)
{
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		fields[i].offset = -1;
		fields[i].struct_found = false;
	}
	Dwarf *dw = dwarf_begin_elf(elf, DWARF_C_READ, NULL);
	if (!dw) {
		int e = dwarf_errno();
		snprintf(err, errlen, "no usable DWARF: %s", dwarf_errmsg(e));
		return -ENODATA;
	}
	Dwarf_Off off = 0, next;
	size_t hsize;
	int rc = 0;
	while (found < n && (rc = dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL)) == 0) {
		Dwarf_Die cu, d;
		if (!dwarf_offdie(dw, off + hsize, &cu))
			goto next_cu;
		if (dwarf_child(&cu, &d) != 0)
			goto next_cu;
		do {
			if (dwarf_tag(&d) != DW_TAG_structure_type)
				continue;
			const char *name = dwarf_diename(&d);
			if (name)
				scan_struct(&d, name, fields, n, &found);
		} while (found < n && dwarf_siblingof(&d, &d) == 0);
next_cu:
		off = next;
	}
	if (rc < 0) {
		snprintf(err, errlen, "corrupt DWARF unit list: %s", dwarf_errmsg(-1));
		dwarf_end(dw);
		return -EINVAL;
	}
	dwarf_end(dw);
	return (int)found;
}
