// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: per-file device address spaces.
 *
 * Each open file gets an ASID and a four-level page table (kiln_mmu.h)
 * in DMA-coherent host memory, so the device walks it by bus-master DMA
 * and CPU updates need no cache maintenance. Device VAs are handed out by
 * a drm_mm; every BO mapping is followed by an unmapped guard page so a
 * stray access past its end faults instead of reaching a neighbour.
 * Page-table pages are kept until the address space dies.
 */

#include <linux/cleanup.h>
#include <linux/dma-mapping.h>
#include <linux/scatterlist.h>
#include <linux/sizes.h>
#include <linux/slab.h>

#include "kiln_drv.h"
#include "kiln_mgmt.h"
#include "kiln_mmu.h"

static int kiln_pt_alloc(struct kiln_vm *vm, struct kiln_pt *pt, int level)
{
	struct device *dev = vm->kdev->drm.dev;

	pt->entries = dma_alloc_coherent(dev, KILN_PAGE_SIZE, &pt->dma,
					 GFP_KERNEL);
	if (!pt->entries)
		return -ENOMEM;
	if (level > 0) {
		pt->child = kcalloc(KILN_PT_ENTRIES, sizeof(*pt->child),
				    GFP_KERNEL_ACCOUNT);
		if (!pt->child) {
			dma_free_coherent(dev, KILN_PAGE_SIZE, pt->entries,
					  pt->dma);
			pt->entries = NULL;
			return -ENOMEM;
		}
	}
	vm->pt_pages++;
	return 0;
}

static void kiln_pt_free(struct kiln_vm *vm, struct kiln_pt *pt, int level)
{
	struct device *dev = vm->kdev->drm.dev;
	int i;

	if (!pt->entries)
		return;
	if (level > 0 && pt->child) {
		for (i = 0; i < KILN_PT_ENTRIES; i++) {
			if (!pt->child[i])
				continue;
			kiln_pt_free(vm, pt->child[i], level - 1);
			kfree(pt->child[i]);
		}
		kfree(pt->child);
	}
	dma_free_coherent(dev, KILN_PAGE_SIZE, pt->entries, pt->dma);
	pt->entries = NULL;
}

static u64 kiln_pt_table_entry(struct kiln_pt *pt)
{
	return (kiln_host_pa(pt->dma) & KILN_PTE_ADDR_MASK) | KILN_PTE_VALID;
}

/* Return the table at @level - 1 below @pt for @va, creating it if needed. */
static struct kiln_pt *kiln_pt_next(struct kiln_vm *vm, struct kiln_pt *pt,
				    int level, u64 va)
{
	unsigned int idx = KILN_PT_INDEX(va, level);
	struct kiln_pt *next = pt->child[idx];

	if (!next) {
		next = kzalloc(sizeof(*next), GFP_KERNEL_ACCOUNT);
		if (!next)
			return NULL;
		if (kiln_pt_alloc(vm, next, level - 1)) {
			kfree(next);
			return NULL;
		}
		pt->child[idx] = next;
	}
	/* A large-page leaf may have replaced the table pointer earlier. */
	if (pt->entries[idx] != kiln_pt_table_entry(next))
		WRITE_ONCE(pt->entries[idx], kiln_pt_table_entry(next));
	return next;
}

static int kiln_vm_map_page(struct kiln_vm *vm, u64 va, u64 pa, u64 prot,
			    bool large)
{
	struct kiln_pt *pt = &vm->root;
	int stop = large ? 1 : 0;
	int level;

	lockdep_assert_held(&vm->lock);

	for (level = KILN_PT_LEVELS - 1; level > stop; level--) {
		pt = kiln_pt_next(vm, pt, level, va);
		if (!pt)
			return -ENOMEM;
	}
	WRITE_ONCE(pt->entries[KILN_PT_INDEX(va, stop)],
		   (pa & KILN_PTE_ADDR_MASK) | prot | KILN_PTE_VALID);
	return 0;
}

/* Clear the leaf covering @va; returns the bytes it mapped (0: none). */
static u64 kiln_vm_unmap_page(struct kiln_vm *vm, u64 va)
{
	struct kiln_pt *pt = &vm->root;
	int level;

	for (level = KILN_PT_LEVELS - 1; level >= 0; level--) {
		unsigned int idx = KILN_PT_INDEX(va, level);
		u64 pte = pt->entries[idx];

		if (!(pte & KILN_PTE_VALID))
			return 0;
		if (pte & KILN_PTE_LEAF_MASK) {
			WRITE_ONCE(pt->entries[idx], 0);
			return level ? KILN_LARGE_PAGE_SIZE : KILN_PAGE_SIZE;
		}
		if (!level || !pt->child[idx])
			return 0;
		pt = pt->child[idx];
	}
	return 0;
}

int kiln_vm_map_range(struct kiln_vm *vm, u64 va, u64 pa, u64 size, u64 prot)
{
	u64 done = 0;
	int ret;

	lockdep_assert_held(&vm->lock);

	while (done < size) {
		bool large = IS_ALIGNED(va + done, KILN_LARGE_PAGE_SIZE) &&
			     IS_ALIGNED(pa + done, KILN_LARGE_PAGE_SIZE) &&
			     size - done >= KILN_LARGE_PAGE_SIZE;

		ret = kiln_vm_map_page(vm, va + done, pa + done, prot, large);
		if (ret)
			return ret;
		done += large ? KILN_LARGE_PAGE_SIZE : KILN_PAGE_SIZE;
	}
	vm->mapped_bytes += size;
	return 0;
}

int kiln_vm_map_sgt(struct kiln_vm *vm, u64 va, struct sg_table *sgt,
		    u64 size, u64 prot)
{
	struct scatterlist *sg;
	u64 off = 0;
	int i, ret;

	lockdep_assert_held(&vm->lock);

	for_each_sgtable_dma_sg(sgt, sg, i) {
		dma_addr_t addr = sg_dma_address(sg);
		u64 len = sg_dma_len(sg);

		if (off >= size)
			break;
		len = min(len, size - off);
		if (!IS_ALIGNED(addr, KILN_PAGE_SIZE) ||
		    !IS_ALIGNED(len, KILN_PAGE_SIZE))
			return -EINVAL;
		ret = kiln_vm_map_range(vm, va + off, kiln_host_pa(addr), len,
					prot);
		if (ret)
			return ret;
		off += len;
	}
	return off == size ? 0 : -EINVAL;
}

/*
 * Remove the mappings of [va, va + size) and invalidate the device TLB
 * for them. On failure (device gone, being reset, or the management
 * queue stuck) the device may still translate the range through stale
 * TLB entries: the caller must keep the VA and the memory behind it
 * until the TLB generation moved past *@fail_gen (kiln_stale_defer()),
 * and must not wait for that while holding vm->lock (the reset takes
 * the VM locks).
 */
int kiln_vm_unmap(struct kiln_vm *vm, u64 va, u64 size, u32 *fail_gen)
{
	u64 off = 0;

	lockdep_assert_held(&vm->lock);

	while (off < size) {
		u64 step = kiln_vm_unmap_page(vm, va + off);

		if (!step)
			step = KILN_PAGE_SIZE;
		off += step;
	}
	vm->mapped_bytes -= min(vm->mapped_bytes, size);
	return kiln_mgmt_tlb_inval(vm->kdev, vm->asid, va, size, fail_gen);
}

int kiln_vm_alloc_va(struct kiln_vm *vm, struct drm_mm_node *node, u64 size,
		     u64 align)
{
	int ret;

	lockdep_assert_held(&vm->lock);

	if (size > KILN_VA_END - KILN_VA_START - KILN_PAGE_SIZE)
		return -E2BIG;
	ret = drm_mm_insert_node_in_range(&vm->mm, node,
					  size + KILN_PAGE_SIZE, align, 0,
					  KILN_VA_START, KILN_VA_END,
					  DRM_MM_INSERT_BEST);
	return ret ? -ENOSPC : 0;
}

void kiln_vm_free_va(struct kiln_vm *vm, struct drm_mm_node *node)
{
	lockdep_assert_held(&vm->lock);

	if (drm_mm_node_allocated(node))
		drm_mm_remove_node(node);
}

int kiln_vm_bind_hw(struct kiln_vm *vm)
{
	int ret;

	ret = kiln_mgmt_ctx_setup(vm->kdev, vm->asid, true,
				  kiln_host_pa(vm->root.dma), NULL);
	vm->bound = !ret;
	return ret;
}

struct kiln_vm *kiln_vm_create(struct kiln_device *kdev)
{
	struct kiln_vm *vm;
	int ret;

	vm = kzalloc(sizeof(*vm), GFP_KERNEL_ACCOUNT);
	if (!vm)
		return ERR_PTR(-ENOMEM);
	kref_init(&vm->ref);
	vm->kdev = kdev;
	mutex_init(&vm->lock);
	INIT_LIST_HEAD(&vm->link);
	drm_mm_init(&vm->mm, KILN_VA_START, KILN_VA_END - KILN_VA_START);

	ret = ida_alloc_range(&kdev->asid_ida, 1, kdev->max_asids - 1,
			      GFP_KERNEL);
	if (ret < 0) {
		ret = ret == -ENOSPC ? -ENOSPC : ret;
		goto err_free;
	}
	vm->asid = ret;

	ret = kiln_pt_alloc(vm, &vm->root, KILN_PT_LEVELS - 1);
	if (ret)
		goto err_asid;

	ret = kiln_vm_bind_hw(vm);
	if (ret)
		goto err_pt;

	mutex_lock(&kdev->vm_lock);
	list_add_tail(&vm->link, &kdev->vm_list);
	mutex_unlock(&kdev->vm_lock);
	return vm;

err_pt:
	kiln_pt_free(vm, &vm->root, KILN_PT_LEVELS - 1);
err_asid:
	ida_free(&kdev->asid_ida, vm->asid);
err_free:
	drm_mm_takedown(&vm->mm);
	mutex_destroy(&vm->lock);
	kfree(vm);
	return ERR_PTR(ret);
}

struct kiln_vm *kiln_vm_get(struct kiln_vm *vm)
{
	kref_get(&vm->ref);
	return vm;
}

static void kiln_vm_free(struct kiln_stale *s)
{
	struct kiln_vm *vm = container_of(s, struct kiln_vm, stale);
	struct kiln_device *kdev = vm->kdev;

	drm_WARN_ON(&kdev->drm, !drm_mm_clean(&vm->mm));
	drm_mm_takedown(&vm->mm);
	kiln_pt_free(vm, &vm->root, KILN_PT_LEVELS - 1);
	ida_free(&kdev->asid_ida, vm->asid);
	mutex_destroy(&vm->lock);
	kfree(vm);
}

static void kiln_vm_release(struct kref *ref)
{
	struct kiln_vm *vm = container_of(ref, struct kiln_vm, ref);
	struct kiln_device *kdev = vm->kdev;
	u32 gen;

	/* Off the list first: a reset does not bind the ASID again. */
	mutex_lock(&kdev->vm_lock);
	list_del(&vm->link);
	mutex_unlock(&kdev->vm_lock);

	/*
	 * Unbind before the tables go, so the device cannot walk freed
	 * memory. If that fails, the ASID may still be bound: keep the
	 * tables and the ASID until a reset has unbound it.
	 */
	if (vm->bound &&
	    kiln_mgmt_ctx_setup(kdev, vm->asid, false, 0, &gen)) {
		kiln_stale_defer(kdev, &vm->stale, gen, kiln_vm_free);
		return;
	}
	kiln_vm_free(&vm->stale);
}

void kiln_vm_put(struct kiln_vm *vm)
{
	if (vm)
		kref_put(&vm->ref, kiln_vm_release);
}

/* After a device reset: every ASID must point at its tables again. */
void kiln_vm_rebind_all(struct kiln_device *kdev)
{
	struct kiln_vm *vm;

	guard(mutex)(&kdev->vm_lock);
	list_for_each_entry(vm, &kdev->vm_list, link) {
		/* The reset unbound every ASID; leave abandoned ones so. */
		if (vm->abandoned) {
			vm->bound = false;
			continue;
		}
		if (kiln_vm_bind_hw(vm))
			drm_err(&kdev->drm, "rebinding ASID %u failed\n",
				vm->asid);
	}
}

/*
 * The work of this address space was abandoned (its file's last holder
 * was killed): unbind the ASID, so that its jobs still in the rings fail
 * at once with BAD_CONTEXT instead of running to completion, and keep it
 * unbound across resets. The page tables stay until the VM is released.
 * If the unbind is skipped because a reset is under way, the reset
 * unbinds it.
 */
void kiln_vm_abandon(struct kiln_vm *vm)
{
	struct kiln_device *kdev = vm->kdev;

	guard(mutex)(&kdev->vm_lock);
	vm->abandoned = true;
	if (vm->bound && !kiln_mgmt_ctx_setup(kdev, vm->asid, false, 0, NULL))
		vm->bound = false;
}

void kiln_vm_print(struct kiln_vm *vm, struct drm_printer *p)
{
	guard(mutex)(&vm->lock);
	drm_printf(p, "asid %u root 0x%llx mapped %llu pt_pages %u faults %u last_fault 0x%llx\n",
		   vm->asid, kiln_host_pa(vm->root.dma), vm->mapped_bytes,
		   vm->pt_pages, vm->fault_count, vm->fault_addr);
}
