// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: power management.
 *
 * Runtime PM, once the admin allowed it: after autosuspend_delay_ms
 * (KILN_AUTOSUSPEND_MS unless changed in sysfs) without work the PCI core
 * puts the device in D3hot; the next user brings it back to D0. A runtime
 * PM reference keeps it in D0
 *  - for each job, from SUBMIT until the job is freed;
 *  - for each management command (context set-up, TLB invalidation,
 *    clearing memory);
 *  - for each user mapping of device DRAM and each peer device's mapping
 *    of it: both go through BAR2, which is off in D3hot;
 *  - around the register reads of ioctls, sysfs, hwmon and debugfs files.
 * The K1 keeps its state in D3hot (No_Soft_Reset, docs/hardware.md), so
 * nothing is saved: suspending only checks that the device is idle, and
 * resuming checks that its state survived and resets it if not.
 *
 * System sleep: the device may lose its state, so jobs in flight are
 * handled as in a device reset: those not started run after resume, the
 * one that may have been running is re-run only if replayable. The
 * suspend and resume callbacks may run in different tasks, so reset_lock
 * is not held across them: pci_reset_active keeps the watchdog and resets
 * off meanwhile.
 */

#include <linux/cleanup.h>
#include <linux/pm_runtime.h>

#include "kiln_drv.h"
#include "kiln_hw.h"
#include "kiln_pm.h"
#include "kiln_reset.h"

/* Long enough that a training or serving loop never pays for a resume. */
#define KILN_AUTOSUSPEND_MS	100

void kiln_pm_init(struct kiln_device *kdev)
{
	struct device *dev = kdev->drm.dev;

	pm_runtime_set_autosuspend_delay(dev, KILN_AUTOSUSPEND_MS);
	pm_runtime_use_autosuspend(dev);
	/*
	 * Runtime PM stays forbidden, the PCI default, until the admin allows
	 * it (power/control = auto): under TCG a guest CPU's timer has been
	 * seen to stop after many D3hot transitions in quick succession
	 * (docs/reliability.md, Known failures 12).
	 */
	pm_runtime_mark_last_busy(dev);
	/* Drops the reference the PCI core took for probe. */
	pm_runtime_put_autosuspend(dev);
}

/* Undo kiln_pm_init(): the device stays in D0 from here on. */
void kiln_pm_fini(struct kiln_device *kdev)
{
	struct device *dev = kdev->drm.dev;

	pm_runtime_get_noresume(dev);
	pm_runtime_forbid(dev);
	pm_runtime_dont_use_autosuspend(dev);
}

int kiln_pm_get(struct kiln_device *kdev)
{
	int ret = pm_runtime_resume_and_get(kdev->drm.dev);

	if (ret)
		drm_err_ratelimited(&kdev->drm, "cannot bring the device to D0: %d\n",
				    ret);
	return ret;
}

/* For register reads that are only worth doing on an awake device. */
bool kiln_pm_get_if_active(struct kiln_device *kdev)
{
	return pm_runtime_get_if_active(kdev->drm.dev) > 0;
}

/* Another reference for something that already holds one. */
void kiln_pm_get_noresume(struct kiln_device *kdev)
{
	pm_runtime_get_noresume(kdev->drm.dev);
}

void kiln_pm_put(struct kiln_device *kdev)
{
	pm_runtime_mark_last_busy(kdev->drm.dev);
	pm_runtime_put_autosuspend(kdev->drm.dev);
}

static bool kiln_pm_jobs_in_flight(struct kiln_device *kdev)
{
	for (u32 i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];

		if (!q->sched_ready)
			continue;
		guard(spinlock_irqsave)(&q->lock);
		if (!list_empty(&q->inflight))
			return true;
	}
	return false;
}

static int kiln_pm_runtime_suspend(struct device *dev)
{
	struct kiln_device *kdev = pci_get_drvdata(to_pci_dev(dev));
	bool busy = true;

	/* Never wait for reset_lock: a reset may be waiting for a resume. */
	if (mutex_trylock(&kdev->reset_lock)) {
		busy = kdev->pci_reset_active ||
		       atomic_read(&kdev->reset_pending) ||
		       kiln_pm_jobs_in_flight(kdev);
		mutex_unlock(&kdev->reset_lock);
	}
	if (busy) {
		drm_dbg_driver(&kdev->drm, "runtime suspend: a reset or jobs in flight; later\n");
		/* A new expiry: the PM core tries again after another delay. */
		pm_runtime_mark_last_busy(dev);
		return -EBUSY;
	}
	drm_dbg_driver(&kdev->drm, "idle: to D3hot\n");
	return 0;
}

static int kiln_pm_runtime_resume(struct device *dev)
{
	struct kiln_device *kdev = pci_get_drvdata(to_pci_dev(dev));
	u32 status, control;

	if (kdev->lost)
		return 0;
	status = kiln_rd32(kdev, KILN_REG_STATUS);
	control = kiln_rd32(kdev, KILN_REG_CONTROL);
	if (status == ~0u || !(status & KILN_STATUS_REG_READY) ||
	    (status & KILN_STATUS_REG_FATAL) ||
	    !(control & KILN_CONTROL_ENABLE)) {
		drm_warn(&kdev->drm, "device lost its state in D3hot (status 0x%x, control 0x%x); resetting it\n",
			 status, control);
		kiln_reset_schedule(kdev, "state lost in D3hot");
	}
	return 0;
}

static int kiln_pm_suspend(struct device *dev)
{
	struct kiln_device *kdev = pci_get_drvdata(to_pci_dev(dev));

	scoped_guard(mutex, &kdev->reset_lock) {
		if (kdev->lost)
			return 0;
		kiln_reset_quiesce_locked(kdev);
		kiln_hw_stop(kdev);
	}
	cancel_delayed_work_sync(&kdev->watchdog);
	return 0;
}

static int kiln_pm_resume(struct device *dev)
{
	struct kiln_device *kdev = pci_get_drvdata(to_pci_dev(dev));

	scoped_guard(mutex, &kdev->reset_lock) {
		if (kdev->pci_reset_active)
			kiln_reset_restore_locked(kdev);
	}
	return 0;
}

const struct dev_pm_ops kiln_pm_ops = {
	SYSTEM_SLEEP_PM_OPS(kiln_pm_suspend, kiln_pm_resume)
	RUNTIME_PM_OPS(kiln_pm_runtime_suspend, kiln_pm_runtime_resume, NULL)
};
