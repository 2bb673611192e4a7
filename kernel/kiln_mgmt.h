/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: the driver-owned management queue for privileged packets.
 */
#ifndef KILN_MGMT_H
#define KILN_MGMT_H

#include <linux/types.h>

struct kiln_device;

/* Fills per management-queue round trip (the ring holds 16 packets). */
#define KILN_MGMT_CLEAR_BATCH	8

int kiln_mgmt_ctx_setup(struct kiln_device *kdev, u32 asid, bool valid,
			u64 root_pa, u32 *fail_gen);
int kiln_mgmt_tlb_inval(struct kiln_device *kdev, u32 asid, u64 va, u64 size,
			u32 *fail_gen);
int kiln_mgmt_clear(struct kiln_device *kdev, const u64 *pa, const u64 *size,
		    u32 n);
void kiln_mgmt_irq(struct kiln_device *kdev);
void kiln_mgmt_set_reset(struct kiln_device *kdev, bool in_reset);

#endif /* KILN_MGMT_H */
