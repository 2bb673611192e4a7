/* SPDX-License-Identifier: MIT */
/*
 * Kiln K1 device physical address map and MMU page-table format.
 *
 * Device physical addresses (PA) select a region by their high bits:
 * DRAM from 0, on-chip SRAM from KILN_PA_SRAM_BASE and host memory
 * (PCI bus addresses, through bus-master DMA and the host IOMMU) from
 * KILN_PA_HOST_BASE. Privileged ring packets use PAs; everything a
 * context does uses 48-bit virtual addresses (VA) translated through its
 * page tables.
 *
 * Page tables: four levels of 512 little-endian 64-bit entries, one 4 KiB
 * table each, like RISC-V Sv48. VA bits 47..39 index level 3 (the root),
 * 38..30 level 2, 29..21 level 1, 20..12 level 0. An entry with any of
 * READ/WRITE/EXEC set is a leaf: at level 0 it maps a 4 KiB page, at
 * level 1 a 2 MiB page (PA 2 MiB aligned). Leaves at levels 2 and 3 and
 * non-zero reserved bits are faults. Tables may live in DRAM or host memory.
 */
#ifndef KILN_HW_MMU_H
#define KILN_HW_MMU_H

#include "kiln_hw_common.h"

#define KILN_PA_DRAM_BASE		0x0ull
#define KILN_PA_DRAM_MAX		0x1000000000ull		/* 64 GiB */
#define KILN_PA_SRAM_BASE		0x4000000000ull		/* 256 GiB */
#define KILN_PA_HOST_BASE		0x8000000000000ull	/* bit 51 */
#define KILN_PA_HOST_MAX		KILN_PA_HOST_BASE	/* bus addresses below 2^51 */
#define KILN_PA_BITS			52

#define KILN_SRAM_SIZE			(256ull << 20)

#define KILN_VA_BITS			48
#define KILN_VA_MAX			(1ull << KILN_VA_BITS)

#define KILN_PAGE_SHIFT			12
#define KILN_PAGE_SIZE			(1ull << KILN_PAGE_SHIFT)
#define KILN_LARGE_PAGE_SHIFT		21
#define KILN_LARGE_PAGE_SIZE		(1ull << KILN_LARGE_PAGE_SHIFT)
#define KILN_PT_LEVELS			4
#define KILN_PT_ENTRIES			512
#define KILN_PT_INDEX_BITS		9
#define KILN_PT_INDEX(va, level) \
	(((va) >> (KILN_PAGE_SHIFT + (level) * KILN_PT_INDEX_BITS)) & (KILN_PT_ENTRIES - 1))

#define KILN_PTE_VALID			KILN_HW_BIT64(0)
#define KILN_PTE_READ			KILN_HW_BIT64(1)
#define KILN_PTE_WRITE			KILN_HW_BIT64(2)
#define KILN_PTE_EXEC			KILN_HW_BIT64(3)
#define KILN_PTE_LEAF_MASK		(KILN_PTE_READ | KILN_PTE_WRITE | KILN_PTE_EXEC)
#define KILN_PTE_ADDR_MASK		0x000ffffffffff000ull	/* PA bits 51..12 */
#define KILN_PTE_RESERVED_MASK		(~(KILN_PTE_ADDR_MASK | 0xfull))

/* Access types, as reported in faults */
#define KILN_ACCESS_READ		KILN_HW_BIT(0)
#define KILN_ACCESS_WRITE		KILN_HW_BIT(1)
#define KILN_ACCESS_EXEC		KILN_HW_BIT(2)

enum kiln_mmu_fault_reason {
	KILN_MMU_FAULT_NONE		= 0,
	KILN_MMU_FAULT_NOT_PRESENT	= 1,	/* entry without VALID */
	KILN_MMU_FAULT_PERMISSION	= 2,	/* leaf lacks the access right */
	KILN_MMU_FAULT_RESERVED		= 3,	/* reserved PTE bits, leaf at level 2/3, misaligned large page */
	KILN_MMU_FAULT_BAD_PA		= 4,	/* PA (leaf or table) outside every region */
	KILN_MMU_FAULT_NON_CANONICAL	= 5,	/* VA at or above 2^48 */
	KILN_MMU_FAULT_TABLE_DMA	= 6,	/* page-table read from host memory failed */
	KILN_MMU_FAULT_INJECTED		= 7,	/* fault injection */
};

#endif /* KILN_HW_MMU_H */
