// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: contexts.
 *
 * A context is what user space submits to: a drm_sched entity bound to
 * one hardware queue chosen by priority, the file's address space, a
 * per-context job timeout, and the outcome of its last KILN_JOB_HISTORY
 * jobs in a ring user space maps read-only, so that learning how a job
 * ended costs no ioctl. Contexts of one file share its address space
 * (ASID).
 */

#include <linux/capability.h>
#include <linux/cleanup.h>
#include <linux/dma-fence.h>
#include <linux/sched.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>

#include <drm/drm_drv.h>
#include <drm/drm_file.h>
#include <drm/drm_print.h>

#include "kiln_ctx.h"
#include "kiln_drv.h"
#include "kiln_fence.h"
#include "kiln_job.h"
#include "kiln_mmu.h"
#include "kiln_reset.h"

/*
 * The job-status ring outlives its context while user space maps it: the
 * context and every mapping hold a reference, so a mapping kept after
 * CTX_DESTROY shows the last outcomes and pins nothing but these pages.
 */
struct kiln_status_ring {
	struct kref ref;
	struct drm_kiln_job_record *rec;	/* vmalloc_user(), zeroed */
};

#define KILN_STATUS_RING_SIZE \
	PAGE_ALIGN(KILN_JOB_HISTORY * sizeof(struct drm_kiln_job_record))

static struct kiln_status_ring *kiln_status_ring_alloc(void)
{
	struct kiln_status_ring *ring;

	ring = kzalloc(sizeof(*ring), GFP_KERNEL_ACCOUNT);
	if (!ring)
		return NULL;
	/* VM_USERMAP memory, for remap_vmalloc_range() */
	ring->rec = vmalloc_user(KILN_STATUS_RING_SIZE);
	if (!ring->rec) {
		kfree(ring);
		return NULL;
	}
	kref_init(&ring->ref);
	return ring;
}

static void kiln_status_ring_release(struct kref *ref)
{
	struct kiln_status_ring *ring =
		container_of(ref, struct kiln_status_ring, ref);

	vfree(ring->rec);
	kfree(ring);
}

static void kiln_status_ring_put(struct kiln_status_ring *ring)
{
	if (ring)
		kref_put(&ring->ref, kiln_status_ring_release);
}

static void kiln_status_vm_open(struct vm_area_struct *vma)
{
	struct kiln_status_ring *ring = vma->vm_private_data;

	kref_get(&ring->ref);
}

static void kiln_status_vm_close(struct vm_area_struct *vma)
{
	kiln_status_ring_put(vma->vm_private_data);
}

static const struct vm_operations_struct kiln_status_vm_ops = {
	.open = kiln_status_vm_open,
	.close = kiln_status_vm_close,
};

/*
 * mmap() below the GEM offsets: the job-status ring of one of the file's
 * own contexts, read-only. Another file's contexts are not reachable:
 * the id is looked up in this file only.
 */
int kiln_ctx_mmap_status(struct file *filp, struct vm_area_struct *vma)
{
	struct drm_file *file = filp->private_data;
	struct drm_device *drm = file->minor->dev;
	u64 offset = (u64)vma->vm_pgoff << PAGE_SHIFT;
	struct kiln_status_ring *ring;
	struct kiln_ctx *ctx;
	int ret, idx;

	if (offset & (BIT_ULL(KILN_CTX_STATUS_SHIFT) - 1) ||
	    vma->vm_end - vma->vm_start > KILN_STATUS_RING_SIZE) {
		drm_dbg(drm, "mmap: offset 0x%llx size %lu is not a job-status ring\n",
			offset, vma->vm_end - vma->vm_start);
		return -EINVAL;
	}
	if (vma->vm_flags & (VM_WRITE | VM_EXEC)) {
		drm_dbg(drm, "mmap: the job-status ring is read-only\n");
		return -EPERM;
	}
	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;
	ctx = kiln_ctx_lookup(file->driver_priv,
			      offset >> KILN_CTX_STATUS_SHIFT);
	if (!ctx) {
		drm_dbg(drm, "mmap: no context %llu in this file\n",
			offset >> KILN_CTX_STATUS_SHIFT);
		ret = -EINVAL;
		goto out;
	}
	ring = ctx->ring;
	vm_flags_clear(vma, VM_MAYWRITE | VM_MAYEXEC);
	ret = remap_vmalloc_range(vma, ring->rec, 0);
	if (!ret) {
		kref_get(&ring->ref);
		vma->vm_private_data = ring;
		vma->vm_ops = &kiln_status_vm_ops;
	}
	kiln_ctx_put(ctx);
out:
	drm_dev_exit(idx);
	return ret;
}

struct kiln_ctx *kiln_ctx_get(struct kiln_ctx *ctx)
{
	kref_get(&ctx->ref);
	return ctx;
}

static void kiln_ctx_release(struct kref *ref)
{
	struct kiln_ctx *ctx = container_of(ref, struct kiln_ctx, ref);

	kiln_vm_put(ctx->vm);
	kiln_status_ring_put(ctx->ring);
	mutex_destroy(&ctx->submit_lock);
	kfree(ctx);
}

void kiln_ctx_put(struct kiln_ctx *ctx)
{
	if (ctx)
		kref_put(&ctx->ref, kiln_ctx_release);
}

struct kiln_ctx *kiln_ctx_lookup(struct kiln_file *kfile, u32 id)
{
	struct kiln_ctx *ctx;

	xa_lock(&kfile->ctxs);
	ctx = xa_load(&kfile->ctxs, id);
	if (ctx)
		kiln_ctx_get(ctx);
	xa_unlock(&kfile->ctxs);
	return ctx;
}

/*
 * Spread contexts over the job queues whose hardware priority is closest
 * to the requested one, least loaded first; among equally loaded queues,
 * prefer one whose interrupt is steered to the creating CPU (kiln_irq.c).
 */
static struct kiln_queue *kiln_ctx_pick_queue(struct kiln_device *kdev,
					      u32 priority)
{
	unsigned int cpu = raw_smp_processor_id();
	struct kiln_queue *best = NULL;
	unsigned int best_score = UINT_MAX;
	u32 i;

	for (i = KILN_MGMT_QUEUE + 1; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];
		unsigned int score;

		if (!q->sched_ready)
			continue;
		score = abs((int)q->priority - (int)priority) * 65536 +
			atomic_read(&q->nr_ctx) * 2 + (q->irq_cpu != cpu);
		if (score < best_score) {
			best = q;
			best_score = score;
		}
	}
	return best;
}

/*
 * Close @ctx: refuse new jobs, drop the jobs not yet run and end their
 * fences at once (-ECANCELED) — their dependencies may never signal — and
 * let the watchdog cancel those in the ring (kiln_reset.c). Bounded: it
 * waits for no job. Returns false if the context was closed already.
 */
static bool kiln_ctx_close(struct kiln_ctx *ctx)
{
	struct kiln_device *kdev = ctx->kdev;
	struct kiln_job *job;
	int idx;

	scoped_guard(rwsem_write, &ctx->close_sem) {
		if (ctx->closed)
			return false;
		WRITE_ONCE(ctx->closed, true);
	}

	/*
	 * On 6.12 a run_job work item racing with the removal can put the
	 * entity back into the run queue's FIFO tree (the job after the one
	 * drm_sched_entity_pop_job() takes): keep the queue's work items
	 * off meanwhile. reset_lock keeps recovery, which stops and starts
	 * them too, out of the way.
	 */
	scoped_guard(mutex, &kdev->reset_lock) {
		drm_sched_wqueue_stop(&ctx->queue->sched);
		drm_sched_entity_fini(&ctx->entity);
		drm_sched_wqueue_start(&ctx->queue->sched);
	}
	scoped_guard(spinlock_irq, &ctx->queued_lock)
		list_for_each_entry(job, &ctx->queued, queued_link)
			kiln_job_fence_cancel(job->done, -ECANCELED);
	if (drm_dev_enter(&kdev->drm, &idx)) {
		kiln_watchdog_kick_now(kdev);
		drm_dev_exit(idx);
	}
	return true;
}

static void kiln_ctx_teardown(struct kiln_file *kfile, struct kiln_ctx *ctx)
{
	struct kiln_device *kdev = ctx->kdev;

	kiln_ctx_close(ctx);
	atomic_dec(&ctx->queue->nr_ctx);
	atomic_dec(&kfile->nr_ctxs);

	mutex_lock(&kdev->ctx_lock);
	list_del(&ctx->link);
	mutex_unlock(&kdev->ctx_lock);
	atomic_dec(&kdev->ctx_count);
	kiln_ctx_put(ctx);
}

void kiln_ctx_destroy_all(struct kiln_file *kfile)
{
	struct kiln_ctx *ctx;
	unsigned long id;

	xa_for_each(&kfile->ctxs, id, ctx) {
		xa_erase(&kfile->ctxs, id);
		kiln_ctx_teardown(kfile, ctx);
	}
	xa_destroy(&kfile->ctxs);
}

/*
 * The file's last holder is exiting: close every context, so the GEM
 * close hooks that run next do not wait for work nobody will see. Returns
 * true if any context still had to be closed. The contexts stay in the
 * file until postclose.
 */
bool kiln_ctx_close_all(struct kiln_file *kfile)
{
	struct kiln_ctx *ctx;
	unsigned long id;
	bool closed = false;

	xa_for_each(&kfile->ctxs, id, ctx)
		closed |= kiln_ctx_close(ctx);
	return closed;
}

/* @job was pushed: it is cancelled if the context closes before it runs. */
void kiln_ctx_job_queued_link(struct kiln_ctx *ctx, struct kiln_job *job)
{
	guard(spinlock_irq)(&ctx->queued_lock);
	list_add_tail(&job->queued_link, &ctx->queued);
}

/* @job runs, or is released. */
void kiln_ctx_job_unqueue(struct kiln_ctx *ctx, struct kiln_job *job)
{
	guard(spinlock_irq)(&ctx->queued_lock);
	list_del_init(&job->queued_link);
}

int kiln_ioctl_ctx_create(struct drm_device *drm, void *data,
			  struct drm_file *file)
{
	struct kiln_device *kdev = to_kiln_device(drm);
	struct kiln_file *kfile = file->driver_priv;
	struct drm_kiln_ctx_create *args = data;
	struct kiln_ctx *ctx;
	struct kiln_queue *q;
	int ret, idx;

	if (args->flags || args->ctx_id || args->status_offset ||
	    args->status_size || args->status_stride || args->pad ||
	    args->pad2) {
		drm_dbg(drm, "CTX_CREATE: flags 0x%x, the out fields and pads must be zero\n",
			args->flags);
		return -EINVAL;
	}
	if (args->priority > DRM_KILN_PRIORITY_REALTIME) {
		drm_dbg(drm, "CTX_CREATE: unknown priority %u\n", args->priority);
		return -EINVAL;
	}
	if (args->priority == DRM_KILN_PRIORITY_REALTIME &&
	    !capable(CAP_SYS_NICE)) {
		drm_dbg(drm, "CTX_CREATE: realtime priority needs CAP_SYS_NICE\n");
		return -EPERM;
	}

	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;

	if (atomic_inc_return(&kfile->nr_ctxs) >
	    READ_ONCE(kiln_max_file_contexts)) {
		drm_dbg(drm, "CTX_CREATE: file holds max_file_contexts contexts\n");
		atomic_dec(&kfile->nr_ctxs);
		drm_dev_exit(idx);
		return -ENOSPC;
	}
	if (atomic_inc_return(&kdev->ctx_count) > KILN_MAX_CTX) {
		drm_dbg(drm, "CTX_CREATE: device has %u contexts\n",
			KILN_MAX_CTX);
		ret = -ENOSPC;
		goto err_count;
	}

	q = kiln_ctx_pick_queue(kdev, args->priority);
	if (!q) {
		ret = -ENODEV;
		goto err_count;
	}

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL_ACCOUNT);
	if (!ctx) {
		ret = -ENOMEM;
		goto err_count;
	}
	kref_init(&ctx->ref);
	ctx->ring = kiln_status_ring_alloc();
	if (!ctx->ring) {
		kfree(ctx);
		ret = -ENOMEM;
		goto err_count;
	}
	ctx->kdev = kdev;
	ctx->vm = kiln_vm_get(kfile->vm);
	ctx->queue = q;
	ctx->priority = args->priority;
	ctx->timeout_ms = args->timeout_ms ? args->timeout_ms :
					     kiln_job_timeout_ms;
	ctx->pid = task_tgid_nr(current);
	ctx->fence_context = dma_fence_context_alloc(1);
	ctx->max_watchdog_mcycles = capable(CAP_SYS_ADMIN) ? 0 :
				    READ_ONCE(kiln_max_watchdog_mcycles);
	init_rwsem(&ctx->close_sem);
	mutex_init(&ctx->submit_lock);
	spin_lock_init(&ctx->status_lock);
	spin_lock_init(&ctx->queued_lock);
	INIT_LIST_HEAD(&ctx->queued);
	INIT_LIST_HEAD(&ctx->link);

	ctx->sched_list[0] = &q->sched;
	ret = drm_sched_entity_init(&ctx->entity, DRM_SCHED_PRIORITY_NORMAL,
				    ctx->sched_list, 1, NULL);
	if (ret)
		goto err_ctx;

	ret = xa_alloc(&kfile->ctxs, &ctx->id, ctx,
		       XA_LIMIT(1, KILN_CTX_ID_MAX), GFP_KERNEL_ACCOUNT);
	if (ret) {
		ret = ret == -EBUSY ? -ENOSPC : ret;
		goto err_entity;
	}

	atomic_inc(&q->nr_ctx);
	mutex_lock(&kdev->ctx_lock);
	list_add_tail(&ctx->link, &kdev->ctx_list);
	mutex_unlock(&kdev->ctx_lock);

	args->ctx_id = ctx->id;
	args->status_offset = (u64)ctx->id << KILN_CTX_STATUS_SHIFT;
	args->status_size = KILN_STATUS_RING_SIZE;
	args->status_stride = sizeof(struct drm_kiln_job_record);
	drm_dev_exit(idx);
	return 0;

err_entity:
	drm_sched_entity_fini(&ctx->entity);
err_ctx:
	kiln_ctx_put(ctx);
err_count:
	atomic_dec(&kdev->ctx_count);
	atomic_dec(&kfile->nr_ctxs);
	drm_dev_exit(idx);
	return ret;
}

int kiln_ioctl_ctx_destroy(struct drm_device *drm, void *data,
			   struct drm_file *file)
{
	struct kiln_file *kfile = file->driver_priv;
	struct drm_kiln_ctx_destroy *args = data;
	struct kiln_ctx *ctx;
	int idx;

	if (args->pad) {
		drm_dbg(drm, "CTX_DESTROY: pad must be zero\n");
		return -EINVAL;
	}
	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;

	ctx = xa_erase(&kfile->ctxs, args->ctx_id);
	if (ctx)
		kiln_ctx_teardown(kfile, ctx);
	else
		drm_dbg(drm, "CTX_DESTROY: no context %u\n", args->ctx_id);
	drm_dev_exit(idx);
	return ctx ? 0 : -ENOENT;
}

int kiln_ioctl_ctx_status(struct drm_device *drm, void *data,
			  struct drm_file *file)
{
	struct kiln_file *kfile = file->driver_priv;
	struct drm_kiln_ctx_status *args = data;
	struct kiln_ctx *ctx;
	unsigned long flags;
	int idx;

	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;
	ctx = kiln_ctx_lookup(kfile, args->ctx_id);
	if (!ctx) {
		drm_dbg(drm, "CTX_STATUS: no context %u\n", args->ctx_id);
		drm_dev_exit(idx);
		return -ENOENT;
	}

	args->submitted = READ_ONCE(ctx->submitted);
	spin_lock_irqsave(&ctx->status_lock, flags);
	args->flags = ctx->banned ? DRM_KILN_CTX_BANNED : 0;
	args->completed = ctx->completed;
	args->error_seqno = ctx->error_seqno;
	args->error_status = ctx->error_status;
	args->fault_access = ctx->fault_access;
	args->fault_addr = ctx->fault_addr;
	args->fault_reason = ctx->fault_reason;
	args->reset_count = ctx->reset_count;
	spin_unlock_irqrestore(&ctx->status_lock, flags);

	kiln_ctx_put(ctx);
	drm_dev_exit(idx);
	return 0;
}

int kiln_ioctl_job_status(struct drm_device *drm, void *data,
			  struct drm_file *file)
{
	struct kiln_file *kfile = file->driver_priv;
	struct drm_kiln_job_status *args = data;
	struct drm_kiln_job_record rec;
	struct kiln_ctx *ctx;
	unsigned long flags;
	u64 seqno = args->seqno;
	int ret = 0, idx;

	if (args->pad || args->pad2) {
		drm_dbg(drm, "JOB_STATUS: pad and pad2 must be zero\n");
		return -EINVAL;
	}
	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;
	ctx = kiln_ctx_lookup(kfile, args->ctx_id);
	if (!ctx) {
		drm_dbg(drm, "JOB_STATUS: no context %u\n", args->ctx_id);
		drm_dev_exit(idx);
		return -ENOENT;
	}
	if (!seqno || seqno > READ_ONCE(ctx->submitted)) {
		drm_dbg(drm, "JOB_STATUS: seqno %llu not submitted yet\n", seqno);
		ret = -EINVAL;
		goto out;
	}

	spin_lock_irqsave(&ctx->status_lock, flags);
	rec = ctx->ring->rec[seqno % KILN_JOB_HISTORY];
	spin_unlock_irqrestore(&ctx->status_lock, flags);

	memset(args, 0, sizeof(*args));
	args->ctx_id = ctx->id;
	args->seqno = seqno;
	if (rec.seqno != seqno) {
		args->state = DRM_KILN_JOB_EXPIRED;
		goto out;
	}
	args->state = rec.state;
	args->pe = KILN_JOB_STATUS_NO_PE;
	if (rec.state != DRM_KILN_JOB_DONE)
		goto out;
	args->status = rec.status;
	args->packet_index = rec.packet_index;
	args->pe = rec.pe;
	args->pc = rec.pc;
	args->fault_addr = rec.fault_addr;
	args->fault_access = rec.fault_access;
	args->fault_reason = rec.fault_reason;
	args->cycles = rec.cycles;
	args->elapsed_ns = rec.elapsed_ns;
	args->energy_pj = rec.energy_pj;
	args->error = rec.error;
out:
	kiln_ctx_put(ctx);
	drm_dev_exit(idx);
	return ret;
}

/*
 * A job got its seqno: its record is pending from now on. User space may
 * read the record meanwhile (struct drm_kiln_job_record): the new seqno
 * goes in before anything else changes.
 */
void kiln_ctx_job_queued(struct kiln_ctx *ctx, u64 seqno)
{
	struct drm_kiln_job_record *rec =
		&ctx->ring->rec[seqno % KILN_JOB_HISTORY];

	guard(spinlock_irqsave)(&ctx->status_lock);
	WRITE_ONCE(rec->seqno, seqno);
	/* The seqno before the state: pairs with the reader's re-read. */
	smp_wmb();
	WRITE_ONCE(rec->state, DRM_KILN_JOB_PENDING);
}

/* Called with the queue lock held, possibly from the interrupt handler. */
void kiln_ctx_job_done(struct kiln_ctx *ctx, u64 seqno,
		       const struct kiln_job_status *hw, int error)
{
	struct drm_kiln_job_record *rec =
		&ctx->ring->rec[seqno % KILN_JOB_HISTORY];

	guard(spinlock_irqsave)(&ctx->status_lock);
	if (rec->seqno == seqno) {
		rec->status = hw->status;
		rec->packet_index = hw->packet_index;
		rec->pe = hw->pe;
		rec->pc = hw->pc;
		rec->fault_addr = hw->fault_addr;
		rec->fault_access = hw->fault_access;
		rec->fault_reason = hw->fault_reason;
		rec->cycles = hw->cycles;
		rec->elapsed_ns = hw->elapsed_ns;
		rec->energy_pj = hw->energy_pj;
		rec->error = error;
		/* DONE last: a reader that sees it sees the fields. */
		smp_wmb();
		WRITE_ONCE(rec->state, DRM_KILN_JOB_DONE);
	}
	if (seqno > ctx->completed)
		ctx->completed = seqno;
	if (error) {
		ctx->error_seqno = seqno;
		ctx->error_status = hw->status;
		if (hw->status == KILN_STATUS_MMU_FAULT) {
			ctx->fault_addr = hw->fault_addr;
			ctx->fault_access = hw->fault_access;
			ctx->fault_reason = hw->fault_reason;
		}
	}
}

void kiln_ctx_ban(struct kiln_ctx *ctx)
{
	unsigned long flags;

	spin_lock_irqsave(&ctx->status_lock, flags);
	ctx->banned = true;
	spin_unlock_irqrestore(&ctx->status_lock, flags);
}

void kiln_ctx_print_all(struct kiln_device *kdev, struct drm_printer *p)
{
	struct kiln_ctx *ctx;

	guard(mutex)(&kdev->ctx_lock);
	drm_printf(p, "contexts: %d\n", atomic_read(&kdev->ctx_count));
	list_for_each_entry(ctx, &kdev->ctx_list, link) {
		drm_printf(p, "ctx %u pid %d asid %u queue %u prio %u timeout %ums",
			   ctx->id, ctx->pid, ctx->vm->asid, ctx->queue->id,
			   ctx->priority, ctx->timeout_ms);
		drm_printf(p, " submitted %llu completed %llu banned %d",
			   READ_ONCE(ctx->submitted), ctx->completed,
			   ctx->banned);
		drm_printf(p, " error_seqno %llu status %u fault 0x%llx resets %u\n",
			   ctx->error_seqno, ctx->error_status,
			   ctx->fault_addr, ctx->reset_count);
	}
}
