// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: device identification and global control.
 */

#include <linux/bitfield.h>
#include <linux/iopoll.h>

#include "kiln_drv.h"
#include "kiln_hw.h"

#define KILN_READY_TIMEOUT_US	(1000 * USEC_PER_MSEC)

/*
 * Check that this is a device we know how to drive: the interface major
 * must match the one the driver was written for, and so must the
 * firmware major (the firmware defines the packet semantics).
 */
int kiln_hw_probe(struct kiln_device *kdev)
{
	struct drm_device *drm = &kdev->drm;

	kdev->chip_id = kiln_rd32(kdev, KILN_REG_CHIP_ID);
	kdev->revision = kiln_rd32(kdev, KILN_REG_REVISION);
	kdev->fw_version = kiln_rd32(kdev, KILN_REG_FW_VERSION);
	kdev->iface_version = kiln_rd32(kdev, KILN_REG_IFACE_VERSION);

	if (kdev->chip_id != KILN_CHIP_ID) {
		drm_err(drm, "unexpected chip id 0x%x (expected 0x%x); refusing to bind\n",
			kdev->chip_id, KILN_CHIP_ID);
		return -ENODEV;
	}
	if (KILN_VERSION_MAJOR(kdev->iface_version) != KILN_IFACE_VERSION_MAJOR) {
		drm_err(drm, "device interface version %u.%u.%u is incompatible with this driver (needs %u.x); refusing to bind\n",
			KILN_VERSION_MAJOR(kdev->iface_version),
			KILN_VERSION_MINOR(kdev->iface_version),
			KILN_VERSION_PATCH(kdev->iface_version),
			KILN_IFACE_VERSION_MAJOR);
		return -ENODEV;
	}
	if (KILN_VERSION_MAJOR(kdev->fw_version) != KILN_FW_VERSION_MAJOR) {
		drm_err(drm, "device firmware version %u.%u.%u is incompatible with this driver (needs %u.x); refusing to bind\n",
			KILN_VERSION_MAJOR(kdev->fw_version),
			KILN_VERSION_MINOR(kdev->fw_version),
			KILN_VERSION_PATCH(kdev->fw_version),
			KILN_FW_VERSION_MAJOR);
		return -ENODEV;
	}

	kdev->num_queues = min_t(u32, kiln_rd32(kdev, KILN_REG_NUM_QUEUES),
				 KILN_NUM_QUEUES);
	kdev->pe_grid = kiln_rd32(kdev, KILN_REG_PE_GRID);
	kdev->local_mem_size = kiln_rd32(kdev, KILN_REG_LOCAL_MEM_SIZE);
	kdev->features = kiln_rd32(kdev, KILN_REG_FEATURES);
	kdev->dram_size = kiln_rd64(kdev, KILN_REG_DRAM_SIZE);
	kdev->sram_size = kiln_rd64(kdev, KILN_REG_SRAM_SIZE);
	kdev->max_asids = min_t(u32, kiln_rd32(kdev, KILN_REG_MAX_CONTEXTS),
				KILN_MAX_CONTEXTS);
	kdev->clock_mhz = kiln_rd32(kdev, KILN_REG_CLOCK_MHZ);

	if (kdev->num_queues < 2 || kdev->max_asids < 2 ||
	    kiln_rd32(kdev, KILN_REG_NUM_VECTORS) < KILN_NUM_VECTORS) {
		drm_err(drm, "device reports %u queues, %u contexts, %u vectors; refusing to bind\n",
			kdev->num_queues, kdev->max_asids,
			kiln_rd32(kdev, KILN_REG_NUM_VECTORS));
		return -ENODEV;
	}
	if (!(kdev->features & KILN_FEATURE_SRAM))
		kdev->sram_size = 0;
	kdev->dram_size = min(kdev->dram_size, KILN_PA_DRAM_MAX);
	kdev->sram_size = min(kdev->sram_size, KILN_SRAM_SIZE);

	drm_info(drm, "Kiln K1 rev %u, firmware %u.%u.%u, interface %u.%u, %ux%u PEs, %llu MiB DRAM, %llu MiB SRAM, %u queues\n",
		 kdev->revision, KILN_VERSION_MAJOR(kdev->fw_version),
		 KILN_VERSION_MINOR(kdev->fw_version),
		 KILN_VERSION_PATCH(kdev->fw_version),
		 KILN_VERSION_MAJOR(kdev->iface_version),
		 KILN_VERSION_MINOR(kdev->iface_version),
		 FIELD_GET(KILN_PE_GRID_WIDTH_MASK, kdev->pe_grid),
		 FIELD_GET(KILN_PE_GRID_HEIGHT_MASK, kdev->pe_grid),
		 kdev->dram_size >> 20, kdev->sram_size >> 20,
		 kdev->num_queues);
	return 0;
}

bool kiln_hw_fatal(struct kiln_device *kdev)
{
	u32 status = kiln_rd32(kdev, KILN_REG_STATUS);

	/* All ones: the device fell off the bus. */
	return status == ~0u || (status & KILN_STATUS_REG_FATAL);
}

/* CONTROL.SOFT_RESET, then wait for READY without FATAL. */
int kiln_hw_soft_reset(struct kiln_device *kdev)
{
	u32 status;
	int ret;

	kiln_wr32(kdev, KILN_REG_CONTROL, KILN_CONTROL_SOFT_RESET);
	ret = readl_poll_timeout(kdev->regs + KILN_REG_STATUS, status,
				 status != ~0u &&
				 (status & KILN_STATUS_REG_READY),
				 1000, KILN_READY_TIMEOUT_US);
	/* READY: the reset is complete; FATAL still set: it did not help. */
	if (!ret && (status & KILN_STATUS_REG_FATAL))
		ret = -EIO;
	if (ret)
		drm_err(&kdev->drm, "soft reset failed (status 0x%x)\n",
			status);
	return ret;
}

/* Program every queue the driver uses and let the device take doorbells. */
int kiln_hw_start(struct kiln_device *kdev)
{
	u32 i;

	kiln_wr32(kdev, KILN_REG_IRQ_MASK, 0);
	kiln_wr32(kdev, KILN_REG_IRQ_STATUS, ~0u);
	kiln_wr32(kdev, KILN_REG_FAULT_STATUS, KILN_FAULT_STATUS_VALID);
	for (i = 0; i < kdev->num_queues; i++)
		if (kdev->queues[i].used)
			kiln_queue_hw_init(&kdev->queues[i]);
	kiln_wr32(kdev, KILN_REG_CONTROL, KILN_CONTROL_ENABLE);
	return 0;
}

void kiln_hw_stop(struct kiln_device *kdev)
{
	u32 i;

	kiln_wr32(kdev, KILN_REG_CONTROL, 0);
	for (i = 0; i < kdev->num_queues; i++)
		if (kdev->queues[i].used)
			kiln_wr32(kdev, KILN_REG_QUEUE(i) + KILN_QREG_CONTROL, 0);
	kiln_wr32(kdev, KILN_REG_IRQ_MASK, ~0u);
}
