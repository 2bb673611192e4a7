// SPDX-License-Identifier: GPL-2.0-only
/*
 * Kiln: MSI-X vectors. One vector per hardware queue (FENCE packets with
 * the IRQ flag), one for errors (stopped queue, fatal device error) and
 * one for MMU faults. The vector numbers are fixed by the hardware.
 */

#include <linux/bitfield.h>
#include <linux/interrupt.h>
#include <linux/pci.h>

#include "kiln_ctx.h"
#include "kiln_drv.h"
#include "kiln_hw.h"
#include "kiln_irq.h"
#include "kiln_job.h"
#include "kiln_mgmt.h"
#include "kiln_mmu.h"
#include "kiln_pm.h"
#include "kiln_reset.h"

static irqreturn_t kiln_irq_queue(int irq, void *arg)
{
	struct kiln_queue *q = arg;
	struct kiln_device *kdev = q->kdev;

	/*
	 * No IRQ_STATUS acknowledge: MSI-X messages are edge events the
	 * device sends for every FENCE with IRQ whatever IRQ_STATUS.QUEUE
	 * holds, and nothing reads that bit, so writing it would only cost
	 * an MMIO exit per completion. Coalesced messages are covered by
	 * reading the fence value, which is written before the message.
	 */
	if (q->id == KILN_MGMT_QUEUE)
		kiln_mgmt_irq(kdev);
	else
		kiln_job_retire_completed(q);
	return IRQ_HANDLED;
}

static irqreturn_t kiln_irq_error_awake(struct kiln_device *kdev)
{
	u32 status, i;

	status = kiln_rd32(kdev, KILN_REG_IRQ_STATUS);
	if (status == ~0u)
		return IRQ_NONE;
	kiln_wr32(kdev, KILN_REG_IRQ_STATUS,
		  status & (KILN_IRQ_ERROR | KILN_IRQ_FATAL));
	kdev->last_error_code = kiln_rd32(kdev, KILN_REG_ERROR_CODE);
	kdev->last_error_info = kiln_rd32(kdev, KILN_REG_ERROR_INFO);

	for (i = 0; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];
		u32 qs;

		if (!q->used)
			continue;
		qs = kiln_rd32(kdev, KILN_REG_QUEUE(i) + KILN_QREG_STATUS);
		if (qs & KILN_QSTATUS_STOPPED) {
			u32 err = kiln_rd32(kdev, KILN_REG_QUEUE(i) + KILN_QREG_ERROR);
			u32 at = kiln_rd32(kdev, KILN_REG_QUEUE(i) + KILN_QREG_ERROR_INDEX);

			drm_err_ratelimited(&kdev->drm, "queue %u stopped: status %u at ring index %u\n",
					    i, err, at);
			WRITE_ONCE(q->stopped, true);
		}
	}
	kiln_mgmt_irq(kdev);

	if ((status & KILN_IRQ_FATAL) || kiln_hw_fatal(kdev))
		kiln_reset_schedule(kdev, "fatal device error");
	else
		kiln_watchdog_kick_now(kdev);
	return IRQ_HANDLED;
}

/* The device raises nothing in D3hot: what arrives then is not ours. */
static irqreturn_t kiln_irq_if_awake(struct kiln_device *kdev,
				     irqreturn_t (*handler)(struct kiln_device *))
{
	irqreturn_t ret;

	if (!kiln_pm_get_if_active(kdev))
		return IRQ_NONE;
	ret = handler(kdev);
	kiln_pm_put(kdev);
	return ret;
}

static irqreturn_t kiln_irq_error(int irq, void *arg)
{
	return kiln_irq_if_awake(arg, kiln_irq_error_awake);
}

/* Record a fault against the address space and the context it hit. */
static irqreturn_t kiln_irq_mmu_fault_awake(struct kiln_device *kdev)
{
	struct kiln_queue *q;
	struct kiln_job *job;
	struct kiln_vm *vm;
	unsigned long flags;
	u32 status, asid, qid;
	u64 addr;

	status = kiln_rd32(kdev, KILN_REG_FAULT_STATUS);
	if (status == ~0u || !(status & KILN_FAULT_STATUS_VALID))
		return IRQ_NONE;
	asid = kiln_rd32(kdev, KILN_REG_FAULT_ASID);
	addr = kiln_rd64(kdev, KILN_REG_FAULT_ADDR);
	qid = kiln_rd32(kdev, KILN_REG_FAULT_QUEUE);
	kiln_wr32(kdev, KILN_REG_FAULT_STATUS, KILN_FAULT_STATUS_VALID);
	kiln_wr32(kdev, KILN_REG_IRQ_STATUS, KILN_IRQ_MMU_FAULT);

	kdev->fault_status = status;
	kdev->fault_asid = asid;
	kdev->fault_addr = addr;
	kdev->fault_queue = qid;
	atomic_inc(&kdev->mmu_faults);
	drm_dbg_driver(&kdev->drm, "MMU fault: asid %u va 0x%llx queue %u status 0x%x\n",
		       asid, addr, qid, status);

	mutex_lock(&kdev->vm_lock);
	list_for_each_entry(vm, &kdev->vm_list, link) {
		if (vm->asid != asid)
			continue;
		vm->fault_addr = addr;
		vm->fault_status = status;
		vm->fault_count++;
	}
	mutex_unlock(&kdev->vm_lock);

	if (qid >= kdev->num_queues || qid == KILN_MGMT_QUEUE)
		return IRQ_HANDLED;
	q = &kdev->queues[qid];
	spin_lock_irqsave(&q->lock, flags);
	job = list_first_entry_or_null(&q->inflight, struct kiln_job, inflight);
	if (job && job->ctx->vm->asid == asid) {
		struct kiln_ctx *ctx = job->ctx;

		spin_lock(&ctx->status_lock);
		ctx->fault_addr = addr;
		ctx->fault_access = FIELD_GET(KILN_FAULT_STATUS_ACCESS_MASK,
					      status);
		ctx->fault_reason = FIELD_GET(KILN_FAULT_STATUS_REASON_MASK,
					      status);
		spin_unlock(&ctx->status_lock);
	}
	spin_unlock_irqrestore(&q->lock, flags);
	return IRQ_HANDLED;
}

static irqreturn_t kiln_irq_mmu_fault(int irq, void *arg)
{
	return kiln_irq_if_awake(arg, kiln_irq_mmu_fault_awake);
}

/*
 * Point each job queue's vector at one CPU, spreading the queues of each
 * priority over the CPUs, and remember it for context placement
 * (kiln_ctx.c): a context created on a CPU gets a queue whose interrupt
 * arrives there, so a submit-and-wait round trip stays on one CPU instead
 * of paying a cross-CPU wake-up for every completion, as blk-mq does with
 * per-CPU queues. Only a hint: the IRQ stays movable.
 */
static void kiln_irq_spread(struct kiln_device *kdev, struct kiln_queue *q)
{
	int node = dev_to_node(kdev->drm.dev);
	unsigned int idx = 0;
	u32 i;

	for (i = KILN_MGMT_QUEUE + 1; i < q->id; i++)
		if (kdev->queues[i].priority == q->priority)
			idx++;
	q->irq_cpu = cpumask_local_spread(idx, node);
	irq_set_affinity_and_hint(pci_irq_vector(kdev->pdev,
						 KILN_VEC_QUEUE(q->id)),
				  cpumask_of(q->irq_cpu));
}

static void kiln_irq_free_queue(struct kiln_device *kdev, struct kiln_queue *q)
{
	unsigned int irq = pci_irq_vector(kdev->pdev, KILN_VEC_QUEUE(q->id));

	irq_update_affinity_hint(irq, NULL);
	free_irq(irq, q);
}

int kiln_irq_init(struct kiln_device *kdev)
{
	struct pci_dev *pdev = kdev->pdev;
	int ret, nvec;
	u32 i;

	nvec = pci_alloc_irq_vectors(pdev, KILN_NUM_VECTORS, KILN_NUM_VECTORS,
				     PCI_IRQ_MSIX);
	if (nvec < 0) {
		drm_err(&kdev->drm, "cannot allocate %u MSI-X vectors: %d\n",
			KILN_NUM_VECTORS, nvec);
		return nvec;
	}

	for (i = 0; i < kdev->num_queues; i++) {
		struct kiln_queue *q = &kdev->queues[i];

		if (!q->used)
			continue;
		ret = request_irq(pci_irq_vector(pdev, KILN_VEC_QUEUE(i)),
				  kiln_irq_queue, 0, q->irq_name, q);
		if (ret)
			goto err_free;
		if (i != KILN_MGMT_QUEUE)
			kiln_irq_spread(kdev, q);
	}
	ret = request_threaded_irq(pci_irq_vector(pdev, KILN_VEC_ERROR), NULL,
				   kiln_irq_error, IRQF_ONESHOT, "kiln-error",
				   kdev);
	if (ret)
		goto err_free;
	ret = request_threaded_irq(pci_irq_vector(pdev, KILN_VEC_MMU_FAULT),
				   NULL, kiln_irq_mmu_fault, IRQF_ONESHOT,
				   "kiln-mmu-fault", kdev);
	if (ret) {
		free_irq(pci_irq_vector(pdev, KILN_VEC_ERROR), kdev);
		goto err_free;
	}
	kdev->irqs_requested = true;
	return 0;

err_free:
	while (i--)
		if (kdev->queues[i].used)
			kiln_irq_free_queue(kdev, &kdev->queues[i]);
	pci_free_irq_vectors(pdev);
	return ret;
}

void kiln_irq_fini(struct kiln_device *kdev)
{
	struct pci_dev *pdev = kdev->pdev;
	u32 i;

	if (!kdev->irqs_requested)
		return;
	free_irq(pci_irq_vector(pdev, KILN_VEC_MMU_FAULT), kdev);
	free_irq(pci_irq_vector(pdev, KILN_VEC_ERROR), kdev);
	for (i = 0; i < kdev->num_queues; i++)
		if (kdev->queues[i].used)
			kiln_irq_free_queue(kdev, &kdev->queues[i]);
	pci_free_irq_vectors(pdev);
	kdev->irqs_requested = false;
}
