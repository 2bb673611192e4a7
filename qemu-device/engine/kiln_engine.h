/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 engine: the QEMU-independent core of the device model.
 *
 * This header is the contract between the PCI device glue (qemu-device/
 * kiln*.c, which owns registers, queues, threads and PCI DMA) and the
 * engine proper (physical memory, MMU, packet execution helpers, and the
 * PE compute engine). Nothing here includes QEMU headers, so host unit
 * tests link the engine directly.
 *
 * Threading: every function may be called concurrently from several
 * threads unless stated otherwise. Callbacks may be invoked from any
 * thread the caller used to enter the engine.
 */
#ifndef KILN_ENGINE_H
#define KILN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/hw/kiln_mmu.h"
#include "kiln/hw/kiln_packets.h"
#include "kiln/hw/kiln_status.h"

/*
 * Device physical memory. DRAM and SRAM are host buffers owned by the
 * glue; host memory is reached through callbacks (PCI DMA in QEMU).
 */
typedef struct KilnPhys {
    uint8_t *dram;
    uint64_t dram_size;
    uint8_t *sram;
    uint64_t sram_size;
    void *opaque;
    /* Return 0 on success, -1 if the bus access failed. */
    int (*host_read)(void *opaque, uint64_t bus_addr, void *buf, uint64_t len);
    int (*host_write)(void *opaque, uint64_t bus_addr, const void *buf,
                      uint64_t len);
} KilnPhys;

/*
 * A translated range: @len bytes starting at the translated address are
 * contiguous. @host points at them for DRAM/SRAM, and is NULL for host
 * memory, which must go through kiln_phys_read/write with @pa.
 */
typedef struct KilnXlate {
    uint64_t pa;
    uint8_t *host;
    uint64_t len;
} KilnXlate;

typedef struct KilnFault {
    uint32_t status;        /* enum kiln_status */
    uint32_t asid;
    uint64_t addr;          /* VA (or PA for privileged accesses) */
    uint32_t access;        /* KILN_ACCESS_* */
    uint32_t reason;        /* enum kiln_mmu_fault_reason */
} KilnFault;

/* Physical accesses; return false and fill @fault on error. */
bool kiln_phys_xlate(const KilnPhys *phys, uint64_t pa, uint64_t len,
                     KilnXlate *out, KilnFault *fault);
bool kiln_phys_read(const KilnPhys *phys, uint64_t pa, void *buf, uint64_t len,
                    KilnFault *fault);
bool kiln_phys_write(const KilnPhys *phys, uint64_t pa, const void *buf,
                     uint64_t len, KilnFault *fault);

/* The MMU: ASID table and a TLB shared by all threads. */
typedef struct KilnMmu KilnMmu;

KilnMmu *kiln_mmu_new(const KilnPhys *phys, uint32_t max_contexts);
void kiln_mmu_free(KilnMmu *mmu);
/* Bind @asid to a page-table root, or unbind it (valid == false). */
bool kiln_mmu_set_context(KilnMmu *mmu, uint32_t asid, bool valid,
                          uint64_t pt_root_pa, KilnFault *fault);
void kiln_mmu_invalidate(KilnMmu *mmu, uint32_t asid, uint64_t va,
                         uint64_t size);
void kiln_mmu_invalidate_all(KilnMmu *mmu, uint32_t asid);
/* Forget every context and TLB entry (device reset). */
void kiln_mmu_reset(KilnMmu *mmu);
/*
 * Translate @va for @access in @asid; on success @out covers at least one
 * byte and at most up to the end of the page.
 */
bool kiln_mmu_translate(KilnMmu *mmu, uint32_t asid, uint64_t va,
                        uint32_t access, KilnXlate *out, KilnFault *fault);
/*
 * Fault injection: the next @count translations (of any context) fail with
 * KILN_MMU_FAULT_INJECTED. Returns the number still pending with _get.
 */
void kiln_mmu_inject_faults(KilnMmu *mmu, uint32_t count);
uint32_t kiln_mmu_injected_faults(KilnMmu *mmu);
/* Whether @asid is bound to a page table. */
bool kiln_mmu_context_valid(KilnMmu *mmu, uint32_t asid);
/*
 * A counter that grows whenever translations of @asid may have changed (any
 * invalidation, context change or reset touching it). Read it with
 * __atomic_load_n(p, __ATOMIC_ACQUIRE) before translating; a translation
 * cached outside the MMU is stale once the counter moved. Constant for
 * ASID 0 and out-of-range ASIDs.
 */
const uint64_t *kiln_mmu_flush_gen(KilnMmu *mmu, uint32_t asid);

/*
 * An address space as seen by packets and kernels: a context of the MMU,
 * or (asid == 0) physical addresses for privileged ring packets.
 */
typedef struct KilnAddrSpace {
    const KilnPhys *phys;
    KilnMmu *mmu;
    uint32_t asid;
} KilnAddrSpace;

bool kiln_as_xlate(const KilnAddrSpace *as, uint64_t addr, uint64_t len,
                   uint32_t access, KilnXlate *out, KilnFault *fault);
bool kiln_as_read(const KilnAddrSpace *as, uint64_t addr, void *buf,
                  uint64_t len, KilnFault *fault);
bool kiln_as_write(const KilnAddrSpace *as, uint64_t addr, const void *buf,
                   uint64_t len, KilnFault *fault);

/*
 * Runs fn(arg, i) for every i in [0, n), possibly in parallel, and returns
 * when all calls returned. Provided by the glue (worker pool) or by tests.
 */
typedef struct KilnParallel {
    void *opaque;
    uint32_t workers;
    void (*parallel_for)(void *opaque, uint32_t n,
                         void (*fn)(void *arg, uint32_t i), void *arg);
} KilnParallel;

/* PE compute engine (qemu-device/engine/pe/) */
typedef struct KilnPeConfig {
    uint32_t grid_width;            /* PEs */
    uint32_t grid_height;
    uint32_t local_mem_size;        /* bytes per PE */
    uint64_t default_watchdog_cycles;
    /*
     * KILN_PE_JIT_*: translate hot PE code to host code (the default), or
     * not; the environment variable KILN_PE_JIT=0 forces it off, and
     * KILN_PE_JIT=eager translates every code page at its first fetch
     * (tests), both read by kiln_pe_engine_new().
     */
    uint32_t pe_jit;
} KilnPeConfig;

enum {
    KILN_PE_JIT_ON,
    KILN_PE_JIT_OFF,
    KILN_PE_JIT_EAGER,
};

typedef struct KilnLaunchResult {
    uint32_t status;                /* enum kiln_status */
    uint32_t pe;                    /* KILN_JOB_STATUS_NO_PE if not a PE fault */
    uint64_t pc;
    uint64_t addr;
    uint32_t access;                /* KILN_ACCESS_* */
    uint32_t reason;                /* MMU fault reason or RISC-V cause */
    uint64_t cycles;                /* emulated cycles (critical path) */
    uint64_t instructions;          /* interpreted instructions, all PEs */
    uint64_t dynamic_pj;            /* modelled energy above idle power */
} KilnLaunchResult;

typedef struct KilnPeEngine KilnPeEngine;

KilnPeEngine *kiln_pe_engine_new(const KilnPeConfig *cfg);
void kiln_pe_engine_free(KilnPeEngine *eng);
/* Code pages translated to host code in this process so far (tests) */
uint64_t kiln_pe_jit_translated(void);
/*
 * Validate and run one LAUNCH packet in @as. Blocks until every workgroup
 * finished or one faulted. @cancel, if non-NULL, is polled; when it becomes
 * non-zero the launch stops with KILN_STATUS_ABORTED. @progress, if
 * non-NULL, is incremented as the kernel runs (hang detection).
 * @start_cycles is the device's modelled time when the launch begins,
 * recorded in its profile (pkt->profile_va).
 */
void kiln_pe_launch(KilnPeEngine *eng, const KilnAddrSpace *as,
                    const struct kiln_pkt_launch *pkt,
                    const KilnParallel *par, const volatile int *cancel,
                    uint64_t *progress, uint64_t start_cycles,
                    KilnLaunchResult *result);

/*
 * Energy model (docs/pe-isa.md section 4): the idle power over @cycles of
 * modelled time, and the dynamic energy of a DMA_COPY/DMA_FILL packet
 * moving @bytes between the regions of physical addresses @src_pa and
 * @dst_pa (a fill has no source: pass @dst_pa for both).
 */
uint64_t kiln_energy_idle_pj(uint64_t cycles);
uint64_t kiln_energy_copy_pj(uint64_t bytes, uint64_t src_pa, uint64_t dst_pa,
                             bool fill);

#endif /* KILN_ENGINE_H */
