// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: SUBMIT and the drm_sched backend.
 *
 * One scheduler per hardware job queue, one entity per context. SUBMIT
 * validates the command buffer against the listed BOs, collects the
 * dependencies (in-syncobjs and the BOs' implicit fences), allocates
 * everything the job will need (hardware fence, timeline chain nodes),
 * then assigns the context seqno and pushes the job under the context's
 * submit lock so seqnos and execution order agree. run_job writes
 * INDIRECT + FENCE into the ring; the queue's interrupt retires jobs in
 * order (kiln_job_retire_completed()). Progress and hangs are watched by kiln_reset.c,
 * not by the scheduler's own timeout.
 */

#include <linux/cleanup.h>
#include <linux/dma-fence-chain.h>
#include <linux/dma-resv.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include <drm/drm_drv.h>
#include <drm/drm_exec.h>
#include <drm/drm_file.h>
#include <drm/drm_gem.h>
#include <drm/drm_syncobj.h>

#include "kiln_ctx.h"
#include "kiln_drv.h"
#include "kiln_fence.h"
#include "kiln_gem.h"
#include "kiln_job.h"
#include "kiln_mmu.h"
#include "kiln_pm.h"
#include "kiln_queue.h"
#include "kiln_reset.h"

static void kiln_job_release_work(struct work_struct *work)
{
	struct kiln_job *job = container_of(work, struct kiln_job,
					    release_work);
	struct kiln_device *kdev = job->kdev;

	if (job->pm_ref)
		kiln_pm_put(kdev);
	kfree(job);
	drm_dev_put(&kdev->drm);
	module_put(THIS_MODULE);
}

/*
 * A job pins its device and the module until it is freed: a job the
 * scheduler killed may be freed long after its file was closed and its
 * device removed, by this module's code. The last references go from
 * kiln_release_wq, never from the scheduler's own work (releasing the
 * device finalises the schedulers, which waits for that work), and the
 * module's exit waits for kiln_release_wq.
 */
static void kiln_job_release(struct kiln_job *job)
{
	u32 i;

	kiln_ctx_job_unqueue(job->ctx, job);
	for (i = 0; i < job->bo_count; i++)
		if (job->bos[i])
			drm_gem_object_put(job->bos[i]);
	kvfree(job->bos);
	if (job->hw_fence_init)
		dma_fence_put(&job->hw_fence->base);
	else
		kfree(job->hw_fence);
	if (job->done_init)
		dma_fence_put(&job->done->base);
	else
		kfree(job->done);
	atomic_dec(&job->ctx->vm->jobs);
	kiln_ctx_put(job->ctx);
	INIT_WORK(&job->release_work, kiln_job_release_work);
	queue_work(kiln_release_wq, &job->release_work);
}

/* Write a job's INDIRECT + FENCE; the caller kicks the doorbell. */
void kiln_job_emit(struct kiln_queue *q, struct kiln_job *job)
{
	struct kiln_pkt_indirect pkt = {
		.header = KILN_PKT_HEADER(KILN_OP_INDIRECT, 0),
		.asid = job->ctx->vm->asid,
		.cmd_va = job->cmd_va,
		.size = job->cmd_size,
		.job_id = job->hw_seqno,
		.max_watchdog_mcycles = job->ctx->max_watchdog_mcycles,
	};

	lockdep_assert_held(&q->lock);

	job->slot = job->hw_seqno % q->job_slots;
	memset(&q->shared->status[job->slot], 0, sizeof(struct kiln_job_status));
	pkt.status_pa = kiln_queue_status_pa(q, job->slot);
	kiln_queue_emit(q, &pkt);
	kiln_queue_emit_fence(q, job->hw_seqno, true);
	if (list_empty(&job->inflight))
		list_add_tail(&job->inflight, &q->inflight);
}

/*
 * Retire a job: record its outcome in the context and signal its
 * hardware fence. @error overrides what the device reported (reset,
 * removal, cancellation); otherwise a job the device failed gets -EIO.
 * A job the driver ends itself gets status ABORTED, or INTERRUPTED
 * (-EAGAIN) if a reset cut it short and it may not be run again.
 * Reset recovery and cancellation retire jobs out of ring order.
 */
void kiln_job_retire(struct kiln_queue *q, struct kiln_job *job, int error)
{
	struct kiln_job_status st = q->shared->status[job->slot];

	lockdep_assert_held(&q->lock);

	if (error) {
		if (!(st.flags & KILN_JOB_STATUS_DONE) ||
		    st.status == KILN_STATUS_OK) {
			memset(&st, 0, sizeof(st));
			st.status = error == -EAGAIN ? KILN_STATUS_INTERRUPTED :
						       KILN_STATUS_ABORTED;
			st.pe = KILN_JOB_STATUS_NO_PE;
		}
	} else if (!(st.flags & KILN_JOB_STATUS_DONE)) {
		drm_err_ratelimited(&q->kdev->drm,
				    "queue %u: job %llu retired without a status record\n",
				    q->id, job->hw_seqno);
		st.status = KILN_STATUS_ABORTED;
		st.pe = KILN_JOB_STATUS_NO_PE;
		error = -EIO;
	} else if (st.status != KILN_STATUS_OK) {
		error = -EIO;
	}

	kiln_ctx_job_done(job->ctx, job->seqno, &st, error);
	if (error) {
		dma_fence_set_error(&job->hw_fence->base, error);
		atomic64_inc(&q->jobs_failed);
	}
	atomic64_inc(&q->jobs_done);
	list_del_init(&job->inflight);
	if (job->hw_seqno > q->completed)
		q->completed = job->hw_seqno;
	dma_fence_signal_locked(&job->hw_fence->base);
}

/* Retire, in order, every job whose FENCE the device has written. */
void kiln_job_retire_completed(struct kiln_queue *q)
{
	struct kiln_job *job, *tmp;
	unsigned long flags;
	u64 done;

	spin_lock_irqsave(&q->lock, flags);
	done = READ_ONCE(q->shared->fence);
	/* Read the status records only after the fence that covers them. */
	dma_rmb();
	list_for_each_entry_safe(job, tmp, &q->inflight, inflight) {
		if (job->hw_seqno > done)
			break;
		kiln_job_retire(q, job, 0);
	}
	spin_unlock_irqrestore(&q->lock, flags);
}

/* Fail everything in the ring (device removal). */
void kiln_job_fail_all(struct kiln_queue *q, int error)
{
	struct kiln_job *job, *tmp;
	unsigned long flags;

	spin_lock_irqsave(&q->lock, flags);
	list_for_each_entry_safe(job, tmp, &q->inflight, inflight)
		kiln_job_retire(q, job, error);
	spin_unlock_irqrestore(&q->lock, flags);
}

static struct dma_fence *kiln_sched_run_job(struct drm_sched_job *sched_job)
{
	struct kiln_job *job = to_kiln_job(sched_job);
	struct kiln_queue *q = job->queue;
	struct kiln_device *kdev = q->kdev;
	struct kiln_fence *f = job->hw_fence;
	unsigned long flags;
	int idx;

	kiln_ctx_job_unqueue(job->ctx, job);
	/* Jobs queued behind a hang of their own context, or of a closed one, do not run. */
	if (READ_ONCE(job->ctx->banned) || READ_ONCE(job->ctx->closed) ||
	    sched_job->s_fence->finished.error) {
		kiln_ctx_job_done(job->ctx, job->seqno,
				  &(struct kiln_job_status){
					.status = KILN_STATUS_ABORTED,
					.pe = KILN_JOB_STATUS_NO_PE },
				  -ECANCELED);
		return ERR_PTR(-ECANCELED);
	}
	if (!drm_dev_enter(&kdev->drm, &idx)) {
		kiln_ctx_job_done(job->ctx, job->seqno,
				  &(struct kiln_job_status){
					.status = KILN_STATUS_ABORTED,
					.pe = KILN_JOB_STATUS_NO_PE },
				  -ENODEV);
		return ERR_PTR(-ENODEV);
	}

	f->queue = q;
	spin_lock_irqsave(&q->lock, flags);
	job->hw_seqno = ++q->emitted;
	dma_fence_init(&f->base, &kiln_fence_ops, &q->lock, q->fence_context,
		       job->hw_seqno);
	job->hw_fence_init = true;
	kiln_job_emit(q, job);
	kiln_queue_kick(q);
	spin_unlock_irqrestore(&q->lock, flags);

	kiln_watchdog_kick(kdev);
	drm_dev_exit(idx);
	return dma_fence_get(&f->base);
}

/* Hangs are detected by the progress watchdog; see kiln_reset.c. */
static enum drm_gpu_sched_stat
kiln_sched_timedout_job(struct drm_sched_job *sched_job)
{
	return DRM_GPU_SCHED_STAT_NOMINAL;
}

static void kiln_sched_free_job(struct drm_sched_job *sched_job)
{
	struct kiln_job *job = to_kiln_job(sched_job);

	drm_sched_job_cleanup(sched_job);
	kiln_job_release(job);
}

static const struct drm_sched_backend_ops kiln_sched_ops = {
	.run_job = kiln_sched_run_job,
	.timedout_job = kiln_sched_timedout_job,
	.free_job = kiln_sched_free_job,
};

/*
 * The schedulers' work items run on one per-CPU, high-priority workqueue
 * instead of drm_sched's default ordered, unbound one per scheduler. With
 * the unbound queue, run_job often ran on another, idle CPU, which had to
 * be woken first (an IPI, a halted vCPU to wake under emulation) and then
 * raced the submitter for the rest of the round trip; at normal priority
 * on the submitting CPU it waits until the submitter sleeps. Here it runs
 * on the submitting CPU as soon as SUBMIT returns, overlapping the
 * device's work with the rest of the submitter's. drm_sched does not need
 * an ordered queue: run_job and free_job are distinct work items, and a
 * work item never runs concurrently with itself.
 */
struct workqueue_struct *kiln_sched_wq_alloc(struct kiln_device *kdev)
{
	return alloc_workqueue("kiln-sched-%s", WQ_HIGHPRI | WQ_MEM_RECLAIM, 0,
			       pci_name(kdev->pdev));
}

int kiln_sched_init(struct kiln_queue *q)
{
	const struct drm_sched_init_args args = {
		.ops = &kiln_sched_ops,
		.submit_wq = q->kdev->sched_wq,
		.num_rqs = DRM_SCHED_PRIORITY_COUNT,
		/* A job uses two ring slots and one status record. */
		.credit_limit = q->job_slots - 1,
		.timeout = MAX_SCHEDULE_TIMEOUT,
		.name = q->irq_name,
		.dev = q->kdev->drm.dev,
	};
	int ret;

	ret = drm_sched_init(&q->sched, &args);
	if (!ret)
		q->sched_ready = true;
	return ret;
}

void kiln_sched_fini(struct kiln_queue *q)
{
	if (q->sched_ready)
		drm_sched_fini(&q->sched);
	q->sched_ready = false;
}

/* SUBMIT ----------------------------------------------------------------- */

struct kiln_signal {
	struct drm_syncobj *syncobj;
	struct dma_fence_chain *chain;
	u64 point;
};

struct kiln_submit {
	struct drm_kiln_bo_ref *refs;
	struct drm_kiln_sync *syncs;
	struct kiln_signal *signals;
	u32 nr_signals;
};

/* Copy an array whose elements user space may know bigger or smaller. */
static void *kiln_copy_array(const struct drm_kiln_array *arr, size_t elem,
			     u32 max, int *err)
{
	u8 __user *uptr = u64_to_user_ptr(arr->ptr);
	void *out;
	u32 i;

	*err = 0;
	if (!arr->count)
		return NULL;
	if (arr->count > max) {
		*err = -E2BIG;
		return NULL;
	}
	if (!arr->stride || !arr->ptr) {
		*err = -EINVAL;
		return NULL;
	}
	out = kvcalloc(arr->count, elem, GFP_KERNEL_ACCOUNT);
	if (!out) {
		*err = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < arr->count; i++) {
		*err = copy_struct_from_user((u8 *)out + i * elem, elem,
					     uptr + (size_t)i * arr->stride,
					     arr->stride);
		if (*err) {
			kvfree(out);
			return NULL;
		}
	}
	return out;
}

static int kiln_submit_lookup_bos(struct kiln_job *job, struct drm_file *file,
				  const struct drm_kiln_bo_ref *refs, u32 count)
{
	struct kiln_file *kfile = file->driver_priv;
	bool cmd_found = false;
	u32 i, j;

	job->bos = kvcalloc(count, sizeof(*job->bos), GFP_KERNEL_ACCOUNT);
	if (!job->bos)
		return -ENOMEM;
	job->bo_count = count;

	for (i = 0; i < count; i++) {
		u64 va, size;

		if (refs[i].flags & ~DRM_KILN_BO_REF_WRITE) {
			drm_dbg(file->minor->dev, "SUBMIT: bos[%u]: unknown flags 0x%x\n",
				i, refs[i].flags);
			return -EINVAL;
		}
		job->bos[i] = drm_gem_object_lookup(file, refs[i].handle);
		if (!job->bos[i]) {
			drm_dbg(file->minor->dev, "SUBMIT: bos[%u]: no handle %u\n",
				i, refs[i].handle);
			return -ENOENT;
		}
		for (j = 0; j < i; j++)
			if (job->bos[j] == job->bos[i]) {
				drm_dbg(file->minor->dev, "SUBMIT: bos[%u] repeats bos[%u]\n",
					i, j);
				return -EINVAL;
			}
		if (!kiln_bo_va_range(to_kiln_bo(job->bos[i]), kfile->vm, &va,
				      &size)) {
			drm_dbg(file->minor->dev, "SUBMIT: bos[%u] not mapped in this file\n",
				i);
			return -ENOENT;
		}
		if (job->cmd_va >= va && job->cmd_va - va < size &&
		    job->cmd_size <= size - (job->cmd_va - va))
			cmd_found = true;
	}
	/* The command buffer must lie entirely inside one listed BO. */
	if (!cmd_found)
		drm_dbg(file->minor->dev, "SUBMIT: command buffer 0x%llx+%u is not inside a listed BO\n",
			job->cmd_va, job->cmd_size);
	return cmd_found ? 0 : -EINVAL;
}

static int kiln_submit_syncs(struct kiln_job *job, struct drm_file *file,
			     struct kiln_submit *s, u32 count)
{
	u32 i;
	int ret;

	s->signals = kcalloc(count, sizeof(*s->signals), GFP_KERNEL_ACCOUNT);
	if (count && !s->signals)
		return -ENOMEM;

	for (i = 0; i < count; i++) {
		struct drm_kiln_sync *sync = &s->syncs[i];

		if (!sync->flags ||
		    sync->flags & ~(DRM_KILN_SYNC_WAIT | DRM_KILN_SYNC_SIGNAL))
			return -EINVAL;

		if (sync->flags & DRM_KILN_SYNC_WAIT) {
			struct dma_fence *fence;

			ret = drm_syncobj_find_fence(file, sync->handle,
						     sync->point, 0, &fence);
			if (ret)
				return ret;
			/* Takes the reference. */
			ret = drm_sched_job_add_dependency(&job->base, fence);
			if (ret)
				return ret;
		}

		if (sync->flags & DRM_KILN_SYNC_SIGNAL) {
			struct kiln_signal *sig = &s->signals[s->nr_signals];

			sig->syncobj = drm_syncobj_find(file, sync->handle);
			if (!sig->syncobj)
				return -ENOENT;
			s->nr_signals++;
			sig->point = sync->point;
			if (sig->point) {
				sig->chain = dma_fence_chain_alloc();
				if (!sig->chain)
					return -ENOMEM;
			}
		}
	}
	return 0;
}

static void kiln_submit_cleanup(struct kiln_submit *s)
{
	u32 i;

	for (i = 0; i < s->nr_signals; i++) {
		dma_fence_chain_free(s->signals[i].chain);
		drm_syncobj_put(s->signals[i].syncobj);
	}
	kfree(s->signals);
	kvfree(s->syncs);
	kvfree(s->refs);
}

/* Lock the BOs, add their implicit fences, push the job, fence the BOs. */
static int kiln_submit_push(struct kiln_job *job, struct kiln_submit *s,
			    struct drm_kiln_submit *args)
{
	struct kiln_ctx *ctx = job->ctx;
	struct dma_fence *done;
	struct drm_exec exec;
	u64 seqno;
	int ret = 0;
	u32 i;

	drm_exec_init(&exec, DRM_EXEC_INTERRUPTIBLE_WAIT, job->bo_count);
	drm_exec_until_all_locked(&exec) {
		for (i = 0; i < job->bo_count; i++) {
			ret = drm_exec_prepare_obj(&exec, job->bos[i], 1);
			drm_exec_retry_on_contention(&exec);
			if (ret)
				goto out;
		}
	}

	for (i = 0; i < job->bo_count; i++) {
		ret = drm_sched_job_add_implicit_dependencies(&job->base,
							      job->bos[i],
							      s->refs[i].flags &
							      DRM_KILN_BO_REF_WRITE);
		if (ret)
			goto out;
	}

	mutex_lock(&ctx->submit_lock);
	if (READ_ONCE(ctx->banned)) {
		mutex_unlock(&ctx->submit_lock);
		drm_dbg(&ctx->kdev->drm, "SUBMIT: context %u is banned\n",
			ctx->id);
		ret = -EIO;
		goto out;
	}
	if (ctx->submitted - READ_ONCE(ctx->completed) >= KILN_MAX_QUEUED_JOBS) {
		mutex_unlock(&ctx->submit_lock);
		drm_dbg(&ctx->kdev->drm, "SUBMIT: context %u has %u jobs queued\n",
			ctx->id, KILN_MAX_QUEUED_JOBS);
		ret = -EBUSY;
		goto out;
	}
	seqno = ctx->submitted + 1;
	job->seqno = seqno;
	kiln_ctx_job_queued(ctx, seqno);
	drm_sched_job_arm(&job->base);
	kiln_job_fence_init(job->done, ctx->fence_context, seqno, ctx->vm);
	job->done_init = true;
	kiln_job_fence_follow(job->done, &job->base.s_fence->finished);
	done = dma_fence_get(&job->done->base);
	/* Before the push: from then on the job may run and be freed. */
	for (i = 0; i < job->bo_count; i++)
		dma_resv_add_fence(job->bos[i]->resv, done,
				   (s->refs[i].flags & DRM_KILN_BO_REF_WRITE) ?
				   DMA_RESV_USAGE_WRITE : DMA_RESV_USAGE_READ);
	WRITE_ONCE(ctx->submitted, seqno);
	kiln_ctx_job_queued_link(ctx, job);
	drm_sched_entity_push_job(&job->base);
	mutex_unlock(&ctx->submit_lock);

	for (i = 0; i < s->nr_signals; i++) {
		struct kiln_signal *sig = &s->signals[i];

		if (sig->chain) {
			drm_syncobj_add_point(sig->syncobj, sig->chain, done,
					      sig->point);
			sig->chain = NULL;
		} else {
			drm_syncobj_replace_fence(sig->syncobj, done);
		}
	}
	dma_fence_put(done);
	args->seqno = seqno;
out:
	drm_exec_fini(&exec);
	return ret;
}

int kiln_ioctl_submit(struct drm_device *drm, void *data,
		      struct drm_file *file)
{
	struct kiln_file *kfile = file->driver_priv;
	struct drm_kiln_submit *args = data;
	struct kiln_submit s = {};
	struct kiln_job *job;
	struct kiln_ctx *ctx;
	bool armed = false;
	int ret, idx;

	if ((args->flags & ~DRM_KILN_SUBMIT_FLAGS) || args->pad || args->seqno) {
		drm_dbg(drm, "SUBMIT: unknown flags 0x%x, or pad/seqno not zero\n",
			args->flags);
		return -EINVAL;
	}
	if (!args->cmd_size || args->cmd_size % KILN_PACKET_SIZE ||
	    !IS_ALIGNED(args->cmd_va, KILN_PACKET_SIZE)) {
		drm_dbg(drm, "SUBMIT: command buffer 0x%llx+%u is not whole 64-byte packets\n",
			args->cmd_va, args->cmd_size);
		return -EINVAL;
	}
	if (args->cmd_size > KILN_INDIRECT_MAX_SIZE) {
		drm_dbg(drm, "SUBMIT: command buffer of %u bytes, at most %u\n",
			args->cmd_size, KILN_INDIRECT_MAX_SIZE);
		return -E2BIG;
	}
	if (!args->bos.count) {
		drm_dbg(drm, "SUBMIT: no BOs listed\n");
		return -EINVAL;
	}

	if (!drm_dev_enter(drm, &idx))
		return -ENODEV;

	ctx = kiln_ctx_lookup(kfile, args->ctx_id);
	if (!ctx) {
		drm_dbg(drm, "SUBMIT: no context %u\n", args->ctx_id);
		ret = -ENOENT;
		goto out_dev;
	}
	if (READ_ONCE(ctx->banned)) {
		drm_dbg(drm, "SUBMIT: context %u is banned\n", ctx->id);
		ret = -EIO;
		goto out_ctx;
	}

	s.refs = kiln_copy_array(&args->bos, sizeof(*s.refs),
				 KILN_MAX_SUBMIT_BOS, &ret);
	if (ret) {
		drm_dbg(drm, "SUBMIT: bos array: %d\n", ret);
		goto out_ctx;
	}
	s.syncs = kiln_copy_array(&args->syncs, sizeof(*s.syncs),
				  KILN_MAX_SUBMIT_SYNCS, &ret);
	if (ret) {
		drm_dbg(drm, "SUBMIT: syncs array: %d\n", ret);
		goto out_ctx;
	}

	job = kzalloc(sizeof(*job), GFP_KERNEL_ACCOUNT);
	if (!job) {
		ret = -ENOMEM;
		goto out_ctx;
	}
	job->kdev = to_kiln_device(drm);
	drm_dev_get(drm);
	__module_get(THIS_MODULE);
	job->ctx = kiln_ctx_get(ctx);
	job->queue = ctx->queue;
	job->flags = args->flags;
	job->cmd_va = args->cmd_va;
	job->cmd_size = args->cmd_size;
	INIT_LIST_HEAD(&job->inflight);
	INIT_LIST_HEAD(&job->queued_link);
	if (atomic_inc_return(&ctx->vm->jobs) > READ_ONCE(kiln_max_file_jobs)) {
		drm_dbg(drm, "SUBMIT: file has max_file_jobs jobs unfinished\n");
		ret = -EBUSY;
		goto out_job;
	}
	ret = kiln_pm_get(job->kdev);
	if (ret)
		goto out_job;
	job->pm_ref = true;
	job->hw_fence = kzalloc(sizeof(*job->hw_fence), GFP_KERNEL_ACCOUNT);
	job->done = kiln_job_fence_alloc();
	if (!job->hw_fence || !job->done) {
		ret = -ENOMEM;
		goto out_job;
	}

	ret = kiln_submit_lookup_bos(job, file, s.refs, args->bos.count);
	if (ret)
		goto out_job;

	/* Until the push: CTX_DESTROY waits, then finds the job queued. */
	down_read(&ctx->close_sem);
	if (ctx->closed) {
		up_read(&ctx->close_sem);
		drm_dbg(drm, "SUBMIT: context %u is being destroyed\n", ctx->id);
		ret = -ENOENT;
		goto out_job;
	}
	ret = drm_sched_job_init(&job->base, &ctx->entity, 1, file,
				 file->client_id);
	if (!ret) {
		armed = true;
		ret = kiln_submit_syncs(job, file, &s, args->syncs.count);
	}
	if (!ret)
		ret = kiln_submit_push(job, &s, args);
	up_read(&ctx->close_sem);
	if (ret)
		goto out_job;

	/* The scheduler owns the job now. */
	job = NULL;
out_job:
	if (job) {
		if (armed)
			drm_sched_job_cleanup(&job->base);
		kiln_job_release(job);
	}
out_ctx:
	kiln_submit_cleanup(&s);
	kiln_ctx_put(ctx);
out_dev:
	drm_dev_exit(idx);
	return ret;
}
