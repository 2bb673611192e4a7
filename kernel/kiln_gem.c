// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: buffer objects.
 *
 * Host BOs are shmem objects whose pages are pinned and DMA-mapped at
 * creation. DRAM and SRAM BOs are private GEM objects backed by buddy
 * blocks; DRAM BOs are CPU-mapped write-combined through BAR2, SRAM BOs
 * are never CPU-mapped (no BAR covers SRAM).
 *
 * A BO is mapped into a file's device address space for as long as the
 * file holds a handle to it: the GEM open hook maps it (at BO_CREATE or
 * PRIME import), the close hook waits for the jobs still using it and
 * unmaps it, so the device never reaches memory through a stale PTE.
 */

#include <linux/cleanup.h>
#include <linux/dma-resv.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_prime.h>
#include <drm/drm_print.h>

#include "kiln_ctx.h"
#include "kiln_drv.h"
#include "kiln_fence.h"
#include "kiln_gem.h"
#include "kiln_mgmt.h"
#include "kiln_mmu.h"
#include "kiln_pm.h"
#include "kiln_prime.h"

static struct kiln_bo_map *kiln_bo_find_map(struct kiln_bo *bo,
					    struct kiln_vm *vm)
{
	struct kiln_bo_map *map;

	lockdep_assert_held(&bo->maps_lock);
	list_for_each_entry(map, &bo->maps, link)
		if (map->vm == vm)
			return map;
	return NULL;
}

static struct kiln_vram *kiln_bo_vram(struct kiln_bo *bo)
{
	struct kiln_device *kdev = to_kiln_device(bo->shmem.base.dev);

	return bo->placement == KILN_BO_SRAM ? &kdev->sram : &kdev->dram;
}

static int kiln_bo_map_blocks(struct kiln_bo *bo, struct kiln_vm *vm, u64 va)
{
	struct kiln_vram *vram = kiln_bo_vram(bo);
	struct kiln_buddy_block *block;
	u64 off = 0;
	int ret;

	list_for_each_entry(block, &bo->blocks, link) {
		u64 bsize = kiln_buddy_block_size(&vram->mm, block);

		ret = kiln_vm_map_range(vm, va + off,
					vram->base + kiln_buddy_block_offset(block),
					bsize, bo->prot);
		if (ret)
			return ret;
		off += bsize;
	}
	return 0;
}

/* A reset has flushed the TLB since the unmap: the VA and BO may go. */
static void kiln_bo_map_stale_release(struct kiln_stale *s)
{
	struct kiln_bo_map *map = container_of(s, struct kiln_bo_map, stale);
	struct kiln_vm *vm = map->vm;

	mutex_lock(&vm->lock);
	kiln_vm_free_va(vm, &map->node);
	mutex_unlock(&vm->lock);
	drm_gem_object_put(map->obj);
	kiln_vm_put(vm);
	kfree(map);
}

/*
 * Unmap @map of @obj and free it, with vm->lock held on entry; drops
 * the lock. If the TLB invalidation failed, the device may still reach
 * the BO's memory through the VA until the next reset: the VA and a
 * reference to the BO are kept until then.
 */
static void kiln_bo_unmap_locked(struct drm_gem_object *obj,
				 struct kiln_bo_map *map)
	__releases(&map->vm->lock)
{
	struct kiln_vm *vm = map->vm;
	u32 gen;

	if (kiln_vm_unmap(vm, map->node.start, obj->size, &gen)) {
		mutex_unlock(&vm->lock);
		drm_gem_object_get(obj);
		map->obj = obj;
		kiln_stale_defer(vm->kdev, &map->stale, gen,
				 kiln_bo_map_stale_release);
		return;
	}
	kiln_vm_free_va(vm, &map->node);
	mutex_unlock(&vm->lock);
	kiln_vm_put(vm);
	kfree(map);
}

static int kiln_bo_map_vm(struct kiln_bo *bo, struct kiln_vm *vm)
{
	struct drm_gem_object *obj = &bo->shmem.base;
	struct sg_table *sgt = bo->sgt ?: bo->shmem.sgt;
	struct kiln_bo_map *map;
	u64 align = KILN_PAGE_SIZE;
	int ret;

	if (bo->placement != KILN_BO_HOST && obj->size >= KILN_LARGE_PAGE_SIZE)
		align = KILN_LARGE_PAGE_SIZE;
	if (bo->placement == KILN_BO_HOST && !sgt)
		return -EINVAL;

	map = kzalloc(sizeof(*map), GFP_KERNEL_ACCOUNT);
	if (!map)
		return -ENOMEM;
	map->vm = kiln_vm_get(vm);

	mutex_lock(&vm->lock);
	ret = kiln_vm_alloc_va(vm, &map->node, obj->size, align);
	if (ret)
		goto err_unlock;
	if (bo->placement == KILN_BO_HOST)
		ret = kiln_vm_map_sgt(vm, map->node.start, sgt, obj->size,
				      bo->prot);
	else
		ret = kiln_bo_map_blocks(bo, vm, map->node.start);
	if (ret) {
		kiln_bo_unmap_locked(obj, map);
		return ret;
	}
	mutex_unlock(&vm->lock);

	list_add_tail(&map->link, &bo->maps);
	return 0;

err_unlock:
	mutex_unlock(&vm->lock);
	kiln_vm_put(map->vm);
	kfree(map);
	return ret;
}

static int kiln_bo_open(struct drm_gem_object *obj, struct drm_file *file)
{
	struct kiln_file *kfile = file->driver_priv;
	struct kiln_bo *bo = to_kiln_bo(obj);

	guard(mutex)(&bo->maps_lock);
	/* One mapping per address space, whatever the number of handles. */
	if (kiln_bo_find_map(bo, kfile->vm))
		return 0;
	return kiln_bo_map_vm(bo, kfile->vm);
}

/*
 * Wait until no job of @kfile uses @obj any more: only this file's jobs
 * reach the BO through this file's mapping, so other files' jobs (of a
 * shared BO) are not waited for. A fatal signal while waiting closes the
 * file's contexts, which ends their jobs within a watchdog period: the
 * wait is bounded for a dying process.
 */
static void kiln_bo_wait_idle(struct drm_gem_object *obj,
			      struct kiln_file *kfile)
{
	struct dma_fence *fence;
	bool closed = false;

	while ((fence = kiln_job_fence_find_busy(obj->resv, kfile->vm))) {
		while (dma_fence_wait_timeout(fence, false, HZ / 10) == 0)
			if (!closed && fatal_signal_pending(current)) {
				kiln_ctx_close_all(kfile);
				closed = true;
			}
		dma_fence_put(fence);
	}
}

static void kiln_bo_close(struct drm_gem_object *obj, struct drm_file *file)
{
	struct kiln_file *kfile = file->driver_priv;
	struct kiln_bo *bo = to_kiln_bo(obj);
	struct kiln_vm *vm = kfile->vm;
	struct kiln_bo_map *map;

	/* Jobs of this file may still use the mapping: let them finish. */
	kiln_bo_wait_idle(obj, kfile);

	mutex_lock(&bo->maps_lock);
	map = kiln_bo_find_map(bo, vm);
	if (map)
		list_del(&map->link);
	mutex_unlock(&bo->maps_lock);
	if (!map)
		return;

	mutex_lock(&vm->lock);
	kiln_bo_unmap_locked(obj, map);
}

/* VA and size of @bo in @vm; false if it is not mapped there. */
bool kiln_bo_va_range(struct kiln_bo *bo, struct kiln_vm *vm, u64 *va,
		      u64 *size)
{
	struct kiln_bo_map *map;

	guard(mutex)(&bo->maps_lock);
	map = kiln_bo_find_map(bo, vm);
	if (!map)
		return false;
	*va = map->node.start;
	*size = bo->shmem.base.size;
	return true;
}

static void kiln_bo_account(struct kiln_bo *bo, bool add)
{
	struct kiln_device *kdev = to_kiln_device(bo->shmem.base.dev);

	mutex_lock(&kdev->bo_lock);
	if (add) {
		list_add_tail(&bo->dev_link, &kdev->bo_list);
		atomic_inc(&kdev->bo_count);
	} else {
		list_del(&bo->dev_link);
		atomic_dec(&kdev->bo_count);
	}
	mutex_unlock(&kdev->bo_lock);
}

static void kiln_bo_init_common(struct kiln_bo *bo)
{
	mutex_init(&bo->maps_lock);
	INIT_LIST_HEAD(&bo->maps);
	INIT_LIST_HEAD(&bo->blocks);
	INIT_LIST_HEAD(&bo->dev_link);
	bo->prot = KILN_PTE_READ | KILN_PTE_WRITE;
	bo->pid = task_tgid_nr(current);
}

static void kiln_bo_fini_common(struct kiln_bo *bo)
{
	drm_WARN_ON(bo->shmem.base.dev, !list_empty(&bo->maps));
	if (!list_empty(&bo->dev_link))
		kiln_bo_account(bo, false);
	mutex_destroy(&bo->maps_lock);
}

/* Host BOs --------------------------------------------------------------- */

/* Host BOs of all Kiln devices: one budget for the memory they pin. */
static atomic64_t kiln_host_bytes_all = ATOMIC64_INIT(0);
static atomic_t kiln_host_bos_all = ATOMIC_INIT(0);

static void kiln_host_uncharge(struct kiln_device *kdev, u64 size)
{
	atomic64_sub(size, &kdev->host_bytes);
	atomic64_sub(size, &kiln_host_bytes_all);
	atomic_dec(&kiln_host_bos_all);
}

static void kiln_host_bo_free(struct drm_gem_object *obj)
{
	struct kiln_bo *bo = to_kiln_bo(obj);

	if (bo->host_charged)
		kiln_host_uncharge(to_kiln_device(obj->dev), obj->size);
	kiln_bo_fini_common(bo);
	/* Unmaps and unpins the pages; frees bo, which embeds shmem first. */
	drm_gem_shmem_free(&bo->shmem);
}

static int kiln_host_bo_mmap(struct drm_gem_object *obj,
			     struct vm_area_struct *vma)
{
	if (to_kiln_bo(obj)->flags & DRM_KILN_BO_NO_MMAP)
		return -EPERM;
	return drm_gem_shmem_object_mmap(obj, vma);
}

static const struct drm_gem_object_funcs kiln_host_bo_funcs = {
	.free = kiln_host_bo_free,
	.open = kiln_bo_open,
	.close = kiln_bo_close,
	.print_info = drm_gem_shmem_object_print_info,
	.pin = drm_gem_shmem_object_pin,
	.unpin = drm_gem_shmem_object_unpin,
	.get_sg_table = drm_gem_shmem_object_get_sg_table,
	.vmap = drm_gem_shmem_object_vmap,
	.vunmap = drm_gem_shmem_object_vunmap,
	.mmap = kiln_host_bo_mmap,
	.vm_ops = &drm_gem_shmem_vm_ops,
};

/* drm_gem_shmem allocates through this, for created and imported BOs. */
struct drm_gem_object *kiln_gem_create_object(struct drm_device *drm,
					      size_t size)
{
	struct kiln_bo *bo;

	bo = kzalloc(sizeof(*bo), GFP_KERNEL_ACCOUNT);
	if (!bo)
		return ERR_PTR(-ENOMEM);
	kiln_bo_init_common(bo);
	bo->placement = KILN_BO_HOST;
	bo->shmem.base.funcs = &kiln_host_bo_funcs;
	return &bo->shmem.base;
}

struct drm_gem_object *
kiln_gem_prime_import_sg_table(struct drm_device *drm,
			       struct dma_buf_attachment *attach,
			       struct sg_table *sgt)
{
	struct drm_gem_object *obj;

	obj = drm_gem_shmem_prime_import_sg_table(drm, attach, sgt);
	if (IS_ERR(obj))
		return obj;
	kiln_bo_account(to_kiln_bo(obj), true);
	return obj;
}

/*
 * Bytes of host BOs all Kiln devices together may have pinned: a share
 * of RAM, as TTM limits the system pages of GPU drivers. The pages are
 * pinned at creation, so neither reclaim nor the OOM killer (which does
 * not see GEM pages as the owner's memory) could get them back: without
 * a bound one unprivileged process could pin all of RAM, and with a bound
 * per device, a share of it per device. The pages are also charged to
 * the creator's memory cgroup. Each host BO also takes a file of the
 * system-wide table (its shmem file), hence the count limit.
 */
u64 kiln_host_mem_limit(void)
{
	return ((u64)totalram_pages() << PAGE_SHIFT) / 100 *
	       min(READ_ONCE(kiln_host_mem_percent), 100U);
}

static struct kiln_bo *kiln_host_bo_create(struct kiln_device *kdev, u64 size,
					   u32 flags)
{
	struct drm_gem_shmem_object *shmem;
	u64 limit = kiln_host_mem_limit();
	struct sg_table *sgt;
	struct kiln_bo *bo;

	if (size > limit) {
		drm_dbg(&kdev->drm, "BO_CREATE: %llu bytes exceed the host memory limit %llu\n",
			size, limit);
		return ERR_PTR(-E2BIG);
	}
	/* Charged before pinning so that concurrent creators cannot overshoot. */
	atomic64_add(size, &kdev->host_bytes);
	atomic_inc(&kiln_host_bos_all);
	if (atomic64_add_return(size, &kiln_host_bytes_all) > limit ||
	    atomic_read(&kiln_host_bos_all) > READ_ONCE(kiln_max_host_bos)) {
		kiln_host_uncharge(kdev, size);
		drm_dbg(&kdev->drm, "BO_CREATE: host_mem_percent or max_host_bos reached\n");
		return ERR_PTR(-ENOSPC);
	}

	shmem = drm_gem_shmem_create(&kdev->drm, size);
	if (IS_ERR(shmem)) {
		kiln_host_uncharge(kdev, size);
		return ERR_CAST(shmem);
	}
	bo = to_kiln_bo(&shmem->base);
	bo->host_charged = true;
	shmem->map_wc = !!(flags & DRM_KILN_BO_WC);

	/* Pins the pages and maps them for the device. */
	sgt = drm_gem_shmem_get_pages_sgt(shmem);
	if (IS_ERR(sgt)) {
		drm_gem_object_put(&shmem->base);
		return ERR_CAST(sgt);
	}
	bo->sgt = sgt;
	return bo;
}

/* Device-memory BOs ------------------------------------------------------ */

/*
 * Device memory keeps what its last owner wrote: zero a new BO's blocks
 * with the device's fill engine before anyone can reach them (through a
 * handle, the BAR mapping or a job).
 */
static int kiln_vram_bo_clear(struct kiln_device *kdev, struct kiln_vram *vram,
			      struct list_head *blocks)
{
	u64 pa[KILN_MGMT_CLEAR_BATCH], size[KILN_MGMT_CLEAR_BATCH];
	struct kiln_buddy_block *block;
	u32 n = 0;
	int ret;

	list_for_each_entry(block, blocks, link) {
		pa[n] = vram->base + kiln_buddy_block_offset(block);
		size[n] = kiln_buddy_block_size(&vram->mm, block);
		if (++n < KILN_MGMT_CLEAR_BATCH)
			continue;
		ret = kiln_mgmt_clear(kdev, pa, size, n);
		if (ret)
			return ret;
		n = 0;
	}
	return n ? kiln_mgmt_clear(kdev, pa, size, n) : 0;
}

static void kiln_vram_bo_free(struct drm_gem_object *obj)
{
	struct kiln_bo *bo = to_kiln_bo(obj);

	kiln_bo_fini_common(bo);
	kiln_vram_free(kiln_bo_vram(bo), &bo->blocks, obj->size);
	drm_gem_free_mmap_offset(obj);
	drm_gem_object_release(obj);
	kfree(bo);
}

static vm_fault_t kiln_vram_bo_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct drm_gem_object *obj = vma->vm_private_data;
	struct kiln_device *kdev = to_kiln_device(obj->dev);
	struct kiln_bo *bo = to_kiln_bo(obj);
	struct kiln_buddy_block *block;
	u64 off = (u64)(vmf->address - vma->vm_start);
	vm_fault_t ret = VM_FAULT_SIGBUS;
	int idx;

	if (!drm_dev_enter(&kdev->drm, &idx))
		return VM_FAULT_SIGBUS;

	list_for_each_entry(block, &bo->blocks, link) {
		u64 bsize = kiln_buddy_block_size(&kdev->dram.mm, block);
		u64 dram;

		if (off >= bsize) {
			off -= bsize;
			continue;
		}
		dram = kiln_buddy_block_offset(block) + off;
		if (dram + PAGE_SIZE <= kdev->dram_bar_size)
			ret = vmf_insert_pfn(vma, vmf->address,
					     (kdev->dram_bar_start + dram) >>
					     PAGE_SHIFT);
		break;
	}
	drm_dev_exit(idx);
	return ret;
}

/* A mapping keeps the device in D0: BAR2 is off in D3hot. */
static void kiln_vram_vm_open(struct vm_area_struct *vma)
{
	struct drm_gem_object *obj = vma->vm_private_data;

	kiln_pm_get_noresume(to_kiln_device(obj->dev));
	drm_gem_vm_open(vma);
}

static void kiln_vram_vm_close(struct vm_area_struct *vma)
{
	struct drm_gem_object *obj = vma->vm_private_data;

	kiln_pm_put(to_kiln_device(obj->dev));
	drm_gem_vm_close(vma);
}

static const struct vm_operations_struct kiln_vram_vm_ops = {
	.fault = kiln_vram_bo_fault,
	.open = kiln_vram_vm_open,
	.close = kiln_vram_vm_close,
};

static int kiln_vram_bo_mmap(struct drm_gem_object *obj,
			     struct vm_area_struct *vma)
{
	struct kiln_bo *bo = to_kiln_bo(obj);

	int ret;

	if ((bo->flags & DRM_KILN_BO_NO_MMAP) || bo->placement != KILN_BO_DRAM)
		return -EPERM;
	/* Dropped by kiln_vram_vm_close(). */
	ret = kiln_pm_get(to_kiln_device(obj->dev));
	if (ret)
		return ret;
	/* BAR2 is a window on DRAM: uncached for reads, combined writes. */
	vm_flags_set(vma, VM_PFNMAP | VM_IO | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_page_prot = pgprot_writecombine(vm_get_page_prot(vma->vm_flags));
	return 0;
}

static void kiln_vram_bo_print_info(struct drm_printer *p, unsigned int indent,
				    const struct drm_gem_object *obj)
{
	const struct kiln_bo *bo = container_of(obj, struct kiln_bo, shmem.base);

	drm_printf_indent(p, indent, "placement=%s\n",
			  bo->placement == KILN_BO_SRAM ? "sram" : "dram");
}

static const struct drm_gem_object_funcs kiln_vram_bo_funcs = {
	.free = kiln_vram_bo_free,
	.open = kiln_bo_open,
	.close = kiln_bo_close,
	.print_info = kiln_vram_bo_print_info,
	.export = kiln_vram_bo_export,
	.mmap = kiln_vram_bo_mmap,
	.vm_ops = &kiln_vram_vm_ops,
};

static struct kiln_bo *kiln_vram_bo_create(struct kiln_device *kdev, u64 size,
					   u32 flags)
{
	bool sram = flags & DRM_KILN_BO_SRAM;
	struct kiln_vram *vram = sram ? &kdev->sram : &kdev->dram;
	struct drm_gem_object *obj;
	struct kiln_bo *bo;
	u64 limit = 0;
	int ret;

	if (!vram->size) {
		drm_dbg(&kdev->drm, "BO_CREATE: the device has no %s\n", vram->name);
		return ERR_PTR(-ENODEV);
	}
	if (size > vram->size) {
		drm_dbg(&kdev->drm, "BO_CREATE: %llu bytes exceed the %s size %llu\n",
			size, vram->name, vram->size);
		return ERR_PTR(-E2BIG);
	}

	bo = kzalloc(sizeof(*bo), GFP_KERNEL_ACCOUNT);
	if (!bo)
		return ERR_PTR(-ENOMEM);
	kiln_bo_init_common(bo);
	bo->placement = sram ? KILN_BO_SRAM : KILN_BO_DRAM;
	obj = &bo->shmem.base;
	obj->funcs = &kiln_vram_bo_funcs;
	drm_gem_private_object_init(&kdev->drm, obj, size);

	/* Only the BAR-visible part of DRAM can back a CPU mapping. */
	if (!sram && !(flags & DRM_KILN_BO_NO_MMAP))
		limit = kdev->dram_bar_size;
	ret = kiln_vram_alloc(vram, size, limit, &bo->blocks);
	if (ret)
		goto err_release;

	ret = kiln_vram_bo_clear(kdev, vram, &bo->blocks);
	if (!ret)
		ret = drm_gem_create_mmap_offset(obj);
	if (ret) {
		kiln_vram_free(vram, &bo->blocks, size);
		goto err_release;
	}
	return bo;

err_release:
	drm_gem_object_release(obj);
	mutex_destroy(&bo->maps_lock);
	kfree(bo);
	return ERR_PTR(ret);
}

/* Ioctls ----------------------------------------------------------------- */

int kiln_ioctl_bo_create(struct drm_device *drm, void *data,
			 struct drm_file *file)
{
	struct kiln_device *kdev = to_kiln_device(drm);
	struct kiln_file *kfile = file->driver_priv;
	struct drm_kiln_bo_create *args = data;
	u32 flags = args->flags;
	struct kiln_bo *bo;
	u64 size, va, bo_size;
	int ret, idx;

	if (flags & ~DRM_KILN_BO_FLAGS) {
		drm_dbg(drm, "BO_CREATE: unknown flags 0x%x\n", flags);
		return -EINVAL;
	}
	if ((flags & DRM_KILN_BO_DRAM) && (flags & DRM_KILN_BO_SRAM)) {
		drm_dbg(drm, "BO_CREATE: DRAM and SRAM both asked for\n");
		return -EINVAL;
	}
	if (args->handle || args->va || !args->size) {
		drm_dbg(drm, "BO_CREATE: size 0, or handle/va not zero\n");
		return -EINVAL;
	}
	if (args->size > KILN_VA_END - KILN_VA_START - KILN_PAGE_SIZE) {
		drm_dbg(drm, "BO_CREATE: %llu bytes exceed the address space\n",
			args->size);
		return -E2BIG;
	}
	size = round_up(args->size, KILN_PAGE_SIZE);
	/* SRAM has no CPU window. */
	if (flags & DRM_KILN_BO_SRAM)
		flags |= DRM_KILN_BO_NO_MMAP;

	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;

	if (flags & (DRM_KILN_BO_DRAM | DRM_KILN_BO_SRAM))
		bo = kiln_vram_bo_create(kdev, size, flags);
	else
		bo = kiln_host_bo_create(kdev, size, flags);
	if (IS_ERR(bo)) {
		ret = PTR_ERR(bo);
		goto out;
	}

	bo->flags = flags;
	bo->prot = KILN_PTE_READ;
	if (!(flags & DRM_KILN_BO_READ_ONLY))
		bo->prot |= KILN_PTE_WRITE;
	if (flags & DRM_KILN_BO_EXEC)
		bo->prot |= KILN_PTE_EXEC;
	if (list_empty(&bo->dev_link))
		kiln_bo_account(bo, true);

	/* Creating the handle maps the BO (kiln_bo_open). */
	ret = drm_gem_handle_create(file, &bo->shmem.base, &args->handle);
	if (!ret && !kiln_bo_va_range(bo, kfile->vm, &va, &bo_size)) {
		drm_gem_handle_delete(file, args->handle);
		ret = -ENOMEM;
	}
	drm_gem_object_put(&bo->shmem.base);
	if (ret) {
		args->handle = 0;
		goto out;
	}
	args->size = size;
	args->va = va;
	args->flags = flags;
out:
	drm_dev_exit(idx);
	return ret;
}

int kiln_ioctl_bo_info(struct drm_device *drm, void *data,
		       struct drm_file *file)
{
	struct kiln_file *kfile = file->driver_priv;
	struct drm_kiln_bo_info *args = data;
	struct drm_gem_object *obj;
	struct kiln_bo *bo;
	u64 va, size;
	int ret = 0, idx;

	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;
	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj) {
		drm_dbg(drm, "BO_INFO: no handle %u\n", args->handle);
		ret = -ENOENT;
		goto out;
	}
	bo = to_kiln_bo(obj);
	if (!kiln_bo_va_range(bo, kfile->vm, &va, &size)) {
		drm_dbg(drm, "BO_INFO: handle %u is not mapped in this file\n",
			args->handle);
		ret = -ENOENT;
		goto put;
	}
	args->flags = bo->flags;
	args->size = obj->size;
	args->va = va;
	args->mmap_offset = 0;
	if (!(bo->flags & DRM_KILN_BO_NO_MMAP))
		args->mmap_offset = drm_vma_node_offset_addr(&obj->vma_node);
put:
	drm_gem_object_put(obj);
out:
	drm_dev_exit(idx);
	return ret;
}

int kiln_ioctl_bo_wait(struct drm_device *drm, void *data,
		       struct drm_file *file)
{
	struct drm_kiln_bo_wait *args = data;
	struct drm_gem_object *obj;
	unsigned long timeout;
	s64 left_ns;
	long ret;
	int idx;

	if (args->pad) {
		drm_dbg(drm, "BO_WAIT: pad must be zero\n");
		return -EINVAL;
	}
	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;
	obj = drm_gem_object_lookup(file, args->handle);
	if (!obj) {
		drm_dbg(drm, "BO_WAIT: no handle %u\n", args->handle);
		drm_dev_exit(idx);
		return -ENOENT;
	}

	left_ns = args->timeout_ns - ktime_get_ns();
	timeout = left_ns > 0 ? nsecs_to_jiffies64(left_ns) : 0;
	if (timeout > MAX_SCHEDULE_TIMEOUT)
		timeout = MAX_SCHEDULE_TIMEOUT;
	ret = dma_resv_wait_timeout(obj->resv, DMA_RESV_USAGE_BOOKKEEP, true,
				    timeout);
	if (ret == 0)
		ret = -ETIME;
	else if (ret > 0)
		ret = 0;

	drm_gem_object_put(obj);
	drm_dev_exit(idx);
	return ret;
}

void kiln_bo_print_all(struct kiln_device *kdev, struct drm_printer *p)
{
	static const char * const placement[] = { "host", "dram", "sram" };
	struct kiln_bo_map *map;
	struct kiln_bo *bo;

	guard(mutex)(&kdev->bo_lock);
	drm_printf(p, "bos: %d host_bytes: %lld dram_used: %llu sram_used: %llu\n",
		   atomic_read(&kdev->bo_count),
		   atomic64_read(&kdev->host_bytes), kdev->dram.used,
		   kdev->sram.used);
	list_for_each_entry(bo, &kdev->bo_list, dev_link) {
		struct drm_gem_object *obj = &bo->shmem.base;

		drm_printf(p, "bo %p %s size %zu flags 0x%x pid %d refs %u%s",
			   bo, placement[bo->placement], obj->size, bo->flags,
			   bo->pid, kref_read(&obj->refcount),
			   obj->import_attach ? " imported" : "");
		mutex_lock(&bo->maps_lock);
		list_for_each_entry(map, &bo->maps, link)
			drm_printf(p, " asid%u@0x%llx", map->vm->asid,
				   map->node.start);
		mutex_unlock(&bo->maps_lock);
		drm_printf(p, "\n");
	}
}
