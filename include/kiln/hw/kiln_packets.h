/* SPDX-License-Identifier: MIT */
/*
 * Kiln K1 command packets.
 *
 * Rings and user command buffers hold fixed-size 64-byte packets. A packet
 * starts with a 32-bit header: opcode in bits 7..0, opcode-specific flags in
 * bits 15..8, bits 31..16 reserved (must be zero). All fields not named in a
 * packet's layout are reserved and must be zero; a packet breaking that is
 * rejected with KILN_STATUS_BAD_PACKET.
 *
 * Packets directly in a ring run privileged and use device physical
 * addresses. INDIRECT runs a user command buffer under a context (ASID):
 * its packets use that context's virtual addresses and may not be
 * privileged (KILN_STATUS_PRIVILEGED). Packets of one queue execute in order;
 * a packet starts only after the previous one completed.
 */
#ifndef KILN_HW_PACKETS_H
#define KILN_HW_PACKETS_H

#include "kiln_hw_common.h"

#define KILN_PACKET_SIZE		64

#define KILN_PKT_OPCODE_MASK		0xffu
#define KILN_PKT_FLAGS_SHIFT		8
#define KILN_PKT_FLAGS_MASK		(0xffu << KILN_PKT_FLAGS_SHIFT)
#define KILN_PKT_RESERVED_MASK		0xffff0000u
#define KILN_PKT_HEADER(op, flags)	((uint32_t)(op) | ((uint32_t)(flags) << KILN_PKT_FLAGS_SHIFT))
#define KILN_PKT_OPCODE(hdr)		((hdr) & KILN_PKT_OPCODE_MASK)
#define KILN_PKT_FLAGS(hdr)		(((hdr) & KILN_PKT_FLAGS_MASK) >> KILN_PKT_FLAGS_SHIFT)

enum kiln_opcode {
	KILN_OP_NOP		= 0x00,
	KILN_OP_INDIRECT	= 0x01,	/* privileged */
	KILN_OP_DMA_COPY	= 0x02,
	KILN_OP_DMA_FILL	= 0x03,
	KILN_OP_LAUNCH		= 0x04,
	KILN_OP_FENCE		= 0x05,
	KILN_OP_WAIT		= 0x06,
	KILN_OP_TIMESTAMP	= 0x07,
	KILN_OP_CTX_SETUP	= 0x10,	/* privileged */
	KILN_OP_TLB_INVAL	= 0x11,	/* privileged */
};

#define KILN_OP_IS_PRIVILEGED(op)	((op) == KILN_OP_INDIRECT || (op) >= 0x10)

/* Limits */
#define KILN_INDIRECT_MAX_SIZE		(4u << 20)	/* bytes of packets per command buffer */
#define KILN_DMA_MAX_SIZE		(1ull << 40)
#define KILN_LAUNCH_MAX_ARGS_SIZE	4096
#define KILN_LAUNCH_MAX_GRID		65535		/* per dimension */

struct kiln_pkt_generic {
	uint32_t header;
	uint32_t dw[15];
};

struct kiln_pkt_nop {
	uint32_t header;
	uint32_t reserved[15];
};

/*
 * Run the command buffer at @cmd_va (64-byte aligned, @size bytes, a
 * multiple of 64) under context @asid. When it ends, successfully or not,
 * the device writes a struct kiln_job_status to @status_pa, then goes on
 * with the next ring packet: an error inside a command buffer fails that
 * job only. If @max_watchdog_mcycles is non-zero, no LAUNCH of the command
 * buffer runs longer than that many million cycles per PE, whatever its
 * own watchdog_mcycles asks for: the driver bounds what an unprivileged
 * context can take of the device.
 */
struct kiln_pkt_indirect {
	uint32_t header;
	uint32_t asid;
	uint64_t cmd_va;
	uint32_t size;
	uint32_t max_watchdog_mcycles;
	uint64_t status_pa;
	uint64_t job_id;	/* echoed into the job status */
	uint64_t reserved[3];
};

/* Copy @size bytes from @src to @dst. Overlapping ranges are BAD_PACKET. */
struct kiln_pkt_dma_copy {
	uint32_t header;
	uint32_t reserved0;
	uint64_t src;
	uint64_t dst;
	uint64_t size;
	uint64_t reserved[4];
};

/* Fill @size bytes (a multiple of 4) at @dst (4-byte aligned) with @pattern. */
struct kiln_pkt_dma_fill {
	uint32_t header;
	uint32_t pattern;
	uint64_t dst;
	uint64_t size;
	uint64_t reserved[5];
};

/*
 * Run a kernel: grid_x * grid_y * grid_z workgroups, each on one PE, all
 * starting at @entry_va (an executable mapping) with a0 = @args_va.
 * @local_mem is the local memory each workgroup needs (0: all of it).
 * If @debug_size is non-zero, kernel debug output is appended to the
 * buffer at @debug_va (see docs/hardware.md, debug channel).
 * @watchdog_mcycles bounds each PE's emulated cycles in millions (0: the
 * device default). If @profile_va is non-zero, the device writes the
 * launch's profile there (struct kiln_profile_header, kiln_profile.h).
 */
#define KILN_LAUNCH_FLAG_COOPERATIVE	KILN_HW_BIT(0)	/* all workgroups co-resident: barriers allowed */

struct kiln_pkt_launch {
	uint32_t header;
	uint32_t args_size;
	uint64_t entry_va;
	uint64_t args_va;
	uint64_t debug_va;
	uint32_t grid_x;
	uint32_t grid_y;
	uint32_t grid_z;
	uint32_t local_mem;
	uint32_t debug_size;
	uint32_t watchdog_mcycles;
	uint64_t profile_va;	/* 8-byte aligned, 0: no profile */
};

/* Write @value (32 or 64 bits) to @addr once all earlier packets completed. */
#define KILN_FENCE_FLAG_IRQ		KILN_HW_BIT(0)	/* then interrupt on the queue's vector */
#define KILN_FENCE_FLAG_64BIT		KILN_HW_BIT(1)

struct kiln_pkt_fence {
	uint32_t header;
	uint32_t reserved0;
	uint64_t addr;
	uint64_t value;
	uint64_t reserved[5];
};

/* Block the queue until (*(uint64_t *)@addr & @mask) <op> @value holds. */
enum kiln_wait_op {
	KILN_WAIT_GEQUAL	= 0,	/* unsigned >= */
	KILN_WAIT_EQUAL		= 1,
	KILN_WAIT_NOT_EQUAL	= 2,
};

struct kiln_pkt_wait {
	uint32_t header;
	uint32_t op;
	uint64_t addr;		/* 8-byte aligned */
	uint64_t value;
	uint64_t mask;
	uint64_t reserved[4];
};

/* Write a struct kiln_timestamp (16 bytes, 8-byte aligned) to @addr. */
struct kiln_pkt_timestamp {
	uint32_t header;
	uint32_t reserved0;
	uint64_t addr;
	uint64_t reserved[6];
};

struct kiln_timestamp {
	uint64_t device_ns;	/* device time, KILN_REG_DEVICE_TIME */
	uint64_t cycles;	/* emulated PE cycles, KILN_REG_TOTAL_CYCLES */
};

/*
 * Bind context @asid (1 .. KILN_MAX_CONTEXTS - 1) to the page-table root at
 * @pt_root_pa (4 KiB aligned), or unbind it (flag VALID clear). Flushes the
 * context's TLB entries.
 */
#define KILN_CTX_FLAG_VALID		KILN_HW_BIT(0)

struct kiln_pkt_ctx_setup {
	uint32_t header;
	uint32_t asid;
	uint64_t pt_root_pa;
	uint64_t reserved[6];
};

/* Invalidate TLB entries of @asid covering [@va, @va + @size), or all of them. */
#define KILN_TLB_FLAG_ALL		KILN_HW_BIT(0)

struct kiln_pkt_tlb_inval {
	uint32_t header;
	uint32_t asid;
	uint64_t va;
	uint64_t size;
	uint64_t reserved[5];
};

/* Written by the device at an INDIRECT's status_pa. */
struct kiln_job_status {
	uint32_t status;	/* enum kiln_status */
	uint32_t packet_index;	/* failing packet in the command buffer */
	uint64_t job_id;	/* from the INDIRECT packet */
	uint64_t fault_addr;	/* MMU fault VA or faulting data address */
	uint32_t fault_access;	/* KILN_ACCESS_* */
	uint32_t fault_reason;	/* enum kiln_mmu_fault_reason, or RISC-V cause */
	uint32_t pe;		/* PE index (y * width + x); ~0 if not a kernel fault */
	uint32_t flags;		/* KILN_JOB_STATUS_DONE */
	uint64_t pc;		/* PE program counter for kernel faults */
	uint64_t cycles;	/* modelled cycles the job took */
	uint64_t elapsed_ns;	/* emulator (QEMU virtual) time the job took */
	uint64_t energy_pj;	/* modelled energy of the job */
};

#define KILN_JOB_STATUS_DONE		KILN_HW_BIT(0)
#define KILN_JOB_STATUS_NO_PE		0xffffffffu

KILN_HW_ASSERT_SIZE(struct kiln_pkt_generic, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_nop, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_indirect, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_dma_copy, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_dma_fill, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_launch, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_fence, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_wait, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_timestamp, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_ctx_setup, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_pkt_tlb_inval, KILN_PACKET_SIZE);
KILN_HW_ASSERT_SIZE(struct kiln_timestamp, 16);
KILN_HW_ASSERT_SIZE(struct kiln_job_status, 72);

#endif /* KILN_HW_PACKETS_H */
