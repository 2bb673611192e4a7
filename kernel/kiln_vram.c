// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: device memory allocators. DRAM and SRAM are carved up by a buddy
 * allocator; BOs are pinned (there is no eviction), so an exhausted pool
 * is reported to user space as -ENOSPC.
 */

#include <linux/cleanup.h>
#include <linux/errno.h>
#include <linux/sizes.h>

#include <drm/drm_print.h>

#include "kiln_vram.h"

int kiln_vram_init(struct kiln_vram *vram, const char *name, u64 base,
		   u64 size)
{
	int ret;

	vram->name = name;
	vram->base = base;
	vram->size = size;
	vram->used = 0;
	mutex_init(&vram->lock);
	if (!size)
		return 0;

	ret = kiln_buddy_init(&vram->mm, size, SZ_4K);
	if (ret)
		return ret;
	vram->ready = true;
	return 0;
}

void kiln_vram_fini(struct kiln_vram *vram)
{
	if (vram->ready)
		kiln_buddy_fini(&vram->mm);
	vram->ready = false;
	mutex_destroy(&vram->lock);
}

/*
 * Allocate @size bytes below @limit (the CPU-visible part of the BAR for
 * mappable BOs). Blocks are 2 MiB when the size allows, so the device can
 * map them with large pages.
 */
int kiln_vram_alloc(struct kiln_vram *vram, u64 size, u64 limit,
		    struct list_head *blocks)
{
	u64 min_block = (size >= SZ_2M && IS_ALIGNED(size, SZ_2M)) ? SZ_2M : SZ_4K;
	unsigned long flags = 0;
	int ret;

	if (!vram->ready)
		return -ENODEV;
	if (size > vram->size)
		return -E2BIG;
	if (limit && limit < vram->size)
		flags |= KILN_BUDDY_RANGE_ALLOCATION;
	else
		limit = vram->size;

	guard(mutex)(&vram->lock);
	if (vram->size - vram->used < size)
		return -ENOSPC;
	ret = kiln_buddy_alloc_blocks(&vram->mm, 0, limit, size, min_block,
				      blocks, flags);
	if (ret == -ENOSPC && min_block > SZ_4K)
		ret = kiln_buddy_alloc_blocks(&vram->mm, 0, limit, size, SZ_4K,
					      blocks, flags);
	if (ret)
		return ret == -ENOMEM ? -ENOMEM : -ENOSPC;
	vram->used += size;
	return 0;
}

void kiln_vram_free(struct kiln_vram *vram, struct list_head *blocks,
		    u64 size)
{
	guard(mutex)(&vram->lock);
	kiln_buddy_free_list(&vram->mm, blocks, 0);
	vram->used -= size;
}

u64 kiln_vram_free_bytes(struct kiln_vram *vram)
{
	guard(mutex)(&vram->lock);
	return vram->size - vram->used;
}

void kiln_vram_print(struct kiln_vram *vram, struct drm_printer *p)
{
	guard(mutex)(&vram->lock);
	drm_printf(p, "%s: size %llu used %llu base 0x%llx\n", vram->name,
		   vram->size, vram->used, vram->base);
	if (vram->ready)
		drm_buddy_print(&vram->mm, p);
}
