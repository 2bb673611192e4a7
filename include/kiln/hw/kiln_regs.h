/* SPDX-License-Identifier: MIT */
/*
 * Kiln K1 PCI identity, BAR layout and BAR0 register map.
 * Described in docs/hardware.md; this header is the single source of truth.
 *
 * All registers are little endian and may be accessed with 32-bit or
 * 64-bit reads and writes; 64-bit registers may also be accessed as two
 * 32-bit halves (low half first on write).
 */
#ifndef KILN_HW_REGS_H
#define KILN_HW_REGS_H

#include "kiln_hw_common.h"

/* PCI identity */
#define KILN_PCI_VENDOR_ID		0x1234	/* QEMU test vendor */
#define KILN_PCI_DEVICE_ID		0x4b31	/* "K1" */
#define KILN_PCI_CLASS			0x1200	/* processing accelerator */
#define KILN_PCI_REVISION		0x01

/* BARs (all 64-bit) */
#define KILN_BAR_REGS			0	/* registers + doorbell pages */
#define KILN_BAR_DRAM			2	/* prefetchable window on device DRAM */
#define KILN_BAR_MSIX			4	/* MSI-X table and PBA */

/*
 * PCI power management capability: D0 and D3hot, PM 1.2, no PME. The
 * device sets No_Soft_Reset: it keeps its state from D3hot back to D0.
 */
#define KILN_PM_CAP_OFFSET		0x40
#define KILN_PM_PMC			0x0003	/* version 3: PCI PM 1.2 */

/* Device geometry */
#define KILN_NUM_QUEUES			16
/* Queue 0 has a worker of its own: what the driver runs there never waits behind kernels. */
#define KILN_QUEUE_CONTROL		0
#define KILN_MAX_CONTEXTS		256	/* ASIDs; ASID 0 is reserved */
#define KILN_QUEUE_MIN_ENTRIES		16
#define KILN_QUEUE_MAX_ENTRIES		65536
#define KILN_NUM_PRIORITIES		4	/* 0 = low ... 3 = realtime */

/* Identity values */
#define KILN_CHIP_ID			0x4b31
/* Hardware interface version: the driver refuses a different major. */
#define KILN_IFACE_VERSION_MAJOR	1
#define KILN_IFACE_VERSION_MINOR	1
/* Device firmware version reported by the model. */
#define KILN_FW_VERSION_MAJOR		1
#define KILN_FW_VERSION_MINOR		0
#define KILN_FW_VERSION_PATCH		0
#define KILN_VERSION(major, minor, patch) \
	(((major) << 16) | ((minor) << 8) | (patch))
#define KILN_VERSION_MAJOR(v)		(((v) >> 16) & 0xffff)
#define KILN_VERSION_MINOR(v)		(((v) >> 8) & 0xff)
#define KILN_VERSION_PATCH(v)		((v) & 0xff)

/* MSI-X vectors: one per queue, then error and MMU-fault vectors. */
#define KILN_VEC_QUEUE(q)		(q)
#define KILN_VEC_ERROR			KILN_NUM_QUEUES
#define KILN_VEC_MMU_FAULT		(KILN_NUM_QUEUES + 1)
#define KILN_NUM_VECTORS		(KILN_NUM_QUEUES + 2)

/* BAR0 layout */
#define KILN_BAR0_SIZE			0x20000
#define KILN_REG_QUEUE_BASE		0x1000	/* per-queue register blocks */
#define KILN_REG_QUEUE_STRIDE		0x80
#define KILN_REG_TELEMETRY_BASE		0x3000
#define KILN_DOORBELL_BASE		0x10000	/* one 4 KiB page per queue */
#define KILN_DOORBELL_STRIDE		0x1000
#define KILN_DOORBELL(q)		(KILN_DOORBELL_BASE + (q) * KILN_DOORBELL_STRIDE)

/* Global registers */
#define KILN_REG_CHIP_ID		0x000	/* RO */
#define KILN_REG_REVISION		0x004	/* RO */
#define KILN_REG_FW_VERSION		0x008	/* RO, KILN_VERSION() */
#define KILN_REG_IFACE_VERSION		0x00c	/* RO, KILN_VERSION() */
#define KILN_REG_NUM_QUEUES		0x010	/* RO */
#define KILN_REG_PE_GRID		0x014	/* RO, width | height << 8 */
#define KILN_PE_GRID_WIDTH_MASK		0x00ffu
#define KILN_PE_GRID_HEIGHT_MASK	0xff00u
#define KILN_REG_LOCAL_MEM_SIZE		0x018	/* RO, bytes per PE */
#define KILN_REG_FEATURES		0x01c	/* RO, KILN_FEATURE_* */
#define KILN_REG_DRAM_SIZE		0x020	/* RO, 64-bit, bytes */
#define KILN_REG_SRAM_SIZE		0x028	/* RO, 64-bit, bytes */
#define KILN_REG_NUM_VECTORS		0x030	/* RO */
#define KILN_REG_NUM_WORKERS		0x034	/* RO, host worker threads */
#define KILN_REG_MAX_CONTEXTS		0x038	/* RO */
#define KILN_REG_CLOCK_MHZ		0x03c	/* RO, emulated PE clock */
#define KILN_REG_CONTROL		0x040	/* RW, KILN_CONTROL_* */
#define KILN_REG_STATUS			0x044	/* RO, KILN_STATUS_REG_* */
#define KILN_REG_SCRATCH		0x048	/* RW, no side effects */
#define KILN_REG_RESET_COUNT		0x04c	/* RO, soft resets + FLRs since power-on */
#define KILN_REG_IRQ_STATUS		0x050	/* RW1C, KILN_IRQ_* */
#define KILN_REG_IRQ_MASK		0x054	/* RW, 1 = masked */
#define KILN_REG_ERROR_CODE		0x058	/* RO, last global error, KILN_STATUS_* */
#define KILN_REG_ERROR_INFO		0x05c	/* RO, offending register or queue */
#define KILN_REG_DEVICE_TIME		0x060	/* RO, 64-bit, ns since power-on */
#define KILN_REG_TOTAL_CYCLES		0x068	/* RO, 64-bit, emulated PE cycles */
#define KILN_REG_HEARTBEAT		0x070	/* RO, advances while any work progresses */
#define KILN_REG_FAULT_STATUS		0x080	/* RW1C, KILN_FAULT_STATUS_* */
#define KILN_REG_FAULT_ASID		0x084	/* RO */
#define KILN_REG_FAULT_ADDR		0x088	/* RO, 64-bit, faulting VA */
#define KILN_REG_FAULT_QUEUE		0x090	/* RO */
#define KILN_REG_FAULT_COUNT		0x094	/* RO, faults since reset */

#define KILN_FEATURE_MMU		KILN_HW_BIT(0)
#define KILN_FEATURE_PE_ENGINE		KILN_HW_BIT(1)
#define KILN_FEATURE_SRAM		KILN_HW_BIT(2)
#define KILN_FEATURE_FAULT_INJECT	KILN_HW_BIT(3)
#define KILN_FEATURE_TELEMETRY		KILN_HW_BIT(4)

#define KILN_CONTROL_ENABLE		KILN_HW_BIT(0)	/* accept doorbells */
#define KILN_CONTROL_SOFT_RESET		KILN_HW_BIT(1)	/* write 1; self-clearing */

#define KILN_STATUS_REG_READY		KILN_HW_BIT(0)
#define KILN_STATUS_REG_FATAL		KILN_HW_BIT(1)	/* only a reset recovers */
#define KILN_STATUS_REG_BUSY		KILN_HW_BIT(2)

#define KILN_IRQ_QUEUE			KILN_HW_BIT(0)	/* a FENCE asked for an interrupt */
#define KILN_IRQ_ERROR			KILN_HW_BIT(1)	/* queue stopped or global error */
#define KILN_IRQ_MMU_FAULT		KILN_HW_BIT(2)
#define KILN_IRQ_FATAL			KILN_HW_BIT(3)

/*
 * KILN_REG_ERROR_INFO: for an invalid register or doorbell write, the BAR0
 * offset written; for a queue stopped by a packet, KILN_ERROR_INFO_QUEUE
 * plus the queue index.
 */
#define KILN_ERROR_INFO_QUEUE		KILN_HW_BIT(31)
#define KILN_ERROR_INFO_QID(info)	((info) & 0xffu)

#define KILN_FAULT_STATUS_VALID		KILN_HW_BIT(0)
#define KILN_FAULT_STATUS_ACCESS_SHIFT	4	/* KILN_ACCESS_* */
#define KILN_FAULT_STATUS_ACCESS_MASK	(0x7u << KILN_FAULT_STATUS_ACCESS_SHIFT)
#define KILN_FAULT_STATUS_REASON_SHIFT	8	/* KILN_MMU_FAULT_* */
#define KILN_FAULT_STATUS_REASON_MASK	(0xffu << KILN_FAULT_STATUS_REASON_SHIFT)

/* Per-queue registers, at KILN_REG_QUEUE(q) + offset */
#define KILN_REG_QUEUE(q)		(KILN_REG_QUEUE_BASE + (q) * KILN_REG_QUEUE_STRIDE)
#define KILN_QREG_BASE			0x00	/* RW, 64-bit device PA of the ring */
#define KILN_QREG_SIZE			0x08	/* RW, entries, power of two */
#define KILN_QREG_CONTROL		0x0c	/* RW, KILN_QCTRL_* */
#define KILN_QREG_HEAD			0x10	/* RO, next packet the device reads */
#define KILN_QREG_TAIL			0x14	/* RO, last doorbell value */
#define KILN_QREG_PRIORITY		0x18	/* RW, 0 .. KILN_NUM_PRIORITIES - 1 */
#define KILN_QREG_STATUS		0x1c	/* RO, KILN_QSTATUS_* */
#define KILN_QREG_ERROR			0x20	/* RO, KILN_STATUS_* that stopped the queue */
#define KILN_QREG_ERROR_INDEX		0x24	/* RO, ring index of the offending packet */
#define KILN_QREG_PROGRESS		0x28	/* RO, 64-bit, advances while work runs */
#define KILN_QREG_COMPLETED		0x30	/* RO, 64-bit, packets retired since enable */

#define KILN_QCTRL_ENABLE		KILN_HW_BIT(0)
/* Write 1 with ENABLE clear: head, tail and error return to 0. */
#define KILN_QCTRL_RESET		KILN_HW_BIT(1)
/* Write 1 to restart a queue stopped by an error, past the offending packet. */
#define KILN_QCTRL_RESUME		KILN_HW_BIT(2)

#define KILN_QSTATUS_ENABLED		KILN_HW_BIT(0)
#define KILN_QSTATUS_IDLE		KILN_HW_BIT(1)	/* head == tail, nothing executing */
#define KILN_QSTATUS_WAITING		KILN_HW_BIT(2)	/* blocked in a WAIT packet */
#define KILN_QSTATUS_STOPPED		KILN_HW_BIT(3)	/* stopped by an error */
#define KILN_QSTATUS_RUNNING		KILN_HW_BIT(4)	/* a packet of the queue is executing */
#define KILN_QSTATUS_READY		KILN_HW_BIT(5)	/* has work, waits for a free worker */

/* Telemetry, derived from the cost model's activity */
#define KILN_REG_TEMP_MC		(KILN_REG_TELEMETRY_BASE + 0x00) /* millidegree C */
#define KILN_REG_POWER_MW		(KILN_REG_TELEMETRY_BASE + 0x04) /* milliwatt */
#define KILN_REG_PE_CLOCK_MHZ		(KILN_REG_TELEMETRY_BASE + 0x08)
#define KILN_REG_MEM_CLOCK_MHZ		(KILN_REG_TELEMETRY_BASE + 0x0c)
#define KILN_REG_BUSY_NS		(KILN_REG_TELEMETRY_BASE + 0x10) /* 64-bit */
#define KILN_REG_DMA_BYTES		(KILN_REG_TELEMETRY_BASE + 0x18) /* 64-bit */
#define KILN_REG_PACKETS		(KILN_REG_TELEMETRY_BASE + 0x20) /* 64-bit */
#define KILN_REG_LAUNCHES		(KILN_REG_TELEMETRY_BASE + 0x28) /* 64-bit */
#define KILN_REG_ENERGY_UJ		(KILN_REG_TELEMETRY_BASE + 0x30) /* 64-bit, modelled */

#endif /* KILN_HW_REGS_H */
