/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE hart: an RV64IMAFD + Zicsr interpreter (the run loop, faults and
 * scalar data memory). Decoding is in pe_decode.c, floating point in
 * pe_fp.c, CSRs and atomics in pe_csr_amo.c.
 *
 * Code is predecoded one 4 KiB page at a time into KilnInsn arrays shared
 * by all PEs of a launch, and executed with threaded (computed-goto)
 * dispatch. Data accesses go to local memory directly or through a small
 * per-PE TLB of host pointers filled from the context's MMU.
 */
#include <string.h>

#include "pe_jit.h"

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
    pe->dma_span[0].len = 0;
    pe->dma_span[1].len = 0;
}

/* Drop what the PE cached of translations if the context's mappings changed */
void kiln_pe_tlb_sync(KilnPe *pe)
{
    uint64_t gen = __atomic_load_n(pe->launch->tlb_gen, __ATOMIC_ACQUIRE);

    if (gen != pe->tlb_gen) {
        kiln_pe_tlb_flush(pe);
        pe->tlb_gen = gen;
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


/* ---- data memory ------------------------------------------------------- */

/*
 * Slow path of a naturally aligned access of @size bytes at @addr: fill the
 * TLB, or go through kiln_as_read/write for host memory. For loads the
 * value is returned through @val; for stores it is written from @val.
 */
bool kiln_pe_mem_slow(KilnPe *pe, uint64_t addr, unsigned size, bool write,
                     void *val)
{
    KilnLaunch *l = pe->launch;
    uint64_t off = addr - KILN_LOCAL_MEM_BASE;
    uint32_t access = write ? KILN_ACCESS_WRITE : KILN_ACCESS_READ;
    KilnXlate x;
    KilnFault f;

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
    kiln_pe_tlb_sync(pe);
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
    KilnCodePage *page = NULL;
    KilnJitPage *jit = NULL;
    uint64_t page_icount = 0;
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
            if (unlikely(jit != NULL)) {                                  \
                goto enter_jit;                                           \
            }                                                             \
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
                if (!kiln_pe_mem_slow(pe, addr, sizeof(T), false, &v_)) {         \
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
                if (!kiln_pe_mem_slow(pe, addr, sizeof(T), true, &v_)) {          \
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
    kiln_pe_clear_host_fflags();
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
    if (page && !jit) {
        kiln_pe_jit_heat(pe, page, icount - page_icount);
    }
    page = kiln_pe_code_lookup(pe, pe->pc);
    if (!page) {
        goto out_synced;
    }
    page_va = page->va;
    base = page->insn;
    d = base + ((pe->pc & 4095) >> 2);
    page_icount = icount;
    jit = kiln_pe_jit_page(pe, page);
    if (!jit) {
        DISPATCH();
    }
enter_jit:
    /* d is the next instruction, on this page */
    pe->instret = icount;
    pe->jit_check_at = check_at;
    switch (kiln_pe_jit_run(jit, pe, d - base)) {
    case KILN_JIT_FETCH:
        icount = pe->instret;
        goto fetch;
    case KILN_JIT_INTERP:
        icount = pe->instret;
        d = base + ((pe->pc & 4095) >> 2);
        break;
    }
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
    if (!kiln_pe_exec_csr(pe, d)) {
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
    if (!kiln_pe_exec_fp(pe, d)) {
        FAULT(KILN_STATUS_ILLEGAL_INSTRUCTION, d->raw, 0, CAUSE_ILLEGAL);
    }
    x[32] = 0;
    NEXT();
L_AMO:
    SYNC();
    if (!kiln_pe_exec_amo(pe, d, &tmp)) {
        goto out;
    }
    x[d->rd] = tmp;
    x[32] = 0;
    NEXT();
L_CUSTOM:
    SYNC();
    kiln_pe_sync_fflags(pe);
    pe->cycles_extra += KILN_COST_UNIT_ISSUE;
    tmp = 0;
    if (!kiln_pe_custom(pe, d->raw, x[d->rs1], x[d->rs2], &tmp)) {
        kiln_pe_clear_host_fflags();
        if (pe->state == KILN_PE_BARRIER || pe->state == KILN_PE_EXITED) {
            pe->instret = icount + 1;
            pe->pc = PC() + 4;
        }
        goto out_synced;
    }
    kiln_pe_clear_host_fflags();
    x[d->rd] = tmp;
    x[32] = 0;
    NEXT();

out:
    /* pe->pc and pe->instret were synced by FAULT or SYNC */
out_synced:
    pe->fflags |= kiln_pe_host_fflags();
    kiln_pe_clear_host_fflags();
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
