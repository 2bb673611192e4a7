/* SPDX-License-Identifier: MIT */
/*
 * Kiln K1 PE instruction set: the kernel's view of a processing element.
 *
 * Each PE runs one RV64IMAFD + Zicsr hart (little-endian, no C).
 * Everything here is documented in docs/pe-isa.md.
 *
 * Address map seen by a kernel:
 *   [0, 2^48)                          context virtual addresses (device MMU)
 *   [KILN_LOCAL_MEM_BASE, +local_size) the PE's own local memory
 *   KILN_EXIT_PC                       returning here ends the workgroup
 * At entry: pc = LAUNCH entry_va, a0 = args_va, a1 = linear workgroup id,
 * sp = KILN_LOCAL_MEM_BASE + local_size, ra = KILN_EXIT_PC, all other
 * registers 0, fcsr 0.
 *
 * Custom instructions are R-type in the custom-0 major opcode:
 *   funct7[31:25] rs2[24:20] rs1[19:15] funct3[14:12] rd[11:7] 0001011
 * funct3 selects the unit, funct7 the operation. The heavy operations take
 * rs1 = the address of a descriptor in local memory (8-byte aligned).
 */
#ifndef KILN_HW_ISA_H
#define KILN_HW_ISA_H

#include "kiln_hw_common.h"

#define KILN_ISA_VERSION		1

#define KILN_LOCAL_MEM_BASE		0x1000000000000ull	/* 2^48 */
#define KILN_LOCAL_MEM_DEFAULT_SIZE	(384u << 10)
#define KILN_LOCAL_MEM_MAX_SIZE		(16u << 20)
#define KILN_EXIT_PC			0xfffffffffffff000ull

/* ---- encodings -------------------------------------------------------- */

#define KILN_OPC_CUSTOM0		0x0bu
#define KILN_INSN(funct7, rs2, rs1, funct3, rd) \
	(((uint32_t)(funct7) << 25) | ((uint32_t)(rs2) << 20) | \
	 ((uint32_t)(rs1) << 15) | ((uint32_t)(funct3) << 12) | \
	 ((uint32_t)(rd) << 7) | KILN_OPC_CUSTOM0)

/* funct3: unit */
enum kiln_unit {
	KILN_UNIT_SYS	= 0,
	KILN_UNIT_DMA	= 1,
	KILN_UNIT_DPE	= 2,
	KILN_UNIT_SE	= 3,
	KILN_UNIT_RE	= 4,
	KILN_UNIT_MLU	= 5,
};

/* SYS (funct3 0) */
enum kiln_sys_op {
	KILN_SYS_EXIT		= 0,	/* end this workgroup (rs1 ignored) */
	KILN_SYS_TRAP		= 1,	/* fail the launch: KERNEL_TRAP, addr = rs1 */
	KILN_SYS_BARRIER	= 2,	/* all workgroups of a COOPERATIVE launch */
	KILN_SYS_PUTC		= 3,	/* debug channel: append byte rs1 */
	KILN_SYS_PUTS		= 4,	/* debug channel: append rs2 bytes at rs1 */
};

/* DMA / fabric interface (funct3 1); rs2 = tag (0..31) */
enum kiln_dma_op {
	KILN_DMA_COPY2D		= 0,	/* rs1 = struct kiln_dma_desc * */
	KILN_DMA_GATHER		= 1,	/* rs1 = struct kiln_gather_desc * */
	KILN_DMA_WAIT		= 2,	/* wait for every tag in the mask rs1 */
};
#define KILN_DMA_TAGS			32

/* DPE (funct3 2) */
enum kiln_dpe_op {
	KILN_DPE_MATMUL		= 0,	/* rs1 = struct kiln_dpe_desc * */
};

/* SE (funct3 3): rs1 = struct kiln_se_desc *; fp32 unless noted */
enum kiln_se_op {
	KILN_SE_ADD	= 0,	/* dst = a + b */
	KILN_SE_SUB	= 1,
	KILN_SE_MUL	= 2,
	KILN_SE_DIV	= 3,
	KILN_SE_MIN	= 4,	/* IEEE minNum/maxNum like fmin.s */
	KILN_SE_MAX	= 5,
	KILN_SE_FMA	= 6,	/* dst = a * b + c (fused) */
	/* binary op | KILN_SE_SCALAR: b is desc.scalar instead of memory */
	KILN_SE_SCALAR	= 0x10,
	KILN_SE_EXP	= 0x20,
	KILN_SE_LOG	= 0x21,
	KILN_SE_SQRT	= 0x22,
	KILN_SE_RSQRT	= 0x23,
	KILN_SE_RELU	= 0x24,
	KILN_SE_GELU	= 0x25,	/* tanh approximation */
	KILN_SE_SIGMOID	= 0x26,
	KILN_SE_TANH	= 0x27,
	KILN_SE_NEG	= 0x28,
	KILN_SE_ABS	= 0x29,
	KILN_SE_RECIP	= 0x2a,
	KILN_SE_COPY	= 0x2b,
	KILN_SE_FILL	= 0x30,	/* dst = scalar (dst_type: fp32 or int32 bits) */
	KILN_SE_CVT	= 0x38,	/* dst(dst_type) = a(src_type), RNE + saturation */
};

/* RE (funct3 4): rs1 = struct kiln_re_desc *; rd = bits of dst[0] */
enum kiln_re_op {
	KILN_RE_SUM_ROWS	= 0,	/* dst[r] = sum_c src[r][c] */
	KILN_RE_SUM_COLS	= 1,	/* dst[c] = sum_r src[r][c] */
	KILN_RE_MAX_ROWS	= 2,
	KILN_RE_MAX_COLS	= 3,
	KILN_RE_MIN_ROWS	= 4,
	KILN_RE_MIN_COLS	= 5,
	KILN_RE_SUMSQ_ROWS	= 6,	/* dst[r] = sum_c src[r][c]^2 */
	KILN_RE_SUMSQ_COLS	= 7,
};

/* MLU (funct3 5): rs1 = struct kiln_mlu_desc * */
enum kiln_mlu_op {
	KILN_MLU_TRANSPOSE	= 0,	/* dst[c][r] = src[r][c] */
	KILN_MLU_COPY2D		= 1,	/* dst[r][c] = src[r][c] (re-stride) */
};

/* ---- data types --------------------------------------------------------- */

enum kiln_dtype {
	KILN_DTYPE_FP32		= 0,
	KILN_DTYPE_BF16		= 1,
	KILN_DTYPE_FP16		= 2,
	KILN_DTYPE_INT8		= 3,
	KILN_DTYPE_INT32	= 4,
	KILN_DTYPE_COUNT
};

/* ---- descriptors (little-endian, in local memory, 8-byte aligned) -------- */

/*
 * 2-D copy: @rows rows of @row_bytes bytes. Addresses are local-memory
 * addresses or context VAs (DRAM, SRAM, host memory through the MMU).
 */
struct kiln_dma_desc {
	uint64_t dst;
	uint64_t src;
	int64_t dst_stride;	/* bytes between rows */
	int64_t src_stride;
	uint32_t row_bytes;
	uint32_t rows;
};

#define KILN_GATHER_IDX64	KILN_HW_BIT(0)	/* indices are int64 (else int32) */
#define KILN_GATHER_ACCUM_F32	KILN_HW_BIT(1)	/* dst (fp32 row) += each row */

/*
 * Indexed gather: for i < count, row indices[i] of the table
 * (table + idx * table_stride, row_bytes bytes) goes to dst + i * dst_stride,
 * or with ACCUM_F32 is added (fp32) into the single row at dst.
 * An index >= num_rows (when num_rows != 0) is a KERNEL_TRAP.
 */
struct kiln_gather_desc {
	uint64_t dst;		/* local memory */
	uint64_t table;		/* VA or local */
	uint64_t indices;	/* local memory */
	uint64_t table_stride;	/* bytes */
	uint64_t num_rows;
	uint32_t row_bytes;
	uint32_t count;
	uint32_t flags;
	uint32_t dst_stride;	/* bytes */
};

#define KILN_DPE_TRANS_A	KILN_HW_BIT(0)	/* A stored K x M */
#define KILN_DPE_TRANS_B	KILN_HW_BIT(1)	/* B stored N x K */
#define KILN_DPE_ACCUM		KILN_HW_BIT(2)	/* C += A*B (else C = A*B) */

/*
 * C[m][n] (+)= sum_k A[m][k] * B[k][n], row-major with leading dimensions in
 * elements. A, B of @dtype (fp32, bf16, fp16: C fp32; int8: C int32).
 */
struct kiln_dpe_desc {
	uint64_t a;
	uint64_t b;
	uint64_t c;
	uint32_t m, n, k;
	uint32_t lda, ldb, ldc;
	uint32_t dtype;
	uint32_t flags;
};

/*
 * Element-wise over rows x cols. Operand x's element (r, c) is at
 * x + (r * x_ld + c * x_cs) * elem_size; ld may be 0 and cs 0 or 1 to
 * broadcast. dst always has column stride 1.
 */
struct kiln_se_desc {
	uint64_t dst;
	uint64_t a;
	uint64_t b;
	uint64_t c;
	uint32_t rows, cols;
	int32_t dst_ld, a_ld, b_ld, c_ld;
	float scalar;
	uint32_t reserved0;
	uint8_t a_cs, b_cs, c_cs;
	uint8_t src_type;	/* CVT; INT32 selects the integer add/sub/min/max/relu */
	uint8_t dst_type;	/* CVT, FILL */
	uint8_t reserved1[3];
};

#define KILN_RE_ACCUM		KILN_HW_BIT(0)	/* combine with the old dst */

struct kiln_re_desc {
	uint64_t dst;		/* fp32 */
	uint64_t src;		/* fp32 */
	uint32_t rows, cols;
	int32_t src_ld;		/* elements */
	uint32_t flags;
};

struct kiln_mlu_desc {
	uint64_t dst;
	uint64_t src;
	uint32_t rows, cols;	/* of src */
	int32_t dst_ld, src_ld;	/* elements */
	uint32_t elem_size;	/* 1, 2, 4 or 8 */
	uint32_t reserved;
};

KILN_HW_ASSERT_SIZE(struct kiln_dma_desc, 40);
KILN_HW_ASSERT_SIZE(struct kiln_gather_desc, 56);
KILN_HW_ASSERT_SIZE(struct kiln_dpe_desc, 56);
KILN_HW_ASSERT_SIZE(struct kiln_se_desc, 72);
KILN_HW_ASSERT_SIZE(struct kiln_re_desc, 32);
KILN_HW_ASSERT_SIZE(struct kiln_mlu_desc, 40);

/* ---- CSRs ---------------------------------------------------------------- */

#define KILN_CSR_FFLAGS		0x001
#define KILN_CSR_FRM		0x002
#define KILN_CSR_FCSR		0x003
#define KILN_CSR_CYCLE		0xc00	/* emulated cycles of this PE */
#define KILN_CSR_TIME		0xc01	/* same as cycle */
#define KILN_CSR_INSTRET	0xc02
/* custom read-only */
#define KILN_CSR_PE_ID		0xcc0	/* y * grid_width + x of the PE */
#define KILN_CSR_WG_X		0xcc1
#define KILN_CSR_WG_Y		0xcc2
#define KILN_CSR_WG_Z		0xcc3
#define KILN_CSR_GRID_X		0xcc4
#define KILN_CSR_GRID_Y		0xcc5
#define KILN_CSR_GRID_Z		0xcc6
#define KILN_CSR_NUM_PES	0xcc7
#define KILN_CSR_LOCAL_BASE	0xcc8
#define KILN_CSR_LOCAL_SIZE	0xcc9
#define KILN_CSR_WG_ID		0xcca	/* linear: (z * gy + y) * gx + x */
#define KILN_CSR_NUM_WG		0xccb
#define KILN_CSR_CYCLES		0xccc	/* same as cycle */
/* custom read/write */
#define KILN_CSR_DEBUG_PUTC	0x800	/* write: append the low byte to the debug channel */

/* ---- debug channel --------------------------------------------------------- */

/*
 * LAUNCH debug buffer at debug_va, debug_size bytes: this header, then
 * records. At the end of each wave the device appends, after @used (leaving
 * what earlier launches wrote) and in workgroup order, one record per
 * workgroup that wrote anything: struct kiln_debug_record, its @len text
 * bytes, padding to 8 bytes. What does not fit is counted in @dropped.
 */
struct kiln_debug_header {
	uint64_t used;		/* record bytes after the header (padding included) */
	uint64_t dropped;	/* text bytes that did not fit, all workgroups */
};
KILN_HW_ASSERT_SIZE(struct kiln_debug_header, 16);

struct kiln_debug_record {
	uint32_t wg;		/* linear workgroup id */
	uint32_t pe;		/* PE that ran it: y * grid_width + x */
	uint32_t len;		/* text bytes that follow */
	uint32_t dropped;	/* text bytes of this workgroup that did not fit */
};
KILN_HW_ASSERT_SIZE(struct kiln_debug_record, 16);

/*
 * ---- cost model (emulated cycles at 1.35 GHz) ----------------------------
 * Rates are MTIA 2i's (docs/pe-isa.md section 4 gives the source of each).
 */

#define KILN_PE_CLOCK_MHZ		1350
#define KILN_PE_CLOCK_HZ		(KILN_PE_CLOCK_MHZ * 1000000ull)

/* Scalar hart: 1 cycle per instruction plus these */
#define KILN_COST_MUL_EXTRA		2
#define KILN_COST_DIV_EXTRA		19
#define KILN_COST_FP_EXTRA		3
#define KILN_COST_FDIV_EXTRA		19	/* fdiv, fsqrt */
#define KILN_COST_GLOBAL_EXTRA		99	/* scalar load/store to device memory */
#define KILN_COST_UNIT_ISSUE		4	/* every custom instruction */
#define KILN_COST_BARRIER		64	/* after the last arrival */

/*
 * LAUNCH: dispatching the work-queue descriptors to the PEs before the
 * first wave, and replacing the workgroups of one wave by the next: 90 %
 * of MTIA 2i's published bounds (job launch < 1 us, replacement < 0.5 us).
 */
#define KILN_COST_LAUNCH		1215	/* 0.9 us */
#define KILN_COST_WAVE			608	/* 0.45 us, every wave after the first */

/* Fixed-function units, per cycle per PE */
#define KILN_COST_DPE_MACS_BF16		1024
#define KILN_COST_DPE_MACS_FP16		1024
#define KILN_COST_DPE_MACS_INT8		2048
#define KILN_COST_DPE_MACS_FP32		256
#define KILN_COST_SE_ELEMS		64	/* simple element ops */
#define KILN_COST_SE_TRANSC_ELEMS	16	/* exp/log/tanh/div/... */
#define KILN_COST_RE_ELEMS		64	/* input elements */
#define KILN_COST_MLU_BYTES		64

/*
 * Memory, bytes/s. DRAM, SRAM and the host link are chip-wide fabrics
 * shared by all PEs; LOCAL is each PE's own port, which every DMA
 * transfer of that PE goes through.
 */
#define KILN_COST_DRAM_BPS		204800000000ull
#define KILN_COST_SRAM_BPS		2700000000000ull
#define KILN_COST_HOST_BPS		32000000000ull
#define KILN_COST_LOCAL_BPS		1000000000000ull
#define KILN_COST_DMA_LATENCY		300	/* cycles, per transfer */
#define KILN_COST_DMA_ROW		1	/* cycles at least, per row */

/*
 * ---- energy model (docs/pe-isa.md section 4) -----------------------------
 * Every job's energy = KILN_POWER_IDLE_MW over its modelled time plus the
 * dynamic energy of what it did. Dynamic energies are in femtojoules so the
 * sums are exact integers; the absolute scale is calibrated so that the
 * full-load bf16 GEMM kernel (bench/kernels/bench.c) draws the MTIA 2i TDP,
 * 85 W, and an idle device 20 W.
 */
#define KILN_POWER_IDLE_MW		20000	/* static + clock tree, always drawn */
#define KILN_POWER_TDP_MW		85000	/* the calibration point */
#define KILN_ENERGY_PE_ACTIVE_FJ	40000	/* per PE cycle not idle or waiting */
#define KILN_ENERGY_MAC_FP32_FJ		2600
#define KILN_ENERGY_MAC_BF16_FJ		665
#define KILN_ENERGY_MAC_FP16_FJ		665
#define KILN_ENERGY_MAC_INT8_FJ		200
#define KILN_ENERGY_SE_ELEM_FJ		1000	/* simple element op */
#define KILN_ENERGY_SE_TRANSC_ELEM_FJ	4000	/* exp/log/tanh/div/... */
#define KILN_ENERGY_RE_ELEM_FJ		500
#define KILN_ENERGY_MLU_BYTE_FJ		250
#define KILN_ENERGY_LOCAL_BYTE_FJ	800	/* a DMA byte through a PE's port */
#define KILN_ENERGY_SRAM_BYTE_FJ	2500	/* NoC + SRAM array, per crossing */
#define KILN_ENERGY_DRAM_BYTE_FJ	32000	/* LPDDR5, ~4 pJ/bit */
#define KILN_ENERGY_HOST_BYTE_FJ	40000	/* PCIe Gen5, ~5 pJ/bit */

#endif /* KILN_HW_ISA_H */
