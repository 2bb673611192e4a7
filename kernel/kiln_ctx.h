/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: contexts (a scheduler entity on one hardware queue, an address
 * space, and the ring of job outcomes user space maps).
 */
#ifndef KILN_CTX_H
#define KILN_CTX_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>

#include <drm/drm_vma_manager.h>
#include <drm/gpu_scheduler.h>

#include <kiln/hw/kiln_packets.h>

struct drm_device;
struct drm_file;
struct drm_printer;
struct file;
struct vm_area_struct;
struct kiln_device;
struct kiln_file;
struct kiln_job;
struct kiln_queue;
struct kiln_vm;

#define KILN_JOB_HISTORY	256	/* job outcomes kept per context */
/*
 * Jobs a context may have submitted and not yet completed. Bounds the
 * kernel memory one process can queue (jobs, BO arrays, fences) and,
 * being no more than the history, keeps every pending job's record.
 */
#define KILN_MAX_QUEUED_JOBS	KILN_JOB_HISTORY
/*
 * Each context's job-status ring is mapped at ctx_id << KILN_CTX_STATUS_SHIFT
 * on the device fd, below the GEM offsets (DRM_FILE_PAGE_OFFSET_START);
 * context ids are bounded so that every window fits there.
 */
#define KILN_CTX_STATUS_SHIFT	16
#define KILN_CTX_ID_MAX		((u32)min_t(u64, U32_MAX, \
				 ((u64)DRM_FILE_PAGE_OFFSET_START << PAGE_SHIFT >> \
				  KILN_CTX_STATUS_SHIFT) - 1))

struct kiln_status_ring;

struct kiln_ctx {
	struct kref ref;
	struct kiln_device *kdev;
	struct kiln_vm *vm;
	struct kiln_queue *queue;
	struct list_head link;		/* kdev->ctx_list */
	u32 id;
	u32 priority;
	u32 timeout_ms;
	pid_t pid;

	struct drm_gpu_scheduler *sched_list[1];
	struct drm_sched_entity entity;

	/*
	 * A closed context takes no more jobs and cancels those it has:
	 * destroyed, or its file's last holder is exiting. SUBMIT holds
	 * close_sem for reading from the entity's first use to the push, so
	 * a job is either refused or pushed before the entity is finalised.
	 */
	struct rw_semaphore close_sem;
	bool closed;

	/* Serialises seqno assignment with the push to the entity. */
	struct mutex submit_lock;
	u64 submitted;
	u64 fence_context;		/* of its job fences */
	u32 max_watchdog_mcycles;	/* INDIRECT cap, 0 for CAP_SYS_ADMIN */

	/* Jobs pushed and not yet run, to cancel when the context closes. */
	spinlock_t queued_lock;
	struct list_head queued;

	/* Job outcomes, updated from the interrupt handler. */
	spinlock_t status_lock;
	bool banned;
	u64 completed;
	u64 error_seqno;
	u32 error_status;
	u32 fault_access;
	u64 fault_addr;
	u32 fault_reason;
	u32 reset_count;
	/* Job outcomes, also mapped read-only by user space. */
	struct kiln_status_ring *ring;
};

struct kiln_ctx *kiln_ctx_lookup(struct kiln_file *kfile, u32 id);
struct kiln_ctx *kiln_ctx_get(struct kiln_ctx *ctx);
void kiln_ctx_put(struct kiln_ctx *ctx);
void kiln_ctx_destroy_all(struct kiln_file *kfile);
bool kiln_ctx_close_all(struct kiln_file *kfile);
void kiln_ctx_job_queued_link(struct kiln_ctx *ctx, struct kiln_job *job);
void kiln_ctx_job_unqueue(struct kiln_ctx *ctx, struct kiln_job *job);
void kiln_ctx_job_queued(struct kiln_ctx *ctx, u64 seqno);
void kiln_ctx_job_done(struct kiln_ctx *ctx, u64 seqno,
		       const struct kiln_job_status *hw, int error);
void kiln_ctx_ban(struct kiln_ctx *ctx);
void kiln_ctx_print_all(struct kiln_device *kdev, struct drm_printer *p);

int kiln_ctx_mmap_status(struct file *filp, struct vm_area_struct *vma);

int kiln_ioctl_ctx_create(struct drm_device *drm, void *data,
			  struct drm_file *file);
int kiln_ioctl_ctx_destroy(struct drm_device *drm, void *data,
			   struct drm_file *file);
int kiln_ioctl_ctx_status(struct drm_device *drm, void *data,
			  struct drm_file *file);
int kiln_ioctl_job_status(struct drm_device *drm, void *data,
			  struct drm_file *file);

#endif /* KILN_CTX_H */
