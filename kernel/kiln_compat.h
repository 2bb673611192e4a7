/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: shims over kernel API differences between the 6.12 stable
 * kernels we build against. Debian's 6.12.1xx backported the buddy
 * allocator split (gpu_buddy) and struct drm_sched_init_args, so only
 * the buddy names need a shim (Kbuild detects linux/gpu_buddy.h); the
 * code otherwise follows those headers.
 */
#ifndef KILN_COMPAT_H
#define KILN_COMPAT_H

#ifdef KILN_HAVE_GPU_BUDDY
#include <linux/gpu_buddy.h>
#define kiln_buddy			gpu_buddy
#define kiln_buddy_block		gpu_buddy_block
#define kiln_buddy_init			gpu_buddy_init
#define kiln_buddy_fini			gpu_buddy_fini
#define kiln_buddy_alloc_blocks		gpu_buddy_alloc_blocks
#define kiln_buddy_free_list		gpu_buddy_free_list
#define kiln_buddy_block_offset		gpu_buddy_block_offset
#define kiln_buddy_block_size		gpu_buddy_block_size
#define KILN_BUDDY_RANGE_ALLOCATION	GPU_BUDDY_RANGE_ALLOCATION
#define KILN_BUDDY_CONTIGUOUS_ALLOCATION GPU_BUDDY_CONTIGUOUS_ALLOCATION
#else
#include <drm/drm_buddy.h>
#define kiln_buddy			drm_buddy
#define kiln_buddy_block		drm_buddy_block
#define kiln_buddy_init			drm_buddy_init
#define kiln_buddy_fini			drm_buddy_fini
#define kiln_buddy_alloc_blocks		drm_buddy_alloc_blocks
#define kiln_buddy_free_list		drm_buddy_free_list
#define kiln_buddy_block_offset		drm_buddy_block_offset
#define kiln_buddy_block_size		drm_buddy_block_size
#define KILN_BUDDY_RANGE_ALLOCATION	DRM_BUDDY_RANGE_ALLOCATION
#define KILN_BUDDY_CONTIGUOUS_ALLOCATION DRM_BUDDY_CONTIGUOUS_ALLOCATION
#endif
#include <drm/drm_buddy.h>

#endif /* KILN_COMPAT_H */
