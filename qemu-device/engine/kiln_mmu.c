/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 engine: the device MMU.
 *
 * A four-level walk exactly as documented in include/kiln/hw/kiln_mmu.h,
 * an ASID table, and a TLB shared by all threads. The TLB is direct-mapped
 * (separate arrays for 4 KiB and 2 MiB pages). Writers (fills, flushes,
 * context changes) hold one mutex; lookups take no lock but read under a
 * sequence count and retry if a writer was active, because every DMA row
 * and PE micro-TLB refill translates and the worker threads otherwise
 * queue on that mutex. A generation counter keeps a walk that raced with
 * an invalidation from inserting a stale entry. A second counter per ASID, read without the
 * lock, tells the PEs' private micro-TLBs that a running launch must drop
 * its cached translations (kiln_mmu_flush_gen).
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_engine.h"

#define TLB_4K_ENTRIES  1024
#define TLB_2M_ENTRIES  256

typedef struct KilnTlbEntry {
    uint64_t vpn;           /* VA >> page shift */
    uint64_t pa;            /* page base PA */
    uint32_t asid;          /* 0 = invalid entry */
    uint32_t perms;         /* KILN_ACCESS_* */
} KilnTlbEntry;

typedef struct KilnCtx {
    bool valid;
    uint64_t root;
} KilnCtx;

struct KilnMmu {
    const KilnPhys *phys;
    uint32_t max_contexts;
    pthread_mutex_t lock;
    uint32_t tlb_seq;       /* odd while a writer changes the TLB */
    uint64_t gen;
    uint32_t inject;
    KilnCtx *ctx;
    uint64_t *flush_gen;    /* per ASID, bumped by every flush touching it */
    KilnTlbEntry tlb4k[TLB_4K_ENTRIES];
    KilnTlbEntry tlb2m[TLB_2M_ENTRIES];
};

static void mmu_fault(KilnFault *fault, uint32_t status, uint32_t asid,
                      uint64_t va, uint32_t access, uint32_t reason)
{
    if (fault) {
        fault->status = status;
        fault->asid = asid;
        fault->addr = va;
        fault->access = access;
        fault->reason = reason;
    }
}

KilnMmu *kiln_mmu_new(const KilnPhys *phys, uint32_t max_contexts)
{
    KilnMmu *mmu = calloc(1, sizeof(*mmu));

    if (!mmu) {
        return NULL;
    }
    mmu->ctx = calloc(max_contexts ? max_contexts : 1, sizeof(KilnCtx));
    mmu->flush_gen = calloc(max_contexts ? max_contexts : 1, sizeof(uint64_t));
    if (!mmu->ctx || !mmu->flush_gen) {
        free(mmu->ctx);
        free(mmu->flush_gen);
        free(mmu);
        return NULL;
    }
    mmu->phys = phys;
    mmu->max_contexts = max_contexts;
    pthread_mutex_init(&mmu->lock, NULL);
    return mmu;
}

void kiln_mmu_free(KilnMmu *mmu)
{
    if (!mmu) {
        return;
    }
    pthread_mutex_destroy(&mmu->lock);
    free(mmu->ctx);
    free(mmu->flush_gen);
    free(mmu);
}

static inline uint32_t tlb4k_index(uint32_t asid, uint64_t vpn)
{
    return (uint32_t)((vpn ^ (vpn >> 10) ^ ((uint64_t)asid * 0x9e37)) &
                      (TLB_4K_ENTRIES - 1));
}

static inline uint32_t tlb2m_index(uint32_t asid, uint64_t vpn)
{
    return (uint32_t)((vpn ^ (vpn >> 8) ^ ((uint64_t)asid * 0x9e37)) &
                      (TLB_2M_ENTRIES - 1));
}

/* Caller holds mmu->lock. Every ASID if @asid is 0. */
static void bump_flush_gen(KilnMmu *mmu, uint32_t asid)
{
    for (uint32_t i = 0; i < mmu->max_contexts; i++) {
        if (asid == 0 || i == asid) {
            __atomic_store_n(&mmu->flush_gen[i], mmu->flush_gen[i] + 1,
                             __ATOMIC_RELEASE);
        }
    }
}

const uint64_t *kiln_mmu_flush_gen(KilnMmu *mmu, uint32_t asid)
{
    static const uint64_t never;

    return asid && asid < mmu->max_contexts ? &mmu->flush_gen[asid] : &never;
}

/* Caller holds mmu->lock; brackets every change lock-free readers can see. */
static void tlb_write_begin(KilnMmu *mmu)
{
    __atomic_store_n(&mmu->tlb_seq, mmu->tlb_seq + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
}

static void tlb_write_end(KilnMmu *mmu)
{
    __atomic_store_n(&mmu->tlb_seq, mmu->tlb_seq + 1, __ATOMIC_RELEASE);
}

/* Caller holds mmu->lock. */
static void tlb_flush_locked(KilnMmu *mmu, uint32_t asid, uint64_t va,
                             uint64_t size, bool all)
{
    uint64_t end = va + size;
    int i;

    if (end < va) {
        end = UINT64_MAX;
    }
    mmu->gen++;
    bump_flush_gen(mmu, asid);
    tlb_write_begin(mmu);
    for (i = 0; i < TLB_4K_ENTRIES; i++) {
        KilnTlbEntry *e = &mmu->tlb4k[i];
        uint64_t base = e->vpn << KILN_PAGE_SHIFT;

        if (e->asid && (asid == 0 || e->asid == asid) &&
            (all || (base < end && base + KILN_PAGE_SIZE > va))) {
            e->asid = 0;
        }
    }
    for (i = 0; i < TLB_2M_ENTRIES; i++) {
        KilnTlbEntry *e = &mmu->tlb2m[i];
        uint64_t base = e->vpn << KILN_LARGE_PAGE_SHIFT;

        if (e->asid && (asid == 0 || e->asid == asid) &&
            (all || (base < end && base + KILN_LARGE_PAGE_SIZE > va))) {
            e->asid = 0;
        }
    }
    tlb_write_end(mmu);
}

bool kiln_mmu_set_context(KilnMmu *mmu, uint32_t asid, bool valid,
                          uint64_t pt_root_pa, KilnFault *fault)
{
    KilnXlate x;

    if (asid == 0 || asid >= mmu->max_contexts) {
        mmu_fault(fault, KILN_STATUS_BAD_CONTEXT, asid, 0, 0,
                  KILN_MMU_FAULT_NONE);
        return false;
    }
    if (valid) {
        if (pt_root_pa & (KILN_PAGE_SIZE - 1)) {
            mmu_fault(fault, KILN_STATUS_BAD_PACKET, asid, pt_root_pa, 0,
                      KILN_MMU_FAULT_NONE);
            return false;
        }
        if (!kiln_phys_xlate(mmu->phys, pt_root_pa, KILN_PAGE_SIZE, &x,
                             fault) || x.len < KILN_PAGE_SIZE) {
            mmu_fault(fault, KILN_STATUS_BAD_ADDRESS, asid, pt_root_pa, 0,
                      KILN_MMU_FAULT_BAD_PA);
            return false;
        }
    }
    pthread_mutex_lock(&mmu->lock);
    mmu->ctx[asid].root = valid ? pt_root_pa : 0;
    __atomic_store_n(&mmu->ctx[asid].valid, valid, __ATOMIC_RELEASE);
    tlb_flush_locked(mmu, asid, 0, 0, true);
    pthread_mutex_unlock(&mmu->lock);
    return true;
}

bool kiln_mmu_context_valid(KilnMmu *mmu, uint32_t asid)
{
    if (asid == 0 || asid >= mmu->max_contexts) {
        return false;
    }
    return __atomic_load_n(&mmu->ctx[asid].valid, __ATOMIC_ACQUIRE);
}

void kiln_mmu_invalidate(KilnMmu *mmu, uint32_t asid, uint64_t va,
                         uint64_t size)
{
    pthread_mutex_lock(&mmu->lock);
    tlb_flush_locked(mmu, asid, va, size, false);
    pthread_mutex_unlock(&mmu->lock);
}

void kiln_mmu_invalidate_all(KilnMmu *mmu, uint32_t asid)
{
    pthread_mutex_lock(&mmu->lock);
    tlb_flush_locked(mmu, asid, 0, 0, true);
    pthread_mutex_unlock(&mmu->lock);
}

void kiln_mmu_reset(KilnMmu *mmu)
{
    pthread_mutex_lock(&mmu->lock);
    for (uint32_t i = 0; i < mmu->max_contexts; i++) {
        __atomic_store_n(&mmu->ctx[i].valid, false, __ATOMIC_RELEASE);
        mmu->ctx[i].root = 0;
    }
    tlb_write_begin(mmu);
    memset(mmu->tlb4k, 0, sizeof(mmu->tlb4k));
    memset(mmu->tlb2m, 0, sizeof(mmu->tlb2m));
    tlb_write_end(mmu);
    mmu->gen++;
    bump_flush_gen(mmu, 0);
    __atomic_store_n(&mmu->inject, 0, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&mmu->lock);
}

void kiln_mmu_inject_faults(KilnMmu *mmu, uint32_t count)
{
    pthread_mutex_lock(&mmu->lock);
    __atomic_store_n(&mmu->inject, count, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&mmu->lock);
}

uint32_t kiln_mmu_injected_faults(KilnMmu *mmu)
{
    uint32_t v;

    pthread_mutex_lock(&mmu->lock);
    v = mmu->inject;
    pthread_mutex_unlock(&mmu->lock);
    return v;
}

/* Is [pa, pa + size) entirely inside one region? */
static bool pa_range_valid(const KilnPhys *phys, uint64_t pa, uint64_t size)
{
    KilnXlate x;

    return kiln_phys_xlate(phys, pa, size, &x, NULL) && x.len == size;
}

static bool fill_out(const KilnPhys *phys, uint64_t page_pa, uint64_t page_size,
                     uint64_t va, KilnXlate *out)
{
    uint64_t off = va & (page_size - 1);
    KilnXlate x;

    if (!kiln_phys_xlate(phys, page_pa + off, page_size - off, &x, NULL)) {
        return false;
    }
    *out = x;
    return true;
}

/*
 * The TLB entry for @va with @access allowed, without the lock: retried
 * while a writer is active or if one ran meanwhile. An entry a flush clears
 * just after this returns is in use as a translation would be had the
 * lookup run first, as with a lock released before its page is used.
 */
static bool tlb_lookup(KilnMmu *mmu, uint32_t asid, uint64_t va,
                       uint32_t access, uint64_t *page_pa, uint64_t *page_size)
{
    uint64_t vpn4k = va >> KILN_PAGE_SHIFT, vpn2m = va >> KILN_LARGE_PAGE_SHIFT;
    const KilnTlbEntry *e4k = &mmu->tlb4k[tlb4k_index(asid, vpn4k)];
    const KilnTlbEntry *e2m = &mmu->tlb2m[tlb2m_index(asid, vpn2m)];
    uint32_t seq;
    bool hit;

    do {
        seq = __atomic_load_n(&mmu->tlb_seq, __ATOMIC_ACQUIRE);
        hit = true;
        if (e4k->asid == asid && e4k->vpn == vpn4k &&
            (e4k->perms & access) == access) {
            *page_pa = e4k->pa;
            *page_size = KILN_PAGE_SIZE;
        } else if (e2m->asid == asid && e2m->vpn == vpn2m &&
                   (e2m->perms & access) == access) {
            *page_pa = e2m->pa;
            *page_size = KILN_LARGE_PAGE_SIZE;
        } else {
            hit = false;
        }
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
    } while ((seq & 1) ||
             __atomic_load_n(&mmu->tlb_seq, __ATOMIC_RELAXED) != seq);
    return hit;
}

bool kiln_mmu_translate(KilnMmu *mmu, uint32_t asid, uint64_t va,
                        uint32_t access, KilnXlate *out, KilnFault *fault)
{
    uint64_t page_pa, page_size;
    uint64_t table, gen, pte = 0;
    uint32_t perms;
    int level;

    if (asid == 0 || asid >= mmu->max_contexts) {
        mmu_fault(fault, KILN_STATUS_BAD_CONTEXT, asid, va, access,
                  KILN_MMU_FAULT_NONE);
        return false;
    }

    if (__atomic_load_n(&mmu->inject, __ATOMIC_RELAXED)) {
        bool injected = false;

        pthread_mutex_lock(&mmu->lock);
        if (mmu->inject) {
            __atomic_store_n(&mmu->inject, mmu->inject - 1, __ATOMIC_RELAXED);
            injected = true;
        }
        pthread_mutex_unlock(&mmu->lock);
        if (injected) {
            mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                      KILN_MMU_FAULT_INJECTED);
            return false;
        }
    }
    if (!__atomic_load_n(&mmu->ctx[asid].valid, __ATOMIC_ACQUIRE)) {
        mmu_fault(fault, KILN_STATUS_BAD_CONTEXT, asid, va, access,
                  KILN_MMU_FAULT_NONE);
        return false;
    }
    if (va >= KILN_VA_MAX) {
        mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                  KILN_MMU_FAULT_NON_CANONICAL);
        return false;
    }
    if (tlb_lookup(mmu, asid, va, access, &page_pa, &page_size) &&
        fill_out(mmu->phys, page_pa, page_size, va, out)) {
        return true;
    }

    pthread_mutex_lock(&mmu->lock);
    if (!mmu->ctx[asid].valid) {
        pthread_mutex_unlock(&mmu->lock);
        mmu_fault(fault, KILN_STATUS_BAD_CONTEXT, asid, va, access,
                  KILN_MMU_FAULT_NONE);
        return false;
    }
    table = mmu->ctx[asid].root;
    gen = mmu->gen;
    pthread_mutex_unlock(&mmu->lock);

    for (level = KILN_PT_LEVELS - 1; level >= 0; level--) {
        uint64_t pte_pa = table + KILN_PT_INDEX(va, level) * 8;
        uint8_t raw[8];
        KilnFault f;
        int i;

        if (!kiln_phys_read(mmu->phys, pte_pa, raw, 8, &f)) {
            mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                      f.status == KILN_STATUS_DMA_ERROR ?
                      KILN_MMU_FAULT_TABLE_DMA : KILN_MMU_FAULT_BAD_PA);
            return false;
        }
        pte = 0;
        for (i = 7; i >= 0; i--) {
            pte = (pte << 8) | raw[i];
        }
        if (!(pte & KILN_PTE_VALID)) {
            mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                      KILN_MMU_FAULT_NOT_PRESENT);
            return false;
        }
        if (pte & KILN_PTE_RESERVED_MASK) {
            mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                      KILN_MMU_FAULT_RESERVED);
            return false;
        }
        if (pte & KILN_PTE_LEAF_MASK) {
            uint64_t vpn;
            KilnTlbEntry *e;

            if (level >= 2) {
                mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                          KILN_MMU_FAULT_RESERVED);
                return false;
            }
            page_size = level == 1 ? KILN_LARGE_PAGE_SIZE : KILN_PAGE_SIZE;
            page_pa = pte & KILN_PTE_ADDR_MASK;
            if (page_pa & (page_size - 1)) {
                mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                          KILN_MMU_FAULT_RESERVED);
                return false;
            }
            perms = 0;
            if (pte & KILN_PTE_READ) {
                perms |= KILN_ACCESS_READ;
            }
            if (pte & KILN_PTE_WRITE) {
                perms |= KILN_ACCESS_WRITE;
            }
            if (pte & KILN_PTE_EXEC) {
                perms |= KILN_ACCESS_EXEC;
            }
            if ((perms & access) != access) {
                mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                          KILN_MMU_FAULT_PERMISSION);
                return false;
            }
            if (!pa_range_valid(mmu->phys, page_pa, page_size) ||
                !fill_out(mmu->phys, page_pa, page_size, va, out)) {
                mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                          KILN_MMU_FAULT_BAD_PA);
                return false;
            }
            pthread_mutex_lock(&mmu->lock);
            if (mmu->gen == gen) {
                vpn = va >> (level == 1 ? KILN_LARGE_PAGE_SHIFT :
                             KILN_PAGE_SHIFT);
                e = level == 1 ? &mmu->tlb2m[tlb2m_index(asid, vpn)] :
                                 &mmu->tlb4k[tlb4k_index(asid, vpn)];
                tlb_write_begin(mmu);
                e->asid = asid;
                e->vpn = vpn;
                e->pa = page_pa;
                e->perms = perms;
                tlb_write_end(mmu);
            }
            pthread_mutex_unlock(&mmu->lock);
            return true;
        }
        if (level == 0) {
            /* A pointer entry where a leaf is required. */
            mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                      KILN_MMU_FAULT_RESERVED);
            return false;
        }
        table = pte & KILN_PTE_ADDR_MASK;
    }
    mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
              KILN_MMU_FAULT_RESERVED);
    return false;
}
