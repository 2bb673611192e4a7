// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: hang detection and recovery.
 *
 * A watchdog runs every KILN_WATCHDOG_MS while jobs are in flight. It
 * retires jobs whose interrupt was lost, and tracks for each queue the
 * job at the head of the ring and the queue's PROGRESS register. A job
 * hangs when PROGRESS has not moved for its context's timeout while the
 * queue had a worker (a queue that waits for one, STATUS.READY, is
 * starved by other queues' kernels, not hung): long jobs that keep making
 * progress are never killed here; the per-launch watchdog cap bounds
 * them (kiln_ctx.c). The scheduler's own timeout is not used (6.12 cannot
 * express "still running"; newer kernels would return
 * DRM_GPU_SCHED_STAT_NO_HANG from timedout_job for it). The watchdog also
 * cancels the jobs of closed contexts at the head of a ring: it stops
 * the queue, which abandons the running packet, and runs the rest again.
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
 * Only the blamed context is banned. An innocent job that was running
 * when the hardware was reset runs again from the start only if its
 * submitter marked it replayable; otherwise it ends with status
 * INTERRUPTED (kiln_queue_replay()).
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
#include "kiln_pm.h"
#include "kiln_reset.h"

#define KILN_WATCHDOG_MS	100
#define KILN_STUCK_MS		(2 * KILN_WATCHDOG_MS)
/*
 * After a failed AER recovery (the link did not come back from its reset)
 * the PCI core calls no driver callback: past this the device is given up
 * for lost. The core itself waits up to 60 s for a device after a reset.
 */
#define KILN_PCI_RECOVERY_MS	65000

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

static bool kiln_job_doomed(struct kiln_job *job)
{
	return READ_ONCE(job->ctx->banned) || READ_ONCE(job->ctx->closed);
}

/*
 * With the queue stopped and reset, decide the fate of each job in it,
 * then write the survivors into the ring again. Only the head job can
 * have started (packets run in order):
 *  - if its status record was written, it finished: it retires as such;
 *  - if @guilty_error, it hung or stopped the queue: it fails with that
 *    error and its context is banned;
 *  - after a device reset it may have run part way; it is only re-run
 *    if its submitter said it may be (DRM_KILN_SUBMIT_REPLAYABLE),
 *    otherwise it ends with status INTERRUPTED (-EAGAIN).
 * Jobs of banned or closed contexts are cancelled (-ECANCELED); the
 * others never started and are written again.
 */
static void kiln_queue_replay(struct kiln_queue *q, int guilty_error,
			      bool device_reset)
{
	struct kiln_device *kdev = q->kdev;
	struct kiln_job *job, *tmp;
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	job = list_first_entry_or_null(&q->inflight, struct kiln_job, inflight);
	if (job && (q->shared->status[job->slot].flags & KILN_JOB_STATUS_DONE)) {
		kiln_job_retire(q, job, 0);
	} else if (job && guilty_error) {
		drm_err_ratelimited(&kdev->drm, "queue %u: job %llu of context %u (pid %d) %s; context banned\n",
				    q->id, job->seqno, job->ctx->id, job->ctx->pid,
				    guilty_error == -ETIMEDOUT ?
				    "made no progress" : "stopped the queue");
		kiln_ctx_ban(job->ctx);
		kiln_job_retire(q, job, guilty_error);
	} else if (job && device_reset && !kiln_job_doomed(job) &&
		   !(job->flags & DRM_KILN_SUBMIT_REPLAYABLE)) {
		kiln_job_retire(q, job, -EAGAIN);
	}
	list_for_each_entry_safe(job, tmp, &q->inflight, inflight) {
		if (kiln_job_doomed(job)) {
			kiln_job_retire(q, job, -ECANCELED);
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
		kiln_job_emit(q, job);
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
		kiln_job_fail_all(q, -EIO);
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
		kiln_queue_replay(q, q == guilty ? -ETIMEDOUT : 0, true);
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
	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++) {
		kdev->queues[i].wd_hung = false;
		kdev->queues[i].wd_stuck_since = 0;
	}
	kiln_reset_stop_all(kdev);
	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++)
		if (kdev->queues[i].sched_ready)
			kiln_job_retire_completed(&kdev->queues[i]);

	if (kiln_reset_hw(kdev)) {
		kiln_reset_lost(kdev);
		return;
	}
	kiln_reset_restart_all(kdev, guilty);
	drm_info(&kdev->drm, "device reset complete (%d resets)\n",
		 atomic_read(&kdev->reset_count));
}

/*
 * Stop and reset @q, end its head job with @error (0: no job is to blame,
 * the queue is only cleared of cancelled work) and run the rest again.
 */
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
	kiln_job_retire_completed(q);
	kiln_queue_replay(q, error, false);
	kiln_sched_restore_parents(q);
	drm_sched_start(&q->sched);
	if (error) {
		q->wd_hung = error == -ETIMEDOUT;
		q->wd_hung_completed = READ_ONCE(q->completed);
	}
}

/*
 * True once @q has had work for KILN_STUCK_MS that the device neither
 * executes (RUNNING), nor has ready for a worker (READY), nor waits in
 * (WAITING): a state no job can cause.
 */
static bool kiln_queue_stuck(struct kiln_queue *q, u32 status)
{
	const u32 alive = KILN_QSTATUS_IDLE | KILN_QSTATUS_RUNNING |
			  KILN_QSTATUS_READY | KILN_QSTATUS_WAITING |
			  KILN_QSTATUS_STOPPED;

	if (!(status & KILN_QSTATUS_ENABLED) || (status & alive)) {
		q->wd_stuck_since = 0;
		return false;
	}
	if (!q->wd_stuck_since) {
		q->wd_stuck_since = jiffies | 1;
		return false;
	}
	return time_after_eq(jiffies, q->wd_stuck_since +
			     msecs_to_jiffies(KILN_STUCK_MS));
}

/* True while an AER recovery may still finish; fails all work once it cannot */
static bool kiln_pci_recovery_pending(struct kiln_device *kdev)
{
	if (!kdev->pci_error_since)
		return false;
	if (time_before(jiffies, kdev->pci_error_since +
			msecs_to_jiffies(KILN_PCI_RECOVERY_MS)))
		return true;
	drm_err(&kdev->drm, "PCI error recovery did not finish in %u ms\n",
		KILN_PCI_RECOVERY_MS);
	kdev->pci_error_since = 0;
	kdev->pci_reset_active = false;
	kiln_reset_lost(kdev);
	return false;
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
	/* Jobs keep the device in D0: asleep, it has none to watch. */
	if (!kiln_pm_get_if_active(kdev)) {
		drm_dev_exit(idx);
		return;
	}
	mutex_lock(&kdev->reset_lock);
	if (kdev->lost)
		goto out;
	if (kdev->pci_reset_active) {
		busy = kiln_pci_recovery_pending(kdev);
		goto out;
	}

	if (kiln_hw_fatal(kdev)) {
		kiln_device_recover(kdev, NULL, "device reports a fatal error");
		goto out;
	}

	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];
		struct kiln_job *head;
		unsigned long flags;
		u32 timeout_ms = 0, status;
		u64 seqno = 0, progress;
		bool doomed = false, starved;

		if (!q->sched_ready)
			continue;
		/* Catches lost interrupts. */
		kiln_job_retire_completed(q);

		spin_lock_irqsave(&q->lock, flags);
		head = list_first_entry_or_null(&q->inflight, struct kiln_job,
						inflight);
		if (head) {
			seqno = head->hw_seqno;
			timeout_ms = head->ctx->timeout_ms;
			doomed = kiln_job_doomed(head);
		}
		spin_unlock_irqrestore(&q->lock, flags);
		if (!head) {
			q->wd_seqno = 0;
			continue;
		}
		busy = true;

		status = kiln_rd32(kdev, KILN_REG_QUEUE(i) + KILN_QREG_STATUS);
		if (status == ~0u)
			status = 0;
		/* STATUS.STOPPED too: the error interrupt may have been lost. */
		if (READ_ONCE(q->stopped) || (status & KILN_QSTATUS_STOPPED)) {
			if (kiln_disable_recovery)
				continue;
			kiln_queue_recover(q, -EIO);
			continue;
		}
		/* The head job's context was closed: cancel its work now. */
		if (doomed) {
			kiln_queue_recover(q, 0);
			continue;
		}
		/*
		 * Work the device neither runs, nor has ready, nor waits in:
		 * the queue itself is stuck, no job is to blame. Only a
		 * device reset clears that.
		 */
		if (kiln_queue_stuck(q, status)) {
			if (kiln_disable_recovery)
				continue;
			kiln_device_recover(kdev, NULL, "a queue is not executed");
			goto out;
		}
		if (q->wd_stuck_since)
			continue;

		progress = kiln_rd64(kdev, KILN_REG_QUEUE(i) + KILN_QREG_PROGRESS);
		/* Waiting for a worker that other queues' kernels hold is no hang. */
		starved = status & KILN_QSTATUS_READY;
		if (seqno != q->wd_seqno || progress != q->wd_progress || starved) {
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
	mutex_unlock(&kdev->reset_lock);
	kiln_pm_put(kdev);
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
	/* reset_pending keeps the device from suspending until here. */
	if (kiln_pm_get(kdev)) {
		atomic_set(&kdev->reset_pending, 0);
		drm_dev_exit(idx);
		return;
	}
	mutex_lock(&kdev->reset_lock);
	atomic_set(&kdev->reset_pending, 0);
	if (!kdev->pci_reset_active)
		kiln_device_recover(kdev, NULL, kdev->reset_reason ?: "requested");
	mutex_unlock(&kdev->reset_lock);
	kiln_pm_put(kdev);
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

/*
 * Resets the PCI core drives — an FLR from outside (sysfs reset, VFIO) or
 * AER recovery — are bracketed by a quiesce and a restore. For an FLR the
 * core always calls reset_done after reset_prepare, and reset_lock is held
 * in between: the watchdog and the driver's own resets wait. AER recovery
 * does not hold it across its callbacks, because after a failed link reset
 * the core calls none of them again: pci_reset_active keeps the watchdog
 * and resets off instead, and the watchdog gives the device up after
 * KILN_PCI_RECOVERY_MS.
 */
void kiln_reset_quiesce_locked(struct kiln_device *kdev)
{
	lockdep_assert_held(&kdev->reset_lock);
	kdev->pci_reset_active = true;
	kdev->pci_hw_reset = false;
	kiln_reset_stop_all(kdev);
	for (u32 i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++)
		if (kdev->queues[i].sched_ready)
			kiln_job_retire_completed(&kdev->queues[i]);
}

/* Bring the device back after the core's reset, or reset it here. */
void kiln_reset_restore_locked(struct kiln_device *kdev)
{
	lockdep_assert_held(&kdev->reset_lock);
	if (!kdev->pci_hw_reset && kiln_hw_soft_reset(kdev))
		kiln_reset_lost(kdev);
	else
		kiln_reset_restart_all(kdev, NULL);
	kdev->pci_reset_active = false;
}

static void kiln_pci_quiesce(struct kiln_device *kdev)
{
	mutex_lock(&kdev->reset_lock);
	kiln_reset_quiesce_locked(kdev);
}

static void kiln_pci_restore(struct kiln_device *kdev)
{
	kiln_reset_restore_locked(kdev);
	mutex_unlock(&kdev->reset_lock);
}

static void kiln_pci_reset_prepare(struct pci_dev *pdev)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);

	if (kdev && !kdev->own_flr)
		kiln_pci_quiesce(kdev);
}

static void kiln_pci_reset_done(struct pci_dev *pdev)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);

	if (kdev && !kdev->own_flr && kdev->pci_reset_active)
		kiln_pci_restore(kdev);
}

/*
 * AER: stop taking work. A non-fatal error leaves MMIO usable (the core
 * calls mmio_enabled); a fatal one freezes the link until the core resets
 * the slot. Either way the device is soft-reset before work resumes, so
 * jobs in flight end as after any device reset (replayed or INTERRUPTED).
 */
static pci_ers_result_t kiln_pci_error_detected(struct pci_dev *pdev,
						pci_channel_state_t state)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);

	if (!kdev)
		return PCI_ERS_RESULT_DISCONNECT;
	drm_err(&kdev->drm, "PCI error reported (channel state %d)\n", state);
	if (state == pci_channel_io_perm_failure) {
		scoped_guard(mutex, &kdev->reset_lock)
			kiln_reset_lost(kdev);
		return PCI_ERS_RESULT_DISCONNECT;
	}
	scoped_guard(mutex, &kdev->reset_lock) {
		if (!kdev->pci_reset_active)
			kiln_reset_quiesce_locked(kdev);
		kdev->pci_error_since = jiffies | 1;
	}
	kiln_watchdog_kick(kdev);
	return state == pci_channel_io_normal ? PCI_ERS_RESULT_CAN_RECOVER :
						PCI_ERS_RESULT_NEED_RESET;
}

static pci_ers_result_t kiln_pci_mmio_enabled(struct pci_dev *pdev)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);

	return kiln_hw_fatal(kdev) ? PCI_ERS_RESULT_NEED_RESET :
				     PCI_ERS_RESULT_RECOVERED;
}

static pci_ers_result_t kiln_pci_slot_reset(struct pci_dev *pdev)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);

	guard(mutex)(&kdev->reset_lock);
	/* given up for lost while the core was still trying */
	if (!kdev->pci_reset_active)
		return PCI_ERS_RESULT_DISCONNECT;
	/*
	 * The link reset put the function in its power-on state: BARs, MSI-X
	 * and bus mastering off. Restore the config space saved at probe;
	 * without bus mastering every DMA of the device would fail.
	 */
	pci_restore_state(pdev);
	pci_set_master(pdev);
	pci_save_state(pdev);
	if (kiln_hw_soft_reset(kdev)) {
		kiln_reset_lost(kdev);
		kdev->pci_reset_active = false;
		kdev->pci_error_since = 0;
		return PCI_ERS_RESULT_DISCONNECT;
	}
	kdev->pci_hw_reset = true;
	return PCI_ERS_RESULT_RECOVERED;
}

static void kiln_pci_resume(struct pci_dev *pdev)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);

	guard(mutex)(&kdev->reset_lock);
	kdev->pci_error_since = 0;
	if (kdev->pci_reset_active)
		kiln_reset_restore_locked(kdev);
	if (!kdev->lost)
		drm_info(&kdev->drm, "recovered from the PCI error (%d resets)\n",
			 atomic_read(&kdev->reset_count));
}

const struct pci_error_handlers kiln_pci_err_handlers = {
	.error_detected = kiln_pci_error_detected,
	.mmio_enabled = kiln_pci_mmio_enabled,
	.slot_reset = kiln_pci_slot_reset,
	.resume = kiln_pci_resume,
	.reset_prepare = kiln_pci_reset_prepare,
	.reset_done = kiln_pci_reset_done,
};
