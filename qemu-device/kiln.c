/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 AI accelerator: PCIe device model.
 *
 * This file is the PCI glue: identity, BARs, the BAR0 register file and
 * doorbells, MSI-X delivery, reset/FLR, VM run-state handling, properties
 * and fault injection. Queue execution lives in kiln-queue.c; the
 * QEMU-independent engine (physical map, MMU, packet validation) in
 * engine/. The register map is include/kiln/hw/kiln_regs.h and the
 * programming model is documented in docs/hardware.md.
 *
 * Threading: MMIO, config writes, reset, QOM property accessors, the
 * interrupt bottom half and the late-interrupt timer run under the BQL.
 * Queue workers (kiln-queue.c) never take the BQL; they only touch state
 * protected by KilnState.lock and hand interrupts to kiln_irq_bh through
 * the atomic pending_vecs mask.
 */
#include "qemu/osdep.h"
#include <math.h>
#include "qemu/atomic.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "hw/pci/msix.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_aer.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "system/dma.h"
#include "kiln.h"
#include "trace/trace-hw_misc_kiln.h"

/* ------------------------------------------------------------------ */
/* Interrupts                                                           */

/* Any thread. Queue vector @vec for delivery by the bottom half. */
void kiln_raise_vec(KilnState *s, unsigned vec)
{
    trace_kiln_irq_raise(vec);
    qatomic_or(&s->pending_vecs, 1ull << vec);
    qemu_bh_schedule(s->irq_bh);
}

static void kiln_deliver(KilnState *s, unsigned vec, bool allow_late)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint32_t late = qatomic_read(&s->fault_late_irq_ms);
    uint32_t lost = qatomic_read(&s->fault_lost_irq);

    if (lost) {
        qatomic_cmpxchg(&s->fault_lost_irq, lost, lost - 1);
        trace_kiln_irq_lost(vec);
        return;
    }
    if (allow_late && late) {
        trace_kiln_irq_late(vec, late);
        s->late_vecs |= 1ull << vec;
        if (!timer_pending(s->late_timer)) {
            timer_mod(s->late_timer,
                      qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + late);
        }
        return;
    }
    trace_kiln_irq(vec);
    if (msix_enabled(pdev)) {
        msix_notify(pdev, vec);
    }
}

static void kiln_irq_bh(void *opaque)
{
    KilnState *s = opaque;
    uint64_t vecs = qatomic_xchg(&s->pending_vecs, 0);

    while (vecs) {
        unsigned vec = ctz64(vecs);

        vecs &= vecs - 1;
        kiln_deliver(s, vec, true);
    }
}

static void kiln_late_timer(void *opaque)
{
    KilnState *s = opaque;
    uint64_t vecs = s->late_vecs;

    s->late_vecs = 0;
    while (vecs) {
        unsigned vec = ctz64(vecs);

        vecs &= vecs - 1;
        kiln_deliver(s, vec, false);
    }
}

/* Record a global error and raise the error vector. Caller holds lock. */
void kiln_error_locked(KilnState *s, uint32_t code, uint32_t info)
{
    trace_kiln_reg_error(code, info);
    s->error_code = code;
    s->error_info = info;
    s->irq_status |= KILN_IRQ_ERROR;
    if (!(s->irq_mask & KILN_IRQ_ERROR)) {
        kiln_raise_vec(s, KILN_VEC_ERROR);
    }
}

static void kiln_reg_error(KilnState *s, uint32_t code, hwaddr addr,
                           uint64_t val, const char *why)
{
    qemu_log_mask(LOG_GUEST_ERROR, "kiln: write 0x%" PRIx64 " to register "
                  "0x%" HWADDR_PRIx ": %s\n", val, addr, why);
    QEMU_LOCK_GUARD(&s->lock);
    kiln_error_locked(s, code, addr);
}

static void kiln_set_fatal(KilnState *s)
{
    QEMU_LOCK_GUARD(&s->lock);
    if (s->fatal) {
        return;
    }
    trace_kiln_fatal();
    s->fatal = true;
    s->irq_status |= KILN_IRQ_FATAL;
    kiln_error_locked(s, KILN_STATUS_FATAL, 0);
}

/* ------------------------------------------------------------------ */
/* Host memory access for the engine (worker threads)                   */

static int kiln_host_access(KilnState *s, uint64_t addr, void *buf,
                            uint64_t len, bool is_write)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    AddressSpace *as = pci_get_address_space(pdev);
    uint8_t *p = buf;

    while (len) {
        hwaddr xlat, plen = len;
        MemoryRegion *mr;
        MemTxResult r;
        bool direct;

        /*
         * Only RAM is reachable, which includes a peer Kiln's BAR2 (its
         * DRAM is a RAM region): MMIO targets would need the BQL, which
         * workers never take, so they are a DMA error.
         */
        WITH_RCU_READ_LOCK_GUARD() {
            mr = address_space_translate(as, addr, &xlat, &plen, is_write,
                                         MEMTXATTRS_UNSPECIFIED);
            direct = memory_access_is_direct(mr, is_write,
                                             MEMTXATTRS_UNSPECIFIED);
        }
        if (!direct || plen == 0) {
            trace_kiln_dma_error(addr, len, is_write);
            return -1;
        }
        plen = MIN(plen, len);
        r = pci_dma_rw(pdev, addr, p, plen,
                       is_write ? DMA_DIRECTION_FROM_DEVICE :
                                  DMA_DIRECTION_TO_DEVICE,
                       MEMTXATTRS_UNSPECIFIED);
        if (r != MEMTX_OK) {
            trace_kiln_dma_error(addr, len, is_write);
            return -1;
        }
        addr += plen;
        p += plen;
        len -= plen;
    }
    return 0;
}

int kiln_host_read(void *opaque, uint64_t addr, void *buf, uint64_t len)
{
    return kiln_host_access(opaque, addr, buf, len, false);
}

int kiln_host_write(void *opaque, uint64_t addr, const void *buf, uint64_t len)
{
    return kiln_host_access(opaque, addr, (void *)buf, len, true);
}

int64_t kiln_device_ns(KilnState *s)
{
    return qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) - s->time_base;
}

/* ------------------------------------------------------------------ */
/* Reset                                                                */

/*
 * Wait until no worker is inside a packet. The caller has already stopped
 * new ones from starting (cancelled, paused or in D3hot), under s->lock.
 */
static void kiln_wait_idle_locked(KilnState *s)
{
    while (s->inflight) {
        qemu_cond_wait(&s->idle_cond, &s->lock);
    }
}

static void kiln_do_reset(KilnState *s, const char *kind, bool count)
{
    qemu_mutex_lock(&s->lock);
    s->generation++;
    trace_kiln_reset(kind, s->generation);
    kiln_cancel_all_locked(s);
    kiln_wake_all_locked(s);
    kiln_wait_idle_locked(s);
    kiln_queue_reset_locked(s);
    s->control = 0;
    s->scratch = 0;
    s->irq_status = 0;
    s->irq_mask = 0;
    s->error_code = 0;
    s->error_info = 0;
    s->fault_status = 0;
    s->fault_asid = 0;
    s->fault_addr = 0;
    s->fault_queue = 0;
    s->fault_count = 0;
    s->fatal = false;
    /* The PCI core's reset returned the function to D0. */
    s->d3hot = false;
    if (count) {
        s->reset_count++;
    }
    if (s->mmu) {
        kiln_mmu_reset(s->mmu);
    }
    /* One-shot fault injections end with a reset; rates persist. */
    qatomic_set(&s->fault_hang_queue, -1);
    qatomic_set(&s->fault_dma_error, 0);
    qatomic_set(&s->fault_lost_irq, 0);
    s->fault_rng = s->fault_seed;
    qatomic_set(&s->cancel, 0);
    qemu_mutex_unlock(&s->lock);

    qatomic_set(&s->pending_vecs, 0);
    s->late_vecs = 0;
    if (s->late_timer) {
        timer_del(s->late_timer);
    }
}

static void kiln_qdev_reset(DeviceState *dev)
{
    KilnState *s = KILN(dev);
    PCIDevice *pdev = PCI_DEVICE(dev);
    int v;

    kiln_do_reset(s, s->in_flr ? "flr" : "system", s->in_flr);
    qatomic_set(&s->fault_reset_fail, false);
    msix_unuse_all_vectors(pdev);
    for (v = 0; v < KILN_NUM_VECTORS; v++) {
        msix_vector_use(pdev, v);
    }
}

static void kiln_vm_state_change(void *opaque, bool running, RunState state)
{
    KilnState *s = opaque;

    trace_kiln_vm_state(running);
    qemu_mutex_lock(&s->lock);
    s->paused = !running;
    if (running) {
        kiln_wake_all_locked(s);
    } else {
        /* No DMA while stopped: let the packets in flight finish. */
        kiln_wait_idle_locked(s);
    }
    qemu_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* Telemetry                                                            */

static void kiln_telemetry_update(KilnState *s)
{
    int64_t now = kiln_device_ns(s);
    uint64_t busy = qatomic_read(&s->busy_ns);
    int64_t dt = now - s->tele_last_ns;
    double util, alpha;

    if (dt <= 0) {
        return;
    }
    util = (double)(busy - s->tele_last_busy) / (double)dt;
    util = util < 0 ? 0 : util > 1 ? 1 : util;
    /* First-order thermal model, time constant 2 s. */
    alpha = 1.0 - exp(-(double)dt / 2e9);
    s->tele_util += (util - s->tele_util) * alpha;
    s->tele_last_ns = now;
    s->tele_last_busy = busy;
}

static uint32_t kiln_temp_mc(KilnState *s)
{
    kiln_telemetry_update(s);
    return 40000 + (uint32_t)(s->tele_util * 45000);
}

/* Modelled energy since power-on: idle power over the modelled time, plus
 * the dynamic energy of all work (docs/hardware.md, Telemetry). */
static uint64_t kiln_energy_pj(KilnState *s)
{
    return kiln_energy_idle_pj(qatomic_read(&s->total_cycles)) +
           qatomic_read(&s->dynamic_pj);
}

/*
 * Modelled power of the work done since the previous read: its energy
 * over its modelled time. Only work advances the modelled clock, so with
 * no work since then the device drew its idle power.
 */
static uint32_t kiln_power_mw(KilnState *s)
{
    uint64_t cycles = qatomic_read(&s->total_cycles);
    uint64_t pj = kiln_energy_pj(s);
    uint64_t dc = cycles - s->tele_last_cycles;

    if (dc) {
        /* pJ per cycle x cycles per us = uW; / 1000 = mW */
        s->tele_power_mw = (uint32_t)((pj - s->tele_last_pj) * KILN_PE_CLOCK_MHZ /
                                      dc / 1000);
    } else {
        s->tele_power_mw = KILN_POWER_IDLE_MW;
    }
    s->tele_last_cycles = cycles;
    s->tele_last_pj = pj;
    return s->tele_power_mw;
}

/* ------------------------------------------------------------------ */
/* Registers                                                            */

static uint64_t kiln_heartbeat(KilnState *s)
{
    uint64_t hb = qatomic_read(&s->heartbeat);
    int i;

    for (i = 0; i < KILN_NUM_QUEUES; i++) {
        hb += qatomic_read(&s->q[i].launch_progress);
    }
    return hb;
}

static uint32_t kiln_features(KilnState *s)
{
    return KILN_FEATURE_MMU | KILN_FEATURE_SRAM | KILN_FEATURE_FAULT_INJECT |
           KILN_FEATURE_TELEMETRY | (s->pe ? KILN_FEATURE_PE_ENGINE : 0);
}

static uint32_t kiln_qstatus(KilnState *s, int qid)
{
    KilnQueue *q = &s->q[qid];
    uint32_t st = 0;

    if (q->enabled) {
        st |= KILN_QSTATUS_ENABLED;
    }
    if (q->head == q->tail && !q->busy && !q->in_job) {
        st |= KILN_QSTATUS_IDLE;
    }
    if (q->waiting) {
        st |= KILN_QSTATUS_WAITING;
    }
    if (q->stopped) {
        st |= KILN_QSTATUS_STOPPED;
    }
    if (q->busy) {
        st |= KILN_QSTATUS_RUNNING;
    }
    if (kiln_queue_ready_locked(s, qid)) {
        st |= KILN_QSTATUS_READY;
    }
    return st;
}

static bool kiln_busy(KilnState *s)
{
    int i;

    for (i = 0; i < KILN_NUM_QUEUES; i++) {
        if (!(kiln_qstatus(s, i) & KILN_QSTATUS_IDLE) &&
            s->q[i].enabled && !s->q[i].stopped) {
            return true;
        }
    }
    return false;
}

/*
 * Power management: D0 and D3hot (PCI PM 1.2, no D1/D2, no PME). The K1
 * keeps its state in D3hot (No_Soft_Reset: DRAM and SRAM self-refresh,
 * registers and rings are retained) but executes nothing there, and the
 * PCI core turns its BARs off. A driver lets its queues drain first;
 * packets still queued wait for D0.
 */
#define KILN_D3HOT 3   /* PMCSR PowerState */

static uint8_t kiln_power_state(PCIDevice *pdev)
{
    return pci_get_word(pdev->config + pdev->pm_cap + PCI_PM_CTRL) &
           PCI_PM_CTRL_STATE_MASK;
}

static void kiln_power_state_changed(KilnState *s, uint8_t old, uint8_t state)
{
    int i;

    trace_kiln_power_state(old, state);
    qemu_mutex_lock(&s->lock);
    s->d3hot = state == KILN_D3HOT;
    if (s->d3hot) {
        for (i = 0; i < KILN_NUM_QUEUES; i++) {
            if (!(kiln_qstatus(s, i) & KILN_QSTATUS_IDLE) && s->q[i].enabled) {
                qemu_log_mask(LOG_GUEST_ERROR, "kiln: D3hot entered with "
                              "queue %d busy; it resumes in D0\n", i);
            }
        }
        kiln_wait_idle_locked(s);
    } else {
        kiln_wake_all_locked(s);
    }
    qemu_mutex_unlock(&s->lock);
}

static void kiln_config_write(PCIDevice *pdev, uint32_t addr, uint32_t val,
                              int len)
{
    KilnState *s = KILN(pdev);
    uint8_t old_state = kiln_power_state(pdev);

    pci_default_write_config(pdev, addr, val, len);
    if (kiln_power_state(pdev) != old_state) {
        kiln_power_state_changed(s, old_state, kiln_power_state(pdev));
    }
    /* Clearing the logged error pops the next one (AER multiple headers). */
    pcie_aer_write_config(pdev, addr, val, len);
    s->in_flr = true;
    pcie_cap_flr_write_config(pdev, addr, val, len);
    s->in_flr = false;
}

/* Read a 32-bit register at a 4-byte aligned offset. Caller holds lock. */
static uint32_t kiln_read32(KilnState *s, hwaddr addr)
{
    uint64_t v64;

    if (addr >= KILN_DOORBELL_BASE) {
        int qid = (addr - KILN_DOORBELL_BASE) / KILN_DOORBELL_STRIDE;
        return (addr & (KILN_DOORBELL_STRIDE - 1)) ? 0 : s->q[qid].tail;
    }
    if (addr >= KILN_REG_QUEUE_BASE &&
        addr < KILN_REG_QUEUE(KILN_NUM_QUEUES)) {
        int qid = (addr - KILN_REG_QUEUE_BASE) / KILN_REG_QUEUE_STRIDE;
        KilnQueue *q = &s->q[qid];
        hwaddr off = (addr - KILN_REG_QUEUE_BASE) % KILN_REG_QUEUE_STRIDE;
        uint64_t progress = q->progress + qatomic_read(&q->launch_progress);

        switch (off) {
        case KILN_QREG_BASE: return q->base;
        case KILN_QREG_BASE + 4: return q->base >> 32;
        case KILN_QREG_SIZE: return q->size;
        case KILN_QREG_CONTROL: return q->enabled ? KILN_QCTRL_ENABLE : 0;
        case KILN_QREG_HEAD: return q->head;
        case KILN_QREG_TAIL: return q->tail;
        case KILN_QREG_PRIORITY: return q->priority;
        case KILN_QREG_STATUS: return kiln_qstatus(s, qid);
        case KILN_QREG_ERROR: return q->error;
        case KILN_QREG_ERROR_INDEX: return q->error_index;
        case KILN_QREG_PROGRESS: return progress;
        case KILN_QREG_PROGRESS + 4: return progress >> 32;
        case KILN_QREG_COMPLETED: return q->completed;
        case KILN_QREG_COMPLETED + 4: return q->completed >> 32;
        default: return 0;
        }
    }

    switch (addr) {
    case KILN_REG_CHIP_ID: return KILN_CHIP_ID;
    case KILN_REG_REVISION: return KILN_PCI_REVISION;
    case KILN_REG_FW_VERSION:
        return KILN_VERSION(KILN_FW_VERSION_MAJOR, KILN_FW_VERSION_MINOR,
                            KILN_FW_VERSION_PATCH);
    case KILN_REG_IFACE_VERSION:
        return KILN_VERSION(KILN_IFACE_VERSION_MAJOR, KILN_IFACE_VERSION_MINOR,
                            0);
    case KILN_REG_NUM_QUEUES: return KILN_NUM_QUEUES;
    case KILN_REG_PE_GRID: return s->grid_w | s->grid_h << 8;
    case KILN_REG_LOCAL_MEM_SIZE: return s->local_mem_size;
    case KILN_REG_FEATURES: return kiln_features(s);
    case KILN_REG_DRAM_SIZE: return s->dram_size;
    case KILN_REG_DRAM_SIZE + 4: return s->dram_size >> 32;
    case KILN_REG_SRAM_SIZE: return (uint32_t)KILN_SRAM_SIZE;
    case KILN_REG_SRAM_SIZE + 4: return KILN_SRAM_SIZE >> 32;
    case KILN_REG_NUM_VECTORS: return KILN_NUM_VECTORS;
    case KILN_REG_NUM_WORKERS: return s->workers;
    case KILN_REG_MAX_CONTEXTS: return KILN_MAX_CONTEXTS;
    case KILN_REG_CLOCK_MHZ: return KILN_PE_CLOCK_MHZ;
    case KILN_REG_CONTROL: return s->control;
    case KILN_REG_STATUS:
        return KILN_STATUS_REG_READY |
               (s->fatal ? KILN_STATUS_REG_FATAL : 0) |
               (kiln_busy(s) ? KILN_STATUS_REG_BUSY : 0);
    case KILN_REG_SCRATCH: return s->scratch;
    case KILN_REG_RESET_COUNT: return s->reset_count;
    case KILN_REG_IRQ_STATUS: return s->irq_status;
    case KILN_REG_IRQ_MASK: return s->irq_mask;
    case KILN_REG_ERROR_CODE: return s->error_code;
    case KILN_REG_ERROR_INFO: return s->error_info;
    case KILN_REG_DEVICE_TIME:
    case KILN_REG_DEVICE_TIME + 4:
        v64 = kiln_device_ns(s);
        return addr == KILN_REG_DEVICE_TIME ? v64 : v64 >> 32;
    case KILN_REG_TOTAL_CYCLES:
    case KILN_REG_TOTAL_CYCLES + 4:
        v64 = qatomic_read(&s->total_cycles);
        return addr == KILN_REG_TOTAL_CYCLES ? v64 : v64 >> 32;
    case KILN_REG_HEARTBEAT: return kiln_heartbeat(s);
    case KILN_REG_FAULT_STATUS: return s->fault_status;
    case KILN_REG_FAULT_ASID: return s->fault_asid;
    case KILN_REG_FAULT_ADDR: return s->fault_addr;
    case KILN_REG_FAULT_ADDR + 4: return s->fault_addr >> 32;
    case KILN_REG_FAULT_QUEUE: return s->fault_queue;
    case KILN_REG_FAULT_COUNT: return s->fault_count;
    case KILN_REG_TEMP_MC: return kiln_temp_mc(s);
    case KILN_REG_POWER_MW: return kiln_power_mw(s);
    case KILN_REG_PE_CLOCK_MHZ: return KILN_PE_CLOCK_MHZ;
    case KILN_REG_MEM_CLOCK_MHZ: return KILN_MEM_CLOCK_MHZ;
    }

#define TELE64(reg, field) \
    case reg: return qatomic_read(&s->field); \
    case reg + 4: return qatomic_read(&s->field) >> 32
    switch (addr) {
    TELE64(KILN_REG_BUSY_NS, busy_ns);
    TELE64(KILN_REG_DMA_BYTES, dma_bytes);
    TELE64(KILN_REG_PACKETS, packets);
    TELE64(KILN_REG_LAUNCHES, launches);
    case KILN_REG_ENERGY_UJ:
        return kiln_energy_pj(s) / 1000000;
    case KILN_REG_ENERGY_UJ + 4:
        return (kiln_energy_pj(s) / 1000000) >> 32;
    }
#undef TELE64
    return 0;
}

static uint64_t kiln_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    KilnState *s = opaque;
    uint64_t val;

    qemu_mutex_lock(&s->lock);
    val = kiln_read32(s, addr);
    if (size == 8) {
        val |= (uint64_t)kiln_read32(s, addr + 4) << 32;
    }
    qemu_mutex_unlock(&s->lock);
    trace_kiln_mmio_read(addr, size, val);
    return val;
}

static bool kiln_ring_valid(KilnState *s, KilnQueue *q)
{
    KilnXlate x;
    uint64_t bytes = (uint64_t)q->size * KILN_PACKET_SIZE;

    return !(q->base & (KILN_PACKET_SIZE - 1)) &&
           kiln_phys_xlate(&s->phys, q->base, bytes, &x, NULL) &&
           x.len == bytes;
}

static void kiln_doorbell(KilnState *s, hwaddr addr, uint32_t val)
{
    int qid = (addr - KILN_DOORBELL_BASE) / KILN_DOORBELL_STRIDE;
    KilnQueue *q = &s->q[qid];

    trace_kiln_doorbell(qid, val);
    if (addr & (KILN_DOORBELL_STRIDE - 1)) {
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: write to doorbell page offset "
                      "0x%" HWADDR_PRIx " ignored\n", addr);
        return;
    }
    QEMU_LOCK_GUARD(&s->lock);
    if (s->fatal) {
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: doorbell %d while the device "
                      "is in fatal state ignored\n", qid);
        return;
    }
    if (!(s->control & KILN_CONTROL_ENABLE) || !q->enabled) {
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: doorbell %d while the %s is "
                      "disabled\n", qid, q->enabled ? "device" : "queue");
        kiln_error_locked(s, KILN_STATUS_BAD_REGISTER, addr);
        return;
    }
    if (val >= q->size) {
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: doorbell %d tail %u outside "
                      "ring of %u entries: queue stopped\n", qid, val,
                      q->size);
        if (!q->stopped) {
            q->stopped = true;
            q->error = KILN_STATUS_RING_OVERFLOW;
            q->error_index = q->head;
            q->resume_at_head = true;
            q->waiting = false;
            trace_kiln_queue_stop(qid, KILN_STATUS_RING_OVERFLOW, q->head);
        }
        kiln_error_locked(s, KILN_STATUS_RING_OVERFLOW, addr);
        return;
    }
    q->tail = val;
    kiln_queue_doorbell_locked(s, qid);
}

static void kiln_qctrl_write(KilnState *s, int qid, hwaddr addr, uint32_t val)
{
    KilnQueue *q = &s->q[qid];
    uint32_t known = KILN_QCTRL_ENABLE | KILN_QCTRL_RESET | KILN_QCTRL_RESUME;

    if (val & ~known) {
        kiln_reg_error(s, KILN_STATUS_BAD_REGISTER, addr, val,
                       "reserved queue control bits");
        return;
    }
    qemu_mutex_lock(&s->lock);
    if (val & KILN_QCTRL_RESET) {
        if ((val & KILN_QCTRL_ENABLE) || q->enabled) {
            qemu_mutex_unlock(&s->lock);
            kiln_reg_error(s, KILN_STATUS_BAD_REGISTER, addr, val,
                           "queue reset while enabled");
            return;
        }
        if (q->busy) {
            /* Finishing its last packet: wait, no lock held by it. */
            while (q->busy) {
                qemu_cond_wait(&s->idle_cond, &s->lock);
            }
        }
        q->head = q->tail = 0;
        q->error = q->error_index = 0;
        q->stopped = false;
        q->in_job = false;
        q->waiting = false;
        qatomic_set(&q->cancel, 0);
        qemu_mutex_unlock(&s->lock);
        return;
    }
    if (val & KILN_QCTRL_RESUME) {
        if (q->stopped) {
            if (!q->resume_at_head) {
                q->head = (q->error_index + 1) & (q->size - 1);
            }
            q->stopped = false;
            kiln_queue_kick_locked(s);
        }
    }
    if ((val & KILN_QCTRL_ENABLE) && !q->enabled) {
        if (!is_power_of_2(q->size) || q->size < KILN_QUEUE_MIN_ENTRIES ||
            q->size > KILN_QUEUE_MAX_ENTRIES || !kiln_ring_valid(s, q)) {
            qemu_mutex_unlock(&s->lock);
            kiln_reg_error(s, KILN_STATUS_BAD_REGISTER, addr, val,
                           "queue enabled with invalid BASE or SIZE");
            return;
        }
        if (q->head >= q->size || q->tail >= q->size) {
            q->head = q->tail = 0;
        }
        q->enabled = true;
        q->completed = 0;
        qatomic_set(&q->cancel, 0);
        kiln_queue_kick_locked(s);
    } else if (!(val & KILN_QCTRL_ENABLE) && q->enabled) {
        q->enabled = false;
        q->waiting = false;
        /* The packet executing, a LAUNCH included, is abandoned. */
        if (q->busy || q->in_job) {
            trace_kiln_queue_cancel(qid);
            qatomic_set(&q->cancel, 1);
        }
    }
    qemu_mutex_unlock(&s->lock);
}

/*
 * Register writes: one helper a register, so that the lock guards live in
 * functions of their own and never directly under a case label, where
 * their cleanup would also run on a jump to a later label.
 */

/* Ring BASE (either half) and SIZE: only while the queue is disabled. */
static void kiln_queue_write_ring(KilnState *s, KilnQueue *q, hwaddr addr,
                                  hwaddr off, uint32_t val)
{
    bool enabled;

    qemu_mutex_lock(&s->lock);
    enabled = q->enabled;
    qemu_mutex_unlock(&s->lock);

    if (enabled) {
        kiln_reg_error(s, KILN_STATUS_BAD_REGISTER, addr, val,
                       "ring BASE/SIZE written while the queue is "
                       "enabled");
        return;
    }
    if (off == KILN_QREG_SIZE &&
        (!is_power_of_2(val) || val < KILN_QUEUE_MIN_ENTRIES ||
         val > KILN_QUEUE_MAX_ENTRIES)) {
        kiln_reg_error(s, KILN_STATUS_BAD_REGISTER, addr, val,
                       "queue size not a power of two in 16..65536");
        return;
    }
    QEMU_LOCK_GUARD(&s->lock);
    if (off == KILN_QREG_BASE) {
        q->base = deposit64(q->base, 0, 32, val);
    } else if (off == KILN_QREG_BASE + 4) {
        q->base = deposit64(q->base, 32, 32, val);
    } else {
        q->size = val;
        q->head = q->tail = 0;
    }
}

static void kiln_queue_write_priority(KilnState *s, KilnQueue *q,
                                      hwaddr addr, uint32_t val)
{
    if (val >= KILN_NUM_PRIORITIES) {
        kiln_reg_error(s, KILN_STATUS_BAD_REGISTER, addr, val,
                       "queue priority out of range");
        return;
    }
    QEMU_LOCK_GUARD(&s->lock);
    q->priority = val;
}

static void kiln_queue_write32(KilnState *s, hwaddr addr, uint32_t val)
{
    int qid = (addr - KILN_REG_QUEUE_BASE) / KILN_REG_QUEUE_STRIDE;
    hwaddr off = (addr - KILN_REG_QUEUE_BASE) % KILN_REG_QUEUE_STRIDE;
    KilnQueue *q = &s->q[qid];

    switch (off) {
    case KILN_QREG_BASE:
    case KILN_QREG_BASE + 4:
    case KILN_QREG_SIZE:
        kiln_queue_write_ring(s, q, addr, off, val);
        return;
    case KILN_QREG_CONTROL:
        kiln_qctrl_write(s, qid, addr, val);
        return;
    case KILN_QREG_PRIORITY:
        kiln_queue_write_priority(s, q, addr, val);
        return;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: write 0x%x to read-only or "
                      "unknown queue register 0x%" HWADDR_PRIx " ignored\n",
                      val, addr);
        return;
    }
}

static void kiln_write_control(KilnState *s, hwaddr addr, uint32_t val)
{
    if (val & ~(KILN_CONTROL_ENABLE | KILN_CONTROL_SOFT_RESET)) {
        kiln_reg_error(s, KILN_STATUS_BAD_REGISTER, addr, val,
                       "reserved control bits");
        return;
    }
    if (val & KILN_CONTROL_SOFT_RESET) {
        kiln_do_reset(s, "soft", true);
        if (qatomic_read(&s->fault_reset_fail)) {
            /* Comes out of the reset still fatal; no message. */
            trace_kiln_fault_injected(-1, "soft reset fails");
            QEMU_LOCK_GUARD(&s->lock);
            s->fatal = true;
            s->error_code = KILN_STATUS_FATAL;
        }
        return;
    }
    QEMU_LOCK_GUARD(&s->lock);
    s->control = val;
    kiln_queue_kick_locked(s);
}

static void kiln_write_scratch(KilnState *s, uint32_t val)
{
    QEMU_LOCK_GUARD(&s->lock);
    s->scratch = val;
}

/* Write 1 to clear. */
static void kiln_write_irq_status(KilnState *s, uint32_t val)
{
    QEMU_LOCK_GUARD(&s->lock);
    s->irq_status &= ~val;
}

static void kiln_write_irq_mask(KilnState *s, hwaddr addr, uint32_t val)
{
    if (val & ~0xfu) {
        kiln_reg_error(s, KILN_STATUS_BAD_REGISTER, addr, val,
                       "reserved interrupt mask bits");
        return;
    }
    QEMU_LOCK_GUARD(&s->lock);
    s->irq_mask = val;
}

/* Writing VALID acknowledges the fault and frees the record. */
static void kiln_write_fault_status(KilnState *s, uint32_t val)
{
    QEMU_LOCK_GUARD(&s->lock);
    if (val & KILN_FAULT_STATUS_VALID) {
        s->fault_status = 0;
    }
}

static void kiln_write32(KilnState *s, hwaddr addr, uint32_t val)
{
    if (addr >= KILN_DOORBELL_BASE) {
        kiln_doorbell(s, addr, val);
        return;
    }
    if (addr >= KILN_REG_QUEUE_BASE &&
        addr < KILN_REG_QUEUE(KILN_NUM_QUEUES)) {
        kiln_queue_write32(s, addr, val);
        return;
    }
    switch (addr) {
    case KILN_REG_CONTROL:
        kiln_write_control(s, addr, val);
        return;
    case KILN_REG_SCRATCH:
        kiln_write_scratch(s, val);
        return;
    case KILN_REG_IRQ_STATUS:
        kiln_write_irq_status(s, val);
        return;
    case KILN_REG_IRQ_MASK:
        kiln_write_irq_mask(s, addr, val);
        return;
    case KILN_REG_FAULT_STATUS:
        kiln_write_fault_status(s, val);
        return;
    default:
        qemu_log_mask(LOG_GUEST_ERROR, "kiln: write 0x%x to read-only or "
                      "unknown register 0x%" HWADDR_PRIx " ignored\n", val,
                      addr);
        return;
    }
}

static void kiln_mmio_write(void *opaque, hwaddr addr, uint64_t val,
                            unsigned size)
{
    KilnState *s = opaque;
    hwaddr qoff = (addr - KILN_REG_QUEUE_BASE) % KILN_REG_QUEUE_STRIDE;

    trace_kiln_mmio_write(addr, size, val);
    if (size == 8 && addr >= KILN_REG_QUEUE_BASE &&
        addr < KILN_REG_QUEUE(KILN_NUM_QUEUES) && qoff == KILN_QREG_BASE) {
        /* 64-bit BASE in one access */
        kiln_write32(s, addr, val);
        kiln_write32(s, addr + 4, val >> 32);
        return;
    }
    kiln_write32(s, addr, val);
    if (size == 8 && addr < KILN_DOORBELL_BASE) {
        kiln_write32(s, addr + 4, val >> 32);
    }
}

static const MemoryRegionOps kiln_mmio_ops = {
    .read = kiln_mmio_read,
    .write = kiln_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
};

/* ------------------------------------------------------------------ */
/* Fault-injection QOM properties                                       */

static void kiln_get_hang(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    KilnState *s = KILN(obj);
    int32_t val = qatomic_read(&s->fault_hang_queue);

    visit_type_int32(v, name, &val, errp);
}

static void kiln_set_hang(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    KilnState *s = KILN(obj);
    int32_t val;

    if (!visit_type_int32(v, name, &val, errp)) {
        return;
    }
    if (val < -1 || val >= KILN_NUM_QUEUES) {
        error_setg(errp, "x-fault-hang-queue must be -1 or 0..%d",
                   KILN_NUM_QUEUES - 1);
        return;
    }
    trace_kiln_fault_injected(val, "hang-queue");
    qatomic_set(&s->fault_hang_queue, val);
    if (s->threads) {
        QEMU_LOCK_GUARD(&s->lock);
        kiln_queue_kick_locked(s);
    }
}

static void kiln_get_mmu(Object *obj, Visitor *v, const char *name,
                         void *opaque, Error **errp)
{
    KilnState *s = KILN(obj);
    uint32_t val = s->mmu ? kiln_mmu_injected_faults(s->mmu) : 0;

    visit_type_uint32(v, name, &val, errp);
}

static void kiln_set_mmu(Object *obj, Visitor *v, const char *name,
                         void *opaque, Error **errp)
{
    KilnState *s = KILN(obj);
    uint32_t val;

    if (!visit_type_uint32(v, name, &val, errp)) {
        return;
    }
    if (!s->mmu) {
        error_setg(errp, "x-fault-mmu needs a realized device");
        return;
    }
    trace_kiln_fault_injected(-1, "mmu");
    kiln_mmu_inject_faults(s->mmu, val);
}

static void kiln_get_fatal(Object *obj, Visitor *v, const char *name,
                           void *opaque, Error **errp)
{
    KilnState *s = KILN(obj);
    bool val;

    qemu_mutex_lock(&s->lock);
    val = s->fatal;
    qemu_mutex_unlock(&s->lock);
    visit_type_bool(v, name, &val, errp);
}

static void kiln_set_fatal_prop(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    KilnState *s = KILN(obj);
    bool val;

    if (!visit_type_bool(v, name, &val, errp)) {
        return;
    }
    if (!s->irq_bh) {
        error_setg(errp, "x-fault-fatal needs a realized device");
        return;
    }
    if (val) {
        trace_kiln_fault_injected(-1, "fatal");
        kiln_set_fatal(s);
    }
}

static bool kiln_get_reset_fail(Object *obj, Error **errp)
{
    return qatomic_read(&KILN(obj)->fault_reset_fail);
}

static void kiln_set_reset_fail(Object *obj, bool val, Error **errp)
{
    KilnState *s = KILN(obj);

    if (val) {
        trace_kiln_fault_injected(-1, "soft reset will fail");
    }
    qatomic_set(&s->fault_reset_fail, val);
}

static void kiln_get_seed(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    KilnState *s = KILN(obj);

    visit_type_uint64(v, name, &s->fault_seed, errp);
}

static void kiln_set_seed(Object *obj, Visitor *v, const char *name,
                          void *opaque, Error **errp)
{
    KilnState *s = KILN(obj);
    uint64_t val;

    if (!visit_type_uint64(v, name, &val, errp)) {
        return;
    }
    qemu_mutex_lock(&s->lock);
    s->fault_seed = val;
    s->fault_rng = val;
    qemu_mutex_unlock(&s->lock);
}

static void kiln_instance_init(Object *obj)
{
    KilnState *s = KILN(obj);

    /* Cheap: introspection tests create and destroy instances. */
    qemu_mutex_init(&s->lock);
    qemu_cond_init(&s->work_cond);
    qemu_cond_init(&s->control_cond);
    qemu_cond_init(&s->idle_cond);
    s->fault_hang_queue = -1;

    object_property_add(obj, "x-fault-hang-queue", "int32", kiln_get_hang,
                        kiln_set_hang, NULL, NULL);
    object_property_set_description(obj, "x-fault-hang-queue",
        "Queue whose processing hangs (-1: none); cleared by reset");
    object_property_add_uint32_ptr(obj, "x-fault-dma-error",
                                   &s->fault_dma_error,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_set_description(obj, "x-fault-dma-error",
        "Number of next DMA_COPY/DMA_FILL packets that fail with DMA_ERROR");
    object_property_add_uint32_ptr(obj, "x-fault-lost-irq", &s->fault_lost_irq,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_set_description(obj, "x-fault-lost-irq",
        "Number of next MSI-X messages that are dropped");
    object_property_add_uint32_ptr(obj, "x-fault-late-irq-ms",
                                   &s->fault_late_irq_ms,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_set_description(obj, "x-fault-late-irq-ms",
        "Delay every MSI-X message by this many ms of virtual time (0: off)");
    object_property_add(obj, "x-fault-mmu", "uint32", kiln_get_mmu,
                        kiln_set_mmu, NULL, NULL);
    object_property_set_description(obj, "x-fault-mmu",
        "Number of next MMU translations that fault (reason INJECTED)");
    object_property_add(obj, "x-fault-fatal", "bool", kiln_get_fatal,
                        kiln_set_fatal_prop, NULL, NULL);
    object_property_set_description(obj, "x-fault-fatal",
        "Set true: the device enters the fatal state until reset");
    object_property_add_bool(obj, "x-fault-reset-fail", kiln_get_reset_fail,
                             kiln_set_reset_fail);
    object_property_set_description(obj, "x-fault-reset-fail",
        "Set true: soft resets leave the device fatal until an FLR or "
        "system reset");
    object_property_add(obj, "x-fault-seed", "uint64", kiln_get_seed,
                        kiln_set_seed, NULL, NULL);
    object_property_set_description(obj, "x-fault-seed",
        "Seed of the random fault generator (x-fault-rate)");
    object_property_add_uint32_ptr(obj, "x-fault-rate", &s->fault_rate,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_set_description(obj, "x-fault-rate",
        "Random faults per million packets (DMA error, lost IRQ, MMU fault)");
}

static void kiln_instance_finalize(Object *obj)
{
    KilnState *s = KILN(obj);

    qemu_cond_destroy(&s->idle_cond);
    qemu_cond_destroy(&s->work_cond);
    qemu_cond_destroy(&s->control_cond);
    qemu_mutex_destroy(&s->lock);
}

/* ------------------------------------------------------------------ */
/* Realize / exit                                                       */

static void kiln_realize(PCIDevice *pdev, Error **errp)
{
    ERRP_GUARD();
    KilnState *s = KILN(pdev);
    KilnPeConfig cfg;
    unsigned w, h;
    char tail;
    int v;

    if (!s->pe_grid) {
        s->pe_grid = g_strdup("8x8");
    }
    if (sscanf(s->pe_grid, "%ux%u%c", &w, &h, &tail) != 2 ||
        w < 1 || h < 1 || w > 255 || h > 255) {
        error_setg(errp, "kiln: pe-grid must be WxH with 1 <= W, H <= 255");
        return;
    }
    s->grid_w = w;
    s->grid_h = h;
    if (!is_power_of_2(s->dram_size) || s->dram_size < 1 * MiB ||
        s->dram_size > KILN_MAX_DRAM_SIZE) {
        error_setg(errp, "kiln: dram-size must be a power of two between "
                   "1 MiB and 64 GiB");
        return;
    }
    if (s->local_mem_size < 4 * KiB || s->local_mem_size > 16 * MiB ||
        s->local_mem_size % (4 * KiB)) {
        error_setg(errp, "kiln: local-mem-size must be a multiple of 4 KiB "
                   "between 4 KiB and 16 MiB");
        return;
    }
    /* Opt-in only: guest-visible timing then depends on the host. */
    if (s->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->workers = n > 0 ? n : 1;
    }
    s->workers = MIN(s->workers, 256);

    pci_config_set_interrupt_pin(pdev->config, 1);
    if (pcie_endpoint_cap_init(pdev, 0x80) < 0) {
        error_setg(errp, "kiln: failed to add the PCIe capability");
        return;
    }
    /* The K1 host link is PCIe Gen5 x8 (DESIGN.md, MTIA 2i). */
    pcie_cap_fill_link_ep_usp(pdev, QEMU_PCI_EXP_LNK_X8, QEMU_PCI_EXP_LNK_32GT);
    pcie_cap_deverr_init(pdev);
    pcie_cap_flr_init(pdev);
    if (pci_pm_init(pdev, KILN_PM_CAP_OFFSET, errp) < 0) {
        pcie_cap_exit(pdev);
        return;
    }
    pci_set_word(pdev->config + pdev->pm_cap + PCI_PM_PMC, KILN_PM_PMC);
    pci_set_word(pdev->config + pdev->pm_cap + PCI_PM_CTRL,
                 PCI_PM_CTRL_NO_SOFT_RESET);
    pci_set_word(pdev->wmask + pdev->pm_cap + PCI_PM_CTRL,
                 PCI_PM_CTRL_STATE_MASK);
    if (pcie_aer_init(pdev, PCI_ERR_VER, 0x100, PCI_ERR_SIZEOF, errp) < 0) {
        pcie_cap_exit(pdev);
        return;
    }

    memory_region_init_ram(&s->dram, OBJECT(s), "kiln.dram", s->dram_size,
                           errp);
    if (*errp) {
        goto err_aer;
    }
    s->sram = g_try_malloc0(KILN_SRAM_SIZE);
    if (!s->sram) {
        error_setg(errp, "kiln: cannot allocate the on-chip SRAM");
        goto err_dram;
    }
    if (msix_init_exclusive_bar(pdev, KILN_NUM_VECTORS, KILN_BAR_MSIX,
                                errp)) {
        goto err_sram;
    }
    for (v = 0; v < KILN_NUM_VECTORS; v++) {
        msix_vector_use(pdev, v);
    }

    memory_region_init_io(&s->mmio, OBJECT(s), &kiln_mmio_ops, s,
                          "kiln.regs", KILN_BAR0_SIZE);
    pci_register_bar(pdev, KILN_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->mmio);
    pci_register_bar(pdev, KILN_BAR_DRAM, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->dram);

    s->phys.dram = memory_region_get_ram_ptr(&s->dram);
    s->phys.dram_size = s->dram_size;
    s->phys.sram = s->sram;
    s->phys.sram_size = KILN_SRAM_SIZE;
    s->phys.opaque = s;
    s->phys.host_read = kiln_host_read;
    s->phys.host_write = kiln_host_write;
    s->mmu = kiln_mmu_new(&s->phys, KILN_MAX_CONTEXTS);

    cfg.grid_width = s->grid_w;
    cfg.grid_height = s->grid_h;
    cfg.local_mem_size = s->local_mem_size;
    cfg.default_watchdog_cycles = KILN_DEFAULT_WATCHDOG;
    cfg.pe_jit = s->pe_jit ? KILN_PE_JIT_ON : KILN_PE_JIT_OFF;
    s->pe = kiln_pe_engine_new(&cfg);

    s->time_base = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    s->tele_last_ns = 0;
    s->irq_bh = qemu_bh_new_guarded(kiln_irq_bh, s,
                                    &DEVICE(s)->mem_reentrancy_guard);
    s->late_timer = timer_new_ms(QEMU_CLOCK_VIRTUAL, kiln_late_timer, s);
    s->paused = !runstate_is_running();
    s->fault_rng = s->fault_seed;
    kiln_queue_start(s);
    s->vmse = qemu_add_vm_change_state_handler(kiln_vm_state_change, s);
    return;

err_sram:
    g_free(s->sram);
    s->sram = NULL;
err_dram:
    object_unparent(OBJECT(&s->dram));
err_aer:
    pcie_aer_exit(pdev);
    pcie_cap_exit(pdev);
}

static void kiln_exit(PCIDevice *pdev)
{
    KilnState *s = KILN(pdev);

    qemu_del_vm_change_state_handler(s->vmse);
    /* Workers never wait for the BQL, so joining under it is safe. */
    kiln_queue_stop(s);
    timer_free(s->late_timer);
    s->late_timer = NULL;
    qemu_bh_delete(s->irq_bh);
    s->irq_bh = NULL;
    kiln_pe_engine_free(s->pe);
    s->pe = NULL;
    kiln_mmu_free(s->mmu);
    s->mmu = NULL;
    g_free(s->sram);
    s->sram = NULL;
    msix_uninit_exclusive_bar(pdev);
    pcie_aer_exit(pdev);
    pcie_cap_exit(pdev);
}

static const Property kiln_properties[] = {
    DEFINE_PROP_SIZE("dram-size", KilnState, dram_size,
                     KILN_DEFAULT_DRAM_SIZE),
    DEFINE_PROP_STRING("pe-grid", KilnState, pe_grid),
    DEFINE_PROP_UINT32("local-mem-size", KilnState, local_mem_size,
                       KILN_LOCAL_MEM_DEFAULT_SIZE),
    DEFINE_PROP_UINT32("workers", KilnState, workers,
                       KILN_DEFAULT_WORKERS),
    DEFINE_PROP_BOOL("x-pe-jit", KilnState, pe_jit, true),
};

static const VMStateDescription kiln_vmstate = {
    .name = "kiln",
    .unmigratable = 1,
};

static void kiln_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = kiln_realize;
    k->exit = kiln_exit;
    k->config_write = kiln_config_write;
    k->vendor_id = KILN_PCI_VENDOR_ID;
    k->device_id = KILN_PCI_DEVICE_ID;
    k->revision = KILN_PCI_REVISION;
    k->class_id = KILN_PCI_CLASS;
    dc->desc = "Kiln K1 AI accelerator";
    dc->vmsd = &kiln_vmstate;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_props(dc, kiln_properties);
    device_class_set_legacy_reset(dc, kiln_qdev_reset);
}

static const TypeInfo kiln_types[] = {
    {
        .name = TYPE_KILN,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(KilnState),
        .instance_init = kiln_instance_init,
        .instance_finalize = kiln_instance_finalize,
        .class_init = kiln_class_init,
        .interfaces = (InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { },
        },
    },
};

DEFINE_TYPES(kiln_types)
