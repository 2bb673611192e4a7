/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE fixed-function units driven by custom-0 instructions: SYS
 * (exit, trap, barrier, debug channel), DMA / fabric interface, DPE
 * (matmul), SE (element-wise), RE (reductions) and MLU (layout). The math
 * is done natively here; the cost model charges emulated cycles from the
 * K1 rates (kiln_isa.h, docs/pe-isa.md).
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pe_internal.h"
#include "pe_simd.h"

/* ---- helpers --------------------------------------------------------- */

static uint64_t div_up(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

/* Local memory span [addr + lo, addr + hi) with alignment; NULL on fault */
static uint8_t *lm_span(KilnPe *pe, uint64_t addr, int64_t lo, int64_t hi,
                        uint32_t align, uint32_t access)
{
    uint64_t off = addr - KILN_LOCAL_MEM_BASE;

    if (addr < KILN_LOCAL_MEM_BASE || off >= pe->lm_size) {
        kiln_pe_fault(pe, KILN_STATUS_LOCAL_MEM_BOUNDS, addr, access, 0);
        return NULL;
    }
    if (align > 1 && (addr & (align - 1))) {
        kiln_pe_fault(pe, KILN_STATUS_MISALIGNED, addr, access, 0);
        return NULL;
    }
    /* off + lo >= 0 and off + hi <= lm_size, written so that nothing overflows */
    if (lo < -(int64_t)off || hi > (int64_t)(pe->lm_size - off) || hi < lo) {
        kiln_pe_fault(pe, KILN_STATUS_LOCAL_MEM_BOUNDS,
                      addr + (uint64_t)(hi > 0 ? hi - 1 : lo), access, 0);
        return NULL;
    }
    if (access == KILN_ACCESS_WRITE) {
        kiln_pe_lm_dirty(pe, (uint64_t)((int64_t)off + lo), (uint64_t)(hi - lo));
    }
    return pe->lm + off;
}

/*
 * Extent in bytes of a rows x cols operand with row stride ld, col stride cs.
 * False if it does not fit in 64 bits: such an operand cannot lie in local
 * memory, and a wrapped extent would pass the bounds check while the rows
 * in between lie anywhere in host memory.
 */
static bool extent(uint32_t rows, uint32_t cols, int64_t ld, int64_t cs,
                   uint32_t es, int64_t *lo, int64_t *hi)
{
    int64_t last_row, last_col;

    if (rows == 0 || cols == 0) {
        *lo = *hi = 0;
        return true;
    }
    if (__builtin_mul_overflow((int64_t)(rows - 1), ld, &last_row) ||
        __builtin_mul_overflow(last_row, (int64_t)es, &last_row) ||
        __builtin_mul_overflow((int64_t)(cols - 1), cs, &last_col) ||
        __builtin_mul_overflow(last_col, (int64_t)es, &last_col) ||
        __builtin_add_overflow((last_row < 0 ? last_row : 0),
                               (last_col < 0 ? last_col : 0), lo) ||
        __builtin_add_overflow((last_row > 0 ? last_row : 0),
                               (last_col > 0 ? last_col : 0), hi) ||
        __builtin_add_overflow(*hi, (int64_t)es, hi)) {
        return false;
    }
    return true;
}

/*
 * Work that cannot end before the PE's watchdog (@cycles from cycle @from)
 * faults the PE now: a single unit or DMA instruction is not interrupted by
 * the watchdog checks between instructions.
 */
static bool watchdog_admit(KilnPe *pe, uint64_t from, uint64_t cycles)
{
    uint64_t wd = pe->launch->watchdog;

    if (from >= wd || cycles >= wd - from) {
        kiln_pe_fault(pe, KILN_STATUS_WATCHDOG, kiln_pe_cycles(pe), 0, 0);
        return false;
    }
    return true;
}

static uint8_t *lm_operand(KilnPe *pe, uint64_t addr, uint32_t rows,
                           uint32_t cols, int64_t ld, int64_t cs, uint32_t es,
                           uint32_t access)
{
    int64_t lo, hi;

    if (!extent(rows, cols, ld, cs, es, &lo, &hi)) {
        kiln_pe_fault(pe, KILN_STATUS_LOCAL_MEM_BOUNDS, addr, access, 0);
        return NULL;
    }
    return lm_span(pe, addr, lo, hi, es, access);
}

/*
 * A unit op of @work items at @per_cycle a cycle, admitted once its operands
 * are valid and before it does any work. Zero strides let 2^32 x 2^32
 * elements fit in local memory, so the host work of an op is bounded only
 * by the modelled cycles the watchdog leaves it.
 */
static bool unit_admit(KilnPe *pe, uint64_t work, uint64_t per_cycle)
{
    return watchdog_admit(pe, kiln_pe_cycles(pe), div_up(work, per_cycle));
}

static bool read_desc(KilnPe *pe, uint64_t addr, void *out, size_t size)
{
    uint8_t *p = lm_span(pe, addr, 0, (int64_t)size, 8, KILN_ACCESS_READ);

    if (!p) {
        return false;
    }
    memcpy(out, p, size);
    return true;
}

static bool is_local(uint64_t addr)
{
    return addr >= KILN_LOCAL_MEM_BASE;
}

static uint32_t dtype_size(uint32_t t)
{
    static const uint8_t sz[KILN_DTYPE_COUNT] = { 4, 2, 2, 1, 4 };

    return t < KILN_DTYPE_COUNT ? sz[t] : 0;
}

static void bad_desc(KilnPe *pe, uint64_t desc)
{
    /* a descriptor field out of range is an illegal instruction */
    kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION, desc, 0, 2);
}

/* ---- debug channel ----------------------------------------------------- */

void kiln_pe_debug_append(KilnPe *pe, const char *s, uint64_t n)
{
    uint64_t room;

    if (pe->launch->dbg_limit == 0) {
        return;
    }
    room = pe->launch->dbg_limit > pe->dbg_len ? pe->launch->dbg_limit - pe->dbg_len
                                               : 0;
    if (n > room) {
        pe->dbg_dropped += n - room;
        n = room;
    }
    if (!n) {
        return;
    }
    if (pe->dbg_len + n > pe->dbg_cap) {
        uint64_t cap = pe->dbg_cap ? pe->dbg_cap * 2 : 256;
        char *nb;
        while (cap < pe->dbg_len + n) {
            cap *= 2;
        }
        nb = realloc(pe->dbg, cap);
        if (!nb) {
            pe->dbg_dropped += n;
            return;
        }
        pe->dbg = nb;
        pe->dbg_cap = cap;
    }
    memcpy(pe->dbg + pe->dbg_len, s, n);
    pe->dbg_len += n;
}

/* ---- memory transfers ----------------------------------------------------- */

/* The shared fabric an address of a DMA transfer is on, for the cost model */
static KilnFabric addr_fabric(KilnPe *pe, uint64_t addr)
{
    KilnXlate x;
    KilnFault f;

    if (is_local(addr)) {
        return KILN_FABRIC_NONE;
    }
    if (!kiln_as_xlate(pe->launch->as, addr, 1, KILN_ACCESS_READ, &x, &f)) {
        /* a gather need not have read its table's first row: charge DRAM */
        return KILN_FABRIC_DRAM;
    }
    if (x.pa >= KILN_PA_HOST_BASE) {
        return KILN_FABRIC_HOST;
    }
    if (x.pa >= KILN_PA_SRAM_BASE) {
        return KILN_FABRIC_SRAM;
    }
    return KILN_FABRIC_DRAM;
}

/*
 * Copy @len bytes between @buf (local memory or a bounce buffer) and device
 * memory at @va. The rows of a tile usually lie in one translation's span
 * (a 2 MiB page holds many rows), so the span each direction last resolved
 * to host memory is kept per PE, dropped with its TLB when the context's
 * mappings change; memory without a host pointer (host memory) and rows
 * that cross the span go through kiln_as_read/write, page by page.
 */
static bool dma_device(KilnPe *pe, uint64_t va, uint8_t *buf, uint64_t len,
                       bool write)
{
    const KilnAddrSpace *as = pe->launch->as;
    uint32_t access = write ? KILN_ACCESS_WRITE : KILN_ACCESS_READ;
    KilnDmaSpan *span = &pe->dma_span[write];
    uint8_t *host = NULL;
    KilnXlate x;
    KilnFault f;
    bool ok;

    memset(&f, 0, sizeof(f));
    kiln_pe_tlb_sync(pe);
    if (va - span->va < span->len && len <= span->len - (va - span->va)) {
        host = span->host + (va - span->va);
    } else {
        /* the whole rest of the page, not just this row */
        if (!kiln_as_xlate(as, va, UINT64_MAX, access, &x, &f)) {
            kiln_pe_mmu_fault(pe, &f, f.addr ? f.addr : va, access);
            return false;
        }
        if (x.host) {
            *span = (KilnDmaSpan){ .va = va, .len = x.len, .host = x.host };
            host = x.len >= len ? x.host : NULL;
        }
    }
    if (host) {
        if (write) {
            memcpy(host, buf, len);
        } else {
            memcpy(buf, host, len);
        }
        return true;
    }
    ok = write ? kiln_as_write(as, va, buf, len, &f)
               : kiln_as_read(as, va, buf, len, &f);
    if (!ok) {
        kiln_pe_mmu_fault(pe, &f, f.addr ? f.addr : va, access);
    }
    return ok;
}

/* Copy @len bytes between any two addresses (local or VA) */
static bool copy_any(KilnPe *pe, uint64_t dst, uint64_t src, uint64_t len)
{
    uint8_t *pd = NULL, *ps = NULL;

    if (!len) {
        return true;
    }
    if (is_local(dst)) {
        pd = lm_span(pe, dst, 0, (int64_t)len, 1, KILN_ACCESS_WRITE);
        if (!pd) {
            return false;
        }
    }
    if (is_local(src)) {
        ps = lm_span(pe, src, 0, (int64_t)len, 1, KILN_ACCESS_READ);
        if (!ps) {
            return false;
        }
    }
    if (pd && ps) {
        memmove(pd, ps, len);
        return true;
    }
    if (pd) {
        return dma_device(pe, src, pd, len, false);
    }
    if (ps) {
        return dma_device(pe, dst, ps, len, true);
    }
    /* device to device through a bounce buffer */
    {
        uint8_t buf[4096];
        while (len) {
            uint64_t n = len < sizeof(buf) ? len : sizeof(buf);
            if (!dma_device(pe, src, buf, n, false) ||
                !dma_device(pe, dst, buf, n, true)) {
                return false;
            }
            src += n;
            dst += n;
            len -= n;
        }
    }
    return true;
}

/*
 * The engine issues at most one row a cycle, so a transfer of many short
 * rows is bound by its row count rather than its bytes.
 */
static uint64_t dma_cycles(uint64_t bytes, uint64_t rows, uint64_t bps)
{
    uint64_t xfer = kiln_cost_xfer_cycles(bytes, bps);
    uint64_t issue = rows * KILN_COST_DMA_ROW;

    return xfer > issue ? xfer : issue;
}

/*
 * Charge a DMA transfer of @bytes in @rows from @src to @dst. On its own
 * the transfer runs at the slowest of what it passes through: the PE's local
 * port (1 TB/s, every transfer goes through the PE's fabric interface)
 * and the whole bandwidth of each fabric it crosses. Its bytes also
 * count on every fabric it crosses (both sides: a DRAM-to-DRAM copy
 * reads and writes DRAM), and pe_launch.c makes the wave last at least as
 * long as the busiest fabric needs for all PEs' bytes: that is where PEs
 * streaming at once share a fabric.
 */
static void dma_account(KilnPe *pe, uint32_t tag, uint64_t bytes,
                        uint64_t rows, uint64_t dst, uint64_t src)
{
    KilnFabric side[2] = { addr_fabric(pe, src), addr_fabric(pe, dst) };
    uint64_t bps = KILN_COST_LOCAL_BPS;
    uint64_t now = kiln_pe_cycles(pe);
    uint64_t start = pe->dma_busy_until > now ? pe->dma_busy_until : now;

    for (int i = 0; i < 2; i++) {
        if (side[i] != KILN_FABRIC_NONE) {
            uint64_t fbps = kiln_fabric_bps(side[i]);
            if (fbps < bps) {
                bps = fbps;
            }
            pe->fabric_bytes[side[i]] += bytes;
            pe->moved[side[i]] += bytes;
        }
    }
    pe->moved[KILN_PROF_FABRIC_LOCAL] += bytes;
    pe->dma_busy_until = start + dma_cycles(bytes, rows, bps);
    if (pe->dma_busy_until + KILN_COST_DMA_LATENCY > pe->tag_done[tag]) {
        pe->tag_done[tag] = pe->dma_busy_until + KILN_COST_DMA_LATENCY;
    }
}

/*
 * A transfer's size is not bounded by anything else: a zero stride repeats
 * rows at will, so one instruction could copy terabytes. It is admitted at
 * the full local-port rate, the fastest any transfer runs, and at one row a
 * cycle, so that its host time (a few ns a row) stays in proportion to its
 * modelled time; a copy also stops between rows when the launch is
 * cancelled (job timeout, reset).
 */
static bool dma_admit(KilnPe *pe, uint64_t bytes, uint64_t rows)
{
    uint64_t now = kiln_pe_cycles(pe);
    uint64_t start = pe->dma_busy_until > now ? pe->dma_busy_until : now;

    return watchdog_admit(pe, start,
                          dma_cycles(bytes, rows, KILN_COST_LOCAL_BPS));
}

static bool dma_cancelled(KilnPe *pe)
{
    if (pe->launch->cancel && *pe->launch->cancel) {
        pe->state = KILN_PE_STOPPED;
        return true;
    }
    return false;
}

static bool dma_copy2d(KilnPe *pe, uint64_t da, uint32_t tag)
{
    struct kiln_dma_desc d;
    uint64_t rows;

    if (!read_desc(pe, da, &d, sizeof(d))) {
        return false;
    }
    /* empty rows copy nothing and cost nothing, however many */
    rows = d.row_bytes ? d.rows : 0;
    if (!dma_admit(pe, rows * d.row_bytes, rows)) {
        return false;
    }
    for (uint32_t r = 0; r < rows; r++) {
        if (dma_cancelled(pe) ||
            !copy_any(pe, d.dst + (uint64_t)(d.dst_stride * r),
                      d.src + (uint64_t)(d.src_stride * r), d.row_bytes)) {
            return false;
        }
    }
    dma_account(pe, tag, rows * d.row_bytes, rows, d.dst, d.src);
    return true;
}

static bool dma_gather(KilnPe *pe, uint64_t da, uint32_t tag)
{
    struct kiln_gather_desc g;
    const uint8_t *idx;
    uint32_t isz;
    bool accum;
    float *acc = NULL;
    uint8_t *row = NULL;
    bool ok = false;

    if (!read_desc(pe, da, &g, sizeof(g))) {
        return false;
    }
    isz = (g.flags & KILN_GATHER_IDX64) ? 8 : 4;
    accum = g.flags & KILN_GATHER_ACCUM_F32;
    if ((g.flags & ~3u) || (accum && (g.row_bytes & 3))) {
        bad_desc(pe, da);
        return false;
    }
    if (!g.count || !g.row_bytes) {
        return true;
    }
    if (!dma_admit(pe, (uint64_t)g.count * g.row_bytes, g.count)) {
        return false;
    }
    idx = lm_span(pe, g.indices, 0, (int64_t)g.count * isz, isz,
                  KILN_ACCESS_READ);
    if (!idx) {
        return false;
    }
    if (accum) {
        acc = (float *)lm_span(pe, g.dst, 0, g.row_bytes, 4, KILN_ACCESS_WRITE);
        if (!acc) {
            return false;
        }
        row = malloc(g.row_bytes);
        if (!row) {
            kiln_pe_fault(pe, KILN_STATUS_FATAL, da, 0, 0);
            return false;
        }
    }
    for (uint32_t i = 0; i < g.count; i++) {
        int64_t ix;
        uint64_t src;
        if (dma_cancelled(pe)) {
            goto out;
        }
        if (isz == 8) {
            memcpy(&ix, idx + (uint64_t)i * 8, 8);
        } else {
            int32_t v;
            memcpy(&v, idx + (uint64_t)i * 4, 4);
            ix = v;
        }
        if (g.num_rows && (uint64_t)ix >= g.num_rows) {
            kiln_pe_fault(pe, KILN_STATUS_KERNEL_TRAP, (uint64_t)ix,
                          KILN_ACCESS_READ, 0);
            goto out;
        }
        src = g.table + (uint64_t)ix * g.table_stride;
        if (accum) {
            const float *rv;
            uint32_t n = g.row_bytes / 4;
            if (is_local(src)) {
                rv = (const float *)lm_span(pe, src, 0, g.row_bytes, 4,
                                            KILN_ACCESS_READ);
                if (!rv) {
                    goto out;
                }
            } else {
                KilnXlate x;
                KilnFault f;
                memset(&f, 0, sizeof(f));
                if (kiln_as_xlate(pe->launch->as, src, g.row_bytes,
                                  KILN_ACCESS_READ, &x, &f) &&
                    x.host && x.len >= g.row_bytes && !(src & 3)) {
                    rv = (const float *)x.host;
                } else if (kiln_as_read(pe->launch->as, src, row, g.row_bytes,
                                        &f)) {
                    rv = (const float *)row;
                } else {
                    kiln_pe_mmu_fault(pe, &f, f.addr ? f.addr : src,
                                      KILN_ACCESS_READ);
                    goto out;
                }
            }
            for (uint32_t j = 0; j < n; j++) {
                float v;
                memcpy(&v, rv + j, 4);
                acc[j] += v;
            }
        } else if (!copy_any(pe, g.dst + (uint64_t)i * g.dst_stride, src,
                             g.row_bytes)) {
            goto out;
        }
    }
    ok = true;
    dma_account(pe, tag, (uint64_t)g.count * g.row_bytes, g.count, g.dst,
                g.table);
    if (accum) {
        uint64_t n = (uint64_t)g.count * (g.row_bytes / 4);
        pe->se_elems += n;
        kiln_pe_activity(pe, KILN_PROF_SE, div_up(n, KILN_COST_SE_ELEMS));
    }
out:
    free(row);
    return ok;
}

/* ---- DPE ------------------------------------------------------------------ */

static float f16_table[65536];
static pthread_once_t f16_once = PTHREAD_ONCE_INIT;

static void f16_table_init(void)
{
    for (uint32_t i = 0; i < 65536; i++) {
        f16_table[i] = kiln_f16_to_f32((uint16_t)i);
    }
}

/* Pack an operand into a dense row-major rows x cols fp32 matrix */
static void pack_f32(float *dst, const uint8_t *src, uint32_t rows,
                     uint32_t cols, uint32_t ld, bool trans, uint32_t dtype)
{
    /* logical (r, c) lives at src[(trans ? c * ld + r : r * ld + c)] */
    uint64_t rs = trans ? 1 : ld, cs = trans ? ld : 1;

    if (dtype == KILN_DTYPE_FP16) {
        pthread_once(&f16_once, f16_table_init);
    }
    for (uint32_t r = 0; r < rows; r++) {
        float *o = dst + (uint64_t)r * cols;
        uint64_t base = r * rs;
        switch (dtype) {
        case KILN_DTYPE_FP32:
            if (cs == 1) {
                memcpy(o, src + base * 4, (uint64_t)cols * 4);
            } else {
                for (uint32_t c = 0; c < cols; c++) {
                    memcpy(&o[c], src + (base + c * cs) * 4, 4);
                }
            }
            break;
        case KILN_DTYPE_BF16:
            for (uint32_t c = 0; c < cols; c++) {
                uint16_t h;
                uint32_t u;
                memcpy(&h, src + (base + c * cs) * 2, 2);
                u = (uint32_t)h << 16;
                memcpy(&o[c], &u, 4);
            }
            break;
        default:
            for (uint32_t c = 0; c < cols; c++) {
                uint16_t h;
                memcpy(&h, src + (base + c * cs) * 2, 2);
                o[c] = f16_table[h];
            }
            break;
        }
    }
}

static bool dpe_matmul(KilnPe *pe, uint64_t da)
{
    struct kiln_dpe_desc d;
    uint32_t es, ar, ac, br, bc;
    uint8_t *pa, *pb, *pc;
    bool ta, tb;
    uint64_t macs, rate;
    const KilnSimdOps *simd = kiln_simd_best();

    if (!read_desc(pe, da, &d, sizeof(d))) {
        return false;
    }
    es = dtype_size(d.dtype);
    if (!es || d.dtype == KILN_DTYPE_INT32 || (d.flags & ~7u)) {
        bad_desc(pe, da);
        return false;
    }
    if (!d.m || !d.n || !d.k) {
        return true;
    }
    ta = d.flags & KILN_DPE_TRANS_A;
    tb = d.flags & KILN_DPE_TRANS_B;
    ar = ta ? d.k : d.m;
    ac = ta ? d.m : d.k;
    br = tb ? d.n : d.k;
    bc = tb ? d.k : d.n;
    if (d.lda < ac || d.ldb < bc || d.ldc < d.n) {
        bad_desc(pe, da);
        return false;
    }
    pa = lm_operand(pe, d.a, ar, ac, d.lda, 1, es, KILN_ACCESS_READ);
    if (!pa) {
        return false;
    }
    pb = lm_operand(pe, d.b, br, bc, d.ldb, 1, es, KILN_ACCESS_READ);
    if (!pb) {
        return false;
    }
    pc = lm_operand(pe, d.c, d.m, d.n, d.ldc, 1, 4, KILN_ACCESS_WRITE);
    if (!pc) {
        return false;
    }
    rate = d.dtype == KILN_DTYPE_INT8 ? KILN_COST_DPE_MACS_INT8 :
           d.dtype == KILN_DTYPE_FP32 ? KILN_COST_DPE_MACS_FP32 :
                                        KILN_COST_DPE_MACS_BF16;
    /* A, B and C each fit in local memory, so this product does not wrap */
    macs = (uint64_t)d.m * d.n * d.k;
    if (!unit_admit(pe, macs, rate)) {
        return false;
    }
    if (!(d.flags & KILN_DPE_ACCUM)) {
        for (uint32_t i = 0; i < d.m; i++) {
            memset(pc + (uint64_t)i * d.ldc * 4, 0, (uint64_t)d.n * 4);
        }
    }
    if (d.dtype == KILN_DTYPE_INT8) {
        if (!simd->igemm_i8(d.m, d.n, d.k, (const int8_t *)pa, ta ? 1 : d.lda,
                            ta ? d.lda : 1, (const int8_t *)pb, tb ? 1 : d.ldb,
                            tb ? d.ldb : 1, (int32_t *)pc, d.ldc)) {
            kiln_pe_fault(pe, KILN_STATUS_FATAL, da, 0, 0);
            return false;
        }
    } else {
        /* fp32 operands in row-major order are used in place */
        float *ap = NULL, *bp = NULL;
        const float *a = (const float *)pa, *b = (const float *)pb;
        uint64_t lda = d.lda, ldb = d.ldb;
        bool pack_a = d.dtype != KILN_DTYPE_FP32 || ta;
        bool pack_b = d.dtype != KILN_DTYPE_FP32 || tb;

        if (pack_a) {
            ap = malloc((uint64_t)d.m * d.k * 4);
        }
        if (pack_b) {
            bp = malloc((uint64_t)d.k * d.n * 4);
        }
        if ((pack_a && !ap) || (pack_b && !bp)) {
            free(ap);
            free(bp);
            kiln_pe_fault(pe, KILN_STATUS_FATAL, da, 0, 0);
            return false;
        }
        if (pack_a) {
            pack_f32(ap, pa, d.m, d.k, d.lda, ta, d.dtype);
            a = ap;
            lda = d.k;
        }
        if (pack_b) {
            pack_f32(bp, pb, d.k, d.n, d.ldb, tb, d.dtype);
            b = bp;
            ldb = d.n;
        }
        simd->sgemm(d.m, d.n, d.k, a, lda, b, ldb, (float *)pc, d.ldc);
        free(ap);
        free(bp);
    }
    pe->macs[d.dtype] += macs;
    kiln_pe_activity(pe, KILN_PROF_DPE, div_up(macs, rate));
    return true;
}

/* ---- SE --------------------------------------------------------------------- */

/*
 * True if row @d and row @s (n fp32 each) overlap without being the same:
 * the vector kernels read ahead of where they write, so only in-place rows
 * give the same result as element order.
 */
static bool partial_overlap(const float *d, const float *s, uint32_t n)
{
    return d != s && d < s + n && s < d + n;
}

static bool se_cvt(KilnPe *pe, const struct kiln_se_desc *s, uint64_t da)
{
    uint32_t ss = dtype_size(s->src_type), ds = dtype_size(s->dst_type);
    const KilnSimdOps *simd = kiln_simd_best();
    uint8_t *pa, *pd;

    if (!ss || !ds) {
        bad_desc(pe, da);
        return false;
    }
    if (!s->rows || !s->cols) {
        return true;
    }
    pa = lm_operand(pe, s->a, s->rows, s->cols, s->a_ld, s->a_cs, ss,
                    KILN_ACCESS_READ);
    pd = pa ? lm_operand(pe, s->dst, s->rows, s->cols, s->dst_ld, 1, ds,
                         KILN_ACCESS_WRITE) : NULL;
    if (!pd || !unit_admit(pe, (uint64_t)s->rows * s->cols, KILN_COST_SE_ELEMS)) {
        return false;
    }
    for (uint32_t r = 0; r < s->rows; r++) {
        const uint8_t *ar = pa + (int64_t)r * s->a_ld * ss;
        uint8_t *dr = pd + (int64_t)r * s->dst_ld * ds;
        /* in place only when narrowing: each store lands behind the reads */
        bool fast = s->a_cs == 1 &&
            ((dr == ar && ds <= ss) ||
             dr + (uint64_t)s->cols * ds <= ar ||
             ar + (uint64_t)s->cols * ss <= dr);

        if (fast && s->src_type == KILN_DTYPE_FP32 &&
            s->dst_type == KILN_DTYPE_BF16) {
            simd->f32_to_bf16((uint16_t *)dr, (const float *)ar, s->cols);
            continue;
        }
        if (fast && s->src_type == KILN_DTYPE_FP32 &&
            s->dst_type == KILN_DTYPE_FP16) {
            simd->f32_to_f16((uint16_t *)dr, (const float *)ar, s->cols);
            continue;
        }
        if (fast && s->src_type == KILN_DTYPE_FP16 &&
            s->dst_type == KILN_DTYPE_FP32) {
            simd->f16_to_f32((float *)dr, (const uint16_t *)ar, s->cols);
            continue;
        }
        for (uint32_t c = 0; c < s->cols; c++) {
            const uint8_t *e = ar + (uint64_t)c * s->a_cs * ss;
            float v;
            int32_t iv = 0;
            bool is_int = false;
            switch (s->src_type) {
            case KILN_DTYPE_FP32: memcpy(&v, e, 4); break;
            case KILN_DTYPE_BF16: {
                uint16_t h;
                memcpy(&h, e, 2);
                v = kiln_bf16_to_f32(h);
                break;
            }
            case KILN_DTYPE_FP16: {
                uint16_t h;
                memcpy(&h, e, 2);
                v = kiln_f16_to_f32(h);
                break;
            }
            case KILN_DTYPE_INT8:
                iv = (int8_t)*e;
                v = (float)iv;
                is_int = true;
                break;
            default:
                memcpy(&iv, e, 4);
                v = (float)iv;      /* RNE */
                is_int = true;
                break;
            }
            switch (s->dst_type) {
            case KILN_DTYPE_FP32: memcpy(dr + (uint64_t)c * 4, &v, 4); break;
            case KILN_DTYPE_BF16: {
                uint16_t h = kiln_f32_to_bf16(v);
                memcpy(dr + (uint64_t)c * 2, &h, 2);
                break;
            }
            case KILN_DTYPE_FP16: {
                uint16_t h = kiln_f32_to_f16(v);
                memcpy(dr + (uint64_t)c * 2, &h, 2);
                break;
            }
            case KILN_DTYPE_INT8: {
                int8_t b;
                if (is_int) {
                    b = (int8_t)(iv < -128 ? -128 : iv > 127 ? 127 : iv);
                } else {
                    b = kiln_f32_to_i8(v);
                }
                dr[c] = (uint8_t)b;
                break;
            }
            default: {
                int32_t o = is_int ? iv : kiln_f32_to_i32(v);
                memcpy(dr + (uint64_t)c * 4, &o, 4);
                break;
            }
            }
        }
    }
    pe->se_elems += (uint64_t)s->rows * s->cols;
    kiln_pe_activity(pe, KILN_PROF_SE,
                     div_up((uint64_t)s->rows * s->cols, KILN_COST_SE_ELEMS));
    return true;
}

/*
 * The SE on int32 (src_type = INT32): add, sub, min, max (b from memory, or
 * the bits of desc.scalar with KILN_SE_SCALAR) and relu, with two's-complement
 * wrap-around. The GEMM's int8 epilogue needs exact int32 arithmetic, which
 * fp32 is not beyond 2^24. Same rate as the fp32 simple ops.
 */
static bool se_exec_i32(KilnPe *pe, uint32_t op, const struct kiln_se_desc *s, uint64_t da)
{
    uint32_t base = op & ~(uint32_t)KILN_SE_SCALAR;
    bool binary = op <= (KILN_SE_MAX | KILN_SE_SCALAR) && base != KILN_SE_MUL &&
                  base != KILN_SE_DIV;
    bool use_scalar = binary && (op & KILN_SE_SCALAR);
    uint8_t *pd, *pa, *pb = NULL;
    int32_t sc;

    if ((!binary && op != KILN_SE_RELU) || s->dst_type != KILN_DTYPE_INT32) {
        kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION, da, 0, 2);
        return false;
    }
    if (!s->rows || !s->cols) {
        return true;
    }
    pd = lm_operand(pe, s->dst, s->rows, s->cols, s->dst_ld, 1, 4, KILN_ACCESS_WRITE);
    pa = pd ? lm_operand(pe, s->a, s->rows, s->cols, s->a_ld, s->a_cs, 4, KILN_ACCESS_READ)
            : NULL;
    if (!pa) {
        return false;
    }
    if (binary && !use_scalar) {
        pb = lm_operand(pe, s->b, s->rows, s->cols, s->b_ld, s->b_cs, 4, KILN_ACCESS_READ);
        if (!pb) {
            return false;
        }
    }
    if (!unit_admit(pe, (uint64_t)s->rows * s->cols, KILN_COST_SE_ELEMS)) {
        return false;
    }
    memcpy(&sc, &s->scalar, 4);
    /* element by element, in order, so overlapping operands behave as in the fp32 path */
    for (uint32_t r = 0; r < s->rows; r++) {
        for (uint32_t c = 0; c < s->cols; c++) {
            int32_t x, y = sc, v;
            memcpy(&x, pa + ((int64_t)r * s->a_ld + (int64_t)c * s->a_cs) * 4, 4);
            if (pb) {
                memcpy(&y, pb + ((int64_t)r * s->b_ld + (int64_t)c * s->b_cs) * 4, 4);
            }
            switch (base) {
            case KILN_SE_ADD: v = (int32_t)((uint32_t)x + (uint32_t)y); break;
            case KILN_SE_SUB: v = (int32_t)((uint32_t)x - (uint32_t)y); break;
            case KILN_SE_MIN: v = x < y ? x : y; break;
            case KILN_SE_MAX: v = x > y ? x : y; break;
            default: v = x > 0 ? x : 0; break;     /* relu */
            }
            memcpy(pd + ((int64_t)r * s->dst_ld + c) * 4, &v, 4);
        }
    }
    pe->se_elems += (uint64_t)s->rows * s->cols;
    kiln_pe_activity(pe, KILN_PROF_SE,
                     div_up((uint64_t)s->rows * s->cols, KILN_COST_SE_ELEMS));
    return true;
}

/* n copies of v's bits; copies of what is already filled run at memcpy's speed */
static void fill_row(uint8_t *d, float v, uint32_t n)
{
    uint64_t done = 4, bytes = (uint64_t)n * 4;

    memcpy(d, &v, 4);
    while (done < bytes) {
        uint64_t k = done < bytes - done ? done : bytes - done;

        memcpy(d + done, d, k);
        done += k;
    }
}

static bool se_exec(KilnPe *pe, uint32_t op, uint64_t da)
{
    struct kiln_se_desc s;
    uint32_t base = op & ~(uint32_t)KILN_SE_SCALAR;
    bool binary = op <= (KILN_SE_FMA | KILN_SE_SCALAR);
    bool use_scalar = binary && (op & KILN_SE_SCALAR);
    bool ternary = base == KILN_SE_FMA;
    uint8_t *pd, *pa = NULL, *pb = NULL, *pc = NULL;
    uint64_t n, cost_rate = KILN_COST_SE_ELEMS;
    const KilnSimdOps *simd = kiln_simd_best();

    if (!read_desc(pe, da, &s, sizeof(s))) {
        return false;
    }
    if (s.a_cs > 1 || s.b_cs > 1 || s.c_cs > 1) {
        bad_desc(pe, da);
        return false;
    }
    if (op == KILN_SE_CVT) {
        return se_cvt(pe, &s, da);
    }
    if (s.src_type == KILN_DTYPE_INT32 && op != KILN_SE_FILL) {
        return se_exec_i32(pe, op, &s, da);
    }
    if ((binary && base > KILN_SE_FMA) ||
        (!binary && !(op >= KILN_SE_EXP && op <= KILN_SE_COPY) &&
         op != KILN_SE_FILL)) {
        kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION, da, 0, 2);
        return false;
    }
    n = (uint64_t)s.rows * s.cols;
    if (!n) {
        return true;
    }
    pd = lm_operand(pe, s.dst, s.rows, s.cols, s.dst_ld, 1, 4,
                    KILN_ACCESS_WRITE);
    if (!pd) {
        return false;
    }
    if (op == KILN_SE_FILL) {
        if (!unit_admit(pe, n, KILN_COST_SE_ELEMS)) {
            return false;
        }
        for (uint32_t r = 0; r < s.rows; r++) {
            fill_row(pd + (int64_t)r * s.dst_ld * 4, s.scalar, s.cols);
        }
        pe->se_elems += n;
        kiln_pe_activity(pe, KILN_PROF_SE, div_up(n, KILN_COST_SE_ELEMS));
        return true;
    }
    pa = lm_operand(pe, s.a, s.rows, s.cols, s.a_ld, s.a_cs, 4,
                    KILN_ACCESS_READ);
    if (!pa) {
        return false;
    }
    if (binary && !use_scalar) {
        pb = lm_operand(pe, s.b, s.rows, s.cols, s.b_ld, s.b_cs, 4,
                        KILN_ACCESS_READ);
        if (!pb) {
            return false;
        }
    }
    if (ternary) {
        pc = lm_operand(pe, s.c, s.rows, s.cols, s.c_ld, s.c_cs, 4,
                        KILN_ACCESS_READ);
        if (!pc) {
            return false;
        }
    }
    if (op >= KILN_SE_EXP && op <= KILN_SE_TANH && op != KILN_SE_RELU) {
        cost_rate = KILN_COST_SE_TRANSC_ELEMS;
    }
    if (base == KILN_SE_DIV || op == KILN_SE_RECIP) {
        cost_rate = KILN_COST_SE_TRANSC_ELEMS;
    }
    if (!unit_admit(pe, n, cost_rate)) {
        return false;
    }

    for (uint32_t r = 0; r < s.rows; r++) {
        float *dr = (float *)(pd + (int64_t)r * s.dst_ld * 4);
        const float *ar = (const float *)(pa + (int64_t)r * s.a_ld * 4);
        const float *br = pb ? (const float *)(pb + (int64_t)r * s.b_ld * 4) : NULL;
        const float *cr = pc ? (const float *)(pc + (int64_t)r * s.c_ld * 4) : NULL;
        uint32_t rop = op;
        float bsc = s.scalar;

        if (br && !s.b_cs) {
            /* a per-row scalar b */
            rop |= KILN_SE_SCALAR;
            bsc = br[0];
            br = NULL;
        }
        if (s.a_cs && (!cr || s.c_cs) &&
            !partial_overlap(dr, ar, s.cols) &&
            !(br && partial_overlap(dr, br, s.cols)) &&
            !(cr && partial_overlap(dr, cr, s.cols))) {
            simd->se_row(rop, dr, ar, br, cr, bsc, s.cols);
            continue;
        }
        /* strided or overlapping operands: element by element, in order */
        for (uint32_t c = 0; c < s.cols; c++) {
            float b = br ? br[c] : bsc;
            float cv = cr ? cr[(uint64_t)c * s.c_cs] : 0.0f;

            dr[c] = kiln_se_elem(rop, ar[(uint64_t)c * s.a_cs], b, cv);
        }
    }
    if (cost_rate == KILN_COST_SE_TRANSC_ELEMS) {
        pe->se_transc_elems += n;
    } else {
        pe->se_elems += n;
    }
    kiln_pe_activity(pe, KILN_PROF_SE, div_up(n, cost_rate));
    return true;
}

/* ---- RE ------------------------------------------------------------------ */

static bool re_exec(KilnPe *pe, uint32_t op, uint64_t da, uint64_t *rd)
{
    struct kiln_re_desc d;
    const uint8_t *ps;
    float *pd;
    bool rows = !(op & 1);
    uint32_t kind = op >> 1;    /* 0 sum, 1 max, 2 min, 3 sumsq */
    uint32_t outn;

    if (!read_desc(pe, da, &d, sizeof(d))) {
        return false;
    }
    if (op > KILN_RE_SUMSQ_COLS || (d.flags & ~1u)) {
        kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION, da, 0, 2);
        return false;
    }
    if (!d.rows || !d.cols) {
        return true;
    }
    ps = lm_operand(pe, d.src, d.rows, d.cols, d.src_ld, 1, 4, KILN_ACCESS_READ);
    if (!ps) {
        return false;
    }
    outn = rows ? d.rows : d.cols;
    pd = (float *)lm_operand(pe, d.dst, 1, outn, 0, 1, 4, KILN_ACCESS_WRITE);
    if (!pd || !unit_admit(pe, (uint64_t)d.rows * d.cols, KILN_COST_RE_ELEMS)) {
        return false;
    }
    for (uint32_t o = 0; o < outn; o++) {
        uint32_t cnt = rows ? d.cols : d.rows;
        double acc = kind == 1 ? -INFINITY : kind == 2 ? INFINITY : 0.0;
        bool nan = false;
        float res;
        for (uint32_t i = 0; i < cnt; i++) {
            uint32_t r = rows ? o : i, c = rows ? i : o;
            float v;
            memcpy(&v, ps + ((int64_t)r * d.src_ld + c) * 4, 4);
            if (isnan(v)) {
                nan = true;
                continue;
            }
            switch (kind) {
            case 0: acc += v; break;
            case 1: if (v > acc) { acc = v; } break;
            case 2: if (v < acc) { acc = v; } break;
            default: acc += (double)v * v; break;
            }
        }
        res = nan ? NAN : (float)acc;
        if (d.flags & KILN_RE_ACCUM) {
            float old = pd[o];
            switch (kind) {
            case 1: res = kiln_fmaxf_rv(old, res); break;
            case 2: res = kiln_fminf_rv(old, res); break;
            default: res = old + res; break;
            }
        }
        pd[o] = res;
    }
    {
        uint32_t bits;
        memcpy(&bits, pd, 4);
        *rd = bits;
    }
    pe->re_elems += (uint64_t)d.rows * d.cols;
    kiln_pe_activity(pe, KILN_PROF_RE,
                     div_up((uint64_t)d.rows * d.cols, KILN_COST_RE_ELEMS));
    return true;
}

/* ---- MLU ----------------------------------------------------------------- */

static bool mlu_exec(KilnPe *pe, uint32_t op, uint64_t da)
{
    struct kiln_mlu_desc d;
    uint32_t es;
    uint8_t *ps, *pd;

    if (!read_desc(pe, da, &d, sizeof(d))) {
        return false;
    }
    es = d.elem_size;
    if ((es != 1 && es != 2 && es != 4 && es != 8) || op > KILN_MLU_COPY2D) {
        kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION, da, 0, 2);
        return false;
    }
    if (!d.rows || !d.cols) {
        return true;
    }
    ps = lm_operand(pe, d.src, d.rows, d.cols, d.src_ld, 1, es, KILN_ACCESS_READ);
    if (!ps) {
        return false;
    }
    if (op == KILN_MLU_TRANSPOSE) {
        pd = lm_operand(pe, d.dst, d.cols, d.rows, d.dst_ld, 1, es,
                        KILN_ACCESS_WRITE);
    } else {
        pd = lm_operand(pe, d.dst, d.rows, d.cols, d.dst_ld, 1, es,
                        KILN_ACCESS_WRITE);
    }
    if (!pd || !unit_admit(pe, (uint64_t)d.rows * d.cols * es, KILN_COST_MLU_BYTES)) {
        return false;
    }
    if (op == KILN_MLU_TRANSPOSE) {
        for (uint32_t r0 = 0; r0 < d.rows; r0 += 32) {
            for (uint32_t c0 = 0; c0 < d.cols; c0 += 32) {
                uint32_t r1 = r0 + 32 < d.rows ? r0 + 32 : d.rows;
                uint32_t c1 = c0 + 32 < d.cols ? c0 + 32 : d.cols;
                for (uint32_t r = r0; r < r1; r++) {
                    for (uint32_t c = c0; c < c1; c++) {
                        memcpy(pd + ((int64_t)c * d.dst_ld + r) * es,
                               ps + ((int64_t)r * d.src_ld + c) * es, es);
                    }
                }
            }
        }
    } else {
        for (uint32_t r = 0; r < d.rows; r++) {
            memmove(pd + (int64_t)r * d.dst_ld * es,
                    ps + (int64_t)r * d.src_ld * es, (uint64_t)d.cols * es);
        }
    }
    pe->mlu_bytes += (uint64_t)d.rows * d.cols * es;
    kiln_pe_activity(pe, KILN_PROF_MLU,
                     div_up((uint64_t)d.rows * d.cols * es, KILN_COST_MLU_BYTES));
    return true;
}

/* ---- dispatch --------------------------------------------------------------- */

static bool sys_exec(KilnPe *pe, uint32_t op, uint64_t a, uint64_t b)
{
    switch (op) {
    case KILN_SYS_EXIT:
        pe->state = KILN_PE_EXITED;
        return false;
    case KILN_SYS_TRAP:
        kiln_pe_fault(pe, KILN_STATUS_KERNEL_TRAP, a, 0, 3);
        return false;
    case KILN_SYS_BARRIER:
        if (!pe->launch->cooperative) {
            kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION,
                          KILN_INSN(KILN_SYS_BARRIER, 0, 0, 0, 0), 0, 2);
            return false;
        }
        pe->state = KILN_PE_BARRIER;
        return false;
    case KILN_SYS_PUTC: {
        char ch = (char)a;
        kiln_pe_debug_append(pe, &ch, 1);
        return true;
    }
    case KILN_SYS_PUTS: {
        char buf[256];
        KilnFault f;
        if (b > 4096) {
            b = 4096;
        }
        while (b) {
            uint64_t n = b < sizeof(buf) ? b : sizeof(buf);
            if (is_local(a)) {
                uint8_t *p = lm_span(pe, a, 0, (int64_t)n, 1, KILN_ACCESS_READ);
                if (!p) {
                    return false;
                }
                memcpy(buf, p, n);
            } else if (!kiln_as_read(pe->launch->as, a, buf, n, &f)) {
                kiln_pe_mmu_fault(pe, &f, f.addr ? f.addr : a,
                                  KILN_ACCESS_READ);
                return false;
            }
            kiln_pe_debug_append(pe, buf, n);
            a += n;
            b -= n;
        }
        return true;
    }
    }
    kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION, op, 0, 2);
    return false;
}

bool kiln_pe_custom(KilnPe *pe, uint32_t raw, uint64_t a, uint64_t b,
                    uint64_t *rd)
{
    uint32_t unit = (raw >> 12) & 7, op = raw >> 25;
    bool ok;

    switch (unit) {
    case KILN_UNIT_SYS:
        return sys_exec(pe, op, a, b);
    case KILN_UNIT_DMA:
        if (op == KILN_DMA_WAIT) {
            uint64_t now = kiln_pe_cycles(pe), until = now;
            for (uint32_t t = 0; t < KILN_DMA_TAGS; t++) {
                if (((a >> t) & 1) && pe->tag_done[t] > until) {
                    until = pe->tag_done[t];
                }
            }
            kiln_pe_activity(pe, KILN_PROF_DMA_WAIT, until - now);
            return true;
        }
        if (b >= KILN_DMA_TAGS) {
            kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION, raw, 0, 2);
            return false;
        }
        if (op == KILN_DMA_COPY2D) {
            return dma_copy2d(pe, a, (uint32_t)b);
        }
        if (op == KILN_DMA_GATHER) {
            return dma_gather(pe, a, (uint32_t)b);
        }
        break;
    case KILN_UNIT_DPE:
        if (op == KILN_DPE_MATMUL) {
            return dpe_matmul(pe, a);
        }
        break;
    case KILN_UNIT_SE:
        ok = se_exec(pe, op, a);
        return ok;
    case KILN_UNIT_RE:
        return re_exec(pe, op, a, rd);
    case KILN_UNIT_MLU:
        return mlu_exec(pe, op, a);
    }
    kiln_pe_fault(pe, KILN_STATUS_ILLEGAL_INSTRUCTION, raw, 0, 2);
    return false;
}
