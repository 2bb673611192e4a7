// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: debugfs, under /sys/kernel/debug/accel/<pci address>/:
 *   info        identity, versions, counters
 *   rings       per-queue ring state (driver and device view)
 *   contexts    every context of every file
 *   vms         address spaces (ASID, page-table pages, faults)
 *   bos         every buffer object and where it is mapped
 *   dram, sram  buddy allocator state
 *   force_reset write anything: full device reset
 */

#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

#include <drm/drm_debugfs.h>
#include <drm/drm_drv.h>
#include <drm/drm_print.h>

#include "kiln_ctx.h"
#include "kiln_debugfs.h"
#include "kiln_drv.h"
#include "kiln_gem.h"
#include "kiln_mmu.h"
#include "kiln_pm.h"
#include "kiln_reset.h"

static struct kiln_device *kiln_debugfs_kdev(struct seq_file *m)
{
	struct drm_debugfs_entry *entry = m->private;

	return to_kiln_device(entry->dev);
}

static int kiln_debugfs_info(struct seq_file *m, void *unused)
{
	struct kiln_device *kdev = kiln_debugfs_kdev(m);
	struct drm_printer p = drm_seq_file_printer(m);
	int idx;

	drm_printf(&p, "chip_id 0x%x revision %u fw 0x%06x iface 0x%06x",
		   kdev->chip_id, kdev->revision, kdev->fw_version,
		   kdev->iface_version);
	drm_printf(&p, " features 0x%x\n", kdev->features);
	drm_printf(&p, "queues %u asids %u pe_grid 0x%x dram %llu sram %llu bar2 %llu\n",
		   kdev->num_queues, kdev->max_asids, kdev->pe_grid,
		   kdev->dram_size, kdev->sram_size,
		   (u64)kdev->dram_bar_size);
	drm_printf(&p, "bos %d host_bytes %lld contexts %d resets %d mmu_faults %d lost %d\n",
		   atomic_read(&kdev->bo_count),
		   atomic64_read(&kdev->host_bytes),
		   atomic_read(&kdev->ctx_count),
		   atomic_read(&kdev->reset_count),
		   atomic_read(&kdev->mmu_faults), kdev->lost);
	drm_printf(&p, "last_error code %u info 0x%x\n",
		   kdev->last_error_code, kdev->last_error_info);
	drm_printf(&p, "last_fault asid %u addr 0x%llx queue %u status 0x%x\n",
		   kdev->fault_asid, kdev->fault_addr, kdev->fault_queue,
		   kdev->fault_status);
	if (!drm_dev_enter(&kdev->drm, &idx))
		return 0;
	/* Reading the registers must not wake the device it reports on. */
	if (kiln_pm_get_if_active(kdev)) {
		drm_printf(&p, "status 0x%x control 0x%x heartbeat %u device_reset_count %u\n",
			   kiln_rd32(kdev, KILN_REG_STATUS),
			   kiln_rd32(kdev, KILN_REG_CONTROL),
			   kiln_rd32(kdev, KILN_REG_HEARTBEAT),
			   kiln_rd32(kdev, KILN_REG_RESET_COUNT));
		kiln_pm_put(kdev);
	} else {
		drm_printf(&p, "registers: the device is in D3hot (runtime suspended)\n");
	}
	drm_dev_exit(idx);
	return 0;
}

static int kiln_debugfs_rings(struct seq_file *m, void *unused)
{
	struct kiln_device *kdev = kiln_debugfs_kdev(m);
	struct drm_printer p = drm_seq_file_printer(m);
	bool awake;
	u32 i;
	int idx;

	if (!drm_dev_enter(&kdev->drm, &idx))
		return -ENODEV;
	awake = kiln_pm_get_if_active(kdev);
	for (i = 0; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];
		u32 base = KILN_REG_QUEUE(i);
		unsigned long flags;
		u32 inflight = 0;
		struct list_head *pos;

		if (!q->used)
			continue;
		spin_lock_irqsave(&q->lock, flags);
		list_for_each(pos, &q->inflight)
			inflight++;
		spin_unlock_irqrestore(&q->lock, flags);
		drm_printf(&p, "q%u%s prio %u entries %u tail %u emitted %llu completed %llu",
			   i, i == KILN_MGMT_QUEUE ? " (mgmt)" : "",
			   q->priority, q->entries, q->tail, q->emitted,
			   q->completed);
		drm_printf(&p, " fence %llu inflight %u contexts %d done %lld failed %lld\n",
			   READ_ONCE(q->shared->fence), inflight,
			   atomic_read(&q->nr_ctx),
			   atomic64_read(&q->jobs_done),
			   atomic64_read(&q->jobs_failed));
		if (!awake) {
			drm_printf(&p, "    hw: in D3hot\n");
			continue;
		}
		drm_printf(&p, "    hw: head %u tail %u status 0x%x error %u error_index %u",
			   kiln_rd32(kdev, base + KILN_QREG_HEAD),
			   kiln_rd32(kdev, base + KILN_QREG_TAIL),
			   kiln_rd32(kdev, base + KILN_QREG_STATUS),
			   kiln_rd32(kdev, base + KILN_QREG_ERROR),
			   kiln_rd32(kdev, base + KILN_QREG_ERROR_INDEX));
		drm_printf(&p, " progress %llu completed %llu\n",
			   kiln_rd64(kdev, base + KILN_QREG_PROGRESS),
			   kiln_rd64(kdev, base + KILN_QREG_COMPLETED));
	}
	if (awake)
		kiln_pm_put(kdev);
	drm_dev_exit(idx);
	return 0;
}

static int kiln_debugfs_contexts(struct seq_file *m, void *unused)
{
	struct drm_printer p = drm_seq_file_printer(m);

	kiln_ctx_print_all(kiln_debugfs_kdev(m), &p);
	return 0;
}

static int kiln_debugfs_vms(struct seq_file *m, void *unused)
{
	struct kiln_device *kdev = kiln_debugfs_kdev(m);
	struct drm_printer p = drm_seq_file_printer(m);
	struct kiln_vm *vm;

	mutex_lock(&kdev->vm_lock);
	list_for_each_entry(vm, &kdev->vm_list, link)
		kiln_vm_print(vm, &p);
	mutex_unlock(&kdev->vm_lock);
	return 0;
}

static int kiln_debugfs_bos(struct seq_file *m, void *unused)
{
	struct drm_printer p = drm_seq_file_printer(m);

	kiln_bo_print_all(kiln_debugfs_kdev(m), &p);
	return 0;
}

static int kiln_debugfs_dram(struct seq_file *m, void *unused)
{
	struct drm_printer p = drm_seq_file_printer(m);

	kiln_vram_print(&kiln_debugfs_kdev(m)->dram, &p);
	return 0;
}

static int kiln_debugfs_sram(struct seq_file *m, void *unused)
{
	struct drm_printer p = drm_seq_file_printer(m);

	kiln_vram_print(&kiln_debugfs_kdev(m)->sram, &p);
	return 0;
}

static const struct drm_debugfs_info kiln_debugfs_list[] = {
	{ "info", kiln_debugfs_info, 0 },
	{ "rings", kiln_debugfs_rings, 0 },
	{ "contexts", kiln_debugfs_contexts, 0 },
	{ "vms", kiln_debugfs_vms, 0 },
	{ "bos", kiln_debugfs_bos, 0 },
	{ "dram", kiln_debugfs_dram, 0 },
	{ "sram", kiln_debugfs_sram, 0 },
};

static ssize_t kiln_force_reset_write(struct file *file,
				      const char __user *ubuf, size_t len,
				      loff_t *ppos)
{
	struct kiln_device *kdev = file->private_data;
	int idx;

	if (!drm_dev_enter(&kdev->drm, &idx))
		return -ENODEV;
	kiln_reset_schedule(kdev, "requested through debugfs");
	kiln_reset_flush(kdev);
	drm_dev_exit(idx);
	return len;
}

static const struct file_operations kiln_force_reset_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = kiln_force_reset_write,
	.llseek = noop_llseek,
};

void kiln_debugfs_init(struct kiln_device *kdev)
{
	struct drm_device *drm = &kdev->drm;

	drm_debugfs_add_files(drm, kiln_debugfs_list,
			      ARRAY_SIZE(kiln_debugfs_list));
	if (drm->debugfs_root)
		debugfs_create_file("force_reset", 0200, drm->debugfs_root,
				    kdev, &kiln_force_reset_fops);
}
