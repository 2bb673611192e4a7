/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE hart: an RV64IMAFD + Zicsr interpreter.
 *
 * Code is predecoded one 4 KiB page at a time into KilnInsn arrays shared
 * by all PEs of a launch, and executed with threaded (computed-goto)
 * dispatch. Data accesses go to local memory directly or through a small
 * per-PE TLB of host pointers filled from the context's MMU.
 *
 * Floating point uses the host FPU (x86-64 SSE / AArch64 are IEEE 754
 * with after-rounding tininess like RISC-V); NaN results are canonicalised,
 * and conversions, min/max, compares and classification are done in
 * software. Exception flags accumulate in the host's sticky flags between
 * CSR reads and are folded into the PE's fflags whenever the PE leaves the
 * interpreter or touches fcsr.
 */
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pe_internal.h"

enum {
    OP_ILLEGAL, OP_PAGE_END, OP_NOP,
    OP_LUI, OP_AUIPC, OP_JAL, OP_JALR,
    OP_BEQ, OP_BNE, OP_BLT, OP_BGE, OP_BLTU, OP_BGEU,
    OP_LB, OP_LH, OP_LW, OP_LD, OP_LBU, OP_LHU, OP_LWU,
    OP_SB, OP_SH, OP_SW, OP_SD,
    OP_ADDI, OP_SLTI, OP_SLTIU, OP_XORI, OP_ORI, OP_ANDI,
    OP_SLLI, OP_SRLI, OP_SRAI,
    OP_ADD, OP_SUB, OP_SLL, OP_SLT, OP_SLTU, OP_XOR, OP_SRL, OP_SRA,
    OP_OR, OP_AND,
    OP_ADDIW, OP_SLLIW, OP_SRLIW, OP_SRAIW,
    OP_ADDW, OP_SUBW, OP_SLLW, OP_SRLW, OP_SRAW,
    OP_MUL, OP_MULH, OP_MULHSU, OP_MULHU, OP_DIV, OP_DIVU, OP_REM, OP_REMU,
    OP_MULW, OP_DIVW, OP_DIVUW, OP_REMW, OP_REMUW,
    OP_ECALL, OP_EBREAK, OP_CSR,
    OP_FLW, OP_FLD, OP_FSW, OP_FSD, OP_FP,
    OP_CUSTOM, OP_AMO,
    OP_COUNT
};

/* RISC-V exception causes, reported in KilnLaunchResult.reason */
#define CAUSE_FETCH_MISALIGNED  0
#define CAUSE_ILLEGAL           2
#define CAUSE_BREAKPOINT        3
#define CAUSE_LOAD_MISALIGNED   4
#define CAUSE_LOAD_FAULT        5
#define CAUSE_STORE_MISALIGNED  6
#define CAUSE_STORE_FAULT       7
#define CAUSE_ECALL_U           8

/* ---- faults ------------------------------------------------------------ */

void kiln_pe_fault(KilnPe *pe, uint32_t status, uint64_t addr,
                   uint32_t access, uint32_t reason)
{
    if (pe->state == KILN_PE_FAULT) {
        return;
    }
    pe->state = KILN_PE_FAULT;
    pe->fault_status = status;
    pe->fault_pc = pe->pc;
    pe->fault_addr = addr;
    pe->fault_access = access;
    pe->fault_reason = reason;
}

void kiln_pe_mmu_fault(KilnPe *pe, const KilnFault *f, uint64_t addr,
                       uint32_t access)
{
    kiln_pe_fault(pe, f->status ? f->status : KILN_STATUS_MMU_FAULT,
                  addr, access, f->reason);
}

void kiln_pe_tlb_flush(KilnPe *pe)
{
    for (int i = 0; i < KILN_PE_TLB_SIZE; i++) {
        pe->rtlb[i].tag = ~0ull;
        pe->wtlb[i].tag = ~0ull;
    }
}

/*
 * Bytes [off, off + len) of local memory are about to be written: shrink
 * the known-zero window, keeping its larger side (the stack grows down from
 * the top, data usually up from the bottom).
 */
void kiln_pe_lm_dirty(KilnPe *pe, uint64_t off, uint64_t len)
{
    uint64_t lo = pe->lm_clean_lo, hi = pe->lm_clean_hi, end = off + len;

    if (end <= lo || off >= hi) {
        return;
    }
    if (off <= lo) {
        lo = end < hi ? end : hi;
    } else if (end >= hi) {
        hi = off;
    } else if (off - lo >= hi - end) {
        hi = off;
    } else {
        lo = end;
    }
    pe->lm_clean_lo = lo;
    pe->lm_clean_hi = hi;
}

/* ---- host FP environment ------------------------------------------------ */

uint32_t kiln_pe_host_fflags(void)
{
    int e = fetestexcept(FE_ALL_EXCEPT);
    uint32_t r = 0;

    if (e & FE_INEXACT) {
        r |= 1;
    }
    if (e & FE_UNDERFLOW) {
        r |= 2;
    }
    if (e & FE_OVERFLOW) {
        r |= 4;
    }
    if (e & FE_DIVBYZERO) {
        r |= 8;
    }
    if (e & FE_INVALID) {
        r |= 16;
    }
    return r;
}

void kiln_pe_clear_host_fflags(void)
{
    feclearexcept(FE_ALL_EXCEPT);
}

static void sync_fflags(KilnPe *pe)
{
    pe->fflags |= kiln_pe_host_fflags();
    feclearexcept(FE_ALL_EXCEPT);
}

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

/* RV64A funct5 values */
#define AMO_ADD     0x00
#define AMO_SWAP    0x01
#define AMO_LR      0x02
#define AMO_SC      0x03
#define AMO_XOR     0x04
#define AMO_OR      0x08
#define AMO_AND     0x0c
#define AMO_MIN     0x10
#define AMO_MAX     0x14
#define AMO_MINU    0x18
#define AMO_MAXU    0x1c

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

static void decode(uint32_t w, KilnInsn *d)
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

static KilnCodePage *code_lookup(KilnPe *pe, uint64_t va)
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
    for (int i = 0; i < KILN_PE_PAGE_INSNS; i++) {
        uint32_t w;
        memcpy(&w, (uint8_t *)words + i * 4, 4);
        decode(w, &p->insn[i]);
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

/* ---- data memory ------------------------------------------------------- */

/*
 * Slow path of a naturally aligned access of @size bytes at @addr: fill the
 * TLB, or go through kiln_as_read/write for host memory. For loads the
 * value is returned through @val; for stores it is written from @val.
 */
static bool mem_slow(KilnPe *pe, uint64_t addr, unsigned size, bool write,
                     void *val)
{
    KilnLaunch *l = pe->launch;
    uint64_t off = addr - KILN_LOCAL_MEM_BASE;
    uint32_t access = write ? KILN_ACCESS_WRITE : KILN_ACCESS_READ;
    KilnXlate x;
    KilnFault f;
    uint64_t gen;

    if (addr >= KILN_LOCAL_MEM_BASE) {
        if (off < pe->lm_size) {
            if (write) {
                kiln_pe_lm_dirty(pe, off, size);
                memcpy(pe->lm + off, val, size);
            } else {
                memcpy(val, pe->lm + off, size);
            }
            return true;
        }
        kiln_pe_fault(pe, KILN_STATUS_LOCAL_MEM_BOUNDS, addr, access,
                      write ? CAUSE_STORE_FAULT : CAUSE_LOAD_FAULT);
        return false;
    }
    /* read before translating: an invalidation after this is seen next time */
    gen = __atomic_load_n(l->tlb_gen, __ATOMIC_ACQUIRE);
    if (gen != pe->tlb_gen) {
        kiln_pe_tlb_flush(pe);
        pe->tlb_gen = gen;
    }
    memset(&f, 0, sizeof(f));
    if (!kiln_as_xlate(l->as, addr & ~4095ull, 4096, access, &x, &f)) {
        f.addr = addr;
        kiln_pe_mmu_fault(pe, &f, addr, access);
        return false;
    }
    pe->cycles_extra += KILN_COST_GLOBAL_EXTRA;
    if (x.host && x.len == 4096) {
        KilnPeTlb *t = write ? &pe->wtlb[(addr >> 12) % KILN_PE_TLB_SIZE]
                             : &pe->rtlb[(addr >> 12) % KILN_PE_TLB_SIZE];
        t->tag = addr >> 12;
        t->base = x.host - (addr & ~4095ull);
        if (write) {
            memcpy(t->base + addr, val, size);
        } else {
            memcpy(val, t->base + addr, size);
        }
        return true;
    }
    if (write ? !kiln_as_write(l->as, addr, val, size, &f)
              : !kiln_as_read(l->as, addr, val, size, &f)) {
        kiln_pe_mmu_fault(pe, &f, addr, access);
        return false;
    }
    return true;
}

/* ---- RV64A ----------------------------------------------------------------- */

/* The new value an AMO stores, from the old one and rs2 (both sign-extended) */
static uint64_t amo_op(uint32_t f5, uint64_t old, uint64_t v, bool word)
{
    int64_t so = word ? (int32_t)old : (int64_t)old;
    int64_t sv = word ? (int32_t)v : (int64_t)v;
    uint64_t uo = word ? (uint32_t)old : old, uv = word ? (uint32_t)v : v;

    switch (f5) {
    case AMO_ADD: return old + v;
    case AMO_XOR: return old ^ v;
    case AMO_OR: return old | v;
    case AMO_AND: return old & v;
    case AMO_MIN: return so < sv ? old : v;
    case AMO_MAX: return so > sv ? old : v;
    case AMO_MINU: return uo < uv ? old : v;
    case AMO_MAXU: return uo > uv ? old : v;
    default: return v;      /* SWAP */
    }
}

/*
 * Atomic read-modify-write of host memory @p (4 or 8 bytes): a compare-and-
 * swap loop, so it is atomic against every other PE's AMOs, whichever worker
 * thread runs them. Returns the old value (zero-extended).
 */
static uint64_t amo_host(uint32_t f5, uint8_t *p, uint64_t v, bool word)
{
    if (word) {
        uint32_t *q = (uint32_t *)p, o = __atomic_load_n(q, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(q, &o, (uint32_t)amo_op(f5, o, v, true),
                                            true, __ATOMIC_SEQ_CST,
                                            __ATOMIC_RELAXED)) {
        }
        return o;
    } else {
        uint64_t *q = (uint64_t *)p, o = __atomic_load_n(q, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(q, &o, amo_op(f5, o, v, false), true,
                                            __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
        }
        return o;
    }
}

static bool cas_host(uint8_t *p, uint64_t expect, uint64_t v, bool word)
{
    if (word) {
        uint32_t e = (uint32_t)expect;
        return __atomic_compare_exchange_n((uint32_t *)p, &e, (uint32_t)v, false,
                                           __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
    }
    return __atomic_compare_exchange_n((uint64_t *)p, &expect, v, false,
                                       __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
}

/*
 * Memory without a host pointer (host memory reached through the PCIe
 * callbacks): AMOs are serialised by this lock, so they are atomic among
 * the device's PEs but not against the host CPU.
 */
static pthread_mutex_t amo_slow_lock = PTHREAD_MUTEX_INITIALIZER;

static bool amo_slow(KilnPe *pe, uint32_t f5, uint64_t addr, uint64_t v,
                     unsigned size, uint64_t *old)
{
    const KilnAddrSpace *as = pe->launch->as;
    uint64_t cur = 0, nv;
    uint32_t access = KILN_ACCESS_READ;
    bool ok, word = size == 4;
    KilnFault f;

    memset(&f, 0, sizeof(f));
    pthread_mutex_lock(&amo_slow_lock);
    ok = kiln_as_read(as, addr, &cur, size, &f);
    if (ok && f5 != AMO_LR) {
        access = KILN_ACCESS_WRITE;
        if (f5 == AMO_SC) {
            nv = v;
            ok = (word ? (uint32_t)cur == (uint32_t)pe->resv_value
                       : cur == pe->resv_value);
            if (!ok) {
                pthread_mutex_unlock(&amo_slow_lock);
                *old = 1;
                return true;
            }
        } else {
            nv = amo_op(f5, cur, v, word);
        }
        ok = kiln_as_write(as, addr, &nv, size, &f);
    }
    pthread_mutex_unlock(&amo_slow_lock);
    if (!ok) {
        kiln_pe_mmu_fault(pe, &f, addr, access);
        return false;
    }
    *old = f5 == AMO_SC ? 0 : cur;
    return true;
}

/*
 * LR/SC/AMO*.W/D. The address must be naturally aligned (else MISALIGNED,
 * cause 4 for LR, 6 otherwise). Local memory is private to the workgroup;
 * device memory is updated with host atomics on its translated address.
 * LR records a reservation (address, size, value read); SC succeeds if the
 * reservation is for the same address and size and the memory still holds
 * that value, compared and swapped atomically. Any SC clears it.
 */
static bool exec_amo(KilnPe *pe, const KilnInsn *d, uint64_t *rd)
{
    uint32_t f5 = d->raw >> 27;
    unsigned size = ((d->raw >> 12) & 7) == 2 ? 4 : 8;
    bool word = size == 4, lr = f5 == AMO_LR, sc = f5 == AMO_SC;
    uint64_t addr = pe->x[d->rs1], v = pe->x[d->rs2], off, old;
    uint32_t access = lr ? KILN_ACCESS_READ : KILN_ACCESS_WRITE;
    uint8_t *host = NULL;
    KilnXlate x;
    KilnFault f;

    if (addr & (size - 1)) {
        kiln_pe_fault(pe, KILN_STATUS_MISALIGNED, addr, access,
                      lr ? CAUSE_LOAD_MISALIGNED : CAUSE_STORE_MISALIGNED);
        return false;
    }
    if (sc) {
        bool reserved = pe->resv_valid && pe->resv_addr == addr &&
                        pe->resv_size == size;
        pe->resv_valid = false;
        if (!reserved) {
            *rd = 1;
            return true;
        }
    }
    off = addr - KILN_LOCAL_MEM_BASE;
    if (addr >= KILN_LOCAL_MEM_BASE) {
        if (off >= pe->lm_size) {
            kiln_pe_fault(pe, KILN_STATUS_LOCAL_MEM_BOUNDS, addr, access,
                          lr ? CAUSE_LOAD_FAULT : CAUSE_STORE_FAULT);
            return false;
        }
        if (!lr) {
            kiln_pe_lm_dirty(pe, off, size);
        }
        host = pe->lm + off;
    } else {
        pe->cycles_extra += KILN_COST_GLOBAL_EXTRA;
        memset(&f, 0, sizeof(f));
        /* an AMO needs read and write permission */
        if (!kiln_as_xlate(pe->launch->as, addr, size, KILN_ACCESS_READ, &x, &f) ||
            (!lr && !kiln_as_xlate(pe->launch->as, addr, size,
                                   KILN_ACCESS_WRITE, &x, &f))) {
            kiln_pe_mmu_fault(pe, &f, f.addr ? f.addr : addr, access);
            return false;
        }
        if (x.host && x.len >= size) {
            host = x.host;
        }
    }
    if (!host) {
        if (!amo_slow(pe, f5, addr, v, size, &old)) {
            return false;
        }
    } else if (lr) {
        old = word ? __atomic_load_n((uint32_t *)host, __ATOMIC_SEQ_CST)
                   : __atomic_load_n((uint64_t *)host, __ATOMIC_SEQ_CST);
    } else if (sc) {
        old = cas_host(host, pe->resv_value, v, word) ? 0 : 1;
    } else {
        old = amo_host(f5, host, v, word);
    }
    if (lr) {
        pe->resv_valid = true;
        pe->resv_addr = addr;
        pe->resv_size = size;
        pe->resv_value = old;
    }
    *rd = word && !sc ? (uint64_t)(int64_t)(int32_t)old : old;
    return true;
}

/* ---- floating point ------------------------------------------------------ */

#define CANON_S 0x7fc00000u
#define CANON_D 0x7ff8000000000000ull
#define FFLAG_NX 1u
#define FFLAG_NV 16u

static inline float unbox_s(uint64_t v)
{
    uint32_t b = (v >> 32) == 0xffffffffu ? (uint32_t)v : CANON_S;
    float f;

    memcpy(&f, &b, 4);
    return f;
}

static inline uint64_t box_s(float f)
{
    uint32_t b;

    memcpy(&b, &f, 4);
    return 0xffffffff00000000ull | b;
}

static inline uint64_t box_s_canon(float f)
{
    return isnan(f) ? (0xffffffff00000000ull | CANON_S) : box_s(f);
}

static inline double as_d(uint64_t v)
{
    double d;

    memcpy(&d, &v, 8);
    return d;
}

static inline uint64_t bits_d(double d)
{
    uint64_t v;

    memcpy(&v, &d, 8);
    return v;
}

static inline uint64_t bits_d_canon(double d)
{
    return isnan(d) ? CANON_D : bits_d(d);
}

static bool is_snan_s(uint64_t boxed)
{
    uint32_t b = (boxed >> 32) == 0xffffffffu ? (uint32_t)boxed : CANON_S;

    return (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) &&
           !(b & 0x400000u);
}

static bool is_snan_d(uint64_t b)
{
    return (b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull &&
           (b & 0xfffffffffffffull) && !(b & 0x8000000000000ull);
}

static int host_round(uint32_t rm)
{
    switch (rm) {
    case 1: return FE_TOWARDZERO;
    case 2: return FE_DOWNWARD;
    case 3: return FE_UPWARD;
    default: return FE_TONEAREST;    /* RNE; RMM: exec_fp_rmm() */
    }
}

/*
 * ---- RMM (round to nearest, ties to max magnitude) ----------------------
 *
 * The host has no RMM mode, so an RMM instruction is executed in RNE (by
 * exec_fp_rmm(), out of exec_fp()'s hot path) and the result is corrected
 * afterwards: RMM and RNE differ only when the exact result x is the
 * midpoint m between two adjacent representable values r (the RNE result,
 * closer to zero) and r' (one ulp further from zero); then RMM returns r'.
 * The test "x == m" is done exactly with integer arithmetic on the
 * operands' bits, so it raises no host flag.
 *
 * The flags of the RNE operation are also the RMM flags:
 * - NX: x is a midpoint in either case, so both are inexact.
 * - OF: the overflow threshold is the same for both (MAX + ulp/2 is a tie
 *   that RNE resolves to the even 2^(emax+1), i.e. to infinity), and when
 *   RNE returns a finite r the step to r' never reaches infinity (a midpoint
 *   above MAX would have overflowed in RNE).
 * - UF (tininess after rounding, as RISC-V): a midpoint below 2^emin is
 *   exactly representable with unbounded exponent, hence tiny (and inexact)
 *   in both modes; a midpoint >= 2^emin is not tiny in either mode.
 * The result of a tie never is NaN, so no canonicalisation is needed, and a
 * tie rounded to zero by RNE keeps the sign of x, which gives r' its sign.
 *
 * FSQRT cannot produce a midpoint: sqrt of a binary32/64 value is never
 * subnormal, and a normal midpoint m has an odd significand of exactly
 * p + 1 bits, so m * m has an odd significand of at least 2p + 1 bits and
 * cannot equal an operand (at most p bits). FDIV can, but only for results
 * below 2^emin: x = a / b = m means a = b * m, and in the normal range the
 * odd part of b * m has more than p bits; a subnormal midpoint has a short
 * odd part (e.g. 2^-1074 / 2 = 2^-1075, which RMM rounds to 2^-1074), so
 * FDIV goes through the same check. FCVT.D.S and FCVT.D.W/WU are exact.
 */
__extension__ typedef unsigned __int128 PeU128;
__extension__ typedef __int128 PeS128;

typedef struct {
    bool neg;
    PeU128 mag;         /* value = (neg ? -1 : 1) * mag * 2^exp */
    int exp;
} RmmTerm;

static inline int ctz128(PeU128 v)
{
    uint64_t lo = (uint64_t)v;

    return lo ? __builtin_ctzll(lo) : 64 + __builtin_ctzll((uint64_t)(v >> 64));
}

static inline int bitlen128(PeU128 v)
{
    uint64_t hi = (uint64_t)(v >> 64);

    return hi ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)v);
}

/*
 * Exact test that a sum of at most three terms is zero. With odd
 * significands, the lowest exponent must occur twice, and the largest
 * magnitude is at most twice the second largest; so a zero sum spans at most
 * one significand width (<= 110 bits here), and a wider spread is nonzero.
 */
static bool rmm_sum_is_zero(RmmTerm *t, int n)
{
    int lo = INT32_MAX, hi = INT32_MIN, k = 0;
    PeS128 sum = 0;

    for (int i = 0; i < n; i++) {
        if (t[i].mag) {
            int z = ctz128(t[i].mag), top;

            t[k] = t[i];
            t[k].mag >>= z;
            t[k].exp += z;
            top = t[k].exp + bitlen128(t[k].mag) - 1;
            lo = t[k].exp < lo ? t[k].exp : lo;
            hi = top > hi ? top : hi;
            k++;
        }
    }
    if (k == 0) {
        return true;
    }
    if (hi - lo > 116) {
        return false;
    }
    for (int i = 0; i < k; i++) {
        PeS128 v = (PeS128)(t[i].mag << (t[i].exp - lo));
        sum += t[i].neg ? -v : v;
    }
    return sum == 0;
}

/* magnitude of a binary64 (exponent field 0x7ff reads as 2^1024) */
static RmmTerm rmm_term_d(uint64_t b)
{
    uint32_t e = (b >> 52) & 0x7ff;
    uint64_t m = b & 0xfffffffffffffull;
    RmmTerm t = { b >> 63, e ? m | (1ull << 52) : m, e ? (int)e - 1075 : -1074 };

    if (e == 0x7ff) {
        t.mag = 1ull << 52;
    }
    return t;
}

static RmmTerm rmm_term_s(uint32_t b)
{
    uint32_t e = (b >> 23) & 0xff;
    uint32_t m = b & 0x7fffff;
    RmmTerm t = { b >> 31, e ? m | (1u << 23) : m, e ? (int)e - 150 : -149 };

    if (e == 0xff) {
        t.mag = 1u << 23;
    }
    return t;
}

static inline RmmTerm rmm_neg(RmmTerm t)
{
    t.neg = !t.neg;
    return t;
}

static inline RmmTerm rmm_mul(RmmTerm a, RmmTerm b)
{
    RmmTerm t = { a.neg != b.neg, a.mag * b.mag, a.exp + b.exp };

    return t;
}

/* midpoint between r and the next value away from zero (r finite) */
static RmmTerm rmm_mid(RmmTerm r, RmmTerm r_away)
{
    int e = r.exp < r_away.exp ? r.exp : r_away.exp;
    RmmTerm m = { r.neg, (r.mag << (r.exp - e)) + (r_away.mag << (r_away.exp - e)),
                  e - 1 };

    return m;
}

enum { RMM_ADD, RMM_MUL, RMM_FMA, RMM_DIV, RMM_CVT };

/*
 * RMM correction of an RNE result r for the operation kind on the (already
 * sign-adjusted) terms x[]: ADD x0 + x1, MUL x0 * x1, FMA x0 * x1 + x2,
 * DIV x0 / x1, CVT x0.
 */
static bool rmm_is_tie(RmmTerm r, RmmTerm ra, int kind, const RmmTerm *x)
{
    RmmTerm m = rmm_mid(r, ra), t[3];
    int n;

    switch (kind) {
    case RMM_ADD:
        t[0] = x[0];
        t[1] = x[1];
        t[2] = rmm_neg(m);
        n = 3;
        break;
    case RMM_MUL:
        t[0] = rmm_mul(x[0], x[1]);
        t[1] = rmm_neg(m);
        n = 2;
        break;
    case RMM_FMA:
        t[0] = rmm_mul(x[0], x[1]);
        t[1] = x[2];
        t[2] = rmm_neg(m);
        n = 3;
        break;
    case RMM_DIV:       /* x0 == x1 * m */
        t[0] = x[0];
        t[1] = rmm_neg(rmm_mul(x[1], m));
        n = 2;
        break;
    default:
        t[0] = x[0];
        t[1] = rmm_neg(m);
        n = 2;
        break;
    }
    return rmm_sum_is_zero(t, n);
}

static double rmm_d(double r, int kind, const RmmTerm *x)
{
    uint64_t b = bits_d(r);

    if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull) {
        return r;
    }
    if (rmm_is_tie(rmm_term_d(b), rmm_term_d(b + 1), kind, x)) {
        return as_d(b + 1);
    }
    return r;
}

static float rmm_s(float r, int kind, const RmmTerm *x)
{
    uint32_t b;

    memcpy(&b, &r, 4);
    if ((b & 0x7f800000u) == 0x7f800000u) {
        return r;
    }
    if (rmm_is_tie(rmm_term_s(b), rmm_term_s(b + 1), kind, x)) {
        b++;
        memcpy(&r, &b, 4);
    }
    return r;
}

static inline RmmTerm rmm_fs(float v)
{
    uint32_t b;

    memcpy(&b, &v, 4);
    return rmm_term_s(b);
}

static inline RmmTerm rmm_fd(double v)
{
    return rmm_term_d(bits_d(v));
}

static inline RmmTerm rmm_int(uint64_t v, bool is_signed)
{
    bool neg = is_signed && (int64_t)v < 0;
    RmmTerm t = { neg, neg ? -v : v, 0 };

    return t;
}

static double round_int(double v, uint32_t rm)
{
    switch (rm) {
    case 0: return nearbyint(v);     /* host mode is RNE */
    case 1: return trunc(v);
    case 2: return floor(v);
    case 3: return ceil(v);
    default: return round(v);        /* RMM: ties away from zero */
    }
}

/* fcvt to integer: saturating, NV on NaN/out of range, NX when inexact */
static uint64_t cvt_to_int(KilnPe *pe, double v, uint32_t rm, unsigned kind)
{
    double r;

    if (isnan(v)) {
        pe->fflags |= FFLAG_NV;
        switch (kind) {
        case 0: return (uint64_t)(int64_t)INT32_MAX;
        case 1: return ~0ull;                       /* sext(0xffffffff) */
        case 2: return (uint64_t)INT64_MAX;
        default: return ~0ull;
        }
    }
    r = round_int(v, rm);
    switch (kind) {
    case 0:     /* w */
        if (r < -2147483648.0) {
            pe->fflags |= FFLAG_NV;
            return (uint64_t)(int64_t)INT32_MIN;
        }
        if (r > 2147483647.0) {
            pe->fflags |= FFLAG_NV;
            return (uint64_t)(int64_t)INT32_MAX;
        }
        if (r != v) {
            pe->fflags |= FFLAG_NX;
        }
        return (uint64_t)(int64_t)(int32_t)r;
    case 1:     /* wu */
        if (r < 0.0) {
            pe->fflags |= FFLAG_NV;
            return 0;
        }
        if (r > 4294967295.0) {
            pe->fflags |= FFLAG_NV;
            return ~0ull;
        }
        if (r != v) {
            pe->fflags |= FFLAG_NX;
        }
        return (uint64_t)(int64_t)(int32_t)(uint32_t)r;
    case 2:     /* l */
        if (r < -9223372036854775808.0) {
            pe->fflags |= FFLAG_NV;
            return (uint64_t)INT64_MIN;
        }
        if (r >= 9223372036854775808.0) {
            pe->fflags |= FFLAG_NV;
            return (uint64_t)INT64_MAX;
        }
        if (r != v) {
            pe->fflags |= FFLAG_NX;
        }
        return (uint64_t)(int64_t)r;
    default:    /* lu */
        if (r < 0.0) {
            pe->fflags |= FFLAG_NV;
            return 0;
        }
        if (r >= 18446744073709551616.0) {
            pe->fflags |= FFLAG_NV;
            return ~0ull;
        }
        if (r != v) {
            pe->fflags |= FFLAG_NX;
        }
        return (uint64_t)r;
    }
}

static uint32_t fclass_bits(bool neg, bool inf, bool nan, bool snan,
                            bool zero, bool sub)
{
    if (nan) {
        return snan ? 1u << 8 : 1u << 9;
    }
    if (inf) {
        return neg ? 1u << 0 : 1u << 7;
    }
    if (zero) {
        return neg ? 1u << 3 : 1u << 4;
    }
    if (sub) {
        return neg ? 1u << 2 : 1u << 5;
    }
    return neg ? 1u << 1 : 1u << 6;
}

/*
 * Execute a legal, rounding OP-FP or FMA-family instruction whose rounding
 * mode is RMM (the host FPU is in RNE): fused multiply-add family, fadd,
 * fsub, fmul, fdiv, fsqrt, fcvt.s.d, fcvt.d.s, fcvt.{s,d}.{w,wu,l,lu}.
 */
__attribute__((cold, noinline))
static void exec_fp_rmm(KilnPe *pe, const KilnInsn *d)
{
    uint32_t w = d->raw, opc = w & 0x7f, f7 = w >> 25, rd = d->rd;
    uint64_t *f = pe->f;
    uint64_t a = f[d->rs1], b = f[d->rs2], c = f[d->rs3];
    bool dbl = f7 & 1;

    if (opc != 0x53) {
        bool neg_prod = opc == 0x4b || opc == 0x4f;
        bool neg_c = opc == 0x47 || opc == 0x4f;

        if (!dbl) {
            float fa = unbox_s(a), fb = unbox_s(b), fc = unbox_s(c), r;
            RmmTerm t[3] = { rmm_fs(fa), rmm_fs(fb), rmm_fs(fc) };

            r = fmaf(neg_prod ? -fa : fa, fb, neg_c ? -fc : fc);
            t[0].neg ^= neg_prod;
            t[2].neg ^= neg_c;
            f[rd] = box_s_canon(rmm_s(r, RMM_FMA, t));
        } else {
            double da = as_d(a), db = as_d(b), dc = as_d(c), r;
            RmmTerm t[3] = { rmm_fd(da), rmm_fd(db), rmm_fd(dc) };

            r = fma(neg_prod ? -da : da, db, neg_c ? -dc : dc);
            t[0].neg ^= neg_prod;
            t[2].neg ^= neg_c;
            f[rd] = bits_d_canon(rmm_d(r, RMM_FMA, t));
        }
        return;
    }
    switch (f7 >> 2) {
    case 0x00: case 0x01: case 0x02: case 0x03: {  /* add sub mul div */
        static const int kind[4] = { RMM_ADD, RMM_ADD, RMM_MUL, RMM_DIV };
        uint32_t op = f7 >> 2;

        if (op == 3) {
            pe->cycles_extra += KILN_COST_FDIV_EXTRA;
        }
        if (!dbl) {
            float fa = unbox_s(a), fb = unbox_s(b), r;
            RmmTerm t[2] = { rmm_fs(fa), rmm_fs(fb) };

            r = op == 0 ? fa + fb : op == 1 ? fa - fb : op == 2 ? fa * fb : fa / fb;
            t[1].neg ^= op == 1;
            f[rd] = box_s_canon(rmm_s(r, kind[op], t));
        } else {
            double da = as_d(a), db = as_d(b), r;
            RmmTerm t[2] = { rmm_fd(da), rmm_fd(db) };

            r = op == 0 ? da + db : op == 1 ? da - db : op == 2 ? da * db : da / db;
            t[1].neg ^= op == 1;
            f[rd] = bits_d_canon(rmm_d(r, kind[op], t));
        }
        break;
    }
    case 0x0b:  /* fsqrt: never a midpoint (see above), RNE is RMM */
        pe->cycles_extra += KILN_COST_FDIV_EXTRA;
        f[rd] = dbl ? bits_d_canon(sqrt(as_d(a))) : box_s_canon(sqrtf(unbox_s(a)));
        break;
    case 0x08:  /* fcvt.s.d (rounds) / fcvt.d.s (exact) */
        if (!dbl) {
            RmmTerm t = rmm_term_d(a);

            f[rd] = box_s_canon(rmm_s((float)as_d(a), RMM_CVT, &t));
        } else {
            f[rd] = bits_d_canon((double)unbox_s(a));
        }
        break;
    default: {      /* 0x1a: fcvt.{s,d}.{w,wu,l,lu} */
        uint64_t v = pe->x[d->rs1];
        RmmTerm t;

        switch (d->rs2) {
        case 0: t = rmm_int((uint64_t)(int64_t)(int32_t)v, true); break;
        case 1: t = rmm_int((uint32_t)v, false); break;
        case 2: t = rmm_int(v, true); break;
        default: t = rmm_int(v, false); break;
        }
        if (!dbl) {
            float r;
            switch (d->rs2) {
            case 0: r = (float)(int32_t)v; break;
            case 1: r = (float)(uint32_t)v; break;
            case 2: r = (float)(int64_t)v; break;
            default: r = (float)v; break;
            }
            f[rd] = box_s(rmm_s(r, RMM_CVT, &t));
        } else {
            double r;
            switch (d->rs2) {
            case 0: r = (double)(int32_t)v; break;
            case 1: r = (double)(uint32_t)v; break;
            case 2: r = (double)(int64_t)v; break;
            default: r = (double)v; break;
            }
            f[rd] = bits_d(rmm_d(r, RMM_CVT, &t));  /* w/wu: exact, no tie */
        }
        break;
    }
    }
}

/*
 * Execute an OP-FP or FMA-family instruction. Returns false for an illegal
 * encoding (including a reserved rounding mode).
 */
static bool exec_fp(KilnPe *pe, const KilnInsn *d)
{
    uint32_t w = d->raw, opc = w & 0x7f, f3 = (w >> 12) & 7, f7 = w >> 25;
    uint32_t rd = d->rd, rm = f3;
    uint64_t *f = pe->f, *x = pe->x;
    uint64_t a = f[d->rs1], b = f[d->rs2], c = f[d->rs3];
    int old_round = -1;
    bool dbl;

    /* rounding mode for the instructions that round */
#define USE_RM() do {                                               \
        if (rm == 7) {                                              \
            rm = pe->frm;                                           \
        }                                                           \
        if (rm > 4) {                                               \
            return false;                                           \
        }                                                           \
        if (rm != 0) {                                              \
            if (rm == 4) {                                          \
                exec_fp_rmm(pe, d);                                 \
                return true;                                        \
            }                                                       \
            old_round = fegetround();                               \
            fesetround(host_round(rm));                             \
        }                                                           \
    } while (0)
#define WX(v) do { if (rd) { x[rd] = (v); } } while (0)

    pe->cycles_extra += KILN_COST_FP_EXTRA;
    if (opc != 0x53) {
        /* fmadd/fmsub/fnmsub/fnmadd */
        uint32_t fmt = (w >> 25) & 3;
        bool neg_prod = opc == 0x4b || opc == 0x4f;
        bool neg_c = opc == 0x47 || opc == 0x4f;

        if (fmt > 1) {
            return false;
        }
        USE_RM();
        if (fmt == 0) {
            float fa = unbox_s(a), fb = unbox_s(b), fc = unbox_s(c);
            f[rd] = box_s_canon(fmaf(neg_prod ? -fa : fa, fb,
                                     neg_c ? -fc : fc));
        } else {
            double da = as_d(a), db = as_d(b), dc = as_d(c);
            f[rd] = bits_d_canon(fma(neg_prod ? -da : da, db,
                                     neg_c ? -dc : dc));
        }
        goto done;
    }
    if (f7 & 2) {
        return false;   /* fmt H and Q are not implemented */
    }
    dbl = f7 & 1;
    switch (f7 >> 2) {
    case 0x00: case 0x01: case 0x02: case 0x03: /* add sub mul div */
        USE_RM();
        if (!dbl) {
            float fa = unbox_s(a), fb = unbox_s(b), r;
            switch (f7 >> 2) {
            case 0: r = fa + fb; break;
            case 1: r = fa - fb; break;
            case 2: r = fa * fb; break;
            default:
                r = fa / fb;
                pe->cycles_extra += KILN_COST_FDIV_EXTRA;
                break;
            }
            f[rd] = box_s_canon(r);
        } else {
            double da = as_d(a), db = as_d(b), r;
            switch (f7 >> 2) {
            case 0: r = da + db; break;
            case 1: r = da - db; break;
            case 2: r = da * db; break;
            default:
                r = da / db;
                pe->cycles_extra += KILN_COST_FDIV_EXTRA;
                break;
            }
            f[rd] = bits_d_canon(r);
        }
        break;
    case 0x0b:  /* fsqrt (RMM: see exec_fp_rmm) */
        if (d->rs2 != 0) {
            return false;
        }
        USE_RM();
        pe->cycles_extra += KILN_COST_FDIV_EXTRA;
        f[rd] = dbl ? bits_d_canon(sqrt(as_d(a))) : box_s_canon(sqrtf(unbox_s(a)));
        break;
    case 0x04: {    /* fsgnj */
        if (f3 > 2) {
            return false;
        }
        if (!dbl) {
            uint32_t ua = (a >> 32) == 0xffffffffu ? (uint32_t)a : CANON_S;
            uint32_t ub = (b >> 32) == 0xffffffffu ? (uint32_t)b : CANON_S;
            uint32_t s = f3 == 0 ? ub : f3 == 1 ? ~ub : (ua ^ ub);
            f[rd] = 0xffffffff00000000ull | (ua & 0x7fffffffu) | (s & 0x80000000u);
        } else {
            uint64_t s = f3 == 0 ? b : f3 == 1 ? ~b : (a ^ b);
            f[rd] = (a & ~(1ull << 63)) | (s & (1ull << 63));
        }
        break;
    }
    case 0x05: {    /* fmin fmax */
        bool max = f3 == 1;
        if (f3 > 1) {
            return false;
        }
        if (!dbl) {
            float fa = unbox_s(a), fb = unbox_s(b), r;
            if (is_snan_s(a) || is_snan_s(b)) {
                pe->fflags |= FFLAG_NV;
            }
            if (isnan(fa) && isnan(fb)) {
                f[rd] = 0xffffffff00000000ull | CANON_S;
                break;
            } else if (isnan(fa)) {
                r = fb;
            } else if (isnan(fb)) {
                r = fa;
            } else if (fa == fb) {
                /* -0 < +0 */
                r = (signbit(fa) != 0) == max ? fb : fa;
            } else {
                r = (fa < fb) != max ? fa : fb;
            }
            f[rd] = box_s(r);
        } else {
            double da = as_d(a), db = as_d(b), r;
            if (is_snan_d(a) || is_snan_d(b)) {
                pe->fflags |= FFLAG_NV;
            }
            if (isnan(da) && isnan(db)) {
                f[rd] = CANON_D;
                break;
            } else if (isnan(da)) {
                r = db;
            } else if (isnan(db)) {
                r = da;
            } else if (da == db) {
                r = (signbit(da) != 0) == max ? db : da;
            } else {
                r = (da < db) != max ? da : db;
            }
            f[rd] = bits_d(r);
        }
        break;
    }
    case 0x08:  /* fcvt.s.d / fcvt.d.s */
        if (f7 == 0x20 && d->rs2 == 1) {
            USE_RM();
            f[rd] = box_s_canon((float)as_d(a));
        } else if (f7 == 0x21 && d->rs2 == 0) {
            USE_RM();
            f[rd] = bits_d_canon((double)unbox_s(a));
        } else {
            return false;
        }
        break;
    case 0x14: {    /* feq flt fle */
        bool nan, snan, r;
        double da, db;
        if (!dbl) {
            da = unbox_s(a);
            db = unbox_s(b);
            snan = is_snan_s(a) || is_snan_s(b);
        } else {
            da = as_d(a);
            db = as_d(b);
            snan = is_snan_d(a) || is_snan_d(b);
        }
        nan = isnan(da) || isnan(db);
        if (f3 == 2) {
            if (snan) {
                pe->fflags |= FFLAG_NV;
            }
            r = !nan && da == db;
        } else if (f3 == 1 || f3 == 0) {
            if (nan) {
                pe->fflags |= FFLAG_NV;
                r = false;
            } else {
                r = f3 == 1 ? da < db : da <= db;
            }
        } else {
            return false;
        }
        WX(r);
        break;
    }
    case 0x18: {    /* fcvt.{w,wu,l,lu}.{s,d} */
        uint64_t r;
        if (d->rs2 > 3) {
            return false;
        }
        if (rm == 7) {
            rm = pe->frm;
        }
        if (rm > 4) {
            return false;
        }
        r = cvt_to_int(pe, dbl ? as_d(a) : (double)unbox_s(a), rm, d->rs2);
        WX(r);
        break;
    }
    case 0x1a: {    /* fcvt.{s,d}.{w,wu,l,lu} */
        uint64_t v = x[d->rs1];
        if (d->rs2 > 3) {
            return false;
        }
        USE_RM();
        if (!dbl) {
            float r;
            switch (d->rs2) {
            case 0: r = (float)(int32_t)v; break;
            case 1: r = (float)(uint32_t)v; break;
            case 2: r = (float)(int64_t)v; break;
            default: r = (float)v; break;
            }
            f[rd] = box_s(r);
        } else {
            double r;
            switch (d->rs2) {
            case 0: r = (double)(int32_t)v; break;
            case 1: r = (double)(uint32_t)v; break;
            case 2: r = (double)(int64_t)v; break;
            default: r = (double)v; break;
            }
            f[rd] = bits_d(r);
        }
        break;
    }
    case 0x1c:  /* fmv.x.{w,d} / fclass */
        if (d->rs2 != 0) {
            return false;
        }
        if (f3 == 0) {
            WX(dbl ? a : (uint64_t)(int64_t)(int32_t)(uint32_t)a);
        } else if (f3 == 1) {
            uint32_t cls;
            if (!dbl) {
                uint32_t u = (a >> 32) == 0xffffffffu ? (uint32_t)a : CANON_S;
                uint32_t e = (u >> 23) & 0xff, m = u & 0x7fffff;
                cls = fclass_bits(u >> 31, e == 0xff && !m, e == 0xff && m,
                                  e == 0xff && m && !(m & 0x400000),
                                  e == 0 && !m, e == 0 && m);
            } else {
                uint64_t e = (a >> 52) & 0x7ff, m = a & 0xfffffffffffffull;
                cls = fclass_bits(a >> 63, e == 0x7ff && !m, e == 0x7ff && m,
                                  e == 0x7ff && m && !(m & 0x8000000000000ull),
                                  e == 0 && !m, e == 0 && m);
            }
            WX(cls);
        } else {
            return false;
        }
        break;
    case 0x1e:  /* fmv.{w,d}.x */
        if (d->rs2 != 0 || f3 != 0) {
            return false;
        }
        f[rd] = dbl ? x[d->rs1] : (0xffffffff00000000ull | (uint32_t)x[d->rs1]);
        break;
    default:
        return false;
    }
done:
    if (old_round >= 0) {
        fesetround(old_round);
    }
    return true;
#undef USE_RM
#undef WX
}

/* ---- CSRs ---------------------------------------------------------------- */

static bool csr_read(KilnPe *pe, uint32_t csr, uint64_t *v)
{
    KilnLaunch *l = pe->launch;
    const struct kiln_pkt_launch *p = l->pkt;

    switch (csr) {
    case KILN_CSR_FFLAGS:
        sync_fflags(pe);
        *v = pe->fflags;
        return true;
    case KILN_CSR_FRM:
        *v = pe->frm;
        return true;
    case KILN_CSR_FCSR:
        sync_fflags(pe);
        *v = pe->fflags | (pe->frm << 5);
        return true;
    case KILN_CSR_CYCLE: case KILN_CSR_TIME: case KILN_CSR_CYCLES:
        *v = kiln_pe_cycles(pe);
        return true;
    case KILN_CSR_INSTRET:
        *v = pe->instret;
        return true;
    case KILN_CSR_PE_ID: *v = pe->slot; return true;
    case KILN_CSR_WG_X: *v = pe->wg_x; return true;
    case KILN_CSR_WG_Y: *v = pe->wg_y; return true;
    case KILN_CSR_WG_Z: *v = pe->wg_z; return true;
    case KILN_CSR_GRID_X: *v = p->grid_x; return true;
    case KILN_CSR_GRID_Y: *v = p->grid_y; return true;
    case KILN_CSR_GRID_Z: *v = p->grid_z; return true;
    case KILN_CSR_NUM_PES: *v = l->num_pes; return true;
    case KILN_CSR_LOCAL_BASE: *v = KILN_LOCAL_MEM_BASE; return true;
    case KILN_CSR_LOCAL_SIZE: *v = pe->lm_size; return true;
    case KILN_CSR_WG_ID: *v = pe->wg; return true;
    case KILN_CSR_NUM_WG:
        *v = (uint64_t)p->grid_x * p->grid_y * p->grid_z;
        return true;
    case KILN_CSR_DEBUG_PUTC:
        *v = 0;
        return true;
    }
    return false;
}

static bool csr_write(KilnPe *pe, uint32_t csr, uint64_t v)
{
    switch (csr) {
    case KILN_CSR_FFLAGS:
        feclearexcept(FE_ALL_EXCEPT);
        pe->fflags = v & 31;
        return true;
    case KILN_CSR_FRM:
        pe->frm = v & 7;
        return true;
    case KILN_CSR_FCSR:
        feclearexcept(FE_ALL_EXCEPT);
        pe->fflags = v & 31;
        pe->frm = (v >> 5) & 7;
        return true;
    case KILN_CSR_DEBUG_PUTC: {
        char ch = (char)v;
        kiln_pe_debug_append(pe, &ch, 1);
        return true;
    }
    }
    return false;
}

static bool exec_csr(KilnPe *pe, const KilnInsn *d)
{
    uint32_t f3 = (d->raw >> 12) & 7, csr = d->imm & 0xfff;
    uint64_t src = (f3 & 4) ? d->rs1 : pe->x[d->rs1];
    uint64_t old = 0;
    bool do_write = (f3 & 3) == 1 || d->rs1 != 0;
    bool do_read = (f3 & 3) != 1 || d->rd != 32;

    if (do_write && (csr >> 10) == 3) {
        return false;   /* read-only CSR */
    }
    if ((do_read || !do_write) && !csr_read(pe, csr, &old)) {
        return false;
    }
    if (do_write) {
        uint64_t nv = (f3 & 3) == 1 ? src : (f3 & 3) == 2 ? (old | src)
                                                           : (old & ~src);
        if (!csr_write(pe, csr, nv)) {
            return false;
        }
    }
    pe->x[d->rd] = old;
    return true;
}

/* ---- the run loop -------------------------------------------------------- */

static bool checkpoint(KilnPe *pe)
{
    KilnLaunch *l = pe->launch;
    uint64_t cyc = kiln_pe_cycles(pe);

    if (l->progress && pe->instret != pe->progress_reported) {
        __atomic_fetch_add(l->progress, pe->instret - pe->progress_reported,
                           __ATOMIC_RELAXED);
        pe->progress_reported = pe->instret;
    }
    if (l->cancel && *l->cancel) {
        pe->state = KILN_PE_STOPPED;
        return false;
    }
    if (atomic_load_explicit(&l->first_fault, memory_order_relaxed) < pe->wg) {
        pe->state = KILN_PE_STOPPED;
        return false;
    }
    if (cyc >= l->watchdog) {
        kiln_pe_fault(pe, KILN_STATUS_WATCHDOG, cyc, 0, 0);
        return false;
    }
    return true;
}

void kiln_pe_run(KilnPe *pe)
{
    static const void *const labels[OP_COUNT] = {
        [OP_ILLEGAL] = &&L_ILLEGAL, [OP_PAGE_END] = &&L_PAGE_END,
        [OP_NOP] = &&L_NOP,
        [OP_LUI] = &&L_LUI, [OP_AUIPC] = &&L_AUIPC, [OP_JAL] = &&L_JAL,
        [OP_JALR] = &&L_JALR,
        [OP_BEQ] = &&L_BEQ, [OP_BNE] = &&L_BNE, [OP_BLT] = &&L_BLT,
        [OP_BGE] = &&L_BGE, [OP_BLTU] = &&L_BLTU, [OP_BGEU] = &&L_BGEU,
        [OP_LB] = &&L_LB, [OP_LH] = &&L_LH, [OP_LW] = &&L_LW,
        [OP_LD] = &&L_LD, [OP_LBU] = &&L_LBU, [OP_LHU] = &&L_LHU,
        [OP_LWU] = &&L_LWU,
        [OP_SB] = &&L_SB, [OP_SH] = &&L_SH, [OP_SW] = &&L_SW, [OP_SD] = &&L_SD,
        [OP_ADDI] = &&L_ADDI, [OP_SLTI] = &&L_SLTI, [OP_SLTIU] = &&L_SLTIU,
        [OP_XORI] = &&L_XORI, [OP_ORI] = &&L_ORI, [OP_ANDI] = &&L_ANDI,
        [OP_SLLI] = &&L_SLLI, [OP_SRLI] = &&L_SRLI, [OP_SRAI] = &&L_SRAI,
        [OP_ADD] = &&L_ADD, [OP_SUB] = &&L_SUB, [OP_SLL] = &&L_SLL,
        [OP_SLT] = &&L_SLT, [OP_SLTU] = &&L_SLTU, [OP_XOR] = &&L_XOR,
        [OP_SRL] = &&L_SRL, [OP_SRA] = &&L_SRA, [OP_OR] = &&L_OR,
        [OP_AND] = &&L_AND,
        [OP_ADDIW] = &&L_ADDIW, [OP_SLLIW] = &&L_SLLIW,
        [OP_SRLIW] = &&L_SRLIW, [OP_SRAIW] = &&L_SRAIW,
        [OP_ADDW] = &&L_ADDW, [OP_SUBW] = &&L_SUBW, [OP_SLLW] = &&L_SLLW,
        [OP_SRLW] = &&L_SRLW, [OP_SRAW] = &&L_SRAW,
        [OP_MUL] = &&L_MUL, [OP_MULH] = &&L_MULH, [OP_MULHSU] = &&L_MULHSU,
        [OP_MULHU] = &&L_MULHU, [OP_DIV] = &&L_DIV, [OP_DIVU] = &&L_DIVU,
        [OP_REM] = &&L_REM, [OP_REMU] = &&L_REMU,
        [OP_MULW] = &&L_MULW, [OP_DIVW] = &&L_DIVW, [OP_DIVUW] = &&L_DIVUW,
        [OP_REMW] = &&L_REMW, [OP_REMUW] = &&L_REMUW,
        [OP_ECALL] = &&L_ECALL, [OP_EBREAK] = &&L_EBREAK, [OP_CSR] = &&L_CSR,
        [OP_FLW] = &&L_FLW, [OP_FLD] = &&L_FLD, [OP_FSW] = &&L_FSW,
        [OP_FSD] = &&L_FSD, [OP_FP] = &&L_FP, [OP_CUSTOM] = &&L_CUSTOM,
        [OP_AMO] = &&L_AMO,
    };
    uint64_t *const x = pe->x;
    uint8_t *const lm = pe->lm;
    const uint64_t lm_size = pe->lm_size;
    const uint64_t *const tlb_gen = pe->launch->tlb_gen;
    const KilnInsn *d, *base;
    uint64_t page_va, icount = pe->instret, check_at;
    KilnCodePage *page;
    uint64_t addr, off, tmp;

#define PC()        (page_va + ((uint64_t)(d - base) << 2))
#define SYNC()      do { pe->instret = icount; pe->pc = PC(); } while (0)
#define DISPATCH()  goto *labels[d->op]
#define NEXT()      do { icount++; d++; DISPATCH(); } while (0)
#define JUMP(t)     do {                                                  \
        uint64_t t_ = (t);                                                \
        icount++;                                                         \
        if (likely(((t_ ^ page_va) >> 12) == 0 && icount < check_at &&   \
                   !(t_ & 3))) {                                          \
            d = base + ((t_ & 4095) >> 2);                                \
            DISPATCH();                                                   \
        }                                                                 \
        pe->pc = t_;                                                      \
        goto fetch;                                                       \
    } while (0)
#define BRANCH(cond) do {                                                 \
        if (cond) {                                                       \
            JUMP(PC() + (int64_t)d->imm);                                 \
        }                                                                 \
        NEXT();                                                           \
    } while (0)
#define FAULT(st, a, acc, why) do {                                       \
        SYNC();                                                           \
        kiln_pe_fault(pe, st, a, acc, why);                               \
        goto out;                                                         \
    } while (0)

    /*
     * A load/store of sizeof(T): local memory, then the TLB, then the
     * slow path. Misaligned data accesses fault (docs/pe-isa.md).
     */
#define LOAD_TO(dst, T, conv) do {                                                \
        T v_;                                                             \
        addr = x[d->rs1] + (int64_t)d->imm;                               \
        if (unlikely(addr & (sizeof(T) - 1))) {                           \
            FAULT(KILN_STATUS_MISALIGNED, addr, KILN_ACCESS_READ,         \
                  CAUSE_LOAD_MISALIGNED);                                 \
        }                                                                 \
        off = addr - KILN_LOCAL_MEM_BASE;                                 \
        if (likely(off < lm_size)) {                                      \
            memcpy(&v_, lm + off, sizeof(T));                             \
        } else {                                                          \
            KilnPeTlb *t_ = &pe->rtlb[(addr >> 12) % KILN_PE_TLB_SIZE];   \
            if (likely(t_->tag == addr >> 12 &&                           \
                       __atomic_load_n(tlb_gen, __ATOMIC_ACQUIRE) ==      \
                       pe->tlb_gen)) {                                    \
                memcpy(&v_, t_->base + addr, sizeof(T));                  \
                pe->cycles_extra += KILN_COST_GLOBAL_EXTRA;               \
            } else {                                                      \
                SYNC();                                                   \
                if (!mem_slow(pe, addr, sizeof(T), false, &v_)) {         \
                    goto out;                                             \
                }                                                         \
            }                                                             \
        }                                                                 \
        dst[d->rd] = conv(v_);                                            \
        NEXT();                                                           \
    } while (0)
#define LOAD(T, conv) LOAD_TO(x, T, conv)
#define STORE_TO(T, val) do {                                             \
        T v_ = (T)(val);                                                  \
        addr = x[d->rs1] + (int64_t)d->imm;                               \
        if (unlikely(addr & (sizeof(T) - 1))) {                           \
            FAULT(KILN_STATUS_MISALIGNED, addr, KILN_ACCESS_WRITE,        \
                  CAUSE_STORE_MISALIGNED);                                \
        }                                                                 \
        off = addr - KILN_LOCAL_MEM_BASE;                                 \
        if (likely(off < lm_size)) {                                      \
            if (unlikely(off + sizeof(T) > pe->lm_clean_lo &&             \
                         off < pe->lm_clean_hi)) {                        \
                kiln_pe_lm_dirty(pe, off, sizeof(T));                     \
            }                                                             \
            memcpy(lm + off, &v_, sizeof(T));                             \
        } else {                                                          \
            KilnPeTlb *t_ = &pe->wtlb[(addr >> 12) % KILN_PE_TLB_SIZE];   \
            if (likely(t_->tag == addr >> 12 &&                           \
                       __atomic_load_n(tlb_gen, __ATOMIC_ACQUIRE) ==      \
                       pe->tlb_gen)) {                                    \
                memcpy(t_->base + addr, &v_, sizeof(T));                  \
                pe->cycles_extra += KILN_COST_GLOBAL_EXTRA;               \
            } else {                                                      \
                SYNC();                                                   \
                if (!mem_slow(pe, addr, sizeof(T), true, &v_)) {          \
                    goto out;                                             \
                }                                                         \
            }                                                             \
        }                                                                 \
        NEXT();                                                           \
    } while (0)
#define SX8(v)  ((uint64_t)(int64_t)(int8_t)(v))
#define SX16(v) ((uint64_t)(int64_t)(int16_t)(v))
#define SX32(v) ((uint64_t)(int64_t)(int32_t)(v))
#define ZX(v)   ((uint64_t)(v))

    /* host flags raised outside this PE's instructions are not its own */
    feclearexcept(FE_ALL_EXCEPT);
    check_at = icount;      /* checkpoint at once */

fetch:
    /* pe->pc holds the next pc; icount is up to date */
    pe->instret = icount;
    if (pe->pc == KILN_EXIT_PC) {
        pe->state = KILN_PE_EXITED;
        goto out_synced;
    }
    if (pe->pc & 3) {
        kiln_pe_fault(pe, KILN_STATUS_MISALIGNED, pe->pc, KILN_ACCESS_EXEC,
                      CAUSE_FETCH_MISALIGNED);
        goto out_synced;
    }
    if (icount >= check_at) {
        uint64_t left;
        if (!checkpoint(pe)) {
            goto out_synced;
        }
        left = pe->launch->watchdog - kiln_pe_cycles(pe);
        check_at = icount + (left < KILN_PE_CHECK_INTERVAL ? left
                                                          : KILN_PE_CHECK_INTERVAL);
    }
    page = code_lookup(pe, pe->pc);
    if (!page) {
        goto out_synced;
    }
    page_va = page->va;
    base = page->insn;
    d = base + ((pe->pc & 4095) >> 2);
    DISPATCH();

L_PAGE_END:
    pe->pc = page_va + 4096;
    goto fetch;
L_ILLEGAL:
    FAULT(KILN_STATUS_ILLEGAL_INSTRUCTION, d->raw, 0, CAUSE_ILLEGAL);
L_NOP:
    NEXT();
L_LUI:
    x[d->rd] = (uint64_t)(int64_t)d->imm;
    NEXT();
L_AUIPC:
    x[d->rd] = PC() + (int64_t)d->imm;
    NEXT();
L_JAL: {
        uint64_t pc = PC();
        x[d->rd] = pc + 4;
        JUMP(pc + (int64_t)d->imm);
    }
L_JALR: {
        uint64_t t = (x[d->rs1] + (int64_t)d->imm) & ~1ull;
        x[d->rd] = PC() + 4;
        JUMP(t);
    }
L_BEQ:  BRANCH(x[d->rs1] == x[d->rs2]);
L_BNE:  BRANCH(x[d->rs1] != x[d->rs2]);
L_BLT:  BRANCH((int64_t)x[d->rs1] < (int64_t)x[d->rs2]);
L_BGE:  BRANCH((int64_t)x[d->rs1] >= (int64_t)x[d->rs2]);
L_BLTU: BRANCH(x[d->rs1] < x[d->rs2]);
L_BGEU: BRANCH(x[d->rs1] >= x[d->rs2]);
L_LB:  LOAD(int8_t, SX8);
L_LH:  LOAD(int16_t, SX16);
L_LW:  LOAD(int32_t, SX32);
L_LD:  LOAD(uint64_t, ZX);
L_LBU: LOAD(uint8_t, ZX);
L_LHU: LOAD(uint16_t, ZX);
L_LWU: LOAD(uint32_t, ZX);
L_SB: STORE_TO(uint8_t, x[d->rs2]);
L_SH: STORE_TO(uint16_t, x[d->rs2]);
L_SW: STORE_TO(uint32_t, x[d->rs2]);
L_SD: STORE_TO(uint64_t, x[d->rs2]);
L_ADDI:  x[d->rd] = x[d->rs1] + (int64_t)d->imm; NEXT();
L_SLTI:  x[d->rd] = (int64_t)x[d->rs1] < (int64_t)d->imm; NEXT();
L_SLTIU: x[d->rd] = x[d->rs1] < (uint64_t)(int64_t)d->imm; NEXT();
L_XORI:  x[d->rd] = x[d->rs1] ^ (uint64_t)(int64_t)d->imm; NEXT();
L_ORI:   x[d->rd] = x[d->rs1] | (uint64_t)(int64_t)d->imm; NEXT();
L_ANDI:  x[d->rd] = x[d->rs1] & (uint64_t)(int64_t)d->imm; NEXT();
L_SLLI:  x[d->rd] = x[d->rs1] << d->imm; NEXT();
L_SRLI:  x[d->rd] = x[d->rs1] >> d->imm; NEXT();
L_SRAI:  x[d->rd] = (uint64_t)((int64_t)x[d->rs1] >> d->imm); NEXT();
L_ADD:   x[d->rd] = x[d->rs1] + x[d->rs2]; NEXT();
L_SUB:   x[d->rd] = x[d->rs1] - x[d->rs2]; NEXT();
L_SLL:   x[d->rd] = x[d->rs1] << (x[d->rs2] & 63); NEXT();
L_SLT:   x[d->rd] = (int64_t)x[d->rs1] < (int64_t)x[d->rs2]; NEXT();
L_SLTU:  x[d->rd] = x[d->rs1] < x[d->rs2]; NEXT();
L_XOR:   x[d->rd] = x[d->rs1] ^ x[d->rs2]; NEXT();
L_SRL:   x[d->rd] = x[d->rs1] >> (x[d->rs2] & 63); NEXT();
L_SRA:   x[d->rd] = (uint64_t)((int64_t)x[d->rs1] >> (x[d->rs2] & 63)); NEXT();
L_OR:    x[d->rd] = x[d->rs1] | x[d->rs2]; NEXT();
L_AND:   x[d->rd] = x[d->rs1] & x[d->rs2]; NEXT();
L_ADDIW: x[d->rd] = SX32(x[d->rs1] + (int64_t)d->imm); NEXT();
L_SLLIW: x[d->rd] = SX32((uint32_t)x[d->rs1] << d->imm); NEXT();
L_SRLIW: x[d->rd] = SX32((uint32_t)x[d->rs1] >> d->imm); NEXT();
L_SRAIW: x[d->rd] = SX32((int32_t)x[d->rs1] >> d->imm); NEXT();
L_ADDW:  x[d->rd] = SX32(x[d->rs1] + x[d->rs2]); NEXT();
L_SUBW:  x[d->rd] = SX32(x[d->rs1] - x[d->rs2]); NEXT();
L_SLLW:  x[d->rd] = SX32((uint32_t)x[d->rs1] << (x[d->rs2] & 31)); NEXT();
L_SRLW:  x[d->rd] = SX32((uint32_t)x[d->rs1] >> (x[d->rs2] & 31)); NEXT();
L_SRAW:  x[d->rd] = SX32((int32_t)x[d->rs1] >> (x[d->rs2] & 31)); NEXT();
L_MUL:
    x[d->rd] = x[d->rs1] * x[d->rs2];
    pe->cycles_extra += KILN_COST_MUL_EXTRA;
    NEXT();
L_MULH:
    x[d->rd] = (uint64_t)(((__int128)(int64_t)x[d->rs1] *
                           (__int128)(int64_t)x[d->rs2]) >> 64);
    pe->cycles_extra += KILN_COST_MUL_EXTRA;
    NEXT();
L_MULHSU:
    x[d->rd] = (uint64_t)(((__int128)(int64_t)x[d->rs1] *
                           (__int128)(unsigned __int128)x[d->rs2]) >> 64);
    pe->cycles_extra += KILN_COST_MUL_EXTRA;
    NEXT();
L_MULHU:
    x[d->rd] = (uint64_t)(((unsigned __int128)x[d->rs1] *
                           (unsigned __int128)x[d->rs2]) >> 64);
    pe->cycles_extra += KILN_COST_MUL_EXTRA;
    NEXT();
L_DIV: {
        int64_t a = (int64_t)x[d->rs1], b = (int64_t)x[d->rs2];
        x[d->rd] = b == 0 ? ~0ull : (a == INT64_MIN && b == -1) ? (uint64_t)a
                                                                : (uint64_t)(a / b);
        pe->cycles_extra += KILN_COST_DIV_EXTRA;
        NEXT();
    }
L_DIVU: {
        uint64_t a = x[d->rs1], b = x[d->rs2];
        x[d->rd] = b == 0 ? ~0ull : a / b;
        pe->cycles_extra += KILN_COST_DIV_EXTRA;
        NEXT();
    }
L_REM: {
        int64_t a = (int64_t)x[d->rs1], b = (int64_t)x[d->rs2];
        x[d->rd] = b == 0 ? (uint64_t)a : (a == INT64_MIN && b == -1) ? 0
                                                                      : (uint64_t)(a % b);
        pe->cycles_extra += KILN_COST_DIV_EXTRA;
        NEXT();
    }
L_REMU: {
        uint64_t a = x[d->rs1], b = x[d->rs2];
        x[d->rd] = b == 0 ? a : a % b;
        pe->cycles_extra += KILN_COST_DIV_EXTRA;
        NEXT();
    }
L_MULW:
    x[d->rd] = SX32((uint32_t)x[d->rs1] * (uint32_t)x[d->rs2]);
    pe->cycles_extra += KILN_COST_MUL_EXTRA;
    NEXT();
L_DIVW: {
        int32_t a = (int32_t)x[d->rs1], b = (int32_t)x[d->rs2];
        x[d->rd] = b == 0 ? ~0ull : (a == INT32_MIN && b == -1) ? SX32(a)
                                                                : SX32(a / b);
        pe->cycles_extra += KILN_COST_DIV_EXTRA;
        NEXT();
    }
L_DIVUW: {
        uint32_t a = (uint32_t)x[d->rs1], b = (uint32_t)x[d->rs2];
        x[d->rd] = b == 0 ? ~0ull : SX32(a / b);
        pe->cycles_extra += KILN_COST_DIV_EXTRA;
        NEXT();
    }
L_REMW: {
        int32_t a = (int32_t)x[d->rs1], b = (int32_t)x[d->rs2];
        x[d->rd] = b == 0 ? SX32(a) : (a == INT32_MIN && b == -1) ? 0
                                                                  : SX32(a % b);
        pe->cycles_extra += KILN_COST_DIV_EXTRA;
        NEXT();
    }
L_REMUW: {
        uint32_t a = (uint32_t)x[d->rs1], b = (uint32_t)x[d->rs2];
        x[d->rd] = b == 0 ? SX32(a) : SX32(a % b);
        pe->cycles_extra += KILN_COST_DIV_EXTRA;
        NEXT();
    }
L_ECALL:
    /* No environment: a kernel ecall is a trap */
    FAULT(KILN_STATUS_KERNEL_TRAP, 0, 0, CAUSE_ECALL_U);
L_EBREAK:
    FAULT(KILN_STATUS_KERNEL_TRAP, 0, 0, CAUSE_BREAKPOINT);
L_CSR:
    SYNC();
    if (!exec_csr(pe, d)) {
        FAULT(KILN_STATUS_ILLEGAL_INSTRUCTION, d->raw, 0, CAUSE_ILLEGAL);
    }
    x[32] = 0;
    NEXT();
L_FLW:
    LOAD_TO(pe->f, uint32_t, 0xffffffff00000000ull |);
L_FLD:
    LOAD_TO(pe->f, uint64_t, ZX);
L_FSW:
    STORE_TO(uint32_t, pe->f[d->rs2]);
L_FSD:
    STORE_TO(uint64_t, pe->f[d->rs2]);
L_FP:
    if (!exec_fp(pe, d)) {
        FAULT(KILN_STATUS_ILLEGAL_INSTRUCTION, d->raw, 0, CAUSE_ILLEGAL);
    }
    x[32] = 0;
    NEXT();
L_AMO:
    SYNC();
    if (!exec_amo(pe, d, &tmp)) {
        goto out;
    }
    x[d->rd] = tmp;
    x[32] = 0;
    NEXT();
L_CUSTOM:
    SYNC();
    sync_fflags(pe);
    pe->cycles_extra += KILN_COST_UNIT_ISSUE;
    tmp = 0;
    if (!kiln_pe_custom(pe, d->raw, x[d->rs1], x[d->rs2], &tmp)) {
        feclearexcept(FE_ALL_EXCEPT);
        if (pe->state == KILN_PE_BARRIER || pe->state == KILN_PE_EXITED) {
            pe->instret = icount + 1;
            pe->pc = PC() + 4;
        }
        goto out_synced;
    }
    feclearexcept(FE_ALL_EXCEPT);
    x[d->rd] = tmp;
    x[32] = 0;
    NEXT();

out:
    /* pe->pc and pe->instret were synced by FAULT or SYNC */
out_synced:
    pe->fflags |= kiln_pe_host_fflags();
    feclearexcept(FE_ALL_EXCEPT);
    if (pe->state == KILN_PE_FAULT) {
        pe->fault_pc = pe->pc;
    }
    /* final progress */
    if (pe->launch->progress && pe->instret != pe->progress_reported) {
        __atomic_fetch_add(pe->launch->progress,
                           pe->instret - pe->progress_reported,
                           __ATOMIC_RELAXED);
        pe->progress_reported = pe->instret;
    }
#undef PC
#undef SYNC
#undef DISPATCH
#undef NEXT
#undef JUMP
#undef BRANCH
#undef FAULT
#undef LOAD
#undef LOAD_TO
#undef STORE_TO
}
