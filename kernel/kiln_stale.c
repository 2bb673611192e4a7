// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: deferred releases.
 *
 * When a TLB invalidation or an ASID unbind fails, the device may still
 * reach memory, page tables or VAs through stale TLB entries. They are
 * kept on kdev->stale_list until a device reset that started after the
 * failure has finished (the TLB generation moved on) or the hardware is
 * stopped for good, then released from a work item.
 */

#include <linux/spinlock.h>
#include <linux/workqueue.h>

#include <drm/drm_print.h>

#include "kiln_drv.h"
#include "kiln_stale.h"

static bool kiln_stale_due(struct kiln_device *kdev, struct kiln_stale *s)
{
	return READ_ONCE(kdev->stale_all) || s->gen != READ_ONCE(kdev->tlb_gen);
}

static void kiln_stale_run(struct kiln_device *kdev)
{
	struct kiln_stale *s, *tmp;
	LIST_HEAD(due);

	spin_lock(&kdev->stale_lock);
	list_for_each_entry_safe(s, tmp, &kdev->stale_list, link)
		if (kiln_stale_due(kdev, s))
			list_move_tail(&s->link, &due);
	spin_unlock(&kdev->stale_lock);

	/* A release may defer something again (a VM whose unbind failed). */
	list_for_each_entry_safe(s, tmp, &due, link) {
		list_del(&s->link);
		s->release(s);
	}
}

static void kiln_stale_work_fn(struct work_struct *work)
{
	kiln_stale_run(container_of(work, struct kiln_device, stale_work));
}

void kiln_stale_init(struct kiln_device *kdev)
{
	spin_lock_init(&kdev->stale_lock);
	INIT_LIST_HEAD(&kdev->stale_list);
	INIT_WORK(&kdev->stale_work, kiln_stale_work_fn);
}

/*
 * Keep @s until the device can no longer reach it through its TLB: a
 * reset has finished after the failure in TLB generation @gen, or the
 * hardware is stopped for good. Called without any VM lock held.
 */
void kiln_stale_defer(struct kiln_device *kdev, struct kiln_stale *s, u32 gen,
		      void (*release)(struct kiln_stale *s))
{
	bool due;

	s->gen = gen;
	s->release = release;
	spin_lock(&kdev->stale_lock);
	list_add_tail(&s->link, &kdev->stale_list);
	/* Under the lock: once it is dropped, the work may free @s. */
	due = kiln_stale_due(kdev, s);
	spin_unlock(&kdev->stale_lock);
	/* Removed, or reset since: nothing is kept, nothing to report. */
	if (due) {
		kiln_stale_kick(kdev);
		return;
	}
	drm_err_ratelimited(&kdev->drm,
			    "TLB not invalidated; memory kept until the device is reset or removed\n");
}

void kiln_stale_kick(struct kiln_device *kdev)
{
	if (!list_empty_careful(&kdev->stale_list))
		queue_work(system_wq, &kdev->stale_work);
}

/* The hardware is stopped for good (remove): release everything. */
void kiln_stale_release_all(struct kiln_device *kdev)
{
	WRITE_ONCE(kdev->stale_all, true);
	queue_work(system_wq, &kdev->stale_work);
	flush_work(&kdev->stale_work);
}

/*
 * The drm_device goes. Deferred BO mappings hold device references, so
 * only VMs whose unbind failed after removal can be left. The last
 * reference may have been dropped by the work itself.
 */
void kiln_stale_fini(struct kiln_device *kdev)
{
	if (current_work() != &kdev->stale_work)
		cancel_work_sync(&kdev->stale_work);
	WRITE_ONCE(kdev->stale_all, true);
	kiln_stale_run(kdev);
}
