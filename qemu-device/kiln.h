/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 AI accelerator: shared state of the PCI glue (kiln.c) and the
 * queue engine (kiln-queue.c).
 *
 * Locking (see docs/hardware.md and the threading notes in kiln.c):
 *  - MMIO, reset, property and BH code runs with the BQL held.
 *  - Queue and guest-visible device state is protected by KilnState.lock.
 *    Lock order: BQL -> lock. Worker threads never take the BQL.
 *  - A reset bumps KilnState.generation under the lock, sets cancel, and
 *    waits until no worker is inside a packet (inflight == 0).
 */
#ifndef HW_MISC_KILN_H
#define HW_MISC_KILN_H

#include "hw/pci/pci_device.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qom/object.h"
#include "system/runstate.h"

#include "engine/kiln_engine.h"
#include "engine/kiln_packet.h"
#include "kiln/hw/kiln_isa.h"
#include "kiln/hw/kiln_regs.h"

#define TYPE_KILN "kiln"
OBJECT_DECLARE_SIMPLE_TYPE(KilnState, KILN)

#define KILN_DEFAULT_DRAM_SIZE      (1ull << 30)
/*
 * Fixed, not the host's core count, so that the guest sees the same
 * wall-clock timing (and the same NUM_WORKERS) on every host.
 */
#define KILN_DEFAULT_WORKERS        2
#define KILN_MAX_DRAM_SIZE          KILN_PA_DRAM_MAX
#define KILN_MEM_CLOCK_MHZ          3200
#define KILN_DEFAULT_WATCHDOG       (1000ull * 1000 * 1000)     /* cycles */
#define KILN_DMA_CHUNK              (1u << 20)
#define KILN_WAIT_BACKOFF_MAX_MS    8

typedef struct KilnQueue {
    /* Guest-visible, protected by KilnState.lock */
    uint64_t base;
    uint32_t size;
    uint32_t head;
    uint32_t tail;
    uint32_t priority;
    uint32_t error;
    uint32_t error_index;
    uint64_t progress;
    uint64_t completed;
    bool enabled;
    bool stopped;
    bool resume_at_head;    /* stopped without an offending packet */

    /* Scheduling, protected by KilnState.lock */
    bool busy;              /* a worker is executing a packet of this queue */
    bool waiting;           /* blocked in a WAIT packet */
    int64_t next_poll_ms;   /* QEMU_CLOCK_REALTIME */
    uint32_t backoff_ms;
    uint64_t launch_progress;   /* advanced by a running LAUNCH (atomic) */
    /*
     * Non-zero while the packet being executed must be abandoned: the
     * queue was disabled under it, or the device is being reset. Read by
     * the worker without the lock; a running LAUNCH polls it.
     */
    int cancel;

    /* Current INDIRECT job; only touched by the worker owning the queue */
    bool in_job;
    KilnPacket job;
    uint32_t job_index;
    int64_t job_start_ns;
    uint64_t job_cycles;
    uint64_t job_dynamic_pj;    /* energy above idle power */
} KilnQueue;

/* The pool of threads behind KilnParallel (LAUNCH workgroups). */
typedef struct KilnParJob KilnParJob;

typedef struct KilnPool {
    QemuMutex lock;
    QemuCond work_cond;
    QemuCond done_cond;
    KilnParJob *jobs;
    QemuThread *threads;
    uint32_t nthreads;
    bool stop;
} KilnPool;

struct KilnState {
    PCIDevice parent_obj;

    MemoryRegion mmio;
    MemoryRegion dram;

    /* Properties */
    uint64_t dram_size;
    char *pe_grid;
    uint32_t local_mem_size;
    uint32_t workers;
    bool pe_jit;                /* x-pe-jit: translate hot PE code */
    uint32_t grid_w, grid_h;

    /* Engine */
    KilnPhys phys;
    KilnMmu *mmu;
    KilnPeEngine *pe;
    KilnParallel par;
    KilnPool pool;
    uint8_t *sram;

    /* Device lock and worker threads */
    QemuMutex lock;
    QemuCond work_cond;         /* the workers of queues 1.. */
    QemuCond control_cond;      /* the worker of KILN_QUEUE_CONTROL */
    QemuCond idle_cond;
    QemuThread *threads;
    uint32_t nthreads;
    bool stopping;
    bool paused;
    bool d3hot;                 /* PCI power state D3hot: run nothing */
    uint32_t inflight;
    uint32_t generation;
    int cancel;             /* non-zero while a reset abandons work */
    uint32_t rr[KILN_NUM_PRIORITIES];

    /* Guest-visible global state, protected by lock */
    uint32_t control;
    uint32_t scratch;
    uint32_t reset_count;
    uint32_t irq_status;
    uint32_t irq_mask;
    uint32_t error_code;
    uint32_t error_info;
    uint32_t fault_status;
    uint32_t fault_asid;
    uint64_t fault_addr;
    uint32_t fault_queue;
    uint32_t fault_count;
    bool fatal;
    KilnQueue q[KILN_NUM_QUEUES];

    /* Activity counters (atomic) */
    uint64_t heartbeat;
    uint64_t total_cycles;
    uint64_t dynamic_pj;        /* modelled energy above idle power */
    uint64_t busy_ns;
    uint64_t dma_bytes;
    uint64_t packets;
    uint64_t launches;

    /* Telemetry model, BQL */
    int64_t time_base;
    int64_t tele_last_ns;
    uint64_t tele_last_busy;
    double tele_util;
    uint64_t tele_last_cycles, tele_last_pj;
    uint32_t tele_power_mw;

    /* Interrupt delivery */
    QEMUBH *irq_bh;
    uint64_t pending_vecs;  /* atomic */
    uint64_t late_vecs;     /* BQL */
    QEMUTimer *late_timer;
    VMChangeStateEntry *vmse;
    bool in_flr;

    /* Fault injection (runtime QOM properties) */
    int32_t fault_hang_queue;
    uint32_t fault_dma_error;
    uint32_t fault_lost_irq;
    bool fault_reset_fail;  /* soft resets leave FATAL set; FLR clears */
    uint32_t fault_late_irq_ms;
    uint32_t fault_rate;
    uint64_t fault_seed;
    uint64_t fault_rng;     /* under lock */
};

/* kiln.c */
void kiln_raise_vec(KilnState *s, unsigned vec);
void kiln_error_locked(KilnState *s, uint32_t code, uint32_t info);
int kiln_host_read(void *opaque, uint64_t addr, void *buf, uint64_t len);
int kiln_host_write(void *opaque, uint64_t addr, const void *buf, uint64_t len);
int64_t kiln_device_ns(KilnState *s);

/* kiln-queue.c */
void kiln_queue_start(KilnState *s);
void kiln_queue_stop(KilnState *s);
void kiln_queue_reset_locked(KilnState *s);
void kiln_queue_kick_locked(KilnState *s);
void kiln_cancel_all_locked(KilnState *s);
bool kiln_queue_ready_locked(KilnState *s, int qid);
void kiln_queue_doorbell_locked(KilnState *s, int qid);
void kiln_wake_all_locked(KilnState *s);

#endif /* HW_MISC_KILN_H */
