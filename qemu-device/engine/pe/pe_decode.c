/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE hart: instruction decoding and the per-launch cache of decoded
 * 4 KiB code pages, shared by all PEs of a launch.
 */
#include <stdlib.h>
#include <string.h>

#include "pe_interp.h"

/* ---- decoding ----------------------------------------------------------- */

static int32_t imm_i(uint32_t w)
{
    return (int32_t)w >> 20;
}

/*
 * The sign bits are shifted as unsigned: left-shifting a negative int is
 * undefined behaviour in C, and every backward branch has a negative offset.
 */
static int32_t imm_s(uint32_t w)
{
    return (int32_t)((uint32_t)((int32_t)w >> 25) << 5 | ((w >> 7) & 31));
}

static int32_t imm_b(uint32_t w)
{
    return (int32_t)((uint32_t)((int32_t)w >> 31) << 12 |
                     (((w >> 7) & 1) << 11) | (((w >> 25) & 63) << 5) |
                     (((w >> 8) & 15) << 1));
}

static int32_t imm_j(uint32_t w)
{
    return (int32_t)((uint32_t)((int32_t)w >> 31) << 20 | (w & 0xff000) |
                     (((w >> 20) & 1) << 11) | (((w >> 21) & 0x3ff) << 1));
}

/* .W or .D, a defined funct5, rs2 = 0 for LR; aq/rl are accepted */
static bool amo_valid(uint32_t w)
{
    uint32_t f3 = (w >> 12) & 7, f5 = w >> 27;

    if (f3 != 2 && f3 != 3) {
        return false;
    }
    switch (f5) {
    case AMO_LR:
        return ((w >> 20) & 31) == 0;
    case AMO_ADD: case AMO_SWAP: case AMO_SC: case AMO_XOR: case AMO_OR:
    case AMO_AND: case AMO_MIN: case AMO_MAX: case AMO_MINU: case AMO_MAXU:
        return true;
    default:
        return false;
    }
}

void kiln_pe_decode(uint32_t w, KilnInsn *d)
{
    uint32_t opc = w & 0x7f, f3 = (w >> 12) & 7, f7 = w >> 25;
    uint32_t rd = (w >> 7) & 31;
    int op = OP_ILLEGAL;

    memset(d, 0, sizeof(*d));
    d->raw = w;
    d->rs1 = (w >> 15) & 31;
    d->rs2 = (w >> 20) & 31;
    d->rs3 = w >> 27;
    d->rd = rd ? rd : 32;

    switch (opc) {
    case 0x37:
        op = OP_LUI;
        d->imm = (int32_t)(w & 0xfffff000);
        break;
    case 0x17:
        op = OP_AUIPC;
        d->imm = (int32_t)(w & 0xfffff000);
        break;
    case 0x6f:
        op = OP_JAL;
        d->imm = imm_j(w);
        break;
    case 0x67:
        if (f3 == 0) {
            op = OP_JALR;
            d->imm = imm_i(w);
        }
        break;
    case 0x63: {
        static const int br[8] = { OP_BEQ, OP_BNE, OP_ILLEGAL, OP_ILLEGAL,
                                   OP_BLT, OP_BGE, OP_BLTU, OP_BGEU };
        op = br[f3];
        d->imm = imm_b(w);
        break;
    }
    case 0x03: {
        static const int ld[8] = { OP_LB, OP_LH, OP_LW, OP_LD,
                                   OP_LBU, OP_LHU, OP_LWU, OP_ILLEGAL };
        op = ld[f3];
        d->imm = imm_i(w);
        break;
    }
    case 0x23: {
        static const int st[8] = { OP_SB, OP_SH, OP_SW, OP_SD,
                                   OP_ILLEGAL, OP_ILLEGAL, OP_ILLEGAL,
                                   OP_ILLEGAL };
        op = st[f3];
        d->imm = imm_s(w);
        break;
    }
    case 0x13:
        d->imm = imm_i(w);
        switch (f3) {
        case 0: op = OP_ADDI; break;
        case 2: op = OP_SLTI; break;
        case 3: op = OP_SLTIU; break;
        case 4: op = OP_XORI; break;
        case 6: op = OP_ORI; break;
        case 7: op = OP_ANDI; break;
        case 1:
            if ((w >> 26) == 0) {
                op = OP_SLLI;
                d->imm &= 63;
            }
            break;
        case 5:
            if ((w >> 26) == 0) {
                op = OP_SRLI;
            } else if ((w >> 26) == 0x10) {
                op = OP_SRAI;
            }
            d->imm &= 63;
            break;
        }
        break;
    case 0x1b:
        d->imm = imm_i(w);
        if (f3 == 0) {
            op = OP_ADDIW;
        } else if (f3 == 1 && f7 == 0) {
            op = OP_SLLIW;
            d->imm &= 31;
        } else if (f3 == 5 && f7 == 0) {
            op = OP_SRLIW;
            d->imm &= 31;
        } else if (f3 == 5 && f7 == 0x20) {
            op = OP_SRAIW;
            d->imm &= 31;
        }
        break;
    case 0x33:
        if (f7 == 0) {
            static const int r[8] = { OP_ADD, OP_SLL, OP_SLT, OP_SLTU,
                                      OP_XOR, OP_SRL, OP_OR, OP_AND };
            op = r[f3];
        } else if (f7 == 0x20) {
            if (f3 == 0) {
                op = OP_SUB;
            } else if (f3 == 5) {
                op = OP_SRA;
            }
        } else if (f7 == 1) {
            static const int m[8] = { OP_MUL, OP_MULH, OP_MULHSU, OP_MULHU,
                                      OP_DIV, OP_DIVU, OP_REM, OP_REMU };
            op = m[f3];
        }
        break;
    case 0x3b:
        if (f7 == 0) {
            if (f3 == 0) {
                op = OP_ADDW;
            } else if (f3 == 1) {
                op = OP_SLLW;
            } else if (f3 == 5) {
                op = OP_SRLW;
            }
        } else if (f7 == 0x20) {
            if (f3 == 0) {
                op = OP_SUBW;
            } else if (f3 == 5) {
                op = OP_SRAW;
            }
        } else if (f7 == 1) {
            static const int m[8] = { OP_MULW, OP_ILLEGAL, OP_ILLEGAL,
                                      OP_ILLEGAL, OP_DIVW, OP_DIVUW, OP_REMW,
                                      OP_REMUW };
            op = m[f3];
        }
        break;
    case 0x0f:
        /* FENCE, FENCE.I: a single hart with coherent memory */
        if (f3 == 0 || f3 == 1) {
            op = OP_NOP;
        }
        break;
    case 0x73:
        if (w == 0x00000073) {
            op = OP_ECALL;
        } else if (w == 0x00100073) {
            op = OP_EBREAK;
        } else if (f3 != 0 && f3 != 4) {
            op = OP_CSR;
            d->imm = w >> 20;
        }
        break;
    case 0x07:
        d->imm = imm_i(w);
        if (f3 == 2) {
            op = OP_FLW;
        } else if (f3 == 3) {
            op = OP_FLD;
        }
        d->rd = rd;
        break;
    case 0x27:
        d->imm = imm_s(w);
        if (f3 == 2) {
            op = OP_FSW;
        } else if (f3 == 3) {
            op = OP_FSD;
        }
        break;
    case 0x43: case 0x47: case 0x4b: case 0x4f: case 0x53:
        op = OP_FP;
        d->rd = rd;
        break;
    case KILN_OPC_CUSTOM0:
        op = OP_CUSTOM;
        break;
    case 0x2f:
        if (amo_valid(w)) {
            op = OP_AMO;
        }
        break;
    }
    /* Writes to x0 of instructions without side effects are no-ops */
    if (rd == 0 && ((op >= OP_LUI && op <= OP_AUIPC) ||
                    (op >= OP_ADDI && op <= OP_REMUW))) {
        op = OP_NOP;
    }
    d->op = op;
}

KilnCodePage *kiln_pe_code_lookup(KilnPe *pe, uint64_t va)
{
    KilnLaunch *l = pe->launch;
    uint64_t page = va & ~4095ull;
    unsigned h = (page >> 12) & (KILN_PE_CODE_HASH - 1);
    KilnCodePage *p, *head;
    KilnXlate x;
    KilnFault f;
    uint32_t *words;

    head = atomic_load_explicit(&l->code[h], memory_order_acquire);
    for (p = head; p; p = p->next) {
        if (p->va == page) {
            return p;
        }
    }
    if (va >= KILN_VA_MAX) {
        f.status = KILN_STATUS_MMU_FAULT;
        f.reason = KILN_MMU_FAULT_NON_CANONICAL;
        kiln_pe_mmu_fault(pe, &f, va, KILN_ACCESS_EXEC);
        return NULL;
    }
    memset(&f, 0, sizeof(f));
    if (!kiln_as_xlate(l->as, page, 4096, KILN_ACCESS_EXEC, &x, &f)) {
        kiln_pe_mmu_fault(pe, &f, va, KILN_ACCESS_EXEC);
        return NULL;
    }
    p = malloc(sizeof(*p));
    if (!p) {
        kiln_pe_fault(pe, KILN_STATUS_FATAL, va, KILN_ACCESS_EXEC, 0);
        return NULL;
    }
    words = malloc(4096);
    if (!words || !kiln_as_read(l->as, page, words, 4096, &f)) {
        /* a partly readable page: decode what is there */
        uint64_t ok = 0;
        if (words) {
            while (ok < 4096 && kiln_as_read(l->as, page + ok, (uint8_t *)words + ok,
                                             4096 - ok > 4096 ? 4096 : 4, &f)) {
                ok += 4;
            }
            for (uint64_t i = ok; i < 4096; i += 4) {
                words[i / 4] = 0;   /* decodes as illegal; fetch checked below */
            }
        }
        if (!words || va - page >= ok) {
            free(words);
            free(p);
            kiln_pe_mmu_fault(pe, &f, va, KILN_ACCESS_EXEC);
            return NULL;
        }
    }
    p->va = page;
    atomic_init(&p->jit, NULL);
    atomic_init(&p->heat, 0);
    atomic_init(&p->jit_tried, false);
    for (int i = 0; i < KILN_PE_PAGE_INSNS; i++) {
        uint32_t w;
        memcpy(&w, (uint8_t *)words + i * 4, 4);
        kiln_pe_decode(w, &p->insn[i]);
    }
    free(words);
    memset(&p->insn[KILN_PE_PAGE_INSNS], 0, sizeof(KilnInsn));
    p->insn[KILN_PE_PAGE_INSNS].op = OP_PAGE_END;
    do {
        p->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&l->code[h], &head, p,
                                                    memory_order_release,
                                                    memory_order_acquire));
    return p;
}
