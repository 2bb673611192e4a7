// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: hang detection and recovery.
 *
 * A watchdog runs every KILN_WATCHDOG_MS while jobs are in flight. It
 * retires jobs whose interrupt was lost, and tracks for each queue the
 * job at the head of the ring and the queue's PROGRESS register. A job
 * hangs when PROGRESS has not moved for its context's timeout: long jobs
 * that keep making progress are never killed. The scheduler's own
 * timeout is not used (6.12 cannot express "still running").
 *
 * Escalation:
 *  1. queue reset: disable and reset the hung queue, ban the guilty
 *     context (its hung job fails with -ETIMEDOUT, its other queued jobs
 *     with -ECANCELED), write the innocent jobs into the fresh ring again;
 *  2. device reset, when the queue does not stop, hangs again before it
 *     completed a single job since its reset (the queue itself is stuck,
 *     not a job), the device reports a fatal error or the management
 *     queue is stuck: CONTROL.SOFT_RESET,
 *     then FLR if the device stays fatal; queues, ASIDs and innocent jobs
 *     are restored, a KILN_RESET=1 uevent is sent and reset_count grows.
 * Innocent jobs that were running when the hardware was reset run again
 * from the start.
 */

#include <linux/cleanup.h>
#include <linux/jiffies.h>
#include <linux/kobject.h>

#include <drm/drm_drv.h>
#include <drm/drm_file.h>

#include "kiln_ctx.h"
#include "kiln_drv.h"
#include "kiln_hw.h"
#include "kiln_job.h"
#include "kiln_mgmt.h"
#include "kiln_mmu.h"
#include "kiln_reset.h"

#define KILN_WATCHDOG_MS	100

void kiln_watchdog_kick(struct kiln_device *kdev)
{
	queue_delayed_work(kdev->reset_wq, &kdev->watchdog,
			   msecs_to_jiffies(KILN_WATCHDOG_MS));
}

void kiln_watchdog_kick_now(struct kiln_device *kdev)
{
	mod_delayed_work(kdev->reset_wq, &kdev->watchdog, 0);
}

void kiln_reset_schedule(struct kiln_device *kdev, const char *reason)
{
	if (atomic_cmpxchg(&kdev->reset_pending, 0, 1) == 0) {
		kdev->reset_reason = reason;
		queue_work(kdev->reset_wq, &kdev->reset_work);
	}
}

void kiln_reset_flush(struct kiln_device *kdev)
{
	flush_work(&kdev->reset_work);
}

/* Point the scheduler at the hardware fences again after drm_sched_stop(). */
static void kiln_sched_restore_parents(struct kiln_queue *q)
{
	struct drm_sched_job *s_job;

	list_for_each_entry(s_job, &q->sched.pending_list, list) {
		struct kiln_job *job = to_kiln_job(s_job);

		if (!s_job->s_fence->parent && job->hw_fence_init)
			s_job->s_fence->parent =
				dma_fence_get(&job->hw_fence->base);
	}
}

/*
 * With the queue stopped and reset: fail the guilty job (the head of the
 * ring) and whatever else its context has in the ring, count the reset
 * against the innocent contexts, and write their jobs into the ring again.
 */
static void kiln_queue_replay(struct kiln_queue *q, bool guilty, int error,
			      bool device_reset)
{
	struct kiln_device *kdev = q->kdev;
	struct kiln_ctx *bad = NULL;
	struct kiln_job *job, *tmp;
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	job = list_first_entry_or_null(&q->inflight, struct kiln_job, inflight);
	if (job && guilty) {
		bad = job->ctx;
		drm_err(&kdev->drm, "queue %u: job %llu of context %u (pid %d) %s; context banned\n",
			q->id, job->seqno, bad->id, bad->pid,
			error == -ETIMEDOUT ? "made no progress" : "stopped the queue");
		kiln_ctx_ban(bad);
		kiln_queue_fail_job(q, job, error);
	}
	list_for_each_entry_safe(job, tmp, &q->inflight, inflight) {
		if (job->ctx == bad) {
			kiln_queue_fail_job(q, job, -ECANCELED);
			continue;
		}
		if (device_reset) {
			spin_lock(&job->ctx->status_lock);
			job->ctx->reset_count++;
			spin_unlock(&job->ctx->status_lock);
		}
	}
	kiln_queue_hw_init(q);
	list_for_each_entry(job, &q->inflight, inflight)
		kiln_queue_emit_job(q, job);
	kiln_queue_kick(q);
	q->wd_seqno = 0;
	spin_unlock_irqrestore(&q->lock, flags);
}

static void kiln_reset_stop_all(struct kiln_device *kdev)
{
	u32 i;

	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++)
		if (kdev->queues[i].sched_ready)
			drm_sched_stop(&kdev->queues[i].sched, NULL);
	kiln_mgmt_set_reset(kdev, true);
}

static void kiln_reset_lost(struct kiln_device *kdev)
{
	u32 i;

	drm_err(&kdev->drm, "device did not recover; failing all work\n");
	kdev->lost = true;
	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];

		if (!q->sched_ready)
			continue;
		kiln_queue_fail_all(q, -EIO);
		kiln_sched_restore_parents(q);
		drm_sched_start(&q->sched);
	}
}

/* The hardware is reset: restore it and replay the innocent jobs. */
static void kiln_reset_restart_all(struct kiln_device *kdev,
				   struct kiln_queue *guilty)
{
	char event[] = "KILN_RESET=1";
	char *envp[2];
	struct kobject *kobj;
	u32 i;

	kiln_hw_start(kdev);
	kiln_mgmt_set_reset(kdev, false);
	kiln_vm_rebind_all(kdev);

	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];

		if (!q->sched_ready)
			continue;
		kiln_queue_replay(q, q == guilty, -ETIMEDOUT, true);
		kiln_sched_restore_parents(q);
		drm_sched_start(&q->sched);
	}
	atomic_inc(&kdev->reset_count);
	envp[0] = event;
	envp[1] = NULL;
	kobj = kdev->drm.accel ? &kdev->drm.accel->kdev->kobj :
				 &kdev->pdev->dev.kobj;
	kobject_uevent_env(kobj, KOBJ_CHANGE, envp);
	kiln_watchdog_kick(kdev);
}

/* Soft reset, then FLR if the device stays fatal. */
static int kiln_reset_hw(struct kiln_device *kdev)
{
	int ret;

	ret = kiln_hw_soft_reset(kdev);
	if (!ret && !kiln_hw_fatal(kdev))
		return 0;

	drm_err(&kdev->drm, "soft reset did not clear the fatal state; trying FLR\n");
	kdev->own_flr = true;
	ret = pci_try_reset_function(kdev->pdev);
	kdev->own_flr = false;
	if (ret) {
		drm_err(&kdev->drm, "FLR failed: %d\n", ret);
		return ret;
	}
	return kiln_hw_soft_reset(kdev);
}

static void kiln_device_recover(struct kiln_device *kdev,
				struct kiln_queue *guilty, const char *reason)
{
	u32 i;

	lockdep_assert_held(&kdev->reset_lock);

	drm_err(&kdev->drm, "resetting device: %s\n", reason);
	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++)
		kdev->queues[i].wd_hung = false;
	kiln_reset_stop_all(kdev);
	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++)
		if (kdev->queues[i].sched_ready)
			kiln_queue_process(&kdev->queues[i]);

	if (kiln_reset_hw(kdev)) {
		kiln_reset_lost(kdev);
		return;
	}
	kiln_reset_restart_all(kdev, guilty);
	drm_info(&kdev->drm, "device reset complete (%d resets)\n",
		 atomic_read(&kdev->reset_count));
}

static void kiln_queue_recover(struct kiln_queue *q, int error)
{
	struct kiln_device *kdev = q->kdev;

	lockdep_assert_held(&kdev->reset_lock);

	/* Keep run_job out of the ring while the queue is reset. */
	drm_sched_wqueue_stop(&q->sched);
	if (kiln_queue_hw_stop(q)) {
		drm_err(&kdev->drm, "queue %u does not stop\n", q->id);
		drm_sched_wqueue_start(&q->sched);
		kiln_device_recover(kdev, q, "hung queue does not stop");
		return;
	}
	drm_sched_stop(&q->sched, NULL);
	WRITE_ONCE(q->stopped, false);
	kiln_queue_process(q);
	kiln_queue_replay(q, true, error, false);
	kiln_sched_restore_parents(q);
	drm_sched_start(&q->sched);
	q->wd_hung = error == -ETIMEDOUT;
	q->wd_hung_completed = READ_ONCE(q->completed);
}

static void kiln_watchdog_fn(struct work_struct *work)
{
	struct kiln_device *kdev = container_of(to_delayed_work(work),
						struct kiln_device, watchdog);
	bool busy = false;
	u32 i;
	int idx;

	if (!drm_dev_enter(&kdev->drm, &idx))
		return;
	guard(mutex)(&kdev->reset_lock);
	if (kdev->lost || kdev->pci_reset_active)
		goto out;

	if (kiln_hw_fatal(kdev)) {
		kiln_device_recover(kdev, NULL, "device reports a fatal error");
		goto out;
	}

	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];
		struct kiln_job *head;
		unsigned long flags;
		u32 timeout_ms = 0;
		u64 seqno = 0, progress;

		if (!q->sched_ready)
			continue;
		/* Catches lost interrupts. */
		kiln_queue_process(q);

		spin_lock_irqsave(&q->lock, flags);
		head = list_first_entry_or_null(&q->inflight, struct kiln_job,
						inflight);
		if (head) {
			seqno = head->hw_seqno;
			timeout_ms = head->ctx->timeout_ms;
		}
		spin_unlock_irqrestore(&q->lock, flags);
		if (!head) {
			q->wd_seqno = 0;
			continue;
		}
		busy = true;

		if (READ_ONCE(q->stopped)) {
			if (kiln_disable_recovery)
				continue;
			kiln_queue_recover(q, -EIO);
			continue;
		}

		progress = kiln_rd64(kdev, KILN_REG_QUEUE(i) + KILN_QREG_PROGRESS);
		if (seqno != q->wd_seqno || progress != q->wd_progress) {
			q->wd_seqno = seqno;
			q->wd_progress = progress;
			q->wd_since = jiffies;
			continue;
		}
		if (time_before(jiffies, q->wd_since +
				msecs_to_jiffies(timeout_ms)))
			continue;
		if (kiln_disable_recovery) {
			drm_warn_once(&kdev->drm, "queue %u hung; recovery disabled\n",
				      i);
			continue;
		}
		if (q->wd_hung &&
		    READ_ONCE(q->completed) == q->wd_hung_completed) {
			kiln_device_recover(kdev, q,
					    "queue hung again before completing a job");
			goto out;
		}
		kiln_queue_recover(q, -ETIMEDOUT);
	}
out:
	if (busy && !kdev->lost)
		kiln_watchdog_kick(kdev);
	drm_dev_exit(idx);
}

static void kiln_reset_work_fn(struct work_struct *work)
{
	struct kiln_device *kdev = container_of(work, struct kiln_device,
						reset_work);
	int idx;

	if (!drm_dev_enter(&kdev->drm, &idx)) {
		atomic_set(&kdev->reset_pending, 0);
		return;
	}
	mutex_lock(&kdev->reset_lock);
	atomic_set(&kdev->reset_pending, 0);
	if (!kdev->pci_reset_active)
		kiln_device_recover(kdev, NULL, kdev->reset_reason ?: "requested");
	mutex_unlock(&kdev->reset_lock);
	drm_dev_exit(idx);
}

int kiln_reset_init(struct kiln_device *kdev)
{
	mutex_init(&kdev->reset_lock);
	INIT_DELAYED_WORK(&kdev->watchdog, kiln_watchdog_fn);
	INIT_WORK(&kdev->reset_work, kiln_reset_work_fn);
	kdev->reset_wq = alloc_ordered_workqueue("kiln-reset-%s", WQ_MEM_RECLAIM,
						 pci_name(kdev->pdev));
	return kdev->reset_wq ? 0 : -ENOMEM;
}

void kiln_reset_fini(struct kiln_device *kdev)
{
	if (!kdev->reset_wq)
		return;
	cancel_delayed_work_sync(&kdev->watchdog);
	cancel_work_sync(&kdev->reset_work);
	destroy_workqueue(kdev->reset_wq);
	kdev->reset_wq = NULL;
}

/* FLR from outside (sysfs reset, VFIO): quiesce before, restore after. */
static void kiln_pci_reset_prepare(struct pci_dev *pdev)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);

	if (!kdev || kdev->own_flr)
		return;
	mutex_lock(&kdev->reset_lock);
	kdev->pci_reset_active = true;
	kiln_reset_stop_all(kdev);
	for (u32 i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++)
		if (kdev->queues[i].sched_ready)
			kiln_queue_process(&kdev->queues[i]);
}

static void kiln_pci_reset_done(struct pci_dev *pdev)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);

	if (!kdev || kdev->own_flr || !kdev->pci_reset_active)
		return;
	if (kiln_hw_soft_reset(kdev))
		kiln_reset_lost(kdev);
	else
		kiln_reset_restart_all(kdev, NULL);
	kdev->pci_reset_active = false;
	mutex_unlock(&kdev->reset_lock);
}

const struct pci_error_handlers kiln_pci_err_handlers = {
	.reset_prepare = kiln_pci_reset_prepare,
	.reset_done = kiln_pci_reset_done,
};
