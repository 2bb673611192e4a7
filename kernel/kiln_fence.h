/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: job fences, the only fences of Kiln that leave the driver.
 */
#ifndef KILN_FENCE_H
#define KILN_FENCE_H

#include <linux/dma-fence.h>
#include <linux/spinlock.h>
#include <linux/types.h>

struct dma_resv;

struct kiln_job_fence {
	struct dma_fence base;		/* first: freed by dma_fence_free() */
	spinlock_t lock;
	struct dma_fence_cb finished_cb;
	const void *owner;		/* the submitting file's kiln_vm */
};

struct kiln_job_fence *kiln_job_fence_alloc(void);
void kiln_job_fence_init(struct kiln_job_fence *f, u64 context, u64 seqno,
			 const void *owner);
void kiln_job_fence_follow(struct kiln_job_fence *f, struct dma_fence *finished);
void kiln_job_fence_cancel(struct kiln_job_fence *f, int error);
struct dma_fence *kiln_job_fence_find_busy(struct dma_resv *resv,
					   const void *owner);

#endif /* KILN_FENCE_H */
