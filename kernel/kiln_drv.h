/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln K1 accelerator driver: device-wide state.
 */
#ifndef KILN_DRV_H
#define KILN_DRV_H

#include <linux/atomic.h>
#include <linux/idr.h>
#include <linux/io.h>
#include <linux/io-64-nonatomic-lo-hi.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>

#include <drm/drm_device.h>
#include <drm/drm_file.h>
#include <drm/drm_print.h>

#include <kiln/hw/kiln_regs.h>
#include <kiln/hw/kiln_packets.h>
#include <kiln/hw/kiln_mmu.h>
#include <kiln/hw/kiln_status.h>
#include <uapi/drm/kiln_accel.h>

#include "kiln_queue.h"
#include "kiln_vram.h"

#define KILN_DRIVER_NAME	"kiln"
#define KILN_DRIVER_DESC	"Kiln K1 accelerator"

/* Queue 0 belongs to the driver: context set-up and TLB invalidation. */
#define KILN_MGMT_QUEUE		0

/* Device VA range handed out to buffer objects. */
#define KILN_VA_START		0x100000ull
#define KILN_VA_END		KILN_VA_MAX

/* Submission limits, reported through GET_PARAM. */
#define KILN_MAX_SUBMIT_BOS	4096
#define KILN_MAX_SUBMIT_SYNCS	256
#define KILN_MAX_CTX		256	/* contexts per device */

extern unsigned int kiln_job_timeout_ms;
extern unsigned int kiln_ring_entries;
extern unsigned int kiln_host_mem_percent;
extern unsigned int kiln_max_host_bos;
extern unsigned int kiln_max_watchdog_mcycles;
extern unsigned int kiln_max_file_jobs;
extern unsigned int kiln_max_file_contexts;
extern bool kiln_disable_recovery;

/* Runs what must outlive a device: see kiln_job_release(). */
extern struct workqueue_struct *kiln_release_wq;

struct kiln_device {
	struct drm_device drm;
	struct pci_dev *pdev;
	void __iomem *regs;
	resource_size_t dram_bar_start;
	resource_size_t dram_bar_size;

	/* Identity and geometry read at probe */
	u32 chip_id;
	u32 revision;
	u32 fw_version;
	u32 iface_version;
	u32 features;
	u32 num_queues;
	u32 pe_grid;
	u32 local_mem_size;
	u32 max_asids;
	u32 clock_mhz;
	u64 dram_size;
	u64 sram_size;

	struct kiln_queue queues[KILN_NUM_QUEUES];

	/* Management queue: one privileged command at a time. */
	struct mutex mgmt_lock;
	wait_queue_head_t mgmt_wq;

	struct kiln_vram dram;
	struct kiln_vram sram;

	/* Address spaces (one per open file), for reset rebuild */
	struct mutex vm_lock;
	struct list_head vm_list;
	struct ida asid_ida;

	/* Contexts, for debugfs and accounting */
	struct mutex ctx_lock;
	struct list_head ctx_list;
	atomic_t ctx_count;

	/* Buffer objects, for debugfs and accounting */
	struct mutex bo_lock;
	struct list_head bo_list;
	atomic_t bo_count;
	atomic64_t host_bytes;

	/* run_job and free_job of every queue's scheduler; see kiln_job.c */
	struct workqueue_struct *sched_wq;

	/* Recovery: an ordered workqueue runs the watchdog and resets. */
	struct workqueue_struct *reset_wq;
	struct delayed_work watchdog;
	struct work_struct reset_work;
	atomic_t reset_pending;		/* device reset requested */
	const char *reset_reason;
	struct mutex reset_lock;	/* one recovery at a time */
	bool in_reset;			/* management queue unusable (mgmt_lock) */
	bool mgmt_abort;		/* a reset waits for mgmt_lock */
	bool own_flr;			/* our FLR: skip the PCI reset hooks */
	bool pci_reset_active;		/* between a PCI quiesce and restore */
	bool pci_hw_reset;		/* ... and the device was reset since */
	unsigned long pci_error_since;	/* jiffies | 1 of an AER error; 0: none */
	bool lost;			/* recovery failed: device unusable */
	atomic_t reset_count;
	atomic_t mmu_faults;
	u32 last_error_code;
	u32 last_error_info;

	/* Last MMU fault seen on the fault vector */
	u32 fault_asid;
	u32 fault_status;
	u64 fault_addr;
	u32 fault_queue;

	bool irqs_requested;

	/*
	 * Page tables, VAs and memory that the device may still reach through
	 * stale TLB entries, because a TLB_INVAL or an unbind failed. They
	 * are released once a device reset has finished (tlb_gen moved on,
	 * under mgmt_lock) or the hardware is stopped for good (stale_all).
	 */
	spinlock_t stale_lock;
	struct list_head stale_list;
	struct work_struct stale_work;
	u32 tlb_gen;
	bool stale_all;
};

/* Per open file: the address space and the contexts created in it. */
struct kiln_file {
	struct kiln_device *kdev;
	struct kiln_vm *vm;
	struct xarray ctxs;		/* ctx_id -> struct kiln_ctx */
	atomic_t nr_ctxs;
};

static inline struct kiln_device *to_kiln_device(struct drm_device *drm)
{
	return container_of(drm, struct kiln_device, drm);
}

static inline u32 kiln_rd32(struct kiln_device *kdev, u32 reg)
{
	return readl(kdev->regs + reg);
}

static inline void kiln_wr32(struct kiln_device *kdev, u32 reg, u32 val)
{
	writel(val, kdev->regs + reg);
}

static inline u64 kiln_rd64(struct kiln_device *kdev, u32 reg)
{
	return lo_hi_readq(kdev->regs + reg);
}

static inline void kiln_wr64(struct kiln_device *kdev, u32 reg, u64 val)
{
	lo_hi_writeq(val, kdev->regs + reg);
}

/* Device physical address of host memory the device reaches by DMA. */
static inline u64 kiln_host_pa(dma_addr_t addr)
{
	return KILN_PA_HOST_BASE | (u64)addr;
}

#endif /* KILN_DRV_H */
