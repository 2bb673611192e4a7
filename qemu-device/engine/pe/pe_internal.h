/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE compute engine: internal state shared by the interpreter, the
 * fixed-function units and the launch logic. QEMU-independent C11.
 */
#ifndef KILN_PE_INTERNAL_H
#define KILN_PE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../kiln_engine.h"
#include "kiln/hw/kiln_isa.h"
#include "kiln/hw/kiln_profile.h"
#include "pe_simd.h"

#define KILN_PE_TLB_SIZE        64
#define KILN_PE_CODE_HASH       256
#define KILN_PE_PAGE_INSNS      1024
#define KILN_PE_CHECK_INTERVAL  65536
/*
 * Instructions interpreted on a code page before it is translated
 * (KILN_PE_JIT_ON): about what translating a page costs, so that code run
 * once (most launches) is never translated and hot code soon is.
 */
#define KILN_PE_JIT_HOT         (256 * 1024)

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* A predecoded instruction */
typedef struct KilnInsn {
    uint16_t op;
    uint8_t rd;         /* 32 for x0: a write-only sink */
    uint8_t rs1;
    uint8_t rs2;
    uint8_t rs3;
    uint16_t pad;
    int32_t imm;
    uint32_t raw;
} KilnInsn;

typedef struct KilnJitPage KilnJitPage;

/* One decoded 4 KiB code page plus an end-of-page sentinel */
typedef struct KilnCodePage {
    struct KilnCodePage *next;
    uint64_t va;
    /* its host-code translation (pe_jit.c), made once the page is hot */
    _Atomic(KilnJitPage *) jit;
    _Atomic uint64_t heat;      /* instructions interpreted on it */
    _Atomic bool jit_tried;
    KilnInsn insn[KILN_PE_PAGE_INSNS + 1];
} KilnCodePage;

typedef struct KilnPeTlb {
    uint64_t tag;       /* VA >> 12, or ~0 */
    uint8_t *base;      /* host pointer of the page minus its VA */
} KilnPeTlb;

/* [va, va + len) of device memory is host memory at host (len 0: none) */
typedef struct KilnDmaSpan {
    uint64_t va, len;
    uint8_t *host;
} KilnDmaSpan;

typedef enum KilnPeState {
    KILN_PE_RUNNING,
    KILN_PE_EXITED,
    KILN_PE_BARRIER,
    KILN_PE_FAULT,
    KILN_PE_STOPPED,    /* cancel or an earlier workgroup's fault */
} KilnPeState;

typedef struct KilnLaunch KilnLaunch;

/*
 * Shared fabrics the cost model tracks. A DMA transfer crosses the fabric
 * of each side that is not local memory, and its bytes count on each.
 */
typedef enum KilnFabric {
    KILN_FABRIC_NONE = -1,      /* the PE's own local memory */
    KILN_FABRIC_DRAM,
    KILN_FABRIC_SRAM,
    KILN_FABRIC_HOST,
    KILN_PE_FABRICS
} KilnFabric;

typedef struct KilnPe {
    uint64_t x[33];
    uint64_t f[32];
    uint64_t pc;
    uint64_t instret;
    uint64_t cycles_extra;      /* cycles = instret + cycles_extra */
    uint64_t jit_check_at;      /* the run loop's next check point */
    uint64_t jit_lm_units[4];   /* lm_size >> k, for accesses of 1 << k bytes */
    uint32_t fflags;
    uint32_t frm;

    uint8_t *lm;
    uint64_t lm_size;
    /*
     * [lm_clean_lo, lm_clean_hi): bytes of the local-memory buffer known to
     * be zero; the next launch using the buffer zeroes only the rest.
     */
    uint64_t lm_clean_lo, lm_clean_hi;
    struct KilnLmBuf *lm_buf;

    KilnPeTlb rtlb[KILN_PE_TLB_SIZE];
    KilnPeTlb wtlb[KILN_PE_TLB_SIZE];
    /* the last span DMA reads [0] and writes [1] translated (pe_units.c) */
    KilnDmaSpan dma_span[2];
    uint64_t tlb_gen;           /* *launch->tlb_gen when the above were valid */

    /* LR/SC reservation */
    bool resv_valid;
    uint32_t resv_size;
    uint64_t resv_addr, resv_value;

    KilnLaunch *launch;
    uint32_t slot;              /* PE index in the wave (y * width + x) */
    uint32_t wg;                /* linear workgroup id */
    uint32_t wg_x, wg_y, wg_z;

    KilnPeState state;
    uint32_t fault_status;
    uint64_t fault_pc;
    uint64_t fault_addr;
    uint32_t fault_access;
    uint32_t fault_reason;

    /* DMA engine timeline (emulated cycles) */
    uint64_t dma_busy_until;
    uint64_t tag_done[KILN_DMA_TAGS];

    /* debug text of the current workgroup */
    char *dbg;
    uint64_t dbg_len, dbg_cap;
    uint64_t dbg_dropped;

    uint64_t progress_reported;
    /*
     * Bytes this PE moved over each shared fabric since the wave, or its
     * last barrier, began: that phase cannot end before the busiest
     * fabric has carried every PE's traffic (pe_launch.c).
     */
    uint64_t fabric_bytes[KILN_PE_FABRICS];

    /*
     * Activity counters of this PE slot over the whole launch (the
     * profile and the energy model): cycles per enum kiln_prof_activity,
     * and the work each unit did. Scalar cycles are what is left of the
     * PE's clock once the other activities of the wave are counted
     * (wave_counted).
     */
    uint64_t act[KILN_PROF_ACTIVITIES];
    uint64_t wave_counted;
    uint64_t macs[4];                   /* by KILN_DTYPE_FP32 .. INT8 */
    uint64_t se_elems, se_transc_elems, re_elems, mlu_bytes;
    uint64_t moved[KILN_PROF_FABRICS];  /* DMA bytes per fabric, whole launch */
    uint32_t workgroups;
    /* timeline (profiled launches): segments of this slot, cycles from
     * the launch start; wave_base is where the current wave began */
    struct kiln_profile_segment *seg;
    uint32_t seg_cap, seg_n;
    uint64_t seg_dropped;
    uint64_t wave_base;
} KilnPe;

struct KilnLaunch {
    const KilnPeEngine *eng;
    const KilnAddrSpace *as;
    const struct kiln_pkt_launch *pkt;
    const volatile int *cancel;
    uint64_t *progress;
    const uint64_t *tlb_gen;    /* kiln_mmu_flush_gen() of the context */
    uint64_t watchdog;
    uint32_t num_pes;
    uint32_t wave_pes;          /* workgroups in the current wave */
    uint64_t dbg_limit;         /* bytes of debug text per workgroup */
    bool cooperative;
    _Atomic(KilnCodePage *) code[KILN_PE_CODE_HASH];
    /* lowest workgroup index that faulted so far (UINT32_MAX: none) */
    _Atomic uint32_t first_fault;
    KilnPe *pes;
};

/* A PE local memory, kept by the engine between launches */
typedef struct KilnLmBuf {
    struct KilnLmBuf *next;
    uint64_t clean_lo, clean_hi;    /* as KilnPe's */
    uint8_t *mem;                   /* cfg.local_mem_size bytes */
} KilnLmBuf;

struct KilnPeEngine {
    KilnPeConfig cfg;
    pthread_mutex_t lm_lock;
    KilnLmBuf *lm_free;
    uint32_t lm_free_count;
};

/* pe_interp.c */
void kiln_pe_run(KilnPe *pe);
void kiln_pe_fault(KilnPe *pe, uint32_t status, uint64_t addr,
                   uint32_t access, uint32_t reason);
void kiln_pe_mmu_fault(KilnPe *pe, const KilnFault *f, uint64_t addr,
                       uint32_t access);
void kiln_pe_tlb_flush(KilnPe *pe);
void kiln_pe_tlb_sync(KilnPe *pe);
void kiln_pe_lm_dirty(KilnPe *pe, uint64_t off, uint64_t len);
/* pe_fp.c */
uint32_t kiln_pe_host_fflags(void);
void kiln_pe_clear_host_fflags(void);

/* pe_units.c: execute a custom-0 instruction; false if it faulted/stopped */
bool kiln_pe_custom(KilnPe *pe, uint32_t raw, uint64_t a, uint64_t b,
                    uint64_t *rd);
void kiln_pe_debug_append(KilnPe *pe, const char *s, uint64_t n);


/*
 * Cycles to move @bytes at @bps, rounded up; exact integer arithmetic so
 * that every host computes the same modelled time.
 */
static inline uint64_t kiln_cost_xfer_cycles(uint64_t bytes, uint64_t bps)
{
    __extension__ unsigned __int128 t =
        (unsigned __int128)bytes * KILN_PE_CLOCK_HZ + bps - 1;

    return (uint64_t)(t / bps);
}

/* KilnFabric indexes the profile's fabric_bytes[] too */
_Static_assert(KILN_FABRIC_DRAM == (int)KILN_PROF_FABRIC_DRAM &&
               KILN_FABRIC_SRAM == (int)KILN_PROF_FABRIC_SRAM &&
               KILN_FABRIC_HOST == (int)KILN_PROF_FABRIC_HOST,
               "fabric indices");

/* Chip-wide bandwidth of a shared fabric, bytes/s */
static inline uint64_t kiln_fabric_bps(KilnFabric f)
{
    switch (f) {
    case KILN_FABRIC_SRAM:
        return KILN_COST_SRAM_BPS;
    case KILN_FABRIC_HOST:
        return KILN_COST_HOST_BPS;
    default:
        return KILN_COST_DRAM_BPS;
    }
}

static inline uint64_t kiln_pe_cycles(const KilnPe *pe)
{
    return pe->instret + pe->cycles_extra;
}

/* pe_launch.c: append [start, start + c) of @act to the PE's timeline */
void kiln_pe_segment(KilnPe *pe, uint32_t act, uint64_t start, uint64_t c);

/*
 * The PE spends @c cycles on @act (not scalar code) from its clock's
 * present value: advance the clock and count them.
 */
static inline void kiln_pe_activity(KilnPe *pe, uint32_t act, uint64_t c)
{
    if (!c) {
        return;
    }
    if (pe->seg) {
        kiln_pe_segment(pe, act, kiln_pe_cycles(pe), c);
    }
    pe->cycles_extra += c;
    pe->act[act] += c;
    pe->wave_counted += c;
}

#endif /* KILN_PE_INTERNAL_H */
