/* SPDX-License-Identifier: MIT */
/*
 * Kiln kernel binary ("kbin") format, produced by kiln-cc and loaded by
 * the SDK. Full description: docs/pe-isa.md, "Kernel binary format".
 *
 * A kbin is an ELF64 little-endian EM_RISCV (243) ET_DYN file linked at
 * address 0. The loader:
 *   1. checks the ELF header, the ".note.kiln" target note and the
 *      ".kiln.meta" section;
 *   2. allocates one device buffer of max(p_vaddr + p_memsz) over the
 *      PT_LOAD segments (rounded up to 4 KiB), mapped read/write/execute
 *      at base VA B, copies each segment's p_filesz bytes to B + p_vaddr
 *      and zero-fills up to p_memsz;
 *   3. applies every relocation of the DT_RELA table (SHT_RELA sections):
 *      only R_RISCV_RELATIVE (3) is allowed, *(uint64_t *)(B + r_offset)
 *      = B + r_addend; anything else rejects the file;
 *   4. launches kernel k at entry_va = B + kernels[k].entry, with args_va
 *      pointing at an args block of kernels[k].args_size bytes laid out
 *      by the kernel's arg records (a0 = args_va at entry).
 */
#ifndef KILN_HW_KBIN_H
#define KILN_HW_KBIN_H

#include "kiln_hw_common.h"

#define KILN_KBIN_EM_RISCV		243
#define KILN_KBIN_R_RISCV_RELATIVE	3

/* ---- target note: section ".note.kiln", standard ELF note layout ---- */
#define KILN_NOTE_SECTION		".note.kiln"
#define KILN_NOTE_NAME			"Kiln"		/* namesz 5, padded to 8 */
#define KILN_NOTE_TYPE_TARGET		1

#define KILN_FEATURE_DPE		KILN_HW_BIT64(0)
#define KILN_FEATURE_SE			KILN_HW_BIT64(1)
#define KILN_FEATURE_RE			KILN_HW_BIT64(2)
#define KILN_FEATURE_MLU		KILN_HW_BIT64(3)
#define KILN_FEATURE_DMA		KILN_HW_BIT64(4)
#define KILN_FEATURE_BARRIER		KILN_HW_BIT64(5)	/* needs a COOPERATIVE launch */
#define KILN_FEATURES_K1		0x3full
#define KILN_DEVICE_VERSION_K1		1	/* min_device_version of a kernel for K1 */

struct kiln_note_target {
	uint32_t isa_version;		/* KILN_ISA_VERSION the kernel was built for */
	uint32_t min_device_version;	/* lowest device (K1 = 1) */
	uint64_t features;		/* KILN_FEATURE_* the kernel may use */
};

/* ---- argument metadata: section ".kiln.meta" (not loaded) -----------
 *
 *   struct kiln_meta_header
 *   struct kiln_meta_kernel   kernels[kernel_count]   at kernels_offset
 *   struct kiln_meta_arg      args[arg_count]         at args_offset
 *   char                      strings[strings_size]   at strings_offset
 *
 * Offsets are from the start of the section; names are NUL-terminated
 * strings at string-table offsets. A kernel's arguments are
 * args[arg_first .. arg_first + arg_count).
 */
#define KILN_META_SECTION		".kiln.meta"
#define KILN_META_MAGIC			0x4154454du	/* "META" little-endian */
#define KILN_META_VERSION		1

struct kiln_meta_header {
	uint32_t magic;
	uint16_t version;
	uint16_t header_size;		/* sizeof(struct kiln_meta_header) */
	uint32_t kernel_count;
	uint32_t kernel_size;		/* sizeof(struct kiln_meta_kernel) */
	uint32_t arg_count;
	uint32_t arg_size;		/* sizeof(struct kiln_meta_arg) */
	uint32_t kernels_offset;
	uint32_t args_offset;
	uint32_t strings_offset;
	uint32_t strings_size;
};

#define KILN_META_KERNEL_COOPERATIVE	KILN_HW_BIT(0)	/* uses the barrier */

struct kiln_meta_kernel {
	uint32_t name;			/* string offset: the kernel's source name */
	uint32_t flags;			/* KILN_META_KERNEL_* */
	uint64_t entry;			/* entry symbol value (offset from base) */
	uint32_t args_size;		/* args block bytes (multiple of args_align) */
	uint32_t args_align;
	uint32_t local_mem;		/* bytes needed, 0: the device default */
	uint32_t arg_first;
	uint32_t arg_count;
	uint32_t reserved;
};

enum kiln_meta_arg_kind {
	KILN_ARG_BUFFER		= 0,	/* a device VA (8 bytes) */
	KILN_ARG_SCALAR		= 1,	/* value of @size bytes */
};

#define KILN_ARG_ACCESS_READ	KILN_HW_BIT(0)
#define KILN_ARG_ACCESS_WRITE	KILN_HW_BIT(1)

enum kiln_meta_elem_type {
	KILN_ELEM_NONE		= 0,	/* void *, or a struct */
	KILN_ELEM_I8		= 1,
	KILN_ELEM_U8		= 2,
	KILN_ELEM_I16		= 3,
	KILN_ELEM_U16		= 4,
	KILN_ELEM_I32		= 5,
	KILN_ELEM_U32		= 6,
	KILN_ELEM_I64		= 7,
	KILN_ELEM_U64		= 8,
	KILN_ELEM_F16		= 9,	/* _Float16 / kiln_fp16_t (uint16_t storage) */
	KILN_ELEM_BF16		= 10,	/* kiln_bf16_t (uint16_t storage) */
	KILN_ELEM_F32		= 11,
	KILN_ELEM_F64		= 12,
};

struct kiln_meta_arg {
	uint32_t name;			/* string offset */
	uint8_t kind;			/* enum kiln_meta_arg_kind */
	uint8_t access;			/* KILN_ARG_ACCESS_*; buffers only */
	uint8_t elem_type;		/* enum kiln_meta_elem_type: pointee or scalar */
	uint8_t reserved;
	uint32_t size;			/* bytes in the args block */
	uint32_t align;
	uint32_t offset;		/* in the args block */
};

KILN_HW_ASSERT_SIZE(struct kiln_note_target, 16);
KILN_HW_ASSERT_SIZE(struct kiln_meta_header, 40);
KILN_HW_ASSERT_SIZE(struct kiln_meta_kernel, 40);
KILN_HW_ASSERT_SIZE(struct kiln_meta_arg, 20);

#endif /* KILN_HW_KBIN_H */
