/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: releases deferred until the device can no longer reach them.
 */
#ifndef KILN_STALE_H
#define KILN_STALE_H

#include <linux/list.h>
#include <linux/types.h>

struct kiln_device;

/*
 * Something the device may still reach through stale TLB entries,
 * released by @release once the TLB generation moved past @gen.
 */
struct kiln_stale {
	struct list_head link;		/* kdev->stale_list */
	u32 gen;
	void (*release)(struct kiln_stale *s);
};

void kiln_stale_init(struct kiln_device *kdev);
void kiln_stale_defer(struct kiln_device *kdev, struct kiln_stale *s, u32 gen,
		      void (*release)(struct kiln_stale *s));
void kiln_stale_kick(struct kiln_device *kdev);
void kiln_stale_release_all(struct kiln_device *kdev);
void kiln_stale_fini(struct kiln_device *kdev);

#endif /* KILN_STALE_H */
