/* Capstone disassembly of Go functions: RET instructions, data references.
 * See goasm.h. */
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

/* Calls visit for every instruction capstone decodes in code at addr
 * (undecodable bytes are stepped over and decoding resumes), until visit
 * returns non-zero, which is returned. 0, -ENOTSUP (machine), -ENOMEM. */
static int disasm_each(uint16_t machine, bool detail, const uint8_t *code, size_t len, uint64_t addr,
		       int (*visit)(const cs_insn *insn, void *ctx), void *ctx)
{
	cs_arch arch;
	cs_mode mode;
	unsigned skip;
	switch (machine) {
	case EM_X86_64:
		arch = CS_ARCH_X86;
		mode = CS_MODE_64;
		skip = 1;
		break;
	case EM_AARCH64:
		arch = CS_ARCH_ARM64;
		mode = CS_MODE_ARM;
		skip = 4;
		break;
	default:
		return -ENOTSUP;
	}
	csh h;
	if (cs_open(arch, mode, &h) != CS_ERR_OK)
		return -ENOTSUP;
	if (detail)
		cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	int rc = 0;
	cs_insn *insn = cs_malloc(h);
	if (!insn) {
		rc = -ENOMEM;
		goto out;
	}
	const uint8_t *p = code;
	size_t left = len;
	uint64_t a = addr;
	while (left > 0 && !rc) {
		if (cs_disasm_iter(h, &p, &left, &a, insn)) {
			rc = visit(insn, ctx);
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
	return rc;
}

struct addr_list {
	uint64_t *v;
	size_t n, cap;
	unsigned insn_id; /* the RET instruction */
};

static int visit_ret(const cs_insn *insn, void *ctx)
{
	struct addr_list *l = ctx;
	return insn->id == l->insn_id ? push(&l->v, &l->n, &l->cap, insn->address) : 0;
}

static int finish(struct addr_list *l, int rc, uint64_t **out, size_t *n)
{
	if (rc) {
		free(l->v);
		*out = NULL;
		*n = 0;
		return rc;
	}
	*out = l->v;
	*n = l->n;
	return (int)l->n;
}

int go_asm_find_rets(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
		     uint64_t **addrs, size_t *n)
{
	struct addr_list l = { .insn_id = machine == EM_AARCH64 ? ARM64_INS_RET : X86_INS_RET };
	return finish(&l, disasm_each(machine, false, code, len, addr, visit_ret, &l), addrs, n);
}

/* The bytes of fn, or NULL (message in ge->err) if implausible or outside the file. */
static const uint8_t *func_code(struct go_elf *ge, const struct go_func *fn)
{
	if (fn->size == 0 || fn->size > FUNC_MAX_BYTES) {
		snprintf(ge->err, sizeof(ge->err), "function at 0x%llx has implausible size %llu",
			 (unsigned long long)fn->addr, (unsigned long long)fn->size);
		return NULL;
	}
	const uint8_t *code = go_elf_at_offset(ge, fn->offset, fn->size);
	if (!code)
		snprintf(ge->err, sizeof(ge->err),
			 "function at 0x%llx (file offset 0x%llx, %llu bytes) is outside the file",
			 (unsigned long long)fn->addr, (unsigned long long)fn->offset,
			 (unsigned long long)fn->size);
	return code;
}

static void no_disasm(struct go_elf *ge)
{
	snprintf(ge->err, sizeof(ge->err), "no disassembler for %s binaries", go_elf_goarch(ge));
}

/* A function-relative result to file offsets: the finder's rc and the
 * addresses it found in fn's code (addrs, n). Names the machine in ge->err
 * when there is no disassembler for it. */
static int to_file_offsets(struct go_elf *ge, const struct go_func *fn, int rc, uint64_t *addrs,
			   size_t n, uint64_t **offsets)
{
	if (rc == -ENOTSUP)
		no_disasm(ge);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		addrs[i] = fn->offset + (addrs[i] - fn->addr);
	*offsets = addrs;
	return rc;
}

int go_func_ret_offsets(struct go_elf *ge, const struct go_func *fn, uint64_t **offsets,
			size_t *n)
{
	*offsets = NULL;
	*n = 0;
	const uint8_t *code = func_code(ge, fn);
	if (!code)
		return -EINVAL;
	uint64_t *addrs;
	int rc = go_asm_find_rets(ge->machine, code, fn->size, fn->addr, &addrs, n);
	return to_file_offsets(ge, fn, rc, addrs, *n, offsets);
}

/* ---- direct calls -------------------------------------------------------- */

struct call_scan {
	struct addr_list l;
	uint64_t target;
	bool x86;
};

static int visit_call(const cs_insn *insn, void *ctx)
{
	struct call_scan *s = ctx;
	if (insn->id != (s->x86 ? X86_INS_CALL : ARM64_INS_BL))
		return 0;
	uint64_t to;
	if (s->x86) {
		const cs_x86 *x = &insn->detail->x86;
		if (x->op_count != 1 || x->operands[0].type != X86_OP_IMM)
			return 0; /* indirect */
		to = (uint64_t)x->operands[0].imm;
	} else {
		const cs_arm64 *a = &insn->detail->arm64;
		if (a->op_count != 1 || a->operands[0].type != ARM64_OP_IMM)
			return 0;
		to = (uint64_t)a->operands[0].imm;
	}
	return to == s->target ? push(&s->l.v, &s->l.n, &s->l.cap, insn->address) : 0;
}

int go_asm_find_calls(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
		      uint64_t target, uint64_t **addrs, size_t *n)
{
	struct call_scan s = { .target = target, .x86 = machine == EM_X86_64 };
	return finish(&s.l, disasm_each(machine, true, code, len, addr, visit_call, &s), addrs, n);
}

int go_func_call_offsets(struct go_elf *ge, const struct go_func *fn, const struct go_func *callee,
			 uint64_t **offsets, size_t *n)
{
	*offsets = NULL;
	*n = 0;
	const uint8_t *code = func_code(ge, fn);
	if (!code)
		return -EINVAL;
	uint64_t *addrs;
	int rc = go_asm_find_calls(ge->machine, code, fn->size, fn->addr, callee->addr, &addrs, n);
	return to_file_offsets(ge, fn, rc, addrs, *n, offsets);
}

int go_newproc_runqput_call(struct go_elf *ge, uint64_t *offset)
{
	struct go_func closure, runqput;
	int rc = go_elf_find_func(ge, "runtime.newproc.func1", &closure);
	if (!rc)
		rc = go_elf_find_func(ge, "runtime.runqput", &runqput);
	if (rc)
		return rc;
	uint64_t *calls;
	size_t n;
	rc = go_func_call_offsets(ge, &closure, &runqput, &calls, &n);
	if (rc < 0)
		return rc;
	if (n != 1) {
		snprintf(ge->err, sizeof(ge->err), "runtime.newproc.func1 has %zu direct calls to runtime.runqput, "
			 "not 1", n);
		free(calls);
		return -ESRCH;
	}
	*offset = calls[0];
	free(calls);
	return 0;
}

/* ---- where an entry uprobe costs least ----------------------------------- */

#define PROLOGUE_BYTES 64u
#define PROLOGUE_INSNS 6

struct prologue_scan {
	uint64_t push_addr; /* the frame's PUSH RBP, 0 until found */
	uint64_t jcc_addr;  /* the bound check's jump to morestack, 0 until found */
	unsigned seen;
};

/* Go's x86-64 prologue: the stack bound check (CMP RSP, or LEA R12 + CMP
 * R12, against g.stackguard0, then a conditional jump to morestack), then
 * PUSH RBP (Go >= 1.21) or SUB RSP + MOV [RSP+N], RBP (older). None of it
 * writes an argument register or R14 (g). */
static int visit_prologue(const cs_insn *insn, void *ctx)
{
	struct prologue_scan *s = ctx;
	if (++s->seen > PROLOGUE_INSNS)
		return 1;
	const cs_x86 *x = &insn->detail->x86;
	switch (insn->id) {
	case X86_INS_PUSH:
		if (x->op_count == 1 && x->operands[0].type == X86_OP_REG && x->operands[0].reg == X86_REG_RBP)
			s->push_addr = insn->address;
		return 1;
	case X86_INS_CMP:
		return 0;
	case X86_INS_LEA:
		return x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
			       (x->operands[0].reg == X86_REG_R12 || x->operands[0].reg == X86_REG_R13)
			       ? 0
			       : 1;
	case X86_INS_JBE:
	case X86_INS_JB:
	case X86_INS_JAE:
	case X86_INS_JA:
		if (!s->jcc_addr)
			s->jcc_addr = insn->address;
		return 0;
	default:
		return 1;
	}
}

int go_asm_entry_probe_addr(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
			    uint64_t *probe_addr)
{
	*probe_addr = addr;
	if (machine != EM_X86_64)
		return 0;
	struct prologue_scan s = { 0 };
	int rc = disasm_each(machine, true, code, len < PROLOGUE_BYTES ? len : PROLOGUE_BYTES, addr,
			     visit_prologue, &s);
	if (rc < 0)
		return rc;
	if (s.push_addr)
		*probe_addr = s.push_addr;
	else if (s.jcc_addr)
		*probe_addr = s.jcc_addr;
	return 0;
}

int go_func_entry_probe_offset(struct go_elf *ge, const struct go_func *fn, uint64_t *offset)
{
	*offset = fn->offset;
	const uint8_t *code = func_code(ge, fn);
	if (!code)
		return -EINVAL;
	uint64_t a;
	int rc = go_asm_entry_probe_addr(ge->machine, code, fn->size, fn->addr, &a);
	if (rc < 0)
		return rc;
	*offset = fn->offset + (a - fn->addr);
	return 0;
}

/* ---- data references ------------------------------------------------------ */

static int push_ref(struct go_asm_ref **v, size_t *n, size_t *cap, uint64_t target,
		    uint64_t insn, bool mem)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct go_asm_ref *p = realloc(*v, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = (struct go_asm_ref){.target = target, .insn = insn, .mem = mem};
	return 0;
}

/* x86-64: every operand [rip + disp]. */
static int x86_refs(const cs_insn *insn, struct go_asm_ref **refs, size_t *n, size_t *cap)
{
	const cs_x86 *x = &insn->detail->x86;
	for (unsigned i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];
		if (op->type != X86_OP_MEM || op->mem.base != X86_REG_RIP ||
		    op->mem.index != X86_REG_INVALID)
			continue;
		uint64_t t = insn->address + insn->size + (uint64_t)op->mem.disp;
		int rc = push_ref(refs, n, cap, t, insn->address, insn->id != X86_INS_LEA);
		if (rc)
			return rc;
	}
	return 0;
}

/* arm64: Go's assembler materialises an address with ADRP Xn, page, then
 * either uses it at once as [Xn, #lo12] or adds ADD Xd, Xn, #lo12 (an address,
 * perhaps used at once as [Xd] by the next instruction: Go 1.19 does that).
 * *reg / *val: the register holding a known address after the previous
 * instruction (ARM64_REG_INVALID if none); updated for the next one. */
static int arm64_refs(const cs_insn *insn, unsigned *reg, uint64_t *val,
		      struct go_asm_ref **refs, size_t *n, size_t *cap)
{
	const cs_arm64 *a = &insn->detail->arm64;
	unsigned r = *reg;
	uint64_t v = *val;
	*reg = ARM64_REG_INVALID;
	if (insn->id == ARM64_INS_ADRP) {
		if (a->op_count == 2 && a->operands[0].type == ARM64_OP_REG &&
		    a->operands[1].type == ARM64_OP_IMM) {
			*reg = a->operands[0].reg;
			*val = (uint64_t)a->operands[1].imm;
		}
		return 0;
	}
	if (r == ARM64_REG_INVALID)
		return 0;
	if (insn->id == ARM64_INS_ADD) {
		if (a->op_count == 3 && a->operands[0].type == ARM64_OP_REG &&
		    a->operands[1].type == ARM64_OP_REG && a->operands[1].reg == r &&
		    a->operands[2].type == ARM64_OP_IMM) {
			uint64_t imm = (uint64_t)a->operands[2].imm;
			if (a->operands[2].shift.type == ARM64_SFT_LSL && a->operands[2].shift.value < 64)
				imm <<= a->operands[2].shift.value;
			*reg = a->operands[0].reg;
			*val = v + imm;
			return push_ref(refs, n, cap, v + imm, insn->address, false);
		}
		return 0;
	}
	for (unsigned i = 0; i < a->op_count; i++) {
		const cs_arm64_op *op = &a->operands[i];
		if (op->type != ARM64_OP_MEM || op->mem.base != r ||
		    op->mem.index != ARM64_REG_INVALID)
			continue;
		int rc = push_ref(refs, n, cap, v + (uint64_t)(int64_t)op->mem.disp, insn->address,
				  true);
		if (rc)
			return rc;
	}
	return 0;
}

struct refs_walk {
	struct go_asm_ref **refs;
	size_t *n, cap;
	bool x86;
	unsigned page_reg; /* arm64: see arm64_refs */
	uint64_t page;
	uint64_t next;	   /* where the previous instruction ended */
};

static int visit_refs(const cs_insn *insn, void *ctx)
{
	struct refs_walk *w = ctx;
	if (insn->address != w->next)
		w->page_reg = ARM64_REG_INVALID; /* undecodable bytes in between: no ADRP pairs across */
	w->next = insn->address + insn->size;
	if (w->x86)
		return x86_refs(insn, w->refs, w->n, &w->cap);
	return arm64_refs(insn, &w->page_reg, &w->page, w->refs, w->n, &w->cap);
}

int go_asm_data_refs(uint16_t machine, const uint8_t *code, size_t len, uint64_t addr,
		     struct go_asm_ref **refs, size_t *n)
{
	struct refs_walk w = { .refs = refs, .n = n, .x86 = machine == EM_X86_64,
			       .page_reg = ARM64_REG_INVALID, .next = addr };
	*refs = NULL;
	*n = 0;
	int rc = disasm_each(machine, true, code, len, addr, visit_refs, &w);
	if (rc) {
		free(*refs);
		*refs = NULL;
		*n = 0;
		return rc;
	}
	return (int)*n;
}

int go_func_data_refs(struct go_elf *ge, const struct go_func *fn, struct go_asm_ref **refs,
		      size_t *n)
{
	*refs = NULL;
	*n = 0;
	const uint8_t *code = func_code(ge, fn);
	if (!code)
		return -EINVAL;
	int rc = go_asm_data_refs(ge->machine, code, fn->size, fn->addr, refs, n);
	if (rc == -ENOTSUP)
		no_disasm(ge);
	return rc;
}
