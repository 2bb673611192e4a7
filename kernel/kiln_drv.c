// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln K1 accelerator: PCI driver, DRM accel device, file lifetime,
 * device queries.
 */

#include <linux/bitfield.h>
#include <linux/capability.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/signal.h>
#include <linux/sizes.h>
#include <linux/uaccess.h>

#include <drm/drm_accel.h>
#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_managed.h>
#include <drm/drm_prime.h>

#include "kiln_ctx.h"
#include "kiln_debugfs.h"
#include "kiln_drv.h"
#include "kiln_gem.h"
#include "kiln_hw.h"
#include "kiln_irq.h"
#include "kiln_job.h"
#include "kiln_mmu.h"
#include "kiln_prime.h"
#include "kiln_pm.h"
#include "kiln_reset.h"
#include "kiln_sysfs.h"

unsigned int kiln_job_timeout_ms = 10000;
module_param_named(job_timeout_ms, kiln_job_timeout_ms, uint, 0644);
MODULE_PARM_DESC(job_timeout_ms,
		 "Default time a job may go without progress before it is considered hung (ms, default 10000)");

unsigned int kiln_ring_entries = 512;
module_param_named(ring_entries, kiln_ring_entries, uint, 0444);
MODULE_PARM_DESC(ring_entries,
		 "Packets per job ring, power of two (default 512: 255 jobs in flight per queue)");

unsigned int kiln_host_mem_percent = 50;
module_param_named(host_mem_percent, kiln_host_mem_percent, uint, 0644);
MODULE_PARM_DESC(host_mem_percent,
		 "Share of RAM the host-memory BOs of all Kiln devices together may pin (%, default 50)");

unsigned int kiln_max_host_bos = 32768;
module_param_named(max_host_bos, kiln_max_host_bos, uint, 0644);
MODULE_PARM_DESC(max_host_bos,
		 "Host-memory BOs all Kiln devices together may hold; each takes a file of the system's table (default 32768)");

unsigned int kiln_max_watchdog_mcycles = 1000;
module_param_named(max_watchdog_mcycles, kiln_max_watchdog_mcycles, uint, 0644);
MODULE_PARM_DESC(max_watchdog_mcycles,
		 "Longest a kernel launched by a context without CAP_SYS_ADMIN may run, in million cycles per PE (0: no cap, default 1000)");

unsigned int kiln_max_file_jobs = 1024;
module_param_named(max_file_jobs, kiln_max_file_jobs, uint, 0644);
MODULE_PARM_DESC(max_file_jobs,
		 "Jobs one open file may have submitted and not yet finished (default 1024)");

unsigned int kiln_max_file_contexts = 64;
module_param_named(max_file_contexts, kiln_max_file_contexts, uint, 0644);
MODULE_PARM_DESC(max_file_contexts,
		 "Contexts one open file may hold (default 64)");

struct workqueue_struct *kiln_release_wq;

bool kiln_disable_recovery;
module_param_named(disable_recovery, kiln_disable_recovery, bool, 0644);
MODULE_PARM_DESC(disable_recovery, "Leave hung queues alone (debugging)");

static int kiln_open(struct drm_device *drm, struct drm_file *file)
{
	struct kiln_device *kdev = to_kiln_device(drm);
	struct kiln_file *kfile;
	int ret, idx;

	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;

	kfile = kzalloc(sizeof(*kfile), GFP_KERNEL_ACCOUNT);
	if (!kfile) {
		ret = -ENOMEM;
		goto out;
	}
	kfile->kdev = kdev;
	xa_init_flags(&kfile->ctxs, XA_FLAGS_ALLOC1);
	atomic_set(&kfile->nr_ctxs, 0);

	kfile->vm = kiln_vm_create(kdev);
	if (IS_ERR(kfile->vm)) {
		ret = PTR_ERR(kfile->vm);
		kfree(kfile);
		goto out;
	}
	file->driver_priv = kfile;
	ret = 0;
out:
	drm_dev_exit(idx);
	return ret;
}

/* GEM handles are gone by now (drm_gem_release runs first). */
static void kiln_postclose(struct drm_device *drm, struct drm_file *file)
{
	struct kiln_file *kfile = file->driver_priv;

	kiln_ctx_destroy_all(kfile);
	kiln_vm_put(kfile->vm);
	kfree(kfile);
}

static int kiln_ioctl_get_param(struct drm_device *drm, void *data,
				struct drm_file *file)
{
	struct kiln_device *kdev = to_kiln_device(drm);
	struct drm_kiln_get_param *args = data;
	int ret = 0, idx;

	if (args->index) {
		drm_dbg(drm, "GET_PARAM: index must be zero\n");
		return -EINVAL;
	}
	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;

	switch (args->param) {
	case DRM_KILN_PARAM_DEVICE_ID:
		args->value = kdev->pdev->device;
		break;
	case DRM_KILN_PARAM_REVISION:
		args->value = kdev->revision;
		break;
	case DRM_KILN_PARAM_FW_VERSION:
		args->value = kdev->fw_version;
		break;
	case DRM_KILN_PARAM_IFACE_VERSION:
		args->value = kdev->iface_version;
		break;
	case DRM_KILN_PARAM_NUM_QUEUES:
		args->value = kdev->num_queues - 1;
		break;
	case DRM_KILN_PARAM_PE_GRID:
		args->value = kdev->pe_grid;
		break;
	case DRM_KILN_PARAM_LOCAL_MEM_SIZE:
		args->value = kdev->local_mem_size;
		break;
	case DRM_KILN_PARAM_DRAM_SIZE:
		args->value = kdev->dram_size;
		break;
	case DRM_KILN_PARAM_DRAM_FREE:
		args->value = kiln_vram_free_bytes(&kdev->dram);
		break;
	case DRM_KILN_PARAM_SRAM_SIZE:
		args->value = kdev->sram_size;
		break;
	case DRM_KILN_PARAM_SRAM_FREE:
		args->value = kiln_vram_free_bytes(&kdev->sram);
		break;
	case DRM_KILN_PARAM_VA_START:
		args->value = KILN_VA_START;
		break;
	case DRM_KILN_PARAM_VA_END:
		args->value = KILN_VA_END;
		break;
	case DRM_KILN_PARAM_MAX_CONTEXTS:
		args->value = KILN_MAX_CTX;
		break;
	case DRM_KILN_PARAM_CONTEXTS_IN_USE:
		args->value = atomic_read(&kdev->ctx_count);
		break;
	case DRM_KILN_PARAM_FEATURES:
		args->value = kdev->features;
		break;
	case DRM_KILN_PARAM_JOB_TIMEOUT_MS:
		args->value = READ_ONCE(kiln_job_timeout_ms);
		break;
	case DRM_KILN_PARAM_RESET_COUNT:
		args->value = atomic_read(&kdev->reset_count);
		break;
	case DRM_KILN_PARAM_CLOCK_MHZ:
		args->value = kdev->clock_mhz;
		break;
	case DRM_KILN_PARAM_MAX_SUBMIT_BOS:
		args->value = KILN_MAX_SUBMIT_BOS;
		break;
	case DRM_KILN_PARAM_MAX_SUBMIT_SYNCS:
		args->value = KILN_MAX_SUBMIT_SYNCS;
		break;
	case DRM_KILN_PARAM_MAX_CMD_SIZE:
		args->value = KILN_INDIRECT_MAX_SIZE;
		break;
	case DRM_KILN_PARAM_UAPI_VERSION:
		args->value = KILN_UAPI_VERSION_MAJOR << 16 |
			      KILN_UAPI_VERSION_MINOR;
		break;
	case DRM_KILN_PARAM_BO_COUNT:
		args->value = atomic_read(&kdev->bo_count);
		break;
	case DRM_KILN_PARAM_HOST_BO_BYTES:
		args->value = atomic64_read(&kdev->host_bytes);
		break;
	case DRM_KILN_PARAM_MAX_QUEUED_JOBS:
		args->value = KILN_MAX_QUEUED_JOBS;
		break;
	case DRM_KILN_PARAM_HOST_MEM_LIMIT:
		args->value = kiln_host_mem_limit();
		break;
	case DRM_KILN_PARAM_MAX_FILES:
		args->value = kdev->max_asids - 1;
		break;
	case DRM_KILN_PARAM_MAX_WATCHDOG_MCYCLES:
		args->value = capable(CAP_SYS_ADMIN) ? 0 :
			      READ_ONCE(kiln_max_watchdog_mcycles);
		break;
	case DRM_KILN_PARAM_MAX_HOST_BOS:
		args->value = READ_ONCE(kiln_max_host_bos);
		break;
	case DRM_KILN_PARAM_MAX_FILE_JOBS:
		args->value = READ_ONCE(kiln_max_file_jobs);
		break;
	case DRM_KILN_PARAM_MAX_FILE_CONTEXTS:
		args->value = READ_ONCE(kiln_max_file_contexts);
		break;
	case DRM_KILN_PARAM_FILES_IN_USE: {
		struct kiln_vm *vm;
		u64 n = 0;

		mutex_lock(&kdev->vm_lock);
		list_for_each_entry(vm, &kdev->vm_list, link)
			n++;
		mutex_unlock(&kdev->vm_lock);
		args->value = n;
		break;
	}
	default:
		drm_dbg(drm, "GET_PARAM: unknown param %u\n", args->param);
		ret = -EINVAL;
	}
	drm_dev_exit(idx);
	return ret;
}

/* Size-negotiated copy-out: short buffers get a prefix, long ones zeros. */
static int kiln_copy_query(struct drm_kiln_query_info *args, const void *info,
			   u32 size)
{
	void __user *uptr = u64_to_user_ptr(args->ptr);
	u32 n = min(args->size, size);

	if (!args->ptr) {
		args->size = size;
		return 0;
	}
	if (copy_to_user(uptr, info, n))
		return -EFAULT;
	if (args->size > size && clear_user(uptr + size, args->size - size))
		return -EFAULT;
	args->size = size;
	return 0;
}

static int kiln_ioctl_query_info(struct drm_device *drm, void *data,
				 struct drm_file *file)
{
	struct kiln_device *kdev = to_kiln_device(drm);
	struct drm_kiln_query_info *args = data;
	int ret = 0, idx;

	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;

	switch (args->type) {
	/* Deprecated: GET_PARAM has every field. Kept for old user space. */
	case DRM_KILN_QUERY_DEVICE: {
		struct drm_kiln_device_info info = {
			.device_id = kdev->pdev->device,
			.revision = kdev->revision,
			.fw_version = kdev->fw_version,
			.iface_version = kdev->iface_version,
			.num_queues = kdev->num_queues - 1,
			.pe_grid_width = FIELD_GET(KILN_PE_GRID_WIDTH_MASK,
						   kdev->pe_grid),
			.pe_grid_height = FIELD_GET(KILN_PE_GRID_HEIGHT_MASK,
						    kdev->pe_grid),
			.local_mem_size = kdev->local_mem_size,
			.dram_size = kdev->dram_size,
			.dram_free = kiln_vram_free_bytes(&kdev->dram),
			.sram_size = kdev->sram_size,
			.sram_free = kiln_vram_free_bytes(&kdev->sram),
			.va_start = KILN_VA_START,
			.va_end = KILN_VA_END,
			.max_contexts = KILN_MAX_CTX,
			.contexts_in_use = atomic_read(&kdev->ctx_count),
			.features = kdev->features,
			.job_timeout_ms = READ_ONCE(kiln_job_timeout_ms),
			.reset_count = atomic_read(&kdev->reset_count),
			.clock_mhz = kdev->clock_mhz,
		};

		ret = kiln_copy_query(args, &info, sizeof(info));
		break;
	}
	case DRM_KILN_QUERY_TELEMETRY: {
		struct drm_kiln_telemetry t = {};

		if (!(kdev->features & KILN_FEATURE_TELEMETRY)) {
			ret = -EOPNOTSUPP;
			break;
		}
		ret = kiln_pm_get(kdev);
		if (ret)
			break;
		t.temperature_mc = kiln_rd32(kdev, KILN_REG_TEMP_MC);
		t.power_mw = kiln_rd32(kdev, KILN_REG_POWER_MW);
		t.pe_clock_mhz = kiln_rd32(kdev, KILN_REG_PE_CLOCK_MHZ);
		t.mem_clock_mhz = kiln_rd32(kdev, KILN_REG_MEM_CLOCK_MHZ);
		t.busy_ns = kiln_rd64(kdev, KILN_REG_BUSY_NS);
		t.dma_bytes = kiln_rd64(kdev, KILN_REG_DMA_BYTES);
		t.packets = kiln_rd64(kdev, KILN_REG_PACKETS);
		t.launches = kiln_rd64(kdev, KILN_REG_LAUNCHES);
		t.device_time_ns = kiln_rd64(kdev, KILN_REG_DEVICE_TIME);
		t.total_cycles = kiln_rd64(kdev, KILN_REG_TOTAL_CYCLES);
		t.energy_uj = kiln_rd64(kdev, KILN_REG_ENERGY_UJ);
		kiln_pm_put(kdev);
		ret = kiln_copy_query(args, &t, sizeof(t));
		break;
	}
	default:
		drm_dbg(drm, "QUERY_INFO: unknown type %u\n", args->type);
		ret = -EINVAL;
	}
	drm_dev_exit(idx);
	return ret;
}

static const struct drm_ioctl_desc kiln_ioctls[] = {
	DRM_IOCTL_DEF_DRV(KILN_GET_PARAM, kiln_ioctl_get_param, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_QUERY_INFO, kiln_ioctl_query_info, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_BO_CREATE, kiln_ioctl_bo_create, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_BO_INFO, kiln_ioctl_bo_info, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_BO_WAIT, kiln_ioctl_bo_wait, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_CTX_CREATE, kiln_ioctl_ctx_create, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_CTX_DESTROY, kiln_ioctl_ctx_destroy, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_SUBMIT, kiln_ioctl_submit, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_CTX_STATUS, kiln_ioctl_ctx_status, DRM_RENDER_ALLOW),
	DRM_IOCTL_DEF_DRV(KILN_JOB_STATUS, kiln_ioctl_job_status, DRM_RENDER_ALLOW),
};

/*
 * Every close() of a descriptor, before the last one releases the file.
 * The GEM close hooks run before postclose and wait for the jobs using
 * each BO, so a process exiting with jobs queued would run them all (or
 * wait for dependencies that may never come) in its exit path. When an
 * exiting process drops the file's last reference, its work is given up
 * instead: its contexts are closed, which cancels their jobs, queued or
 * running (docs/uapi.md). A killed process also has its ASID unbound, so
 * that its jobs still in the rings fail at once. An ordinary close() by
 * a live process lets the jobs finish.
 */
static int kiln_flush(struct file *filp, fl_owner_t id)
{
	struct drm_file *file = filp->private_data;
	struct kiln_file *kfile = file ? file->driver_priv : NULL;

	if (!kfile || !(current->flags & PF_EXITING) || file_count(filp) != 1)
		return 0;
	if (kiln_ctx_close_all(kfile) && current->exit_code == SIGKILL)
		kiln_vm_abandon(kfile->vm);
	return 0;
}

/*
 * The core ioctls a render node allows are the ones that make sense on
 * an accel node too; the DRM core lets the others through on accel
 * minors, and some of them (GET_UNIQUE, GET_MAGIC, ...) assume a primary
 * node and oops. They never reach the core from a Kiln file.
 */
static bool kiln_core_ioctl_allowed(unsigned int nr)
{
	switch (nr) {
	case DRM_IOCTL_NR(DRM_IOCTL_VERSION):
	case DRM_IOCTL_NR(DRM_IOCTL_GET_CAP):
	case DRM_IOCTL_NR(DRM_IOCTL_GEM_CLOSE):
	case DRM_IOCTL_NR(DRM_IOCTL_PRIME_HANDLE_TO_FD):
	case DRM_IOCTL_NR(DRM_IOCTL_PRIME_FD_TO_HANDLE):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_CREATE):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_DESTROY):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_TRANSFER):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_WAIT):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_EVENTFD):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_RESET):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_SIGNAL):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL):
	case DRM_IOCTL_NR(DRM_IOCTL_SYNCOBJ_QUERY):
		return true;
	default:
		return false;
	}
}

static int kiln_ioctl_check(struct file *filp, unsigned int cmd)
{
	struct drm_file *file = filp->private_data;
	unsigned int nr = DRM_IOCTL_NR(cmd);

	if ((nr >= DRM_COMMAND_BASE && nr < DRM_COMMAND_END) ||
	    kiln_core_ioctl_allowed(nr))
		return 0;
	drm_dbg(file->minor->dev, "core ioctl 0x%02x refused on an accel node\n",
		nr);
	return -EACCES;
}

static long kiln_ioctl(struct file *filp, unsigned int cmd, unsigned long arg)
{
	int ret = kiln_ioctl_check(filp, cmd);

	return ret ?: drm_ioctl(filp, cmd, arg);
}

#ifdef CONFIG_COMPAT
static long kiln_compat_ioctl(struct file *filp, unsigned int cmd,
			      unsigned long arg)
{
	int ret = kiln_ioctl_check(filp, cmd);

	return ret ?: drm_compat_ioctl(filp, cmd, arg);
}
#else
#define kiln_compat_ioctl NULL
#endif

/*
 * GEM objects are mapped at DRM_FILE_PAGE_OFFSET_START and above; the
 * offsets below hold the contexts' job-status rings (kiln_ctx.c).
 */
static int kiln_mmap(struct file *filp, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff >= DRM_FILE_PAGE_OFFSET_START)
		return drm_gem_mmap(filp, vma);
	return kiln_ctx_mmap_status(filp, vma);
}

/* DRM_ACCEL_FOPS, with the ioctl entry guarded and job-status rings. */
static const struct file_operations kiln_fops = {
	.owner = THIS_MODULE,
	.open = accel_open,
	.release = drm_release,
	.unlocked_ioctl = kiln_ioctl,
	.compat_ioctl = kiln_compat_ioctl,
	.poll = drm_poll,
	.read = drm_read,
	.llseek = noop_llseek,
	.mmap = kiln_mmap,
	.fop_flags = FOP_UNSIGNED_OFFSET,
	.flush = kiln_flush,
};

static const struct drm_driver kiln_drm_driver = {
	.driver_features = DRIVER_COMPUTE_ACCEL | DRIVER_GEM |
			   DRIVER_SYNCOBJ | DRIVER_SYNCOBJ_TIMELINE,
	.open = kiln_open,
	.postclose = kiln_postclose,
	.gem_create_object = kiln_gem_create_object,
	.gem_prime_import = kiln_gem_prime_import,
	.gem_prime_import_sg_table = kiln_gem_prime_import_sg_table,
	.ioctls = kiln_ioctls,
	.num_ioctls = ARRAY_SIZE(kiln_ioctls),
	.fops = &kiln_fops,
	.name = KILN_DRIVER_NAME,
	.desc = KILN_DRIVER_DESC,
	.date = "20261129",
	.major = KILN_UAPI_VERSION_MAJOR,
	.minor = KILN_UAPI_VERSION_MINOR,
};

/* Released with the drm_device: users may outlive the PCI binding. */
static void kiln_drm_release(struct drm_device *drm, void *arg)
{
	struct kiln_device *kdev = to_kiln_device(drm);
	u32 i;

	kiln_stale_fini(kdev);
	for (i = 0; i < KILN_NUM_QUEUES; i++)
		kiln_sched_fini(&kdev->queues[i]);
	if (kdev->sched_wq)
		destroy_workqueue(kdev->sched_wq);
	for (i = 0; i < KILN_NUM_QUEUES; i++)
		kiln_queue_free(&kdev->queues[i]);
	kiln_vram_fini(&kdev->sram);
	kiln_vram_fini(&kdev->dram);
	ida_destroy(&kdev->asid_ida);
}

static int kiln_init_queues(struct kiln_device *kdev)
{
	u32 entries = roundup_pow_of_two(clamp(kiln_ring_entries,
					       (u32)KILN_QUEUE_MIN_ENTRIES,
					       (u32)KILN_QUEUE_MAX_ENTRIES));
	u32 njob = kdev->num_queues - 1;
	u32 i;
	int ret;

	ret = kiln_queue_alloc(kdev, &kdev->queues[KILN_MGMT_QUEUE],
			       KILN_MGMT_QUEUE, KILN_QUEUE_MIN_ENTRIES);
	if (ret)
		return ret;
	kdev->queues[KILN_MGMT_QUEUE].priority = KILN_NUM_PRIORITIES - 1;

	kdev->sched_wq = kiln_sched_wq_alloc(kdev);
	if (!kdev->sched_wq)
		return -ENOMEM;

	for (i = 1; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];

		ret = kiln_queue_alloc(kdev, q, i, entries);
		if (ret)
			return ret;
		/* Spread the job queues evenly over the priorities. */
		q->priority = (i - 1) * KILN_NUM_PRIORITIES / njob;
		ret = kiln_sched_init(q);
		if (ret)
			return ret;
	}
	return 0;
}

static int kiln_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct kiln_device *kdev;
	struct drm_device *drm;
	int ret;

	kdev = devm_drm_dev_alloc(&pdev->dev, &kiln_drm_driver,
				  struct kiln_device, drm);
	if (IS_ERR(kdev))
		return PTR_ERR(kdev);
	drm = &kdev->drm;
	kdev->pdev = pdev;
	pci_set_drvdata(pdev, kdev);

	mutex_init(&kdev->mgmt_lock);
	init_waitqueue_head(&kdev->mgmt_wq);
	mutex_init(&kdev->vm_lock);
	INIT_LIST_HEAD(&kdev->vm_list);
	ida_init(&kdev->asid_ida);
	mutex_init(&kdev->ctx_lock);
	INIT_LIST_HEAD(&kdev->ctx_list);
	mutex_init(&kdev->bo_lock);
	INIT_LIST_HEAD(&kdev->bo_list);
	kiln_stale_init(kdev);

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);

	/* Host memory is reached through PAs below bit 51. */
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(51));
	if (ret)
		return ret;

	kdev->regs = pcim_iomap_region(pdev, KILN_BAR_REGS, KILN_DRIVER_NAME);
	if (IS_ERR(kdev->regs))
		return PTR_ERR(kdev->regs);
	if (pci_resource_len(pdev, KILN_BAR_REGS) < KILN_BAR0_SIZE)
		return -ENODEV;
	kdev->dram_bar_start = pci_resource_start(pdev, KILN_BAR_DRAM);
	kdev->dram_bar_size = pci_resource_len(pdev, KILN_BAR_DRAM);

	ret = kiln_hw_probe(kdev);
	if (ret)
		return ret;
	kdev->dram_bar_size = min_t(u64, kdev->dram_bar_size, kdev->dram_size);

	ret = drmm_add_action(drm, kiln_drm_release, NULL);
	if (ret)
		return ret;
	ret = kiln_vram_init(&kdev->dram, "dram", KILN_PA_DRAM_BASE,
			     kdev->dram_size);
	if (ret)
		return ret;
	ret = kiln_vram_init(&kdev->sram, "sram", KILN_PA_SRAM_BASE,
			     kdev->sram_size);
	if (ret)
		return ret;

	ret = kiln_init_queues(kdev);
	if (ret)
		return ret;

	ret = kiln_reset_init(kdev);
	if (ret)
		return ret;

	/* Start from a known state. */
	kiln_hw_stop(kdev);
	ret = kiln_hw_soft_reset(kdev);
	if (ret)
		goto err_reset;

	ret = kiln_irq_init(kdev);
	if (ret)
		goto err_reset;

	ret = kiln_hw_start(kdev);
	if (ret)
		goto err_irq;

	/*
	 * The config space that AER slot reset restores (pci_restore_state):
	 * the copy the PCI core saved at enumeration predates bus mastering
	 * and the MSI-X set-up, so restoring it would leave DMA disabled.
	 */
	pci_save_state(pdev);

	kiln_debugfs_init(kdev);

	ret = drm_dev_register(drm, 0);
	if (ret)
		goto err_hw;

	ret = kiln_hwmon_init(kdev);
	if (ret)
		goto err_unregister;
	kiln_pm_init(kdev);
	return 0;

err_unregister:
	drm_dev_unregister(drm);
err_hw:
	kiln_hw_stop(kdev);
err_irq:
	kiln_irq_fini(kdev);
err_reset:
	kiln_reset_fini(kdev);
	return ret;
}

static void kiln_remove(struct pci_dev *pdev)
{
	struct kiln_device *kdev = pci_get_drvdata(pdev);
	struct drm_device *drm = &kdev->drm;
	u32 i;

	kiln_pm_fini(kdev);
	/* New ioctls and faults now fail; wait for the ones running. */
	drm_dev_unplug(drm);
	unmap_mapping_range(drm->anon_inode->i_mapping, 0, 0, 1);

	/* Interrupt threads may still queue recovery work: free them first. */
	kiln_irq_fini(kdev);
	kiln_reset_fini(kdev);
	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++)
		if (kdev->queues[i].sched_ready)
			drm_sched_wqueue_stop(&kdev->queues[i].sched);
	kiln_hw_stop(kdev);
	/* The device reaches no memory any more. */
	kiln_stale_release_all(kdev);

	/* Nothing will complete any more: fail what the hardware held. */
	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];

		if (!q->sched_ready)
			continue;
		kiln_job_fail_all(q, -ENODEV);
		drm_sched_wqueue_start(&q->sched);
	}
}

static const struct pci_device_id kiln_pci_ids[] = {
	{ PCI_DEVICE(KILN_PCI_VENDOR_ID, KILN_PCI_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, kiln_pci_ids);

static struct pci_driver kiln_pci_driver = {
	.name = KILN_DRIVER_NAME,
	.id_table = kiln_pci_ids,
	.probe = kiln_probe,
	.remove = kiln_remove,
	.err_handler = &kiln_pci_err_handlers,
	.driver.pm = pm_ptr(&kiln_pm_ops),
	.dev_groups = kiln_dev_groups,
};

static int __init kiln_init(void)
{
	int ret;

	kiln_release_wq = alloc_workqueue("kiln-release", WQ_UNBOUND, 0);
	if (!kiln_release_wq)
		return -ENOMEM;
	ret = pci_register_driver(&kiln_pci_driver);
	if (ret)
		destroy_workqueue(kiln_release_wq);
	return ret;
}

/*
 * The module is pinned while any job or job fence exists, so nothing is
 * left to release but the work items that dropped those last references:
 * destroying the queue waits until they have returned.
 */
static void __exit kiln_exit(void)
{
	pci_unregister_driver(&kiln_pci_driver);
	destroy_workqueue(kiln_release_wq);
}

module_init(kiln_init);
module_exit(kiln_exit);

MODULE_AUTHOR("The Kiln authors");
MODULE_DESCRIPTION(KILN_DRIVER_DESC);
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(DMA_BUF);
