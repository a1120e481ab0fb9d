/* RET instructions of a function via capstone. See goasm.h. */
#include <capstone/capstone.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "goasm.h"

#define FUNC_MAX_BYTES (16u << 20)

static int push(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 8;
		uint64_t *p = realloc(*v, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = x;
	return 0;
}

int go_asm_find_rets(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
		     uint64_t **addrs, size_t *n)
{
	cs_arch arch;
	cs_mode mode;
	unsigned ret_id, skip;
	switch (machine) {
	case EM_X86_64:
		arch = CS_ARCH_X86;
		mode = CS_MODE_64;
		ret_id = X86_INS_RET;
		skip = 1;
		break;
	case EM_AARCH64:
		arch = CS_ARCH_ARM64;
		mode = CS_MODE_ARM;
		ret_id = ARM64_INS_RET;
		skip = 4;
		break;
	default:
		return -ENOTSUP;
	}
	*addrs = NULL;
	*n = 0;
	csh h;
	if (cs_open(arch, mode, &h) != CS_ERR_OK)
		return -ENOTSUP;
	int rc = 0;
	size_t cap = 0;
	cs_insn *insn = cs_malloc(h);
	if (!insn) {
		rc = -ENOMEM;
		goto out;
	}
	const uint8_t *p = code;
	size_t left = len;
	uint64_t a = addr;
	while (left > 0) {
		if (cs_disasm_iter(h, &p, &left, &a, insn)) {
			if (insn->id == ret_id && (rc = push(addrs, n, &cap, insn->address)))
				goto out;
			continue;
		}
		/* undecodable bytes: step over them and resynchronise */
		size_t s = left < skip ? left : skip;
		p += s;
		left -= s;
		a += s;
	}
out:
	if (insn)
		cs_free(insn, 1);
	cs_close(&h);
	if (rc) {
		free(*addrs);
		*addrs = NULL;
		*n = 0;
		return rc;
	}
	return (int)*n;
}

int go_func_ret_offsets(struct go_elf *ge, const struct go_func *fn, uint64_t **offsets,
			size_t *n)
{
	*offsets = NULL;
	*n = 0;
	if (fn->size == 0 || fn->size > FUNC_MAX_BYTES) {
		snprintf(ge->err, sizeof(ge->err), "function at 0x%llx has implausible size %llu",
			 (unsigned long long)fn->addr, (unsigned long long)fn->size);
		return -EINVAL;
	}
	const uint8_t *code = go_elf_at_offset(ge, fn->offset, fn->size);
	if (!code) {
		snprintf(ge->err, sizeof(ge->err),
			 "function at 0x%llx (file offset 0x%llx, %llu bytes) is outside the file",
			 (unsigned long long)fn->addr, (unsigned long long)fn->offset,
			 (unsigned long long)fn->size);
		return -EINVAL;
	}
	uint64_t *addrs;
	int rc = go_asm_find_rets(ge->machine, code, fn->size, fn->addr, &addrs, n);
	if (rc == -ENOTSUP) {
		snprintf(ge->err, sizeof(ge->err), "no disassembler for %s binaries",
			 go_elf_goarch(ge));
		return rc;
	}
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < *n; i++)
		addrs[i] = fn->offset + (addrs[i] - fn->addr);
	*offsets = addrs;
	return rc;
}
