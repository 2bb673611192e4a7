/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE hart: a translator of decoded code pages to x86-64 host code.
 *
 * A code page that becomes hot (KILN_PE_JIT_HOT instructions interpreted
 * on it, by all PEs of the launch) is translated as a whole from its
 * KilnInsn array, so the translation lives exactly as long as the decoded
 * page: code memory written during a launch is seen by the next launch,
 * translated or not (docs/pe-isa.md). Entry points are the page's block
 * leaders: its first instruction, the in-page targets of branches and
 * JAL, and the instructions after JAL/JALR (return points). Branches
 * between leaders of the page are chained host jumps.
 *
 * The translation leaves the generated code exactly where the
 * interpreter would go to its fetch point: a taken jump off the page, to
 * a misaligned target or once icount reaches the check point (watchdog,
 * cancel, progress), JALR, and the end of the page. Anything else it
 * does not translate (FP, CSRs, AMOs, custom units, division, global
 * memory, stores into the known-zero window of local memory, misaligned
 * or out-of-bounds accesses) exits before the instruction with pc and
 * icount precise, and the interpreter executes it; faults are therefore
 * always raised by the interpreter. Costs are the interpreter's: one
 * cycle an instruction (icount) plus KILN_COST_MUL_EXTRA per multiply.
 *
 * Host registers: rbx = the KilnPe (x[] is at offset 0), r12 = icount,
 * rdx = local memory, rax/rcx scratch, the other ten hold the RV
 * registers the page uses most (weighted by in-page loops, most of all
 * the loops around the instruction the PE was at when the page became
 * hot), loaded on entry and stored on every exit.
 *
 * W^X: the code is emitted into a heap buffer, copied into a fresh RW
 * mapping which is then made RX before it is published; it is never
 * written again, so all worker threads of the launch share it.
 */
#include <stdlib.h>
#include <string.h>

#include "pe_jit.h"

static _Atomic uint64_t translated;

uint64_t kiln_pe_jit_translated(void)
{
    return atomic_load_explicit(&translated, memory_order_relaxed);
}

#if defined(__x86_64__) && defined(__linux__)

#include <stddef.h>
#include <sys/mman.h>

/* host registers */
enum {
    RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
    R8, R9, R10, R11, R12, R13, R14, R15
};

/*
 * RV registers kept in host registers: callee- or caller-saved alike, as
 * the generated code calls nothing.
 */
static const uint8_t cache_regs[] = { RBP, RSI, RDI, R8, R9, R10, R11,
                                      R13, R14, R15 };
#define NCACHE ((int)sizeof(cache_regs))

#define OFF_PC       ((int32_t)offsetof(KilnPe, pc))
#define OFF_INSTRET  ((int32_t)offsetof(KilnPe, instret))
#define OFF_CYCLES   ((int32_t)offsetof(KilnPe, cycles_extra))
#define OFF_CHECK_AT ((int32_t)offsetof(KilnPe, jit_check_at))
#define OFF_LM       ((int32_t)offsetof(KilnPe, lm))
#define OFF_LM_UNITS ((int32_t)offsetof(KilnPe, jit_lm_units))
#define OFF_CLEAN_LO ((int32_t)offsetof(KilnPe, lm_clean_lo))
#define OFF_CLEAN_HI ((int32_t)offsetof(KilnPe, lm_clean_hi))

struct KilnJitPage {
    void *code;
    size_t map_size;
    int32_t entry[KILN_PE_PAGE_INSNS];     /* offset in code, or -1 */
};

typedef enum FixKind {
    FIX_LABEL,          /* to the leader arg */
    FIX_EPI_FETCH,
    FIX_EPI_INTERP,
    FIX_STUB_FETCH,     /* set pc = arg, add n to icount, exit to fetch */
    FIX_STUB_INTERP,    /* the same, exit to interpret the insn at pc */
} FixKind;

typedef struct Fixup {
    uint32_t pos;       /* of the rel32 */
    FixKind kind;
    uint64_t arg;
    uint32_t n;
} Fixup;

typedef struct Jit {
    uint8_t *buf;
    size_t len, cap;
    Fixup *fix;
    size_t nfix, capfix;
    bool oom;
    int8_t host_of[33];     /* cached host register of an RV register, or -1 */
    int32_t label[KILN_PE_PAGE_INSNS + 1];
} Jit;

/* an operand: a host register, or [base + disp] */
typedef struct Rm {
    int reg;
    int base;
    int32_t disp;
} Rm;

static void b1(Jit *j, uint8_t v)
{
    if (j->len == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 65536;
        uint8_t *nb = realloc(j->buf, cap);
        if (!nb) {
            j->oom = true;
            j->len = 0;
            return;
        }
        j->buf = nb;
        j->cap = cap;
    }
    j->buf[j->len++] = v;
}

static void b4(Jit *j, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        b1(j, (uint8_t)(v >> (8 * i)));
    }
}

static Rm hreg(int r)
{
    return (Rm){ .reg = r };
}

static Rm mem(int base, int32_t disp)
{
    return (Rm){ .reg = -1, .base = base, .disp = disp };
}

/* where RV register @rv lives: x0 reads the always-zero pe->x[0] */
static Rm loc(const Jit *j, unsigned rv)
{
    if (j->host_of[rv] >= 0) {
        return hreg(j->host_of[rv]);
    }
    return mem(RBX, (int32_t)(rv * 8));
}

/* [66] [REX] opcode(s): @opc holds up to 3 opcode bytes, lowest first */
static void opcode(Jit *j, bool w, bool p66, uint32_t opc, int nopc, int reg,
                   int rmr)
{
    uint8_t rex = 0x40 | (w << 3) | (((reg >> 3) & 1) << 2) | ((rmr >> 3) & 1);

    if (p66) {
        b1(j, 0x66);
    }
    if (rex != 0x40) {
        b1(j, rex);
    }
    for (int i = 0; i < nopc; i++) {
        b1(j, (uint8_t)(opc >> (8 * i)));
    }
}

/*
 * An instruction with a modrm operand. Memory bases are never RSP or R12,
 * which need a SIB byte.
 */
static void op(Jit *j, bool w, bool p66, uint32_t opc, int nopc, int reg,
               Rm rm)
{
    opcode(j, w, p66, opc, nopc, reg, rm.reg >= 0 ? rm.reg : rm.base);
    if (rm.reg >= 0) {
        b1(j, 0xc0 | ((reg & 7) << 3) | (rm.reg & 7));
    } else if (rm.disp == 0 && (rm.base & 7) != RBP) {
        b1(j, ((reg & 7) << 3) | (rm.base & 7));
    } else if (rm.disp >= -128 && rm.disp < 128) {
        b1(j, 0x40 | ((reg & 7) << 3) | (rm.base & 7));
        b1(j, (uint8_t)rm.disp);
    } else {
        b1(j, 0x80 | ((reg & 7) << 3) | (rm.base & 7));
        b4(j, (uint32_t)rm.disp);
    }
}

/* op with the operand [rdx + rcx << k] (rdx: local memory, rcx: offset >> k) */
static void op_lm(Jit *j, bool w, bool p66, uint32_t opc, int nopc, int reg,
                  unsigned k)
{
    opcode(j, w, p66, opc, nopc, reg, RAX);
    b1(j, ((reg & 7) << 3) | 4);
    b1(j, (uint8_t)(k << 6 | RCX << 3 | RDX));
}

/* lea rax, [(rcx << k) + disp] */
static void lea_off(Jit *j, unsigned k, int32_t disp)
{
    b1(j, 0x48);
    b1(j, 0x8d);
    b1(j, 0x04);
    b1(j, (uint8_t)(k << 6 | RCX << 3 | RBP));
    b4(j, (uint32_t)disp);
}

static bool same(Rm a, Rm b)
{
    return a.reg >= 0 ? a.reg == b.reg
                      : b.reg < 0 && a.base == b.base && a.disp == b.disp;
}

/* mov r64, rm */
static void mov_r_rm(Jit *j, int r, Rm rm)
{
    if (!same(hreg(r), rm)) {
        op(j, true, false, 0x8b, 1, r, rm);
    }
}

/* mov rm, r64 */
static void mov_rm_r(Jit *j, Rm rm, int r)
{
    if (!same(hreg(r), rm)) {
        op(j, true, false, 0x89, 1, r, rm);
    }
}

static void mov_r_imm(Jit *j, int r, uint64_t v)
{
    if ((int64_t)v == (int32_t)v) {
        op(j, true, false, 0xc7, 1, 0, hreg(r));
        b4(j, (uint32_t)v);
    } else {
        b1(j, 0x48 | ((r >> 3) & 1));
        b1(j, 0xb8 | (r & 7));
        b4(j, (uint32_t)v);
        b4(j, (uint32_t)(v >> 32));
    }
}

/* write rax to RV register @rd; writes to x0 (rd 32) are dropped */
static void put_rd(Jit *j, unsigned rd, int r)
{
    if (rd != 32) {
        mov_rm_r(j, loc(j, rd), r);
    }
}

/*
 * The host register to compute a result for @rd in: its own if it is
 * cached, unless @rd is also the source @keep still read after the first
 * is moved in; else rax.
 */
static int dst(const Jit *j, unsigned rd, int keep)
{
    int h = j->host_of[rd];

    return h >= 0 && (int)rd != keep ? h : RAX;
}

/* movsxd r, r32 */
static void sx32(Jit *j, int r)
{
    op(j, true, false, 0x63, 1, r, hreg(r));
}

/* r = rs1 OP rs2 for a two-operand x86 op reading rm (w: 64-bit) */
static void alu_rr(Jit *j, const KilnInsn *d, uint32_t opc, int nopc, bool w,
                   bool commutes, bool sx)
{
    unsigned a = d->rs1, b = d->rs2;
    int r;

    if (commutes && d->rd == b && d->rd != a) {
        a = d->rs2;
        b = d->rs1;
    }
    r = dst(j, d->rd, a == b ? -1 : (int)b);
    mov_r_rm(j, r, loc(j, a));
    op(j, w, false, opc, nopc, r, loc(j, b));
    if (sx) {
        sx32(j, r);
    }
    put_rd(j, d->rd, r);
}

/* lea r12, [r12 + n]: flags untouched */
static void add_icount(Jit *j, uint32_t n)
{
    if (n) {
        b1(j, 0x4d);
        b1(j, 0x8d);
        b1(j, 0xa4);
        b1(j, 0x24);
        b4(j, n);
    }
}

static void fixup(Jit *j, FixKind kind, uint64_t arg, uint32_t n)
{
    if (j->nfix == j->capfix) {
        size_t cap = j->capfix ? j->capfix * 2 : 1024;
        Fixup *nf = realloc(j->fix, cap * sizeof(*nf));
        if (!nf) {
            j->oom = true;
            return;
        }
        j->fix = nf;
        j->capfix = cap;
    }
    j->fix[j->nfix++] = (Fixup){ (uint32_t)j->len, kind, arg, n };
    b4(j, 0);
}

/* jmp / jcc rel32 to a fixup target */
static void jmp_fix(Jit *j, int cc, FixKind kind, uint64_t arg, uint32_t n)
{
    if (cc < 0) {
        b1(j, 0xe9);
    } else {
        b1(j, 0x0f);
        b1(j, 0x80 | cc);
    }
    fixup(j, kind, arg, n);
}

/* condition codes (low nibble of jcc/setcc) */
enum { CC_B = 2, CC_AE = 3, CC_E = 4, CC_NE = 5, CC_L = 0xc, CC_GE = 0xd };

/* rax = the condition @cc of the flags, 0 or 1 */
static void setcc_rax(Jit *j, int cc)
{
    op(j, false, false, 0x0f | (0x90 | cc) << 8, 2, 0, hreg(RAX));
    op(j, false, false, 0xb60f, 2, RAX, hreg(RAX));        /* movzx eax, al */
}

/*
 * A taken jump to @t with icount already counting this instruction: stay
 * in the translation while the interpreter would stay on the page.
 */
static void jump_to(Jit *j, uint64_t page_va, uint64_t t,
                    const uint8_t *leader)
{
    unsigned idx = (t & 4095) >> 2;

    if (((t ^ page_va) >> 12) == 0 && !(t & 3) && leader[idx]) {
        op(j, true, false, 0x3b, 1, R12, mem(RBX, OFF_CHECK_AT));
        jmp_fix(j, CC_B, FIX_LABEL, idx, 0);
        jmp_fix(j, -1, FIX_STUB_FETCH, t, 0);
    } else {
        jmp_fix(j, -1, FIX_STUB_FETCH, t, 0);
    }
}

static bool translatable(unsigned op_)
{
    switch (op_) {
    case OP_NOP: case OP_LUI: case OP_AUIPC: case OP_JAL: case OP_JALR:
    case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU:
    case OP_BGEU:
    case OP_LB: case OP_LH: case OP_LW: case OP_LD: case OP_LBU:
    case OP_LHU: case OP_LWU:
    case OP_SB: case OP_SH: case OP_SW: case OP_SD:
    case OP_MUL: case OP_MULH: case OP_MULHU: case OP_MULW:
        return true;
    }
    return op_ >= OP_ADDI && op_ <= OP_SRAW;
}

/*
 * A scalar access to local memory of 1 << @k bytes at x[rs1] + imm: leaves
 * the offset in local memory, rotated right by @k, in rcx, so that one
 * unsigned compare with lm_size >> k finds it misaligned or out of bounds
 * (exactly: lm_size is a multiple of 16) and [rdx + rcx << k] addresses
 * it; or exits to the interpreter (misaligned, not local memory, or a
 * store the known-zero window must hear of).
 */
static void lm_addr(Jit *j, const KilnInsn *d, unsigned k, bool store,
                    uint64_t pc, uint32_t pend)
{
    Rm base = loc(j, d->rs1);
    int addr = RAX;
    size_t at;

    if (base.reg >= 0 && !d->imm) {
        addr = base.reg;
    } else if (base.reg >= 0) {
        op(j, true, false, 0x8d, 1, RAX, mem(base.reg, d->imm));   /* lea */
    } else {
        mov_r_rm(j, RAX, base);
        if (d->imm) {
            op(j, true, false, 0x81, 1, 0, hreg(RAX));
            b4(j, (uint32_t)d->imm);
        }
    }
    mov_r_imm(j, RCX, -KILN_LOCAL_MEM_BASE);
    op(j, true, false, 0x03, 1, RCX, hreg(addr));           /* add rcx, addr */
    if (k) {
        op(j, true, false, 0xc1, 1, 1, hreg(RCX));          /* ror rcx, k */
        b1(j, (uint8_t)k);
    }
    op(j, true, false, 0x3b, 1, RCX, mem(RBX, OFF_LM_UNITS + 8 * (int32_t)k));
    jmp_fix(j, CC_AE, FIX_STUB_INTERP, pc, pend);
    if (store) {
        /* dirty if off + size > clean_lo && off < clean_hi */
        lea_off(j, k, 1 << k);
        op(j, true, false, 0x3b, 1, RAX, mem(RBX, OFF_CLEAN_LO));
        b1(j, 0x76);                                           /* jbe +n */
        at = j->len;
        b1(j, 0);
        lea_off(j, k, 0);
        op(j, true, false, 0x3b, 1, RAX, mem(RBX, OFF_CLEAN_HI));
        jmp_fix(j, CC_B, FIX_STUB_INTERP, pc, pend);
        if (!j->oom) {
            j->buf[at] = (uint8_t)(j->len - at - 1);
        }
    }
}

/* Emit instruction @d at @pc; false if it ends the straight-line code */
static bool emit_insn(Jit *j, const KilnInsn *d, uint64_t pc, uint64_t page_va,
                      const uint8_t *leader, uint32_t *pend)
{
    Rm rs1 = loc(j, d->rs1), rs2 = loc(j, d->rs2);
    uint32_t imm = (uint32_t)d->imm;
    int r;
    static const uint8_t alu_opc[] = {
        [OP_ADD - OP_ADD] = 0x03, [OP_SUB - OP_ADD] = 0x2b,
        [OP_XOR - OP_ADD] = 0x33, [OP_OR - OP_ADD] = 0x0b,
        [OP_AND - OP_ADD] = 0x23,
    };

    switch (d->op) {
    case OP_NOP:
        break;
    case OP_LUI:
        r = dst(j, d->rd, -1);
        mov_r_imm(j, r, (uint64_t)(int64_t)d->imm);
        put_rd(j, d->rd, r);
        break;
    case OP_AUIPC:
        r = dst(j, d->rd, -1);
        mov_r_imm(j, r, pc + (int64_t)d->imm);
        put_rd(j, d->rd, r);
        break;
    case OP_ADDI: case OP_XORI: case OP_ORI: case OP_ANDI: {
        static const uint8_t ext[] = { [OP_ADDI - OP_ADDI] = 0,
            [OP_XORI - OP_ADDI] = 6, [OP_ORI - OP_ADDI] = 1,
            [OP_ANDI - OP_ADDI] = 4 };
        r = dst(j, d->rd, -1);
        mov_r_rm(j, r, rs1);
        op(j, true, false, 0x81, 1, ext[d->op - OP_ADDI], hreg(r));
        b4(j, imm);
        put_rd(j, d->rd, r);
        break;
    }
    case OP_SLTI: case OP_SLTIU:
        mov_r_rm(j, RAX, rs1);
        op(j, true, false, 0x81, 1, 7, hreg(RAX));
        b4(j, imm);
        setcc_rax(j, d->op == OP_SLTI ? CC_L : CC_B);
        put_rd(j, d->rd, RAX);
        break;
    case OP_SLLI: case OP_SRLI: case OP_SRAI:
    case OP_SLLIW: case OP_SRLIW: case OP_SRAIW: {
        bool w = d->op <= OP_SRAI;
        unsigned k = w ? d->op - OP_SLLI : d->op - OP_SLLIW;
        static const uint8_t ext[] = { 4, 5, 7 };
        r = dst(j, d->rd, -1);
        mov_r_rm(j, r, rs1);
        op(j, w, false, 0xc1, 1, ext[k], hreg(r));
        b1(j, (uint8_t)d->imm);
        if (!w) {
            sx32(j, r);
        }
        put_rd(j, d->rd, r);
        break;
    }
    case OP_ADDIW:
        r = dst(j, d->rd, -1);
        mov_r_rm(j, r, rs1);
        op(j, false, false, 0x81, 1, 0, hreg(r));
        b4(j, imm);
        sx32(j, r);
        put_rd(j, d->rd, r);
        break;
    case OP_ADD: case OP_SUB: case OP_XOR: case OP_OR: case OP_AND:
        alu_rr(j, d, alu_opc[d->op - OP_ADD], 1, true, d->op != OP_SUB, false);
        break;
    case OP_ADDW: case OP_SUBW:
        alu_rr(j, d, d->op == OP_ADDW ? 0x03 : 0x2b, 1, false, d->op == OP_ADDW,
               true);
        break;
    case OP_SLT: case OP_SLTU:
        mov_r_rm(j, RAX, rs1);
        op(j, true, false, 0x3b, 1, RAX, rs2);
        setcc_rax(j, d->op == OP_SLT ? CC_L : CC_B);
        put_rd(j, d->rd, RAX);
        break;
    case OP_SLL: case OP_SRL: case OP_SRA:
    case OP_SLLW: case OP_SRLW: case OP_SRAW: {
        bool w = d->op == OP_SLL || d->op == OP_SRL || d->op == OP_SRA;
        unsigned e = (d->op == OP_SLL || d->op == OP_SLLW) ? 4
                   : (d->op == OP_SRL || d->op == OP_SRLW) ? 5 : 7;
        /* x86 masks the count to 63 (64-bit) or 31 (32-bit) like RISC-V */
        mov_r_rm(j, RCX, rs2);
        r = dst(j, d->rd, -1);
        mov_r_rm(j, r, rs1);
        op(j, w, false, 0xd3, 1, e, hreg(r));
        if (!w) {
            sx32(j, r);
        }
        put_rd(j, d->rd, r);
        break;
    }
    case OP_MUL: case OP_MULW:
        alu_rr(j, d, 0xaf0f, 2, d->op == OP_MUL, true, d->op == OP_MULW);
        op(j, true, false, 0x81, 1, 0, mem(RBX, OFF_CYCLES));
        b4(j, KILN_COST_MUL_EXTRA);
        break;
    case OP_MULH: case OP_MULHU:
        mov_r_rm(j, RAX, rs1);
        op(j, true, false, 0xf7, 1, d->op == OP_MULH ? 5 : 4, rs2);
        put_rd(j, d->rd, RDX);
        mov_r_rm(j, RDX, mem(RBX, OFF_LM));
        op(j, true, false, 0x81, 1, 0, mem(RBX, OFF_CYCLES));
        b4(j, KILN_COST_MUL_EXTRA);
        break;
    case OP_LB: case OP_LH: case OP_LW: case OP_LD:
    case OP_LBU: case OP_LHU: case OP_LWU: {
        static const uint8_t lg[] = { 0, 1, 2, 3, 0, 1, 2 };
        static const uint32_t opc[] = { 0xbe0f, 0xbf0f, 0x63, 0x8b,
                                        0xb60f, 0xb70f, 0x8b };
        unsigned k = d->op - OP_LB;
        lm_addr(j, d, lg[k], false, pc, *pend);
        r = dst(j, d->rd, -1);
        /* LWU: mov r32, [...] zero-extends */
        op_lm(j, d->op != OP_LWU, false, opc[k], opc[k] > 0xff ? 2 : 1, r,
              lg[k]);
        put_rd(j, d->rd, r);
        break;
    }
    case OP_SB: case OP_SH: case OP_SW: case OP_SD: {
        unsigned k = d->op - OP_SB, size = 1u << k;
        lm_addr(j, d, k, true, pc, *pend);
        /* a byte store of SPL..DIL would need a REX prefix: go through al */
        r = rs2.reg >= 0 && (size > 1 || rs2.reg >= R8) ? rs2.reg : RAX;
        mov_r_rm(j, r, rs2);
        op_lm(j, k == 3, k == 1, size == 1 ? 0x88 : 0x89, 1, r, k);
        break;
    }
    case OP_BEQ: case OP_BNE: case OP_BLT: case OP_BGE: case OP_BLTU:
    case OP_BGEU: {
        static const uint8_t cc[] = { CC_E, CC_NE, CC_L, CC_GE, CC_B, CC_AE };
        size_t at;
        if (rs1.reg < 0) {
            mov_r_rm(j, RAX, rs1);
            rs1 = hreg(RAX);
        }
        op(j, true, false, 0x3b, 1, rs1.reg, rs2);
        add_icount(j, *pend + 1);
        *pend = 0;
        /* j!cc over the taken path (at most 18 bytes) */
        b1(j, 0x70 | (cc[d->op - OP_BEQ] ^ 1));
        at = j->len;
        b1(j, 0);
        jump_to(j, page_va, pc + (int64_t)d->imm, leader);
        if (!j->oom) {
            j->buf[at] = (uint8_t)(j->len - at - 1);
        }
        return true;
    }
    case OP_JAL:
        mov_r_imm(j, RAX, pc + 4);
        put_rd(j, d->rd, RAX);
        add_icount(j, *pend + 1);
        *pend = 0;
        jump_to(j, page_va, pc + (int64_t)d->imm, leader);
        return false;
    case OP_JALR:
        mov_r_rm(j, RAX, rs1);
        op(j, true, false, 0x81, 1, 0, hreg(RAX));
        b4(j, imm);
        op(j, true, false, 0x83, 1, 4, hreg(RAX));              /* and ~1 */
        b1(j, 0xfe);
        mov_r_imm(j, RCX, pc + 4);
        put_rd(j, d->rd, RCX);
        add_icount(j, *pend + 1);
        *pend = 0;
        mov_rm_r(j, mem(RBX, OFF_PC), RAX);
        jmp_fix(j, -1, FIX_EPI_FETCH, 0, 0);
        return false;
    case OP_PAGE_END:
        add_icount(j, *pend);
        *pend = 0;
        jmp_fix(j, -1, FIX_STUB_FETCH, page_va + 4096, 0);
        return false;
    default:
        add_icount(j, *pend);
        *pend = 0;
        jmp_fix(j, -1, FIX_STUB_INTERP, pc, 0);
        return false;
    }
    ++*pend;
    return true;
}

/* the store to pe->pc and the jump of a stub */
static void emit_stub(Jit *j, const Fixup *f, size_t epi_fetch,
                      size_t epi_interp)
{
    size_t epi = f->kind == FIX_STUB_FETCH ? epi_fetch : epi_interp;

    add_icount(j, f->n);
    mov_r_imm(j, RAX, f->arg);
    mov_rm_r(j, mem(RBX, OFF_PC), RAX);
    b1(j, 0xe9);
    b4(j, (uint32_t)(epi - (j->len + 4)));
}

static void patch(Jit *j, uint32_t pos, size_t target)
{
    uint32_t rel = (uint32_t)(target - (pos + 4));
    memcpy(j->buf + pos, &rel, 4);
}

/*
 * Translates @p; @hot is the index of the instruction the PE was at when
 * the page became hot (KILN_PE_PAGE_INSNS if none): the loops around it are
 * what made the page hot, so their registers come first.
 */
static KilnJitPage *translate(const KilnCodePage *p, unsigned hot)
{
    static const uint8_t pushes[] = { RBX, RBP, R12, R13, R14, R15 };
    uint8_t leader[KILN_PE_PAGE_INSNS + 1] = { 0 };
    unsigned use[33] = { 0 };
    int loop[KILN_PE_PAGE_INSNS + 1] = { 0 };
    int hot_loop[KILN_PE_PAGE_INSNS + 1] = { 0 };
    Jit j = { 0 };
    KilnJitPage *jp = NULL;
    size_t epi_fetch, epi_interp, nfix;
    uint32_t pend = 0;
    bool live = false;
    void *code;

    /*
     * Leaders, and the RV registers most referenced by translated code,
     * counting references inside in-page loops (a backward branch or JAL
     * and its target) 64 times, inside loops around @hot 4096 times.
     */
    leader[0] = 1;
    for (unsigned i = 0; i < KILN_PE_PAGE_INSNS; i++) {
        const KilnInsn *d = &p->insn[i];
        uint64_t pc = p->va + i * 4, t;

        if (d->op == OP_JAL || (d->op >= OP_BEQ && d->op <= OP_BGEU)) {
            t = pc + (int64_t)d->imm;
            if (((t ^ p->va) >> 12) == 0 && !(t & 3)) {
                leader[(t & 4095) >> 2] = 1;
                if (t <= pc) {
                    unsigned head = (t & 4095) >> 2;

                    loop[head]++;
                    loop[i + 1]--;
                    if (head <= hot && hot <= i) {
                        hot_loop[head]++;
                        hot_loop[i + 1]--;
                    }
                }
            }
        }
    }
    for (int i = 0, depth = 0, hot_depth = 0; i < KILN_PE_PAGE_INSNS; i++) {
        const KilnInsn *d = &p->insn[i];
        unsigned w;

        depth += loop[i];
        hot_depth += hot_loop[i];
        w = hot_depth ? 4096 : depth ? 64 : 1;
        if (!translatable(d->op)) {
            continue;
        }
        use[d->rs1] += w;
        use[d->rs2] += w;
        use[d->rd] += w;
        if (d->op == OP_JAL || d->op == OP_JALR) {
            leader[i + 1] = 1;
        }
    }
    memset(j.host_of, -1, sizeof(j.host_of));
    use[0] = use[32] = 0;
    for (int c = 0; c < NCACHE; c++) {
        unsigned best = 0;
        for (unsigned r = 1; r < 32; r++) {
            if (use[r] > use[best]) {
                best = r;
            }
        }
        if (!use[best]) {
            break;
        }
        j.host_of[best] = (int8_t)cache_regs[c];
        use[best] = 0;
    }

    /* prologue: (KilnPe *pe in rdi, entry in rsi) */
    for (unsigned i = 0; i < sizeof(pushes); i++) {
        if (pushes[i] >= R8) {
            b1(&j, 0x41);
        }
        b1(&j, 0x50 | (pushes[i] & 7));
    }
    mov_r_rm(&j, RBX, hreg(RDI));
    mov_r_rm(&j, RAX, hreg(RSI));
    mov_r_rm(&j, R12, mem(RBX, OFF_INSTRET));
    mov_r_rm(&j, RDX, mem(RBX, OFF_LM));
    for (unsigned r = 1; r < 32; r++) {
        if (j.host_of[r] >= 0) {
            mov_r_rm(&j, j.host_of[r], mem(RBX, (int32_t)(r * 8)));
        }
    }
    b1(&j, 0xff);
    b1(&j, 0xe0);               /* jmp rax */

    for (unsigned i = 0; i <= KILN_PE_PAGE_INSNS; i++) {
        if (leader[i]) {
            add_icount(&j, pend);
            pend = 0;
            j.label[i] = (int32_t)j.len;
            live = true;
        } else {
            j.label[i] = -1;
        }
        if (live) {
            live = emit_insn(&j, &p->insn[i], p->va + i * 4, p->va, leader,
                             &pend);
        }
    }

    /* epilogues: icount and the cached registers back to the KilnPe */
    epi_fetch = j.len;
    b1(&j, 0x31);
    b1(&j, 0xc0);               /* xor eax, eax: KILN_JIT_FETCH */
    b1(&j, 0xeb);
    b1(&j, 5);
    epi_interp = j.len;
    b1(&j, 0xb8);
    b4(&j, KILN_JIT_INTERP);
    mov_rm_r(&j, mem(RBX, OFF_INSTRET), R12);
    for (unsigned r = 1; r < 32; r++) {
        if (j.host_of[r] >= 0) {
            mov_rm_r(&j, mem(RBX, (int32_t)(r * 8)), j.host_of[r]);
        }
    }
    for (int i = (int)sizeof(pushes) - 1; i >= 0; i--) {
        if (pushes[i] >= R8) {
            b1(&j, 0x41);
        }
        b1(&j, 0x58 | (pushes[i] & 7));
    }
    b1(&j, 0xc3);

    /* stubs, then the jumps to them */
    nfix = j.nfix;
    for (size_t f = 0; f < nfix && !j.oom; f++) {
        Fixup *fx = &j.fix[f];
        switch (fx->kind) {
        case FIX_LABEL:
            patch(&j, fx->pos, (size_t)j.label[fx->arg]);
            break;
        case FIX_EPI_FETCH:
            patch(&j, fx->pos, epi_fetch);
            break;
        case FIX_EPI_INTERP:
            patch(&j, fx->pos, epi_interp);
            break;
        default:
            patch(&j, fx->pos, j.len);
            emit_stub(&j, fx, epi_fetch, epi_interp);
            break;
        }
    }
    if (j.oom) {
        goto out;
    }

    jp = malloc(sizeof(*jp));
    if (!jp) {
        goto out;
    }
    jp->map_size = (j.len + 4095) & ~(size_t)4095;
    code = mmap(NULL, jp->map_size, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED) {
        free(jp);
        jp = NULL;
        goto out;
    }
    memcpy(code, j.buf, j.len);
    if (mprotect(code, jp->map_size, PROT_READ | PROT_EXEC)) {
        munmap(code, jp->map_size);
        free(jp);
        jp = NULL;
        goto out;
    }
    jp->code = code;
    atomic_fetch_add_explicit(&translated, 1, memory_order_relaxed);
    for (unsigned i = 0; i < KILN_PE_PAGE_INSNS; i++) {
        jp->entry[i] = j.label[i];
    }
out:
    free(j.buf);
    free(j.fix);
    return jp;
}

void kiln_pe_jit_free(KilnJitPage *jp)
{
    if (jp) {
        munmap(jp->code, jp->map_size);
        free(jp);
    }
}

void kiln_pe_jit_heat(KilnPe *pe, KilnCodePage *p, uint64_t insns)
{
    if (pe->launch->eng->cfg.pe_jit == KILN_PE_JIT_ON) {
        atomic_fetch_add_explicit(&p->heat, insns, memory_order_relaxed);
    }
}

KilnJitPage *kiln_pe_jit_page(KilnPe *pe, KilnCodePage *p)
{
    KilnJitPage *jp = atomic_load_explicit(&p->jit, memory_order_acquire);
    KilnJitPage *none = NULL;
    uint32_t mode = pe->launch->eng->cfg.pe_jit;

    if (jp || mode == KILN_PE_JIT_OFF) {
        return jp;
    }
    if (mode != KILN_PE_JIT_EAGER &&
        atomic_load_explicit(&p->heat, memory_order_relaxed) <
        KILN_PE_JIT_HOT) {
        return NULL;
    }
    if (atomic_exchange_explicit(&p->jit_tried, true, memory_order_relaxed)) {
        return NULL;    /* another thread translates it, or it failed */
    }
    jp = translate(p, ((pe->pc ^ p->va) >> 12) ? KILN_PE_PAGE_INSNS
                                               : (unsigned)(pe->pc & 4095) >> 2);
    if (jp && !atomic_compare_exchange_strong_explicit(
            &p->jit, &none, jp, memory_order_release, memory_order_acquire)) {
        kiln_pe_jit_free(jp);
        jp = none;
    }
    return jp;
}

int kiln_pe_jit_run(KilnJitPage *jp, KilnPe *pe, unsigned idx)
{
    typedef int (*Fn)(KilnPe *pe, const void *entry);
    Fn fn = (Fn)(uintptr_t)jp->code;

    if (jp->entry[idx] < 0) {
        return KILN_JIT_NONE;
    }
    for (unsigned k = 0; k < 4; k++) {
        pe->jit_lm_units[k] = pe->lm_size >> k;
    }
    return fn(pe, (const uint8_t *)jp->code + jp->entry[idx]);
}

#else

void kiln_pe_jit_free(KilnJitPage *jp)
{
    (void)jp;
}

void kiln_pe_jit_heat(KilnPe *pe, KilnCodePage *p, uint64_t insns)
{
    (void)pe;
    (void)p;
    (void)insns;
}

KilnJitPage *kiln_pe_jit_page(KilnPe *pe, KilnCodePage *p)
{
    (void)pe;
    (void)p;
    return NULL;
}

int kiln_pe_jit_run(KilnJitPage *jp, KilnPe *pe, unsigned idx)
{
    (void)jp;
    (void)pe;
    (void)idx;
    return KILN_JIT_NONE;
}

#endif
