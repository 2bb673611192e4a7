/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: device memory (DRAM and on-chip SRAM) allocators.
 */
#ifndef KILN_VRAM_H
#define KILN_VRAM_H

#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>

#include "kiln_compat.h"

struct drm_printer;

struct kiln_vram {
	const char *name;
	u64 base;		/* device PA of offset 0 */
	u64 size;
	u64 used;
	bool ready;
	struct mutex lock;	/* protects mm and used */
	struct kiln_buddy mm;
};

int kiln_vram_init(struct kiln_vram *vram, const char *name, u64 base,
		   u64 size);
void kiln_vram_fini(struct kiln_vram *vram);
int kiln_vram_alloc(struct kiln_vram *vram, u64 size, u64 limit,
		    struct list_head *blocks);
void kiln_vram_free(struct kiln_vram *vram, struct list_head *blocks,
		    u64 size);
u64 kiln_vram_free_bytes(struct kiln_vram *vram);
void kiln_vram_print(struct kiln_vram *vram, struct drm_printer *p);

#endif /* KILN_VRAM_H */
