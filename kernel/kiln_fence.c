// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: job fences.
 *
 * Every fence Kiln hands out — to syncobjs, sync_files, and the
 * reservation objects of BOs that other drivers may share — is a job
 * fence, never the scheduler's or the hardware's. A job fence follows
 * the scheduler's finished fence of its job and holds a reference on the
 * module: its ops live here, so kiln.ko cannot be unloaded while anyone
 * can still call them. The scheduler's and the hardware's fences stay
 * inside the driver and die with their jobs, which pin the module and
 * the device (kiln_job.c). Being our own, a job fence can also end at
 * once when its job is cancelled before it ran, without waiting for the
 * dependencies the scheduler would wait for.
 */

#include <linux/dma-resv.h>
#include <linux/module.h>
#include <linux/slab.h>

#include "kiln_drv.h"
#include "kiln_fence.h"

static const char *kiln_job_fence_driver_name(struct dma_fence *fence)
{
	return KILN_DRIVER_NAME;
}

static const char *kiln_job_fence_timeline_name(struct dma_fence *fence)
{
	return "kiln-context";
}

static void kiln_job_fence_release(struct dma_fence *fence)
{
	dma_fence_free(fence);
	/* Last: the module may go as soon as this returns. */
	module_put(THIS_MODULE);
}

static const struct dma_fence_ops kiln_job_fence_ops = {
	.get_driver_name = kiln_job_fence_driver_name,
	.get_timeline_name = kiln_job_fence_timeline_name,
	.release = kiln_job_fence_release,
};

struct kiln_job_fence *kiln_job_fence_alloc(void)
{
	return kzalloc(sizeof(struct kiln_job_fence), GFP_KERNEL_ACCOUNT);
}

/* @context and @seqno: the context's fence timeline and the job's seqno. */
void kiln_job_fence_init(struct kiln_job_fence *f, u64 context, u64 seqno,
			 const void *owner)
{
	__module_get(THIS_MODULE);
	spin_lock_init(&f->lock);
	f->owner = owner;
	dma_fence_init(&f->base, &kiln_job_fence_ops, &f->lock, context, seqno);
}

/* Signal @f with @error, unless it ended already. */
static void kiln_job_fence_end(struct kiln_job_fence *f, int error)
{
	unsigned long flags;

	spin_lock_irqsave(&f->lock, flags);
	if (!test_bit(DMA_FENCE_FLAG_SIGNALED_BIT, &f->base.flags)) {
		if (error)
			dma_fence_set_error(&f->base, error);
		dma_fence_signal_locked(&f->base);
	}
	spin_unlock_irqrestore(&f->lock, flags);
}

static void kiln_job_fence_finished(struct dma_fence *finished,
				    struct dma_fence_cb *cb)
{
	struct kiln_job_fence *f = container_of(cb, struct kiln_job_fence,
						finished_cb);

	kiln_job_fence_end(f, finished->error);
}

/*
 * Signal @f when the job's finished fence signals. The job holds @f
 * until it is freed, after its finished fence signalled.
 */
void kiln_job_fence_follow(struct kiln_job_fence *f, struct dma_fence *finished)
{
	if (dma_fence_add_callback(finished, &f->finished_cb,
				   kiln_job_fence_finished))
		kiln_job_fence_end(f, finished->error);
}

/* The job will never run: end its fence now. */
void kiln_job_fence_cancel(struct kiln_job_fence *f, int error)
{
	kiln_job_fence_end(f, error);
}

/* An unsignalled job fence of @owner in @resv, with a reference, or NULL. */
struct dma_fence *kiln_job_fence_find_busy(struct dma_resv *resv,
					   const void *owner)
{
	struct dma_resv_iter cursor;
	struct dma_fence *fence, *found = NULL;

	dma_resv_iter_begin(&cursor, resv, DMA_RESV_USAGE_BOOKKEEP);
	dma_resv_for_each_fence_unlocked(&cursor, fence) {
		if (fence->ops == &kiln_job_fence_ops &&
		    container_of(fence, struct kiln_job_fence, base)->owner == owner) {
			found = dma_fence_get(fence);
			break;
		}
	}
	dma_resv_iter_end(&cursor);
	return found;
}
