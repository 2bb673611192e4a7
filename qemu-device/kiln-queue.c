/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 AI accelerator: hardware queues, packet execution and worker
 * threads.
 *
 * Worker threads pick the highest-priority runnable queue (round robin
 * within a priority), execute one packet (or one packet of the INDIRECT
 * command buffer the queue is running) without holding any lock, then
 * commit the result under KilnState.lock unless a reset happened meanwhile
 * (generation changed). A queue is owned by at most one worker at a time,
 * so packets of a queue run in order. A WAIT whose condition is false
 * releases the worker; the queue is polled again with an exponential
 * backoff, or as soon as another queue of the device retires a packet or a
 * doorbell is rung.
 *
 * Workers are RCU-registered (they DMA through pci_dma_*) and never take
 * the BQL; interrupts are handed to a main-loop bottom half.
 */
#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "kiln.h"
#include "trace/trace-hw_misc_kiln.h"

typedef enum KilnStepKind {
    STEP_DONE,          /* ring packet retired, head advances */
    STEP_CONTINUE,      /* progress inside an INDIRECT, head stays */
    STEP_WAIT,          /* WAIT condition false, poll later */
    STEP_STOP,          /* ring-level error: queue stopped */
    STEP_ABORT,         /* cancelled by a reset */
} KilnStepKind;

typedef struct KilnStep {
    KilnStepKind kind;
    uint32_t status;            /* STEP_STOP */
    bool irq;                   /* FENCE asked for an interrupt */
    bool wrote;                 /* memory written: re-poll waiters */
    bool mmu_fault;             /* record fault registers */
    KilnFault fault;
    uint64_t cycles;
    uint64_t dynamic_pj;        /* modelled energy above idle power */
    uint64_t bytes;
    bool launch;
} KilnStep;

/* Outcome of one packet */
typedef struct KilnExec {
    uint32_t status;
    KilnFault fault;            /* valid if status != OK */
    uint32_t pe;
    uint64_t pc;
    bool wait_pending;
} KilnExec;

/* ------------------------------------------------------------------ */
/* Parallel pool for LAUNCH                                             */

struct KilnParJob {
    void (*fn)(void *arg, uint32_t i);
    void *arg;
    uint32_t n;
    uint32_t next;
    uint32_t done;
    KilnParJob *link;
};

static bool kiln_par_take(KilnParJob *job, uint32_t *i)
{
    if (job->next < job->n) {
        *i = job->next++;
        return true;
    }
    return false;
}

static void kiln_parallel_for(void *opaque, uint32_t n,
                              void (*fn)(void *arg, uint32_t i), void *arg)
{
    KilnPool *pool = opaque;
    KilnParJob job = { .fn = fn, .arg = arg, .n = n };
    uint32_t i;

    if (n == 0) {
        return;
    }
    qemu_mutex_lock(&pool->lock);
    job.link = pool->jobs;
    pool->jobs = &job;
    qemu_cond_broadcast(&pool->work_cond);
    /* The caller works too, so a launch progresses even if all helpers
     * are busy with launches of other queues. */
    while (kiln_par_take(&job, &i)) {
        qemu_mutex_unlock(&pool->lock);
        fn(arg, i);
        qemu_mutex_lock(&pool->lock);
        job.done++;
    }
    while (job.done < job.n) {
        qemu_cond_wait(&pool->done_cond, &pool->lock);
    }
    /* unlink */
    {
        KilnParJob **pp = &pool->jobs;
        while (*pp && *pp != &job) {
            pp = &(*pp)->link;
        }
        if (*pp) {
            *pp = job.link;
        }
    }
    qemu_mutex_unlock(&pool->lock);
}

static void *kiln_pool_thread(void *opaque)
{
    KilnPool *pool = opaque;

    rcu_register_thread();
    qemu_mutex_lock(&pool->lock);
    while (!pool->stop) {
        KilnParJob *job;
        uint32_t i = 0;
        bool got = false;

        for (job = pool->jobs; job; job = job->link) {
            if (kiln_par_take(job, &i)) {
                got = true;
                break;
            }
        }
        if (!got) {
            qemu_cond_wait(&pool->work_cond, &pool->lock);
            continue;
        }
        qemu_mutex_unlock(&pool->lock);
        job->fn(job->arg, i);
        qemu_mutex_lock(&pool->lock);
        job->done++;
        if (job->done == job->n) {
            qemu_cond_broadcast(&pool->done_cond);
        }
    }
    qemu_mutex_unlock(&pool->lock);
    rcu_unregister_thread();
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Fault injection helpers                                              */

static bool kiln_take_count(uint32_t *ctr)
{
    uint32_t v;

    do {
        v = qatomic_read(ctr);
        if (!v) {
            return false;
        }
    } while (qatomic_cmpxchg(ctr, v, v - 1) != v);
    return true;
}

/* xorshift64*, under s->lock */
static bool kiln_random_fault(KilnState *s)
{
    uint32_t rate = qatomic_read(&s->fault_rate);
    uint64_t x;
    bool hit;

    if (!rate) {
        return false;
    }
    qemu_mutex_lock(&s->lock);
    x = s->fault_rng ? s->fault_rng : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->fault_rng = x;
    hit = ((x * 0x2545f4914f6cdd1dull) >> 32) % 1000000 < rate;
    qemu_mutex_unlock(&s->lock);
    return hit;
}

/* ------------------------------------------------------------------ */
/* Cost model                                                           */

/* bytes per PE clock cycle of a region at 1.35 GHz */
static uint64_t kiln_region_bpc(uint64_t pa)
{
    if (pa >= KILN_PA_HOST_BASE) {
        return 24;          /* PCIe Gen5 x8, ~32 GB/s */
    }
    if (pa >= KILN_PA_SRAM_BASE) {
        return 2000;        /* 2.7 TB/s */
    }
    return 152;             /* LPDDR5 204.8 GB/s */
}

static uint64_t kiln_dma_cycles(uint64_t src_pa, uint64_t dst_pa, uint64_t n)
{
    uint64_t bpc = MIN(kiln_region_bpc(src_pa), kiln_region_bpc(dst_pa));

    return n / bpc + 1;
}

/* ------------------------------------------------------------------ */
/* Packet execution                                                     */

static bool kiln_exec_fail(KilnExec *ex, const KilnFault *f)
{
    ex->status = f->status;
    ex->fault = *f;
    return false;
}

static bool kiln_cancelled(KilnState *s)
{
    return qatomic_read(&s->cancel) != 0;
}

/* The packet @q is executing must be abandoned (reset or queue disable). */
static bool kiln_queue_cancelled(KilnState *s, KilnQueue *q)
{
    return kiln_cancelled(s) || qatomic_read(&q->cancel) != 0;
}

/* A reset or shutdown abandons the work of every queue. */
void kiln_cancel_all_locked(KilnState *s)
{
    int i;

    qatomic_set(&s->cancel, 1);
    for (i = 0; i < KILN_NUM_QUEUES; i++) {
        qatomic_set(&s->q[i].cancel, 1);
    }
}

/*
 * The watchdog a LAUNCH runs with: its own, or the device default, no
 * more than the cap of the INDIRECT running it.
 */
static uint32_t kiln_launch_watchdog_mcycles(const KilnQueue *q,
                                             const struct kiln_pkt_launch *p)
{
    uint32_t cap = q->in_job ? q->job.indirect.max_watchdog_mcycles : 0;
    uint64_t want = p->watchdog_mcycles ? p->watchdog_mcycles
                                        : KILN_DEFAULT_WATCHDOG / 1000000;

    return cap && want > cap ? cap : p->watchdog_mcycles;
}

static bool kiln_exec_dma_copy(KilnState *s, KilnQueue *q,
                               const KilnAddrSpace *as,
                               const struct kiln_pkt_dma_copy *p,
                               KilnExec *ex, KilnStep *st)
{
    uint64_t src = p->src, dst = p->dst, left = p->size;
    g_autofree uint8_t *bounce = NULL;
    KilnFault f = { 0 };

    while (left) {
        KilnXlate xs, xd;
        uint64_t n = MIN(left, KILN_DMA_CHUNK);

        if (kiln_queue_cancelled(s, q)) {
            ex->status = KILN_STATUS_ABORTED;
            return false;
        }
        if (!kiln_as_xlate(as, src, n, KILN_ACCESS_READ, &xs, &f)) {
            return kiln_exec_fail(ex, &f);
        }
        n = MIN(n, xs.len);
        if (!kiln_as_xlate(as, dst, n, KILN_ACCESS_WRITE, &xd, &f)) {
            return kiln_exec_fail(ex, &f);
        }
        n = MIN(n, xd.len);
        if (xs.host && xd.host) {
            memmove(xd.host, xs.host, n);
        } else if (xs.host) {
            if (!kiln_phys_write(&s->phys, xd.pa, xs.host, n, &f)) {
                f.asid = as->asid;
                f.addr = dst;
                return kiln_exec_fail(ex, &f);
            }
        } else if (xd.host) {
            if (!kiln_phys_read(&s->phys, xs.pa, xd.host, n, &f)) {
                f.asid = as->asid;
                f.addr = src;
                return kiln_exec_fail(ex, &f);
            }
        } else {
            if (!bounce) {
                bounce = g_malloc(KILN_DMA_CHUNK);
            }
            if (!kiln_phys_read(&s->phys, xs.pa, bounce, n, &f)) {
                f.asid = as->asid;
                f.addr = src;
                return kiln_exec_fail(ex, &f);
            }
            if (!kiln_phys_write(&s->phys, xd.pa, bounce, n, &f)) {
                f.asid = as->asid;
                f.addr = dst;
                return kiln_exec_fail(ex, &f);
            }
        }
        trace_kiln_dma(q - s->q, xs.pa, xd.pa, n);
        st->cycles += kiln_dma_cycles(xs.pa, xd.pa, n);
        st->dynamic_pj += kiln_energy_copy_pj(n, xs.pa, xd.pa, false);
        st->bytes += n;
        qatomic_inc(&q->launch_progress);
        src += n;
        dst += n;
        left -= n;
    }
    return true;
}

static bool kiln_exec_dma_fill(KilnState *s, KilnQueue *q,
                               const KilnAddrSpace *as,
                               const struct kiln_pkt_dma_fill *p,
                               KilnExec *ex, KilnStep *st)
{
    uint64_t dst = p->dst, left = p->size;
    g_autofree uint32_t *pat = NULL;
    KilnFault f = { 0 };
    uint32_t pattern = cpu_to_le32(p->pattern);

    while (left) {
        KilnXlate xd;
        uint64_t n = MIN(left, KILN_DMA_CHUNK), i;

        if (kiln_queue_cancelled(s, q)) {
            ex->status = KILN_STATUS_ABORTED;
            return false;
        }
        if (!kiln_as_xlate(as, dst, n, KILN_ACCESS_WRITE, &xd, &f)) {
            return kiln_exec_fail(ex, &f);
        }
        n = MIN(n, xd.len);
        if (xd.host) {
            uint8_t *d = xd.host;
            if (p->pattern == 0) {
                memset(d, 0, n);
            } else {
                for (i = 0; i < n; i += 4) {
                    memcpy(d + i, &pattern, 4);
                }
            }
        } else {
            if (!pat) {
                pat = g_malloc(KILN_DMA_CHUNK);
                for (i = 0; i < KILN_DMA_CHUNK / 4; i++) {
                    pat[i] = pattern;
                }
            }
            if (!kiln_phys_write(&s->phys, xd.pa, pat, n, &f)) {
                f.asid = as->asid;
                f.addr = dst;
                return kiln_exec_fail(ex, &f);
            }
        }
        trace_kiln_dma(q - s->q, 0, xd.pa, n);
        st->cycles += kiln_dma_cycles(xd.pa, xd.pa, n);
        st->dynamic_pj += kiln_energy_copy_pj(n, xd.pa, xd.pa, true);
        st->bytes += n;
        qatomic_inc(&q->launch_progress);
        dst += n;
        left -= n;
    }
    return true;
}

static bool kiln_exec_launch(KilnState *s, KilnQueue *q,
                             const KilnAddrSpace *as,
                             const struct kiln_pkt_launch *p,
                             KilnExec *ex, KilnStep *st)
{
    KilnLaunchResult res = { 0 };
    struct kiln_pkt_launch capped = *p;

    if (!s->pe) {
        ex->status = KILN_STATUS_BAD_LAUNCH;
        ex->fault.addr = p->entry_va;
        return false;
    }
    trace_kiln_launch(q - s->q, as->asid, p->entry_va, p->grid_x, p->grid_y,
                      p->grid_z);
    capped.watchdog_mcycles = kiln_launch_watchdog_mcycles(q, p);
    kiln_pe_launch(s->pe, as, &capped, &s->par, &q->cancel,
                   &q->launch_progress, qatomic_read(&s->total_cycles), &res);
    st->cycles += res.cycles;
    st->dynamic_pj += res.dynamic_pj;
    st->launch = true;
    trace_kiln_launch_done(q - s->q, res.status, res.cycles,
                           res.instructions);
    if (res.status != KILN_STATUS_OK) {
        ex->status = res.status;
        ex->fault.status = res.status;
        ex->fault.asid = as->asid;
        ex->fault.addr = res.addr;
        ex->fault.access = res.access;
        ex->fault.reason = res.reason;
        ex->pe = res.pe;
        ex->pc = res.pc;
        return false;
    }
    return true;
}

static bool kiln_wait_satisfied(const struct kiln_pkt_wait *p, uint64_t v)
{
    v &= p->mask;
    switch (p->op) {
    case KILN_WAIT_GEQUAL:
        return v >= p->value;
    case KILN_WAIT_EQUAL:
        return v == p->value;
    default:
        return v != p->value;
    }
}

/*
 * Execute one validated, non-INDIRECT packet in @as.
 * Returns false with ex->status set on failure.
 */
static bool kiln_exec_packet(KilnState *s, KilnQueue *q,
                             const KilnAddrSpace *as, const KilnPacket *pkt,
                             KilnExec *ex, KilnStep *st)
{
    uint32_t op = KILN_PKT_OPCODE(pkt->header);
    uint32_t flags = KILN_PKT_FLAGS(pkt->header);
    KilnFault f = { 0 };
    bool inject_random = kiln_random_fault(s);

    ex->status = KILN_STATUS_OK;
    ex->pe = KILN_JOB_STATUS_NO_PE;
    ex->pc = 0;
    ex->wait_pending = false;

    switch (op) {
    case KILN_OP_NOP:
        return true;

    case KILN_OP_DMA_COPY:
    case KILN_OP_DMA_FILL:
        if (kiln_take_count(&s->fault_dma_error) || inject_random) {
            trace_kiln_fault_injected(q - s->q, "dma-error");
            ex->status = KILN_STATUS_DMA_ERROR;
            ex->fault.status = KILN_STATUS_DMA_ERROR;
            ex->fault.asid = as->asid;
            ex->fault.addr = op == KILN_OP_DMA_COPY ? pkt->dma_copy.dst :
                             pkt->dma_fill.dst;
            ex->fault.access = KILN_ACCESS_WRITE;
            ex->fault.reason = 0;
            return false;
        }
        st->wrote = true;
        if (op == KILN_OP_DMA_COPY) {
            return kiln_exec_dma_copy(s, q, as, &pkt->dma_copy, ex, st);
        }
        return kiln_exec_dma_fill(s, q, as, &pkt->dma_fill, ex, st);

    case KILN_OP_LAUNCH:
        if (inject_random && as->asid) {
            kiln_mmu_inject_faults(s->mmu, 1);
            trace_kiln_fault_injected(q - s->q, "random-mmu");
        }
        st->wrote = true;
        return kiln_exec_launch(s, q, as, &pkt->launch, ex, st);

    case KILN_OP_FENCE: {
        uint8_t buf[8];
        unsigned len = flags & KILN_FENCE_FLAG_64BIT ? 8 : 4;

        stq_le_p(buf, pkt->fence.value);
        if (!kiln_as_write(as, pkt->fence.addr, buf, len, &f)) {
            return kiln_exec_fail(ex, &f);
        }
        trace_kiln_fence(q - s->q, pkt->fence.addr, pkt->fence.value,
                         !!(flags & KILN_FENCE_FLAG_IRQ));
        st->wrote = true;
        if (flags & KILN_FENCE_FLAG_IRQ) {
            st->irq = true;
            if (inject_random) {
                qatomic_inc(&s->fault_lost_irq);
                trace_kiln_fault_injected(q - s->q, "random-lost-irq");
            }
        }
        return true;
    }

    case KILN_OP_WAIT: {
        uint8_t buf[8];

        if (!kiln_as_read(as, pkt->wait.addr, buf, 8, &f)) {
            return kiln_exec_fail(ex, &f);
        }
        if (!kiln_wait_satisfied(&pkt->wait, ldq_le_p(buf))) {
            ex->wait_pending = true;
        }
        return true;
    }

    case KILN_OP_TIMESTAMP: {
        uint8_t buf[16];

        stq_le_p(buf, kiln_device_ns(s));
        stq_le_p(buf + 8, qatomic_read(&s->total_cycles));
        if (!kiln_as_write(as, pkt->timestamp.addr, buf, 16, &f)) {
            return kiln_exec_fail(ex, &f);
        }
        st->wrote = true;
        return true;
    }

    case KILN_OP_CTX_SETUP:
        if (!kiln_mmu_set_context(s->mmu, pkt->ctx_setup.asid,
                                  flags & KILN_CTX_FLAG_VALID,
                                  pkt->ctx_setup.pt_root_pa, &f)) {
            return kiln_exec_fail(ex, &f);
        }
        trace_kiln_ctx_setup(q - s->q, pkt->ctx_setup.asid,
                             !!(flags & KILN_CTX_FLAG_VALID),
                             pkt->ctx_setup.pt_root_pa);
        return true;

    case KILN_OP_TLB_INVAL:
        if (flags & KILN_TLB_FLAG_ALL) {
            kiln_mmu_invalidate_all(s->mmu, pkt->tlb_inval.asid);
        } else {
            kiln_mmu_invalidate(s->mmu, pkt->tlb_inval.asid,
                                pkt->tlb_inval.va, pkt->tlb_inval.size);
        }
        return true;

    default:
        ex->status = KILN_STATUS_BAD_PACKET;
        return false;
    }
}

/* Write the job status record; false if it could not be written. */
static bool kiln_job_finish(KilnState *s, KilnQueue *q, uint32_t status,
                            uint32_t index, const KilnExec *ex, KilnStep *st)
{
    struct kiln_job_status js = { 0 };
    uint8_t raw[sizeof(js)];
    KilnFault f;

    q->in_job = false;
    if (kiln_queue_cancelled(s, q)) {
        /* Abandoned by a reset or a queue disable: no status record. */
        st->kind = STEP_ABORT;
        return true;
    }
    js.status = status;
    js.packet_index = index;
    js.job_id = q->job.indirect.job_id;
    js.pe = KILN_JOB_STATUS_NO_PE;
    if (status != KILN_STATUS_OK && ex) {
        js.fault_addr = ex->fault.addr;
        js.fault_access = ex->fault.access;
        js.fault_reason = ex->fault.reason;
        js.pe = ex->pe;
        js.pc = ex->pc;
    }
    js.flags = KILN_JOB_STATUS_DONE;
    js.cycles = q->job_cycles;
    js.elapsed_ns = kiln_device_ns(s) - q->job_start_ns;
    js.energy_pj = kiln_energy_idle_pj(q->job_cycles) + q->job_dynamic_pj;
    kiln_job_status_encode(&js, raw);
    trace_kiln_job_done(q - s->q, js.job_id, status, index);
    if (status != KILN_STATUS_OK) {
        qemu_log_mask(LOG_GUEST_ERROR,
                      "kiln: queue %td job 0x%" PRIx64 " failed: %s at packet "
                      "%u (addr 0x%" PRIx64 ")\n", q - s->q, js.job_id,
                      kiln_status_name(status), index, js.fault_addr);
    }
    if (!kiln_phys_write(&s->phys, q->job.indirect.status_pa, raw, sizeof(raw),
                         &f)) {
        st->kind = STEP_STOP;
        st->status = f.status;
        return false;
    }
    st->wrote = true;
    st->kind = STEP_DONE;
    return true;
}

/* One packet of the command buffer of the current INDIRECT. */
static void kiln_job_step(KilnState *s, KilnQueue *q, KilnStep *st)
{
    const struct kiln_pkt_indirect *ind = &q->job.indirect;
    KilnAddrSpace as = { .phys = &s->phys, .mmu = s->mmu, .asid = ind->asid };
    uint8_t raw[KILN_PACKET_SIZE];
    KilnPacket pkt;
    KilnExec ex = { 0 };
    uint32_t idx = q->job_index;
    uint32_t status;

    if (!kiln_as_read(&as, ind->cmd_va + (uint64_t)idx * KILN_PACKET_SIZE,
                      raw, sizeof(raw), &ex.fault)) {
        if (ex.fault.status == KILN_STATUS_MMU_FAULT) {
            st->mmu_fault = true;
            st->fault = ex.fault;
        }
        ex.pe = KILN_JOB_STATUS_NO_PE;
        kiln_job_finish(s, q, ex.fault.status, idx, &ex, st);
        return;
    }
    kiln_packet_decode(raw, &pkt);
    trace_kiln_packet(q - s->q, ind->asid, idx,
                      kiln_opcode_name(KILN_PKT_OPCODE(pkt.header)));
    status = kiln_packet_validate(&pkt, true, NULL);
    if (status != KILN_STATUS_OK) {
        ex.pe = KILN_JOB_STATUS_NO_PE;
        kiln_job_finish(s, q, status, idx, &ex, st);
        return;
    }
    if (!kiln_exec_packet(s, q, &as, &pkt, &ex, st)) {
        if (ex.status == KILN_STATUS_ABORTED && kiln_queue_cancelled(s, q)) {
            q->in_job = false;
            st->kind = STEP_ABORT;
            return;
        }
        if (ex.status == KILN_STATUS_MMU_FAULT) {
            st->mmu_fault = true;
            st->fault = ex.fault;
        }
        q->job_cycles += st->cycles;
        q->job_dynamic_pj += st->dynamic_pj;
        kiln_job_finish(s, q, ex.status, idx, &ex, st);
        return;
    }
    if (ex.wait_pending) {
        st->kind = STEP_WAIT;
        return;
    }
    q->job_cycles += st->cycles;
    q->job_dynamic_pj += st->dynamic_pj;
    q->job_index = ++idx;
    if ((uint64_t)idx * KILN_PACKET_SIZE >= ind->size) {
        kiln_job_finish(s, q, KILN_STATUS_OK, idx, NULL, st);
        return;
    }
    st->kind = STEP_CONTINUE;
}

/* Execute one step of queue @q (owned by the calling worker). */
static void kiln_queue_step(KilnState *s, KilnQueue *q, uint64_t base,
                            uint32_t head, KilnStep *st)
{
    KilnAddrSpace as = { .phys = &s->phys, .mmu = s->mmu, .asid = 0 };
    uint8_t raw[KILN_PACKET_SIZE];
    KilnPacket pkt;
    KilnExec ex = { 0 };
    KilnFault f;
    uint32_t status, field;

    st->kind = STEP_DONE;
    if (q->in_job) {
        kiln_job_step(s, q, st);
        return;
    }
    if (!kiln_phys_read(&s->phys, base + (uint64_t)head * KILN_PACKET_SIZE,
                        raw, sizeof(raw), &f)) {
        st->kind = STEP_STOP;
        st->status = f.status;
        return;
    }
    kiln_packet_decode(raw, &pkt);
    trace_kiln_packet(q - s->q, 0, head,
                      kiln_opcode_name(KILN_PKT_OPCODE(pkt.header)));
    status = kiln_packet_validate(&pkt, false, &field);
    if (status != KILN_STATUS_OK) {
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: queue %td packet %u (header "
                      "0x%08x): %s (field at byte %u)\n", q - s->q, head,
                      pkt.header, kiln_status_name(status), field);
        st->kind = STEP_STOP;
        st->status = status;
        return;
    }
    if (KILN_PKT_OPCODE(pkt.header) == KILN_OP_INDIRECT) {
        KilnXlate x;

        if (!kiln_phys_xlate(&s->phys, pkt.indirect.status_pa,
                             sizeof(struct kiln_job_status), &x, &f) ||
            x.len < sizeof(struct kiln_job_status)) {
            st->kind = STEP_STOP;
            st->status = KILN_STATUS_BAD_ADDRESS;
            return;
        }
        q->job = pkt;
        q->job_index = 0;
        q->job_cycles = 0;
        q->job_dynamic_pj = 0;
        q->job_start_ns = kiln_device_ns(s);
        q->in_job = true;
        trace_kiln_job_start(q - s->q, pkt.indirect.job_id,
                             pkt.indirect.asid, pkt.indirect.cmd_va,
                             pkt.indirect.size);
        if (!kiln_mmu_context_valid(s->mmu, pkt.indirect.asid)) {
            ex.pe = KILN_JOB_STATUS_NO_PE;
            ex.fault.asid = pkt.indirect.asid;
            kiln_job_finish(s, q, KILN_STATUS_BAD_CONTEXT, 0, &ex, st);
            return;
        }
        st->kind = STEP_CONTINUE;
        return;
    }
    if (!kiln_exec_packet(s, q, &as, &pkt, &ex, st)) {
        if (ex.status == KILN_STATUS_ABORTED && kiln_queue_cancelled(s, q)) {
            st->kind = STEP_ABORT;
            return;
        }
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: queue %td packet %u (%s) "
                      "failed: %s at 0x%" PRIx64 "\n", q - s->q, head,
                      kiln_opcode_name(KILN_PKT_OPCODE(pkt.header)),
                      kiln_status_name(ex.status), ex.fault.addr);
        st->kind = STEP_STOP;
        st->status = ex.status;
        return;
    }
    if (ex.wait_pending) {
        st->kind = STEP_WAIT;
    }
}

/* ------------------------------------------------------------------ */
/* Scheduling                                                           */

static bool kiln_queue_runnable(KilnState *s, int qid)
{
    KilnQueue *q = &s->q[qid];

    return q->enabled && !q->stopped && !q->busy &&
           qid != qatomic_read(&s->fault_hang_queue) &&
           (q->head != q->tail || q->in_job);
}

/* Waiting for a worker: runnable, not executing, not blocked in WAIT. */
bool kiln_queue_ready_locked(KilnState *s, int qid)
{
    return kiln_queue_runnable(s, qid) && !s->q[qid].waiting;
}

/*
 * The control worker serves queue KILN_QUEUE_CONTROL only, the other
 * workers every other queue: the driver's privileged commands never wait
 * behind a long kernel.
 */
static KilnQueue *kiln_pick_locked(KilnState *s, bool control, int64_t now,
                                   int64_t *next_wake)
{
    int prio, k;

    *next_wake = INT64_MAX;
    if (s->paused || s->d3hot || s->stopping || s->fatal ||
        qatomic_read(&s->cancel) ||
        !(s->control & KILN_CONTROL_ENABLE)) {
        return NULL;
    }
    for (prio = KILN_NUM_PRIORITIES - 1; prio >= 0; prio--) {
        for (k = 0; k < KILN_NUM_QUEUES; k++) {
            int qid = (s->rr[prio] + k) % KILN_NUM_QUEUES;
            KilnQueue *q = &s->q[qid];

            if ((qid == KILN_QUEUE_CONTROL) != control ||
                q->priority != prio || !kiln_queue_runnable(s, qid)) {
                continue;
            }
            if (q->waiting && q->next_poll_ms > now) {
                *next_wake = MIN(*next_wake, q->next_poll_ms);
                continue;
            }
            s->rr[prio] = (qid + 1) % KILN_NUM_QUEUES;
            return q;
        }
    }
    return NULL;
}

/* Make queues blocked in WAIT poll again now; false if there are none. */
static bool kiln_queue_repoll_locked(KilnState *s)
{
    bool any = false;
    int i;

    for (i = 0; i < KILN_NUM_QUEUES; i++) {
        if (s->q[i].waiting) {
            s->q[i].next_poll_ms = 0;
            s->q[i].backoff_ms = 0;
            any = true;
        }
    }
    return any;
}

void kiln_wake_all_locked(KilnState *s)
{
    qemu_cond_broadcast(&s->work_cond);
    qemu_cond_broadcast(&s->control_cond);
}

/* Re-poll queues blocked in WAIT and wake every worker. Caller holds lock. */
void kiln_queue_kick_locked(KilnState *s)
{
    kiln_queue_repoll_locked(s);
    kiln_wake_all_locked(s);
}

/*
 * A doorbell made queue @qid runnable: its worker, or one idle worker of
 * the other queues, is enough, unless queues blocked in WAIT must be
 * re-polled too. Waking every worker for each doorbell only adds host
 * context switches to the job round trip.
 */
void kiln_queue_doorbell_locked(KilnState *s, int qid)
{
    if (kiln_queue_repoll_locked(s)) {
        kiln_wake_all_locked(s);
    } else if (qid == KILN_QUEUE_CONTROL) {
        qemu_cond_signal(&s->control_cond);
    } else {
        qemu_cond_signal(&s->work_cond);
    }
}

static void kiln_commit_locked(KilnState *s, KilnQueue *q, const KilnStep *st,
                               uint32_t head)
{
    int qid = q - s->q;

    if (st->cycles) {
        qatomic_add(&s->total_cycles, st->cycles);
        qatomic_add(&s->busy_ns, st->cycles * 1000 / KILN_PE_CLOCK_MHZ);
    }
    if (st->dynamic_pj) {
        qatomic_add(&s->dynamic_pj, st->dynamic_pj);
    }
    if (st->bytes) {
        qatomic_add(&s->dma_bytes, st->bytes);
    }
    if (st->launch) {
        qatomic_inc(&s->launches);
    }
    q->progress += qatomic_xchg(&q->launch_progress, 0);
    if (st->mmu_fault) {
        s->fault_count++;
        if (!(s->fault_status & KILN_FAULT_STATUS_VALID)) {
            s->fault_status = KILN_FAULT_STATUS_VALID |
                (st->fault.access << KILN_FAULT_STATUS_ACCESS_SHIFT &
                 KILN_FAULT_STATUS_ACCESS_MASK) |
                (st->fault.reason << KILN_FAULT_STATUS_REASON_SHIFT &
                 KILN_FAULT_STATUS_REASON_MASK);
            s->fault_asid = st->fault.asid;
            s->fault_addr = st->fault.addr;
            s->fault_queue = qid;
        }
        trace_kiln_mmu_fault(qid, st->fault.asid, st->fault.addr,
                             st->fault.access, st->fault.reason);
        s->irq_status |= KILN_IRQ_MMU_FAULT;
        if (!(s->irq_mask & KILN_IRQ_MMU_FAULT)) {
            kiln_raise_vec(s, KILN_VEC_MMU_FAULT);
        }
    }

    switch (st->kind) {
    case STEP_DONE:
        q->head = (head + 1) & (q->size - 1);
        q->completed++;
        q->progress++;
        q->waiting = false;
        q->backoff_ms = 0;
        qatomic_inc(&s->packets);
        qatomic_inc(&s->heartbeat);
        qatomic_add(&s->busy_ns, 20);
        break;
    case STEP_CONTINUE:
        q->progress++;
        q->waiting = false;
        q->backoff_ms = 0;
        qatomic_inc(&s->packets);
        qatomic_inc(&s->heartbeat);
        break;
    case STEP_WAIT:
        q->waiting = true;
        q->next_poll_ms = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                          q->backoff_ms;
        q->backoff_ms = MIN(MAX(q->backoff_ms * 2, 1),
                            KILN_WAIT_BACKOFF_MAX_MS);
        break;
    case STEP_STOP:
        q->stopped = true;
        q->in_job = false;
        q->waiting = false;
        q->error = st->status;
        q->error_index = head;
        q->resume_at_head = false;
        trace_kiln_queue_stop(qid, st->status, head);
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: queue %d stopped at %u: %s\n",
                      qid, head, kiln_status_name(st->status));
        kiln_error_locked(s, st->status, KILN_ERROR_INFO_QUEUE | qid);
        break;
    case STEP_ABORT:
        break;
    }
    if (st->irq) {
        s->irq_status |= KILN_IRQ_QUEUE;
        if (!(s->irq_mask & KILN_IRQ_QUEUE)) {
            kiln_raise_vec(s, KILN_VEC_QUEUE(qid));
        }
    }
    /*
     * Memory written may satisfy a WAIT. The calling worker picks again
     * itself, so the others are woken only when there is a WAIT to re-poll.
     */
    if (st->wrote && kiln_queue_repoll_locked(s)) {
        kiln_wake_all_locked(s);
    }
}

static void kiln_worker_loop(KilnState *s, bool control)
{
    rcu_register_thread();
    qemu_mutex_lock(&s->lock);
    while (!s->stopping) {
        int64_t now = qemu_clock_get_ms(QEMU_CLOCK_REALTIME), wake;
        KilnQueue *q = kiln_pick_locked(s, control, now, &wake);
        KilnStep st = { 0 };
        uint32_t gen, head;
        uint64_t base;

        if (!q) {
            QemuCond *cond = control ? &s->control_cond : &s->work_cond;

            if (wake != INT64_MAX) {
                qemu_cond_timedwait(cond, &s->lock, MAX(wake - now, 1));
            } else {
                qemu_cond_wait(cond, &s->lock);
            }
            continue;
        }
        q->busy = true;
        gen = s->generation;
        head = q->head;
        base = q->base;
        s->inflight++;
        qemu_mutex_unlock(&s->lock);

        kiln_queue_step(s, q, base, head, &st);

        qemu_mutex_lock(&s->lock);
        q->busy = false;
        if (gen == s->generation && !kiln_cancelled(s)) {
            kiln_commit_locked(s, q, &st, head);
        }
        s->inflight--;
        qemu_cond_broadcast(&s->idle_cond);
    }
    qemu_mutex_unlock(&s->lock);
    rcu_unregister_thread();
}

static void *kiln_worker_thread(void *opaque)
{
    kiln_worker_loop(opaque, false);
    return NULL;
}

static void *kiln_control_thread(void *opaque)
{
    kiln_worker_loop(opaque, true);
    return NULL;
}

/* Forget all queue state. Caller holds s->lock with no packet in flight. */
void kiln_queue_reset_locked(KilnState *s)
{
    int i;

    for (i = 0; i < KILN_NUM_QUEUES; i++) {
        memset(&s->q[i], 0, sizeof(s->q[i]));
    }
    memset(s->rr, 0, sizeof(s->rr));
}

void kiln_queue_start(KilnState *s)
{
    uint32_t i;
    char name[32];

    s->par.opaque = &s->pool;
    s->par.workers = s->workers;
    s->par.parallel_for = kiln_parallel_for;

    qemu_mutex_init(&s->pool.lock);
    qemu_cond_init(&s->pool.work_cond);
    qemu_cond_init(&s->pool.done_cond);
    s->pool.nthreads = s->workers > 1 ? s->workers - 1 : 0;
    s->pool.threads = g_new0(QemuThread, MAX(s->pool.nthreads, 1));
    for (i = 0; i < s->pool.nthreads; i++) {
        snprintf(name, sizeof(name), "kiln-pe%u", i);
        qemu_thread_create(&s->pool.threads[i], name, kiln_pool_thread,
                           &s->pool, QEMU_THREAD_JOINABLE);
    }

    /* One control worker, then the workers of the other queues. */
    s->nthreads = 1 + MIN(s->workers, KILN_NUM_QUEUES - 1);
    s->threads = g_new0(QemuThread, s->nthreads);
    qemu_thread_create(&s->threads[0], "kiln-ctl", kiln_control_thread, s,
                       QEMU_THREAD_JOINABLE);
    for (i = 1; i < s->nthreads; i++) {
        snprintf(name, sizeof(name), "kiln-q%u", i - 1);
        qemu_thread_create(&s->threads[i], name, kiln_worker_thread, s,
                           QEMU_THREAD_JOINABLE);
    }
}

/*
 * Stop and join all threads. Safe with the BQL held: workers never wait
 * for the BQL, and a running launch is cancelled.
 */
void kiln_queue_stop(KilnState *s)
{
    uint32_t i;

    qemu_mutex_lock(&s->lock);
    s->stopping = true;
    kiln_cancel_all_locked(s);
    kiln_wake_all_locked(s);
    qemu_mutex_unlock(&s->lock);
    for (i = 0; i < s->nthreads; i++) {
        qemu_thread_join(&s->threads[i]);
    }
    g_free(s->threads);
    s->threads = NULL;
    s->nthreads = 0;

    qemu_mutex_lock(&s->pool.lock);
    s->pool.stop = true;
    qemu_cond_broadcast(&s->pool.work_cond);
    qemu_mutex_unlock(&s->pool.lock);
    for (i = 0; i < s->pool.nthreads; i++) {
        qemu_thread_join(&s->pool.threads[i]);
    }
    g_free(s->pool.threads);
    s->pool.threads = NULL;
    s->pool.nthreads = 0;
    qemu_cond_destroy(&s->pool.work_cond);
    qemu_cond_destroy(&s->pool.done_cond);
    qemu_mutex_destroy(&s->pool.lock);
}
