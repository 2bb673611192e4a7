/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: hardware queues (rings of 64-byte packets in host memory) and the
 * hardware fences their FENCE packets signal.
 */
#ifndef KILN_QUEUE_H
#define KILN_QUEUE_H

#include <linux/dma-fence.h>
#include <linux/list.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include <drm/gpu_scheduler.h>

#include <kiln/hw/kiln_packets.h>

struct kiln_device;

/*
 * Host memory shared with the device for one queue: the fence value the
 * FENCE packets write, then one job-status record per job slot.
 */
struct kiln_queue_shared {
	u64 fence;
	u64 reserved[7];
	struct kiln_job_status status[];
};

struct kiln_queue {
	struct kiln_device *kdev;
	u32 id;
	u32 priority;			/* KILN_QREG_PRIORITY */
	u32 entries;			/* ring size in packets, power of two */
	u32 job_slots;			/* job-status records */
	bool used;			/* initialised by the driver */
	bool sched_ready;

	struct kiln_pkt_generic *ring;
	dma_addr_t ring_dma;
	struct kiln_queue_shared *shared;
	dma_addr_t shared_dma;
	size_t shared_size;

	/* Protects ring, tail, inflight and is the hardware fences' lock. */
	spinlock_t lock;
	u32 tail;			/* next ring slot the driver writes */
	u64 fence_context;
	u64 emitted;			/* last hardware seqno emitted */
	u64 completed;			/* last hardware seqno retired */
	struct list_head inflight;	/* struct kiln_job, emission order */
	bool stopped;			/* error vector saw the queue stop */

	struct drm_gpu_scheduler sched;
	atomic_t nr_ctx;		/* contexts bound, for placement */
	unsigned int irq_cpu;		/* where the interrupt is steered */
	atomic64_t jobs_done;
	atomic64_t jobs_failed;

	/* Watchdog state (reset workqueue only) */
	u64 wd_progress;
	u64 wd_seqno;
	unsigned long wd_since;
	bool wd_hung;			/* reset for a hang ... */
	u64 wd_hung_completed;		/* ... when `completed` was this */
	unsigned long wd_stuck_since;	/* jiffies | 1; 0: not stuck */

	char irq_name[32];
};

/* A hardware fence: signalled when the job's FENCE packet landed. */
struct kiln_fence {
	struct dma_fence base;
	struct kiln_queue *queue;
};

static inline u64 kiln_queue_fence_pa(struct kiln_queue *q)
{
	return KILN_PA_HOST_BASE | (u64)q->shared_dma;
}

static inline u64 kiln_queue_status_pa(struct kiln_queue *q, u32 slot)
{
	return KILN_PA_HOST_BASE | (u64)(q->shared_dma +
		offsetof(struct kiln_queue_shared, status) +
		slot * sizeof(struct kiln_job_status));
}

int kiln_queue_alloc(struct kiln_device *kdev, struct kiln_queue *q, u32 id,
		     u32 entries);
void kiln_queue_free(struct kiln_queue *q);
void kiln_queue_hw_init(struct kiln_queue *q);
int kiln_queue_hw_stop(struct kiln_queue *q);
void kiln_queue_emit(struct kiln_queue *q, const void *pkt);
void kiln_queue_emit_fence(struct kiln_queue *q, u64 value, bool irq);
void kiln_queue_kick(struct kiln_queue *q);

extern const struct dma_fence_ops kiln_fence_ops;

#endif /* KILN_QUEUE_H */
