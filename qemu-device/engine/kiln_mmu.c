/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 engine: the device MMU.
 *
 * A four-level walk exactly as documented in include/kiln/hw/kiln_mmu.h,
 * an ASID table, and a TLB shared by all threads. The TLB is direct-mapped
 * (separate arrays for 4 KiB and 2 MiB pages) and protected by one mutex;
 * a generation counter keeps a walk that raced with an invalidation from
 * inserting a stale entry. A second counter per ASID, read without the
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
    uint64_t gen;
    uint32_t inject;
    uint64_t hits, misses;
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
    mmu->ctx[asid].valid = valid;
    mmu->ctx[asid].root = valid ? pt_root_pa : 0;
    tlb_flush_locked(mmu, asid, 0, 0, true);
    pthread_mutex_unlock(&mmu->lock);
    return true;
}

bool kiln_mmu_context_valid(KilnMmu *mmu, uint32_t asid)
{
    bool v;

    if (asid == 0 || asid >= mmu->max_contexts) {
        return false;
    }
    pthread_mutex_lock(&mmu->lock);
    v = mmu->ctx[asid].valid;
    pthread_mutex_unlock(&mmu->lock);
    return v;
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
    memset(mmu->ctx, 0, sizeof(KilnCtx) * mmu->max_contexts);
    memset(mmu->tlb4k, 0, sizeof(mmu->tlb4k));
    memset(mmu->tlb2m, 0, sizeof(mmu->tlb2m));
    mmu->gen++;
    bump_flush_gen(mmu, 0);
    mmu->inject = 0;
    mmu->hits = mmu->misses = 0;
    pthread_mutex_unlock(&mmu->lock);
}

void kiln_mmu_inject_faults(KilnMmu *mmu, uint32_t count)
{
    pthread_mutex_lock(&mmu->lock);
    mmu->inject = count;
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

void kiln_mmu_stats(KilnMmu *mmu, uint64_t *hits, uint64_t *misses)
{
    pthread_mutex_lock(&mmu->lock);
    *hits = mmu->hits;
    *misses = mmu->misses;
    pthread_mutex_unlock(&mmu->lock);
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

bool kiln_mmu_translate(KilnMmu *mmu, uint32_t asid, uint64_t va,
                        uint32_t access, KilnXlate *out, KilnFault *fault)
{
    uint64_t table, gen, pte = 0;
    uint32_t perms;
    int level;

    if (asid == 0 || asid >= mmu->max_contexts) {
        mmu_fault(fault, KILN_STATUS_BAD_CONTEXT, asid, va, access,
                  KILN_MMU_FAULT_NONE);
        return false;
    }

    pthread_mutex_lock(&mmu->lock);
    if (mmu->inject) {
        mmu->inject--;
        pthread_mutex_unlock(&mmu->lock);
        mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                  KILN_MMU_FAULT_INJECTED);
        return false;
    }
    if (!mmu->ctx[asid].valid) {
        pthread_mutex_unlock(&mmu->lock);
        mmu_fault(fault, KILN_STATUS_BAD_CONTEXT, asid, va, access,
                  KILN_MMU_FAULT_NONE);
        return false;
    }
    if (va >= KILN_VA_MAX) {
        pthread_mutex_unlock(&mmu->lock);
        mmu_fault(fault, KILN_STATUS_MMU_FAULT, asid, va, access,
                  KILN_MMU_FAULT_NON_CANONICAL);
        return false;
    }
    {
        uint64_t vpn = va >> KILN_PAGE_SHIFT;
        KilnTlbEntry *e = &mmu->tlb4k[tlb4k_index(asid, vpn)];

        if (e->asid == asid && e->vpn == vpn && (e->perms & access) == access) {
            /* Another thread may refill the entry once the lock is gone. */
            uint64_t pa = e->pa;

            mmu->hits++;
            pthread_mutex_unlock(&mmu->lock);
            if (fill_out(mmu->phys, pa, KILN_PAGE_SIZE, va, out)) {
                return true;
            }
            goto walk_unlocked;
        }
        vpn = va >> KILN_LARGE_PAGE_SHIFT;
        e = &mmu->tlb2m[tlb2m_index(asid, vpn)];
        if (e->asid == asid && e->vpn == vpn && (e->perms & access) == access) {
            /* Another thread may refill the entry once the lock is gone. */
            uint64_t pa = e->pa;

            mmu->hits++;
            pthread_mutex_unlock(&mmu->lock);
            if (fill_out(mmu->phys, pa, KILN_LARGE_PAGE_SIZE, va, out)) {
                return true;
            }
            goto walk_unlocked;
        }
    }
    mmu->misses++;
    pthread_mutex_unlock(&mmu->lock);

walk_unlocked:
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
            uint64_t page_size, page_pa, vpn;
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
                e->asid = asid;
                e->vpn = vpn;
                e->pa = page_pa;
                e->perms = perms;
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
