/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE hart: Zicsr (the PE's CSRs) and RV64A (LR/SC and AMOs on local,
 * device and host memory).
 */
#include <string.h>

#include "pe_interp.h"

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
bool kiln_pe_exec_amo(KilnPe *pe, const KilnInsn *d, uint64_t *rd)
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


/* ---- CSRs ---------------------------------------------------------------- */

static bool csr_read(KilnPe *pe, uint32_t csr, uint64_t *v)
{
    KilnLaunch *l = pe->launch;
    const struct kiln_pkt_launch *p = l->pkt;

    switch (csr) {
    case KILN_CSR_FFLAGS:
        kiln_pe_sync_fflags(pe);
        *v = pe->fflags;
        return true;
    case KILN_CSR_FRM:
        *v = pe->frm;
        return true;
    case KILN_CSR_FCSR:
        kiln_pe_sync_fflags(pe);
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
        kiln_pe_clear_host_fflags();
        pe->fflags = v & 31;
        return true;
    case KILN_CSR_FRM:
        pe->frm = v & 7;
        return true;
    case KILN_CSR_FCSR:
        kiln_pe_clear_host_fflags();
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

bool kiln_pe_exec_csr(KilnPe *pe, const KilnInsn *d)
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
