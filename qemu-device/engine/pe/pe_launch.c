/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE engine: LAUNCH. A grid of workgroups runs in waves of at most
 * one workgroup per PE; the PEs of a wave run in parallel through the
 * glue's KilnParallel pool. COOPERATIVE launches (grid <= PEs) may use the
 * workgroup barrier: the wave then runs in phases, each PE running until
 * it reaches the barrier or ends, so results never depend on how many
 * worker threads there are.
 */
#include <stdlib.h>
#include <string.h>

#include "pe_jit.h"

#define DEFAULT_WATCHDOG_CYCLES 100000000000ull   /* ~74 s of K1 time */

/* physical addressing: translations never change */
static const uint64_t no_mmu_flush_gen;

KilnPeEngine *kiln_pe_engine_new(const KilnPeConfig *cfg)
{
    KilnPeEngine *eng = calloc(1, sizeof(*eng));
    const char *jit;

    if (!eng) {
        return NULL;
    }
    eng->cfg = *cfg;
    if (!eng->cfg.grid_width || !eng->cfg.grid_height) {
        eng->cfg.grid_width = 8;
        eng->cfg.grid_height = 8;
    }
    if (!eng->cfg.local_mem_size) {
        eng->cfg.local_mem_size = KILN_LOCAL_MEM_DEFAULT_SIZE;
    }
    if (eng->cfg.local_mem_size > KILN_LOCAL_MEM_MAX_SIZE) {
        eng->cfg.local_mem_size = KILN_LOCAL_MEM_MAX_SIZE;
    }
    eng->cfg.local_mem_size &= ~15u;
    if (!eng->cfg.default_watchdog_cycles) {
        eng->cfg.default_watchdog_cycles = DEFAULT_WATCHDOG_CYCLES;
    }
    jit = getenv("KILN_PE_JIT");
    if (jit && !strcmp(jit, "0")) {
        eng->cfg.pe_jit = KILN_PE_JIT_OFF;
    } else if (jit && !strcmp(jit, "eager") &&
               eng->cfg.pe_jit != KILN_PE_JIT_OFF) {
        eng->cfg.pe_jit = KILN_PE_JIT_EAGER;
    }
    pthread_mutex_init(&eng->lm_lock, NULL);
    return eng;
}

static void lm_buf_free(KilnLmBuf *b)
{
    if (b) {
        free(b->mem);
        free(b);
    }
}

void kiln_pe_engine_free(KilnPeEngine *eng)
{
    while (eng->lm_free) {
        KilnLmBuf *b = eng->lm_free;
        eng->lm_free = b->next;
        lm_buf_free(b);
    }
    pthread_mutex_destroy(&eng->lm_lock);
    free(eng);
}

/*
 * Local memories are kept between launches: allocating (and the kernel
 * zero-filling) 64 x 384 KiB for every launch cost milliseconds. A new
 * buffer is calloc'ed, so the pages a launch never touches stay unmapped.
 */
static KilnLmBuf *lm_buf_get(KilnPeEngine *eng)
{
    KilnLmBuf *b;

    pthread_mutex_lock(&eng->lm_lock);
    b = eng->lm_free;
    if (b) {
        eng->lm_free = b->next;
        eng->lm_free_count--;
    }
    pthread_mutex_unlock(&eng->lm_lock);
    if (b) {
        return b;
    }
    b = calloc(1, sizeof(*b));
    if (!b) {
        return NULL;
    }
    b->mem = calloc(1, eng->cfg.local_mem_size);
    if (!b->mem) {
        free(b);
        return NULL;
    }
    b->clean_hi = eng->cfg.local_mem_size;
    return b;
}

/* Keep at most one launch's worth (a PE grid) of idle local memories */
static void lm_buf_put(KilnPeEngine *eng, KilnLmBuf *b)
{
    uint32_t keep = eng->cfg.grid_width * eng->cfg.grid_height;

    pthread_mutex_lock(&eng->lm_lock);
    if (eng->lm_free_count < keep) {
        b->next = eng->lm_free;
        eng->lm_free = b;
        eng->lm_free_count++;
        b = NULL;
    }
    pthread_mutex_unlock(&eng->lm_lock);
    lm_buf_free(b);
}

/*
 * Local memory is zero at the start of a launch: clear what earlier
 * launches wrote, on the worker that runs the PE's first workgroup.
 */
static void lm_prepare(KilnPe *pe, uint64_t alloc)
{
    KilnLmBuf *b = pe->lm_buf;

    if (b->clean_lo) {
        memset(pe->lm, 0, b->clean_lo);
    }
    if (b->clean_hi < alloc) {
        memset(pe->lm + b->clean_hi, 0, alloc - b->clean_hi);
    }
    b->clean_lo = 0;
    b->clean_hi = alloc;
    pe->lm_clean_lo = 0;
    pe->lm_clean_hi = alloc;
}

static void run_one(void *arg, uint32_t i)
{
    KilnLaunch *l = arg;
    KilnPe *pe = &l->pes[i];

    if (pe->state != KILN_PE_RUNNING) {
        return;
    }
    if (pe->lm_clean_hi == UINT64_MAX) {
        lm_prepare(pe, l->eng->cfg.local_mem_size);
    }
    kiln_pe_run(pe);
    if (pe->state == KILN_PE_FAULT) {
        uint32_t cur = atomic_load(&l->first_fault);
        while (pe->wg < cur &&
               !atomic_compare_exchange_weak(&l->first_fault, &cur, pe->wg)) {
        }
    }
}

static void run_all(KilnLaunch *l, const KilnParallel *par, uint32_t n)
{
    if (par && par->parallel_for && par->workers > 1 && n > 1) {
        par->parallel_for(par->opaque, n, run_one, l);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            run_one(l, i);
        }
    }
}

static void fail(KilnLaunchResult *r, uint32_t status, uint64_t addr)
{
    r->status = status;
    r->pe = KILN_JOB_STATUS_NO_PE;
    r->addr = addr;
}

/*
 * Cycles the busiest shared fabric needs to carry the traffic the @n PEs
 * moved since their phase began, and start a new phase. Bytes are summed
 * over the PEs, so the result does not depend on the order in which
 * worker threads ran them.
 */
static uint64_t fabric_phase_end(KilnPe *pes, uint32_t n)
{
    uint64_t busiest = 0;

    for (int f = 0; f < KILN_PE_FABRICS; f++) {
        uint64_t bytes = 0, c;
        for (uint32_t i = 0; i < n; i++) {
            bytes += pes[i].fabric_bytes[f];
            pes[i].fabric_bytes[f] = 0;
        }
        c = kiln_cost_xfer_cycles(bytes, kiln_fabric_bps((KilnFabric)f));
        if (c > busiest) {
            busiest = c;
        }
    }
    return busiest;
}

/* ---- profile and energy -------------------------------------------------- */

#define PROFILE_MAX_BYTES   (64u << 20)     /* host memory a profile may take */

void kiln_pe_segment(KilnPe *pe, uint32_t act, uint64_t start, uint64_t c)
{
    struct kiln_profile_segment *last = pe->seg_n ? &pe->seg[pe->seg_n - 1]
                                                  : NULL;

    start += pe->wave_base;
    if (last && last->activity == act && last->start + last->cycles == start &&
        last->cycles + c <= UINT32_MAX) {
        last->cycles += (uint32_t)c;
        return;
    }
    if (pe->seg_n == pe->seg_cap || c > UINT32_MAX) {
        pe->seg_dropped++;
        return;
    }
    pe->seg[pe->seg_n++] = (struct kiln_profile_segment){
        .start = start, .cycles = (uint32_t)c, .activity = act,
    };
}

/* Counted cycles of @act that are not on the PE's own clock (wave ends) */
static void add_outside(KilnPe *pe, uint32_t act, uint64_t start, uint64_t c)
{
    if (c) {
        pe->act[act] += c;
        if (pe->seg) {
            kiln_pe_segment(pe, act, start, c);
        }
    }
}

uint64_t kiln_energy_idle_pj(uint64_t cycles)
{
    /* mW x cycles / MHz = 1e-3 W x 1e-6 s = nJ; x 1000 for pJ, rounded */
    __extension__ unsigned __int128 e =
        (unsigned __int128)cycles * KILN_POWER_IDLE_MW * 1000 +
        KILN_PE_CLOCK_MHZ / 2;

    return (uint64_t)(e / KILN_PE_CLOCK_MHZ);
}

static uint64_t region_byte_fj(uint64_t pa)
{
    if (pa >= KILN_PA_HOST_BASE) {
        return KILN_ENERGY_HOST_BYTE_FJ;
    }
    return pa >= KILN_PA_SRAM_BASE ? KILN_ENERGY_SRAM_BYTE_FJ
                                   : KILN_ENERGY_DRAM_BYTE_FJ;
}

uint64_t kiln_energy_copy_pj(uint64_t bytes, uint64_t src_pa, uint64_t dst_pa,
                             bool fill)
{
    uint64_t per = region_byte_fj(dst_pa) + (fill ? 0 : region_byte_fj(src_pa));

    return (uint64_t)(((unsigned __int128)bytes * per + 500) / 1000);
}

static const uint64_t mac_fj[4] = {
    [KILN_DTYPE_FP32] = KILN_ENERGY_MAC_FP32_FJ,
    [KILN_DTYPE_BF16] = KILN_ENERGY_MAC_BF16_FJ,
    [KILN_DTYPE_FP16] = KILN_ENERGY_MAC_FP16_FJ,
    [KILN_DTYPE_INT8] = KILN_ENERGY_MAC_INT8_FJ,
};

static const uint64_t fabric_fj[KILN_PROF_FABRICS] = {
    [KILN_PROF_FABRIC_DRAM] = KILN_ENERGY_DRAM_BYTE_FJ,
    [KILN_PROF_FABRIC_SRAM] = KILN_ENERGY_SRAM_BYTE_FJ,
    [KILN_PROF_FABRIC_HOST] = KILN_ENERGY_HOST_BYTE_FJ,
    [KILN_PROF_FABRIC_LOCAL] = KILN_ENERGY_LOCAL_BYTE_FJ,
};

/* Sum the PEs' counters into @h and return the dynamic energy in pJ */
static uint64_t launch_totals(const KilnPe *pes, uint32_t n,
                              struct kiln_profile_header *h)
{
    __extension__ unsigned __int128 fj = 0;

    for (uint32_t i = 0; i < n; i++) {
        const KilnPe *pe = &pes[i];
        uint64_t active = pe->act[KILN_PROF_SCALAR] + pe->act[KILN_PROF_DPE] +
                          pe->act[KILN_PROF_SE] + pe->act[KILN_PROF_RE] +
                          pe->act[KILN_PROF_MLU];

        fj += (unsigned __int128)active * KILN_ENERGY_PE_ACTIVE_FJ;
        for (int d = 0; d < 4; d++) {
            h->macs[d] += pe->macs[d];
        }
        for (int f = 0; f < KILN_PROF_FABRICS; f++) {
            h->fabric_bytes[f] += pe->moved[f];
        }
        h->se_elems += pe->se_elems;
        h->se_transc_elems += pe->se_transc_elems;
        h->re_elems += pe->re_elems;
        h->mlu_bytes += pe->mlu_bytes;
    }
    for (int d = 0; d < 4; d++) {
        fj += (unsigned __int128)h->macs[d] * mac_fj[d];
    }
    for (int f = 0; f < KILN_PROF_FABRICS; f++) {
        fj += (unsigned __int128)h->fabric_bytes[f] * fabric_fj[f];
    }
    fj += (unsigned __int128)h->se_elems * KILN_ENERGY_SE_ELEM_FJ;
    fj += (unsigned __int128)h->se_transc_elems * KILN_ENERGY_SE_TRANSC_ELEM_FJ;
    fj += (unsigned __int128)h->re_elems * KILN_ENERGY_RE_ELEM_FJ;
    fj += (unsigned __int128)h->mlu_bytes * KILN_ENERGY_MLU_BYTE_FJ;
    return (uint64_t)((fj + 500) / 1000);
}

/*
 * Every byte of [va, va + len) is accessible for @access in @as (the
 * profile buffer is checked before the launch runs, so that writing it
 * afterwards cannot fail half-way).
 */
static bool as_check(const KilnAddrSpace *as, uint64_t va, uint64_t len,
                     uint32_t access, KilnFault *f)
{
    while (len) {
        KilnXlate x;
        if (!kiln_as_xlate(as, va, len, access, &x, f)) {
            return false;
        }
        if (x.len >= len) {
            break;
        }
        va += x.len;
        len -= x.len;
    }
    return true;
}

/*
 * Write the profile of a launch of @waves waves that took @cycles: the
 * header, the records of the PEs that fit (slots the grid never reached
 * spent the launch dispatched-to but idle), then the timelines.
 */
static void profile_write(const KilnLaunch *l, uint64_t va, uint32_t used,
                          const struct kiln_profile_header *h)
{
    const KilnAddrSpace *as = l->as;
    uint32_t num_pes = l->num_pes;
    uint64_t seg_off = h->segment_offset;
    KilnFault f;

    if (h->pe_offset) {
        for (uint32_t i = 0; i < num_pes; i++) {
            struct kiln_profile_pe r;
            memset(&r, 0, sizeof(r));
            if (i < used) {
                const KilnPe *pe = &l->pes[i];
                memcpy(r.cycles, pe->act, sizeof(r.cycles));
                r.workgroups = pe->workgroups;
                r.segments = pe->seg_n;
                r.dropped = pe->seg_dropped;
            } else {
                r.cycles[KILN_PROF_LAUNCH] = KILN_COST_LAUNCH +
                    (uint64_t)(h->waves ? h->waves - 1 : 0) * KILN_COST_WAVE;
                r.cycles[KILN_PROF_IDLE] = h->cycles - r.cycles[KILN_PROF_LAUNCH];
            }
            kiln_as_write(as, va + h->pe_offset + (uint64_t)i * sizeof(r), &r,
                          sizeof(r), &f);
        }
    }
    if (seg_off) {
        for (uint32_t i = 0; i < used; i++) {
            const KilnPe *pe = &l->pes[i];
            kiln_as_write(as, va + seg_off +
                          (uint64_t)i * h->segments_per_pe *
                          sizeof(struct kiln_profile_segment),
                          pe->seg, (uint64_t)pe->seg_n * sizeof(*pe->seg), &f);
        }
    }
    kiln_as_write(as, va, h, sizeof(*h), &f);
}

void kiln_pe_launch(KilnPeEngine *eng, const KilnAddrSpace *as,
                    const struct kiln_pkt_launch *pkt,
                    const KilnParallel *par, const volatile int *cancel,
                    uint64_t *progress, uint64_t start_cycles,
                    KilnLaunchResult *result)
{
    const KilnPeConfig *cfg = &eng->cfg;
    KilnLaunch *l = NULL;
    uint64_t total, lm_size, start, launch_t;
    uint32_t num_pes = cfg->grid_width * cfg->grid_height, used, waves = 0;
    struct kiln_debug_header dh = { 0, 0 };
    struct kiln_profile_header prof;
    uint64_t dbg_cap = 0;
    KilnFault f;

    memset(result, 0, sizeof(*result));
    result->pe = KILN_JOB_STATUS_NO_PE;
    memset(&f, 0, sizeof(f));

    total = (uint64_t)pkt->grid_x * pkt->grid_y * pkt->grid_z;
    lm_size = pkt->local_mem ? pkt->local_mem : cfg->local_mem_size;
    if (!total || pkt->grid_x > KILN_LAUNCH_MAX_GRID ||
        pkt->grid_y > KILN_LAUNCH_MAX_GRID || pkt->grid_z > KILN_LAUNCH_MAX_GRID ||
        pkt->args_size > KILN_LAUNCH_MAX_ARGS_SIZE ||
        lm_size > cfg->local_mem_size || (lm_size & 15) || lm_size < 1024 ||
        (pkt->entry_va & 3) || (pkt->profile_va & 7) ||
        (pkt->debug_size && pkt->debug_size < sizeof(dh)) ||
        (KILN_PKT_FLAGS(pkt->header) & ~KILN_LAUNCH_FLAG_COOPERATIVE)) {
        fail(result, KILN_STATUS_BAD_LAUNCH, 0);
        return;
    }
    if ((KILN_PKT_FLAGS(pkt->header) & KILN_LAUNCH_FLAG_COOPERATIVE) &&
        total > num_pes) {
        fail(result, KILN_STATUS_BAD_LAUNCH, total);
        return;
    }
    if (pkt->args_size) {
        uint8_t tmp[KILN_LAUNCH_MAX_ARGS_SIZE];
        if (!kiln_as_read(as, pkt->args_va, tmp, pkt->args_size, &f)) {
            fail(result, f.status ? f.status : KILN_STATUS_MMU_FAULT,
                 f.addr ? f.addr : pkt->args_va);
            result->access = KILN_ACCESS_READ;
            result->reason = f.reason;
            return;
        }
    }
    if (pkt->debug_size) {
        if (!kiln_as_read(as, pkt->debug_va, &dh, sizeof(dh), &f)) {
            fail(result, f.status ? f.status : KILN_STATUS_MMU_FAULT,
                 f.addr ? f.addr : pkt->debug_va);
            result->access = KILN_ACCESS_READ;
            result->reason = f.reason;
            return;
        }
        dbg_cap = pkt->debug_size - sizeof(dh);
        if (dh.used > dbg_cap) {
            dh.used = dbg_cap;
        }
    }
    memset(&prof, 0, sizeof(prof));
    if (pkt->profile_va) {
        /* the host says how big the buffer is; all of it must be writable */
        if (!kiln_as_read(as, pkt->profile_va, &prof, 16, &f) ||
            (prof.size >= sizeof(prof) &&
             !as_check(as, pkt->profile_va,
                       prof.size < PROFILE_MAX_BYTES ? prof.size : PROFILE_MAX_BYTES,
                       KILN_ACCESS_WRITE, &f))) {
            fail(result, f.status ? f.status : KILN_STATUS_MMU_FAULT,
                 f.addr ? f.addr : pkt->profile_va);
            result->access = f.access ? f.access : KILN_ACCESS_READ;
            result->reason = f.reason;
            return;
        }
        if (prof.size < sizeof(prof)) {
            fail(result, KILN_STATUS_BAD_LAUNCH, pkt->profile_va);
            return;
        }
        if (prof.size > PROFILE_MAX_BYTES) {
            prof.size = PROFILE_MAX_BYTES;
        }
        prof.magic = KILN_PROFILE_MAGIC;
        prof.version = KILN_PROFILE_VERSION;
        prof.num_pes = num_pes;
        prof.start_cycles = start_cycles;
        if (prof.size >= sizeof(prof) + (uint64_t)num_pes * sizeof(struct kiln_profile_pe)) {
            uint64_t room;
            prof.pe_offset = sizeof(prof);
            room = prof.size - sizeof(prof) - (uint64_t)num_pes * sizeof(struct kiln_profile_pe);
            prof.segments_per_pe = (uint32_t)(room / ((uint64_t)num_pes *
                                               sizeof(struct kiln_profile_segment)));
            if (prof.segments_per_pe) {
                prof.segment_offset = prof.pe_offset +
                                      num_pes * sizeof(struct kiln_profile_pe);
            }
        }
    }

    l = calloc(1, sizeof(*l));
    if (!l) {
        fail(result, KILN_STATUS_FATAL, 0);
        return;
    }
    l->eng = eng;
    l->as = as;
    l->pkt = pkt;
    l->cancel = cancel;
    l->progress = progress;
    l->tlb_gen = as->mmu ? kiln_mmu_flush_gen(as->mmu, as->asid)
                         : &no_mmu_flush_gen;
    l->num_pes = num_pes;
    l->wave_pes = total < num_pes ? (uint32_t)total : num_pes;
    l->cooperative = KILN_PKT_FLAGS(pkt->header) & KILN_LAUNCH_FLAG_COOPERATIVE;
    l->watchdog = pkt->watchdog_mcycles ? pkt->watchdog_mcycles * 1000000ull
                                        : cfg->default_watchdog_cycles;
    l->dbg_limit = dbg_cap;
    atomic_store(&l->first_fault, UINT32_MAX);
    l->pes = calloc(l->wave_pes, sizeof(KilnPe));
    if (!l->pes) {
        free(l);
        fail(result, KILN_STATUS_FATAL, 0);
        return;
    }
    used = l->wave_pes;
    for (uint32_t i = 0; i < used; i++) {
        KilnPe *pe = &l->pes[i];
        pe->lm_buf = lm_buf_get(eng);
        if (prof.segments_per_pe) {
            pe->seg = calloc(prof.segments_per_pe, sizeof(*pe->seg));
            pe->seg_cap = prof.segments_per_pe;
        }
        if (!pe->lm_buf || (prof.segments_per_pe && !pe->seg)) {
            fail(result, KILN_STATUS_FATAL, 0);
            goto out;
        }
        pe->lm = pe->lm_buf->mem;
        pe->lm_clean_hi = UINT64_MAX;   /* lm_prepare() before it runs */
        pe->lm_size = lm_size;
        pe->launch = l;
        pe->slot = i;
        kiln_pe_tlb_flush(pe);
        pe->tlb_gen = __atomic_load_n(l->tlb_gen, __ATOMIC_ACQUIRE);
        /* dispatching the launch's work queue to the PEs */
        add_outside(pe, KILN_PROF_LAUNCH, 0, KILN_COST_LAUNCH);
    }
    launch_t = KILN_COST_LAUNCH;
    result->cycles = KILN_COST_LAUNCH;

    for (start = 0; start < total; start += l->wave_pes) {
        uint32_t n = total - start < l->wave_pes ? (uint32_t)(total - start)
                                                 : l->wave_pes;
        /* modelled time at which the current barrier phase began */
        uint64_t wave_cycles = 0, phase_start = 0, fabric, wave_t;
        KilnPe *bad = NULL;
        bool stopped = false;

        l->wave_pes = n;
        waves++;
        for (uint32_t i = 0; i < used; i++) {
            KilnPe *pe = &l->pes[i];
            pe->wave_base = launch_t;
            if (start) {
                /* replacing the previous wave's workgroups */
                add_outside(pe, KILN_PROF_LAUNCH, 0, KILN_COST_WAVE);
                pe->wave_base += KILN_COST_WAVE;
            }
        }
        if (start) {
            launch_t += KILN_COST_WAVE;
            result->cycles += KILN_COST_WAVE;
        }
        for (uint32_t i = 0; i < n; i++) {
            KilnPe *pe = &l->pes[i];
            uint64_t wg = start + i;
            memset(pe->x, 0, sizeof(pe->x));
            memset(pe->f, 0, sizeof(pe->f));
            pe->pc = pkt->entry_va;
            pe->x[1] = KILN_EXIT_PC;
            pe->x[2] = KILN_LOCAL_MEM_BASE + lm_size;
            pe->x[10] = pkt->args_va;
            pe->x[11] = wg;
            pe->instret = 0;
            pe->cycles_extra = 0;
            pe->progress_reported = 0;
            pe->fflags = 0;
            pe->frm = 0;
            pe->wg = (uint32_t)wg;
            pe->wg_x = (uint32_t)(wg % pkt->grid_x);
            pe->wg_y = (uint32_t)((wg / pkt->grid_x) % pkt->grid_y);
            pe->wg_z = (uint32_t)(wg / ((uint64_t)pkt->grid_x * pkt->grid_y));
            pe->state = KILN_PE_RUNNING;
            pe->resv_valid = false;
            pe->dma_busy_until = 0;
            memset(pe->tag_done, 0, sizeof(pe->tag_done));
            pe->dbg_len = 0;
            pe->dbg_dropped = 0;
            memset(pe->fabric_bytes, 0, sizeof(pe->fabric_bytes));
            pe->wave_counted = 0;
            pe->workgroups++;
        }
        for (;;) {
            uint32_t at_barrier = 0, running = 0;
            uint64_t maxc = 0;

            run_all(l, par, n);
            for (uint32_t i = 0; i < n; i++) {
                KilnPe *pe = &l->pes[i];
                if (pe->state == KILN_PE_BARRIER) {
                    at_barrier++;
                    if (kiln_pe_cycles(pe) > maxc) {
                        maxc = kiln_pe_cycles(pe);
                    }
                } else if (pe->state == KILN_PE_RUNNING) {
                    running++;
                }
            }
            if (!at_barrier || atomic_load(&l->first_fault) != UINT32_MAX ||
                (cancel && *cancel)) {
                break;
            }
            /*
             * Release the barrier: everyone continues after the latest
             * arrival, and not before the fabrics have carried the
             * phase's traffic.
             */
            fabric = phase_start + fabric_phase_end(l->pes, n);
            if (fabric < maxc) {
                fabric = maxc;
            }
            phase_start = fabric + KILN_COST_BARRIER;
            for (uint32_t i = 0; i < n; i++) {
                KilnPe *pe = &l->pes[i];
                if (pe->state == KILN_PE_BARRIER) {
                    kiln_pe_activity(pe, KILN_PROF_BARRIER,
                                     maxc - kiln_pe_cycles(pe));
                    kiln_pe_activity(pe, KILN_PROF_FABRIC, fabric - maxc);
                    kiln_pe_activity(pe, KILN_PROF_BARRIER, KILN_COST_BARRIER);
                    pe->state = KILN_PE_RUNNING;
                }
            }
            (void)running;
        }
        for (uint32_t i = 0; i < n; i++) {
            KilnPe *pe = &l->pes[i];
            uint64_t c = kiln_pe_cycles(pe);
            if (c > wave_cycles) {
                wave_cycles = c;
            }
            result->instructions += pe->instret;
            if (pe->state == KILN_PE_FAULT && (!bad || pe->wg < bad->wg)) {
                bad = pe;
            }
            if (pe->state == KILN_PE_STOPPED || pe->state == KILN_PE_BARRIER) {
                stopped = true;
            }
            /*
             * debug text: one record per workgroup, in workgroup order, so the
             * host can tell which PE printed what (docs/pe-isa.md section 3)
             */
            if (pkt->debug_size && (pe->dbg_len || pe->dbg_dropped)) {
                struct kiln_debug_record rec = { pe->wg, pe->slot, 0, 0 };
                uint64_t room = dbg_cap - dh.used;
                uint64_t at = pkt->debug_va + sizeof(dh) + dh.used;
                uint64_t nb = 0;
                if (room > sizeof(rec)) {
                    nb = pe->dbg_len < room - sizeof(rec) ? pe->dbg_len
                                                         : room - sizeof(rec);
                }
                uint64_t lost = pe->dbg_len - nb + pe->dbg_dropped;
                rec.len = (uint32_t)nb;
                rec.dropped = lost > UINT32_MAX ? UINT32_MAX : (uint32_t)lost;
                if (room < sizeof(rec) ||
                    !kiln_as_write(as, at, &rec, sizeof(rec), &f) ||
                    (nb && !kiln_as_write(as, at + sizeof(rec), pe->dbg, nb, &f))) {
                    dh.dropped += pe->dbg_len + pe->dbg_dropped;
                } else {
                    uint64_t step = (sizeof(rec) + nb + 7) & ~(uint64_t)7;
                    dh.used += step < room ? step : room;
                    dh.dropped += lost;
                }
            }
        }
        fabric = phase_start + fabric_phase_end(l->pes, n);
        wave_t = wave_cycles > fabric ? wave_cycles : fabric;
        /*
         * What each PE slot did in the wave: its clock is scalar code
         * except what kiln_pe_activity() counted; then it idles until the
         * slowest PE is done, and all wait for the fabrics.
         */
        for (uint32_t i = 0; i < used; i++) {
            KilnPe *pe = &l->pes[i];
            uint64_t c = i < n ? kiln_pe_cycles(pe) : 0;
            if (i < n) {
                pe->act[KILN_PROF_SCALAR] += c - pe->wave_counted;
            }
            add_outside(pe, KILN_PROF_IDLE, c, wave_cycles - c);
            add_outside(pe, KILN_PROF_FABRIC, wave_cycles, wave_t - wave_cycles);
        }
        launch_t += wave_t;
        result->cycles += wave_t;
        if (bad) {
            result->status = bad->fault_status;
            result->pe = bad->slot;
            result->pc = bad->fault_pc;
            result->addr = bad->fault_addr;
            result->access = bad->fault_access;
            result->reason = bad->fault_reason;
            break;
        }
        if (stopped || (cancel && *cancel)) {
            result->status = KILN_STATUS_ABORTED;
            break;
        }
    }
    if (pkt->debug_size) {
        kiln_as_write(as, pkt->debug_va, &dh, sizeof(dh), &f);
    }
    result->dynamic_pj = launch_totals(l->pes, used, &prof);
    if (pkt->profile_va) {
        prof.waves = waves;
        prof.cycles = result->cycles;
        prof.instructions = result->instructions;
        prof.energy_pj = kiln_energy_idle_pj(result->cycles) + result->dynamic_pj;
        profile_write(l, pkt->profile_va, used, &prof);
    }

out:
    for (uint32_t i = 0; i < (total < num_pes ? total : num_pes); i++) {
        KilnPe *pe = &l->pes[i];

        if (pe->lm_buf) {
            if (pe->lm_clean_hi != UINT64_MAX) {
                pe->lm_buf->clean_lo = pe->lm_clean_lo;
                pe->lm_buf->clean_hi = pe->lm_clean_hi;
            }
            lm_buf_put(eng, pe->lm_buf);
        }
        free(pe->dbg);
        free(pe->seg);
    }
    for (uint32_t h = 0; h < KILN_PE_CODE_HASH; h++) {
        KilnCodePage *p = atomic_load(&l->code[h]);
        while (p) {
            KilnCodePage *nx = p->next;
            kiln_pe_jit_free(atomic_load(&p->jit));
            free(p);
            p = nx;
        }
    }
    free(l->pes);
    free(l);
}
