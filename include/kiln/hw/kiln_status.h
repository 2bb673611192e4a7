/* SPDX-License-Identifier: MIT */
/*
 * Kiln K1 status codes: the outcome of a job (INDIRECT command buffer),
 * the reason a queue stopped, and the last global error.
 */
#ifndef KILN_HW_STATUS_H
#define KILN_HW_STATUS_H

#include "kiln_hw_common.h"

enum kiln_status {
	KILN_STATUS_OK			= 0,
	KILN_STATUS_BAD_PACKET		= 1,	/* unknown opcode, reserved bits, bad field */
	KILN_STATUS_PRIVILEGED		= 2,	/* privileged packet inside a command buffer */
	KILN_STATUS_BAD_ADDRESS		= 3,	/* physical address outside every region */
	KILN_STATUS_MMU_FAULT		= 4,	/* see fault_addr/fault_access/fault_reason */
	KILN_STATUS_DMA_ERROR		= 5,	/* host memory access failed */
	KILN_STATUS_ILLEGAL_INSTRUCTION	= 6,	/* PE kernel */
	KILN_STATUS_MISALIGNED		= 7,	/* PE kernel */
	KILN_STATUS_LOCAL_MEM_BOUNDS	= 8,	/* PE kernel, outside local memory */
	KILN_STATUS_KERNEL_TRAP		= 9,	/* PE kernel ebreak or kiln_trap() */
	KILN_STATUS_WATCHDOG		= 10,	/* PE kernel exceeded its cycle budget */
	KILN_STATUS_BAD_LAUNCH		= 11,	/* invalid grid, argument or memory size */
	KILN_STATUS_ABORTED		= 12,	/* abandoned by a reset */
	KILN_STATUS_RING_OVERFLOW	= 13,	/* doorbell tail outside the ring */
	KILN_STATUS_BAD_REGISTER	= 14,	/* invalid register write */
	KILN_STATUS_FATAL		= 15,	/* device needs a reset */
	KILN_STATUS_BAD_CONTEXT		= 16,	/* ASID not set up */
	KILN_STATUS_INTERRUPTED		= 17,	/* running at a device reset; not re-run (driver) */
	KILN_STATUS_COUNT
};

#endif /* KILN_HW_STATUS_H */
