/* tls_entry.h: capstone over a function's instructions. */
#include <capstone/capstone.h>
#include <stdbool.h>

#include "tls_entry.h"

#define SCAN_INSNS 12 /* the prologue: stack frame, canary, an argument check */

static bool writes_argument(csh h, const cs_insn *insn)
{
	static const x86_reg args[] = {
		X86_REG_RDI, X86_REG_EDI, X86_REG_DI,  X86_REG_DIL, X86_REG_RSI, X86_REG_ESI, X86_REG_SI,
		X86_REG_SIL, X86_REG_RDX, X86_REG_EDX, X86_REG_DX,  X86_REG_DL,	 X86_REG_DH,  X86_REG_RCX,
		X86_REG_ECX, X86_REG_CX,  X86_REG_CL,  X86_REG_CH,
	};
	cs_regs rd, wr;
	uint8_t nr = 0, nw = 0;
	if (cs_regs_access(h, insn, rd, &nr, wr, &nw) != CS_ERR_OK)
		return true; /* unknown: assume the worst */
	for (uint8_t i = 0; i < nw; i++)
		for (size_t k = 0; k < sizeof(args) / sizeof(args[0]); k++)
			if (wr[i] == args[k])
				return true;
	return false;
}

/* A branch the kernel emulates: E8 (CALL rel32), E9/EB (JMP rel), 7x and
 * 0F 8x (Jcc), without prefixes. */
static bool emulated_branch(const cs_insn *insn)
{
	const uint8_t *b = insn->bytes;
	if (insn->size == 5 && (b[0] == 0xe8 || b[0] == 0xe9))
		return true;
	if (insn->size == 2 && (b[0] == 0xeb || (b[0] & 0xf0) == 0x70))
		return true;
	return insn->size == 6 && b[0] == 0x0f && (b[1] & 0xf0) == 0x80;
}

static bool is_control(const cs_insn *insn)
{
	const cs_detail *d = insn->detail;
	for (uint8_t i = 0; d && i < d->groups_count; i++) {
		uint8_t g = d->groups[i];
		if (g == CS_GRP_JUMP || g == CS_GRP_CALL || g == CS_GRP_RET || g == CS_GRP_INT || g == CS_GRP_IRET)
			return true;
	}
	return false;
}

uint32_t tls_entry_probe_offset(const uint8_t *code, size_t len)
{
	csh h;
	uint32_t found = 0;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
		return 0;
	cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);
	cs_insn *insn = cs_malloc(h);
	const uint8_t *p = code;
	size_t left = len;
	uint64_t a = 0;
	for (int n = 0; insn && n < SCAN_INSNS && cs_disasm_iter(h, &p, &left, &a, insn); n++) {
		if (emulated_branch(insn)) {
			found = (uint32_t)insn->address;
			break;
		}
		if (is_control(insn) || writes_argument(h, insn))
			break; /* the arguments may differ from here on: the entry */
	}
	/* The probe must be passed once per call: no branch of the function
	 * may lead back into the prologue (a loop head there would send a
	 * write's plaintext twice). Indirect jumps cannot be followed; a jump
	 * table into a function's prologue is not something compilers make. */
	p = code;
	left = len;
	a = 0;
	while (found && insn && left) {
		if (!cs_disasm_iter(h, &p, &left, &a, insn)) {
			p++, left--, a++; /* data or padding: step over */
			continue;
		}
		const cs_detail *d = insn->detail;
		if (!is_control(insn) || !d || d->x86.op_count != 1 || d->x86.operands[0].type != X86_OP_IMM)
			continue;
		int64_t t = d->x86.operands[0].imm;
		if (t > 0 && t <= (int64_t)found)
			found = 0;
	}
	if (insn)
		cs_free(insn, 1);
	cs_close(&h);
	return found;
}
