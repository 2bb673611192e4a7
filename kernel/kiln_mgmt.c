// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: the management queue.
 *
 * Privileged packets (CTX_SETUP, TLB_INVAL) use device physical addresses
 * and may only appear directly in a ring, so the driver keeps queue 0 for
 * itself and runs them synchronously: one packet, then a FENCE with an
 * interrupt, then wait for the fence value. While the device is being
 * reset the commands are skipped: the reset rebinds every live ASID,
 * which flushes its TLB as well.
 *
 * A failed command reports the TLB generation it failed in (@fail_gen):
 * the command's effect is only certain once a reset that started after
 * the failure has finished, i.e. once kdev->tlb_gen differs from it.
 */

#include <linux/cleanup.h>
#include <linux/jiffies.h>
#include <linux/string.h>

#include <drm/drm_drv.h>

#include "kiln_drv.h"
#include "kiln_mgmt.h"
#include "kiln_pm.h"
#include "kiln_stale.h"
#include "kiln_reset.h"

#define KILN_MGMT_TIMEOUT_MS	2000
#define KILN_MGMT_POLL_MS	10

static_assert(KILN_MGMT_CLEAR_BATCH + 1 < KILN_QUEUE_MIN_ENTRIES);

static bool kiln_mgmt_done(struct kiln_device *kdev, struct kiln_queue *q,
			   u64 seqno)
{
	return READ_ONCE(q->shared->fence) >= seqno || READ_ONCE(q->stopped) ||
	       READ_ONCE(kdev->mgmt_abort);
}

/* Run @n packets, then wait for the FENCE after them. */
static int kiln_mgmt_run_batch_awake(struct kiln_device *kdev,
				     const struct kiln_pkt_generic *pkts, u32 n,
				     u32 *fail_gen)
{
	struct kiln_queue *q = &kdev->queues[KILN_MGMT_QUEUE];
	unsigned long flags, deadline;
	long left;
	u64 seqno, progress;
	u32 i;
	int idx;

	if (fail_gen)
		*fail_gen = READ_ONCE(kdev->tlb_gen);
	if (!drm_dev_enter(&kdev->drm, &idx))
		return -ENODEV;

	guard(mutex)(&kdev->mgmt_lock);
	/* A reset in progress ends with tlb_gen + 1; a later one too. */
	if (fail_gen)
		*fail_gen = kdev->tlb_gen;
	if (kdev->in_reset) {
		drm_dev_exit(idx);
		return -EIO;
	}

	spin_lock_irqsave(&q->lock, flags);
	seqno = ++q->emitted;
	for (i = 0; i < n; i++)
		kiln_queue_emit(q, &pkts[i]);
	kiln_queue_emit_fence(q, seqno, true);
	kiln_queue_kick(q);
	spin_unlock_irqrestore(&q->lock, flags);

	/*
	 * Polled too: a lost interrupt costs one slice, not the timeout. The
	 * timeout counts from the queue's last progress, so a long fill on a
	 * loaded host is not mistaken for a stuck queue.
	 */
	progress = kiln_rd64(kdev, KILN_REG_QUEUE(q->id) + KILN_QREG_PROGRESS);
	deadline = jiffies + msecs_to_jiffies(KILN_MGMT_TIMEOUT_MS);
	do {
		u64 now;

		left = wait_event_timeout(kdev->mgmt_wq,
					  kiln_mgmt_done(kdev, q, seqno),
					  msecs_to_jiffies(KILN_MGMT_POLL_MS));
		now = kiln_rd64(kdev, KILN_REG_QUEUE(q->id) + KILN_QREG_PROGRESS);
		if (now != progress) {
			progress = now;
			deadline = jiffies + msecs_to_jiffies(KILN_MGMT_TIMEOUT_MS);
		}
	} while (!left && time_before(jiffies, deadline));
	if (READ_ONCE(q->shared->fence) >= seqno) {
		q->completed = seqno;
		drm_dev_exit(idx);
		return 0;
	}
	/*
	 * A device reset has begun (a fatal error, a hung queue): it restarts
	 * the ring and rebinds every ASID, so waiting out the timeout would
	 * only delay the recovery of every context by that much.
	 */
	if (READ_ONCE(kdev->mgmt_abort)) {
		drm_dev_exit(idx);
		return -EIO;
	}

	drm_err(&kdev->drm, "management queue %s (status 0x%x error %u head %u tail %u)\n",
		left ? "stopped" : "timed out",
		kiln_rd32(kdev, KILN_REG_QUEUE(q->id) + KILN_QREG_STATUS),
		kiln_rd32(kdev, KILN_REG_QUEUE(q->id) + KILN_QREG_ERROR),
		kiln_rd32(kdev, KILN_REG_QUEUE(q->id) + KILN_QREG_HEAD),
		kiln_rd32(kdev, KILN_REG_QUEUE(q->id) + KILN_QREG_TAIL));
	/* Start the queue afresh; a device that stays stuck gets reset. */
	kiln_queue_hw_stop(q);
	q->shared->fence = q->emitted;
	q->completed = q->emitted;
	WRITE_ONCE(q->stopped, false);
	kiln_queue_hw_init(q);
	kiln_reset_schedule(kdev, "management queue failure");
	drm_dev_exit(idx);
	return left ? -EIO : -ETIMEDOUT;
}

static int kiln_mgmt_run_batch(struct kiln_device *kdev,
			       const struct kiln_pkt_generic *pkts, u32 n,
			       u32 *fail_gen)
{
	int ret;

	if (fail_gen)
		*fail_gen = READ_ONCE(kdev->tlb_gen);
	ret = kiln_pm_get(kdev);
	if (ret)
		return ret;
	ret = kiln_mgmt_run_batch_awake(kdev, pkts, n, fail_gen);
	kiln_pm_put(kdev);
	return ret;
}

static int kiln_mgmt_run(struct kiln_device *kdev, const void *pkt,
			 u32 *fail_gen)
{
	return kiln_mgmt_run_batch(kdev, pkt, 1, fail_gen);
}

/*
 * Zero @n ranges of device memory with the device's fill engine, in
 * batches: device memory is handed to a new owner only cleared.
 */
int kiln_mgmt_clear(struct kiln_device *kdev, const u64 *pa, const u64 *size,
		    u32 n)
{
	struct kiln_pkt_generic pkts[KILN_MGMT_CLEAR_BATCH];
	u32 i, done = 0;
	int ret;

	while (done < n) {
		u32 batch = min_t(u32, n - done, KILN_MGMT_CLEAR_BATCH);

		for (i = 0; i < batch; i++) {
			struct kiln_pkt_dma_fill *fill = (void *)&pkts[i];

			memset(&pkts[i], 0, sizeof(pkts[i]));
			fill->header = KILN_PKT_HEADER(KILN_OP_DMA_FILL, 0);
			fill->dst = pa[done + i];
			fill->size = size[done + i];
		}
		ret = kiln_mgmt_run_batch(kdev, pkts, batch, NULL);
		if (ret)
			return ret;
		done += batch;
	}
	return 0;
}

int kiln_mgmt_ctx_setup(struct kiln_device *kdev, u32 asid, bool valid,
			u64 root_pa, u32 *fail_gen)
{
	struct kiln_pkt_ctx_setup pkt = {
		.header = KILN_PKT_HEADER(KILN_OP_CTX_SETUP,
					  valid ? KILN_CTX_FLAG_VALID : 0),
		.asid = asid,
		.pt_root_pa = valid ? root_pa : 0,
	};

	return kiln_mgmt_run(kdev, &pkt, fail_gen);
}

int kiln_mgmt_tlb_inval(struct kiln_device *kdev, u32 asid, u64 va, u64 size,
			u32 *fail_gen)
{
	struct kiln_pkt_tlb_inval pkt = {
		.header = KILN_PKT_HEADER(KILN_OP_TLB_INVAL, 0),
		.asid = asid,
		.va = va,
		.size = size,
	};

	return kiln_mgmt_run(kdev, &pkt, fail_gen);
}

/* Queue 0's vector: wake whoever waits for a management fence. */
void kiln_mgmt_irq(struct kiln_device *kdev)
{
	wake_up_all(&kdev->mgmt_wq);
}

/*
 * A command in flight is abandoned (mgmt_abort) and mgmt_lock taken;
 * afterwards commands are skipped until the reset is over. Ending a reset (the hardware was
 * reset in between, which emptied the TLB and unbound every ASID, and
 * nothing was bound since) starts a new TLB generation: what waited for
 * a failed command can be released.
 */
void kiln_mgmt_set_reset(struct kiln_device *kdev, bool in_reset)
{
	struct kiln_queue *q = &kdev->queues[KILN_MGMT_QUEUE];

	if (in_reset) {
		WRITE_ONCE(kdev->mgmt_abort, true);
		wake_up_all(&kdev->mgmt_wq);
	}
	scoped_guard(mutex, &kdev->mgmt_lock) {
		kdev->in_reset = in_reset;
		WRITE_ONCE(kdev->mgmt_abort, false);
		if (in_reset)
			return;
		/* The ring restarted empty: forget what was in it. */
		q->shared->fence = q->emitted;
		q->completed = q->emitted;
		WRITE_ONCE(q->stopped, false);
		WRITE_ONCE(kdev->tlb_gen, kdev->tlb_gen + 1);
	}
	kiln_stale_kick(kdev);
}
