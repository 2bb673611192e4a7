/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: per-file device address spaces (ASID + 4-level page tables).
 */
#ifndef KILN_MMU_H
#define KILN_MMU_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>

#include <drm/drm_mm.h>

#include "kiln_stale.h"

struct kiln_device;
struct sg_table;
struct drm_printer;

/* One 4 KiB page table and, above level 0, its children. */
struct kiln_pt {
	u64 *entries;
	dma_addr_t dma;
	struct kiln_pt **child;
};

struct kiln_vm {
	struct kref ref;
	struct kiln_device *kdev;
	struct list_head link;		/* kdev->vm_list */
	u32 asid;
	bool bound;			/* CTX_SETUP issued */
	bool abandoned;			/* unbound for good (kdev->vm_lock) */
	atomic_t jobs;			/* of its file, submitted and not freed */
	struct kiln_stale stale;	/* release deferred: unbind failed */

	struct mutex lock;		/* page tables and the VA allocator */
	struct kiln_pt root;
	struct drm_mm mm;
	u64 mapped_bytes;
	u32 pt_pages;

	/* Last fault the MMU reported for this ASID */
	u64 fault_addr;
	u32 fault_status;
	u32 fault_count;
};

/* Device permissions of a mapping */
#define KILN_MAP_READ		KILN_PTE_READ
#define KILN_MAP_WRITE		KILN_PTE_WRITE
#define KILN_MAP_EXEC		KILN_PTE_EXEC

struct kiln_vm *kiln_vm_create(struct kiln_device *kdev);
void kiln_vm_put(struct kiln_vm *vm);
struct kiln_vm *kiln_vm_get(struct kiln_vm *vm);
int kiln_vm_bind_hw(struct kiln_vm *vm);

int kiln_vm_alloc_va(struct kiln_vm *vm, struct drm_mm_node *node, u64 size,
		     u64 align);
void kiln_vm_free_va(struct kiln_vm *vm, struct drm_mm_node *node);
int kiln_vm_map_sgt(struct kiln_vm *vm, u64 va, struct sg_table *sgt,
		    u64 size, u64 prot);
int kiln_vm_map_range(struct kiln_vm *vm, u64 va, u64 pa, u64 size, u64 prot);
int kiln_vm_unmap(struct kiln_vm *vm, u64 va, u64 size, u32 *fail_gen);
void kiln_vm_rebind_all(struct kiln_device *kdev);
void kiln_vm_abandon(struct kiln_vm *vm);
void kiln_vm_print(struct kiln_vm *vm, struct drm_printer *p);

#endif /* KILN_MMU_H */
