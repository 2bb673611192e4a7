/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: buffer objects in host memory (shmem) or device memory (buddy).
 */
#ifndef KILN_GEM_H
#define KILN_GEM_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>

#include <drm/drm_gem_shmem_helper.h>
#include <drm/drm_mm.h>

#include "kiln_mmu.h"

struct drm_printer;
struct kiln_device;
struct kiln_vm;

enum kiln_bo_placement {
	KILN_BO_HOST,
	KILN_BO_DRAM,
	KILN_BO_SRAM,
};

/* The BO mapped into one file's address space. */
struct kiln_bo_map {
	struct list_head link;		/* bo->maps */
	struct kiln_vm *vm;
	struct drm_mm_node node;	/* VA range incl. the guard page */
	/* After a failed TLB_INVAL: the BO, kept until a reset */
	struct drm_gem_object *obj;
	struct kiln_stale stale;
};

struct kiln_bo {
	/* Host BOs use all of it; device-memory BOs only shmem.base. */
	struct drm_gem_shmem_object shmem;
	u32 flags;			/* DRM_KILN_BO_* */
	enum kiln_bo_placement placement;
	struct list_head blocks;	/* buddy blocks of DRAM/SRAM BOs */
	struct sg_table *sgt;		/* host pages as the device sees them */
	u64 prot;			/* KILN_PTE_* of device mappings */

	struct mutex maps_lock;		/* protects maps */
	struct list_head maps;
	struct list_head dev_link;	/* kdev->bo_list */
	pid_t pid;
	bool host_charged;		/* counted in kdev->host_bytes */
};

static inline struct kiln_bo *to_kiln_bo(struct drm_gem_object *obj)
{
	return container_of(obj, struct kiln_bo, shmem.base);
}

u64 kiln_host_mem_limit(void);
struct drm_gem_object *kiln_gem_create_object(struct drm_device *drm,
					      size_t size);
struct drm_gem_object *
kiln_gem_prime_import_sg_table(struct drm_device *drm,
			       struct dma_buf_attachment *attach,
			       struct sg_table *sgt);
bool kiln_bo_va_range(struct kiln_bo *bo, struct kiln_vm *vm, u64 *va,
		      u64 *size);
void kiln_bo_print_all(struct kiln_device *kdev, struct drm_printer *p);

int kiln_ioctl_bo_create(struct drm_device *drm, void *data,
			 struct drm_file *file);
int kiln_ioctl_bo_info(struct drm_device *drm, void *data,
		       struct drm_file *file);
int kiln_ioctl_bo_wait(struct drm_device *drm, void *data,
		       struct drm_file *file);

#endif /* KILN_GEM_H */
