/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: jobs (one INDIRECT command buffer each) and SUBMIT.
 */
#ifndef KILN_JOB_H
#define KILN_JOB_H

#include <linux/list.h>
#include <linux/types.h>
#include <linux/workqueue.h>

#include <drm/gpu_scheduler.h>

struct drm_device;
struct drm_file;
struct kiln_device;
struct drm_gem_object;
struct kiln_ctx;
struct kiln_fence;
struct kiln_job_fence;
struct kiln_queue;

struct kiln_job {
	struct drm_sched_job base;
	struct kiln_device *kdev;	/* referenced: see kiln_job_release() */
	struct kiln_ctx *ctx;
	struct kiln_queue *queue;
	u32 flags;			/* DRM_KILN_SUBMIT_* */

	/* Allocated at submit, initialised in run_job: no allocation there. */
	struct kiln_fence *hw_fence;
	bool hw_fence_init;

	/* What the job's submitter and everyone else waits for */
	struct kiln_job_fence *done;
	bool done_init;
	struct list_head queued_link;	/* ctx->queued until run_job */

	u64 cmd_va;
	u32 cmd_size;
	u64 seqno;			/* per context, returned by SUBMIT */
	u64 hw_seqno;			/* per queue, written by FENCE */
	u32 slot;			/* job-status record */

	struct drm_gem_object **bos;
	u32 bo_count;

	struct list_head inflight;	/* queue->inflight */
	bool pm_ref;			/* keeps the device in D0 */
	struct work_struct release_work;
};

static inline struct kiln_job *to_kiln_job(struct drm_sched_job *job)
{
	return container_of(job, struct kiln_job, base);
}

struct workqueue_struct *kiln_sched_wq_alloc(struct kiln_device *kdev);
int kiln_sched_init(struct kiln_queue *q);
void kiln_sched_fini(struct kiln_queue *q);

void kiln_job_emit(struct kiln_queue *q, struct kiln_job *job);
void kiln_job_retire(struct kiln_queue *q, struct kiln_job *job, int error);
void kiln_job_retire_completed(struct kiln_queue *q);
void kiln_job_fail_all(struct kiln_queue *q, int error);

int kiln_ioctl_submit(struct drm_device *drm, void *data,
		      struct drm_file *file);

#endif /* KILN_JOB_H */
