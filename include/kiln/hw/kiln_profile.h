/* SPDX-License-Identifier: MIT */
/*
 * Kiln K1 launch profile: what the device writes at a LAUNCH's profile_va
 * (docs/hardware.md, "Launch profile"). Real counters of the cost model,
 * not estimates: per PE, the modelled cycles split by what the PE was
 * doing (they sum to the launch's cycles); bytes per fabric; the work of
 * each unit; the launch's modelled energy; optionally a timeline of unit
 * activity per PE.
 *
 * The host sets @size (the bytes the buffer has) and the device writes no
 * more than that: the header, then the per-PE records if they fit, then
 * as many timeline segments per PE as fit.
 */
#ifndef KILN_HW_PROFILE_H
#define KILN_HW_PROFILE_H

#include "kiln_hw_common.h"

#define KILN_PROFILE_MAGIC		0x464f5250u	/* "PROF" */
#define KILN_PROFILE_VERSION		1

/* What a PE spent a modelled cycle on */
enum kiln_prof_activity {
	KILN_PROF_SCALAR	= 0,	/* its hart's instructions, incl. issuing custom ones */
	KILN_PROF_DPE		= 1,
	KILN_PROF_SE		= 2,	/* incl. the adds of a gather with ACCUM_F32 */
	KILN_PROF_RE		= 3,
	KILN_PROF_MLU		= 4,
	KILN_PROF_DMA_WAIT	= 5,	/* stalled in kiln.dma.wait */
	KILN_PROF_BARRIER	= 6,	/* at kiln.barrier until released */
	KILN_PROF_FABRIC	= 7,	/* phase held until the shared fabrics carried its traffic */
	KILN_PROF_IDLE		= 8,	/* no workgroup, or its workgroup ended, while the wave lasts */
	KILN_PROF_LAUNCH	= 9,	/* launch dispatch and wave replacement */
	KILN_PROF_ACTIVITIES	= 10
};

/* Index of fabric_bytes[] */
enum kiln_prof_fabric {
	KILN_PROF_FABRIC_DRAM	= 0,
	KILN_PROF_FABRIC_SRAM	= 1,
	KILN_PROF_FABRIC_HOST	= 2,
	KILN_PROF_FABRIC_LOCAL	= 3,	/* DMA bytes through the PEs' local ports */
	KILN_PROF_FABRICS	= 4
};

struct kiln_profile_header {
	uint32_t magic;			/* KILN_PROFILE_MAGIC once written */
	uint32_t version;		/* KILN_PROFILE_VERSION */
	uint32_t size;			/* in: bytes of the buffer (>= this header) */
	uint32_t num_pes;		/* PEs of the device */
	uint32_t pe_offset;		/* struct kiln_profile_pe[num_pes]; 0: did not fit */
	uint32_t segment_offset;	/* segment lists, one per PE; 0: none fit */
	uint32_t segments_per_pe;	/* capacity of each list */
	uint32_t waves;
	uint64_t cycles;		/* modelled cycles of the launch */
	uint64_t start_cycles;		/* the device's TOTAL_CYCLES when it began */
	uint64_t instructions;		/* retired by all PEs */
	uint64_t energy_pj;		/* idle power over @cycles + dynamic energy */
	uint64_t fabric_bytes[KILN_PROF_FABRICS];	/* per crossing */
	uint64_t macs[4];		/* DPE MACs by dtype: KILN_DTYPE_FP32 .. INT8 */
	uint64_t se_elems;		/* simple SE element ops */
	uint64_t se_transc_elems;	/* transcendental, div, recip */
	uint64_t re_elems;		/* RE input elements */
	uint64_t mlu_bytes;
};

struct kiln_profile_pe {
	uint64_t cycles[KILN_PROF_ACTIVITIES];	/* sum: the launch's cycles */
	uint32_t workgroups;		/* run on this PE */
	uint32_t segments;		/* written to this PE's list */
	uint64_t dropped;		/* segments that did not fit */
};

/*
 * One interval of a PE's timeline, in cycles from the start of the
 * launch. Only non-scalar activity is listed: the gaps are scalar code.
 * Adjacent intervals of one activity are merged.
 */
struct kiln_profile_segment {
	uint64_t start;
	uint32_t cycles;
	uint32_t activity;		/* enum kiln_prof_activity */
};

KILN_HW_ASSERT_SIZE(struct kiln_profile_header, 160);
KILN_HW_ASSERT_SIZE(struct kiln_profile_pe, 96);
KILN_HW_ASSERT_SIZE(struct kiln_profile_segment, 16);

#endif /* KILN_HW_PROFILE_H */
