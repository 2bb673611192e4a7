// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: hardware queues.
 *
 * A queue is a ring of 64-byte packets in coherent host memory plus a
 * shared page where FENCE packets write the last retired hardware seqno
 * and INDIRECT packets write one job-status record per job. Each job
 * takes two ring slots (INDIRECT + FENCE) and one record, and the
 * scheduler's credit limit keeps the number of jobs in the ring below
 * the number of records, so neither ever wraps onto live data.
 */

#include <linux/dma-mapping.h>
#include <linux/iopoll.h>
#include <linux/slab.h>

#include "kiln_drv.h"
#include "kiln_queue.h"

static const char *kiln_fence_driver_name(struct dma_fence *fence)
{
	return KILN_DRIVER_NAME;
}

static const char *kiln_fence_timeline_name(struct dma_fence *fence)
{
	struct kiln_fence *f = container_of(fence, struct kiln_fence, base);

	return f->queue->irq_name;
}

const struct dma_fence_ops kiln_fence_ops = {
	.get_driver_name = kiln_fence_driver_name,
	.get_timeline_name = kiln_fence_timeline_name,
};

int kiln_queue_alloc(struct kiln_device *kdev, struct kiln_queue *q, u32 id,
		     u32 entries)
{
	struct device *dev = kdev->drm.dev;

	q->kdev = kdev;
	q->id = id;
	q->entries = entries;
	q->job_slots = entries / 2;
	spin_lock_init(&q->lock);
	INIT_LIST_HEAD(&q->inflight);
	q->fence_context = dma_fence_context_alloc(1);
	snprintf(q->irq_name, sizeof(q->irq_name), "kiln-%s-q%u",
		 pci_name(kdev->pdev), id);

	q->ring = dma_alloc_coherent(dev, entries * KILN_PACKET_SIZE,
				     &q->ring_dma, GFP_KERNEL);
	if (!q->ring)
		return -ENOMEM;

	q->shared_size = struct_size(q->shared, status, q->job_slots);
	q->shared = dma_alloc_coherent(dev, q->shared_size, &q->shared_dma,
				       GFP_KERNEL);
	if (!q->shared) {
		dma_free_coherent(dev, entries * KILN_PACKET_SIZE, q->ring,
				  q->ring_dma);
		q->ring = NULL;
		return -ENOMEM;
	}
	q->used = true;
	return 0;
}

void kiln_queue_free(struct kiln_queue *q)
{
	struct device *dev = q->kdev->drm.dev;

	if (!q->used)
		return;
	dma_free_coherent(dev, q->shared_size, q->shared, q->shared_dma);
	dma_free_coherent(dev, q->entries * KILN_PACKET_SIZE, q->ring,
			  q->ring_dma);
	q->used = false;
}

/* Program the ring into the device and enable the queue, empty. */
void kiln_queue_hw_init(struct kiln_queue *q)
{
	struct kiln_device *kdev = q->kdev;
	u32 base = KILN_REG_QUEUE(q->id);

	kiln_wr32(kdev, base + KILN_QREG_CONTROL, 0);
	kiln_wr32(kdev, base + KILN_QREG_CONTROL, KILN_QCTRL_RESET);
	kiln_wr64(kdev, base + KILN_QREG_BASE, kiln_host_pa(q->ring_dma));
	kiln_wr32(kdev, base + KILN_QREG_SIZE, q->entries);
	kiln_wr32(kdev, base + KILN_QREG_PRIORITY, q->priority);
	q->tail = 0;
	kiln_wr32(kdev, base + KILN_QREG_CONTROL, KILN_QCTRL_ENABLE);
}

/*
 * Disable the queue and reset its head and tail. The device abandons the
 * packet it was executing; returns -ETIMEDOUT if the queue does not stop,
 * which only a device reset can cure.
 */
int kiln_queue_hw_stop(struct kiln_queue *q)
{
	struct kiln_device *kdev = q->kdev;
	u32 base = KILN_REG_QUEUE(q->id);
	u32 status;
	int ret;

	kiln_wr32(kdev, base + KILN_QREG_CONTROL, 0);
	/* The device abandons a running packet, LAUNCH included. */
	ret = readl_poll_timeout(kdev->regs + base + KILN_QREG_STATUS, status,
				 !(status & (KILN_QSTATUS_ENABLED |
					     KILN_QSTATUS_RUNNING)) ||
				 status == ~0u, 100, 500 * USEC_PER_MSEC);
	if (ret || status == ~0u)
		return -ETIMEDOUT;
	kiln_wr32(kdev, base + KILN_QREG_CONTROL, KILN_QCTRL_RESET);
	q->tail = 0;
	return 0;
}

void kiln_queue_emit(struct kiln_queue *q, const void *pkt)
{
	lockdep_assert_held(&q->lock);

	memcpy(&q->ring[q->tail], pkt, KILN_PACKET_SIZE);
	q->tail = (q->tail + 1) & (q->entries - 1);
}

void kiln_queue_emit_fence(struct kiln_queue *q, u64 value, bool irq)
{
	struct kiln_pkt_fence pkt = {
		.header = KILN_PKT_HEADER(KILN_OP_FENCE,
					  KILN_FENCE_FLAG_64BIT |
					  (irq ? KILN_FENCE_FLAG_IRQ : 0)),
		.addr = kiln_queue_fence_pa(q),
		.value = value,
	};

	kiln_queue_emit(q, &pkt);
}

void kiln_queue_kick(struct kiln_queue *q)
{
	lockdep_assert_held(&q->lock);

	/* The packets must be visible before the device sees the doorbell. */
	dma_wmb();
	kiln_wr32(q->kdev, KILN_DOORBELL(q->id), q->tail);
}
