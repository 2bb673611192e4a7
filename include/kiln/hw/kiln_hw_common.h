/* SPDX-License-Identifier: MIT */
/*
 * Kiln K1 hardware interface: shared preamble.
 *
 * Every file in include/kiln/hw/ is included by the QEMU device model,
 * the Linux driver and user space alike, so it uses only fixed-width
 * types and plain macros.
 */
#ifndef KILN_HW_COMMON_H
#define KILN_HW_COMMON_H

#ifdef __KERNEL__
#include <linux/types.h>
#else
#include <stdint.h>
#endif

#ifdef __cplusplus
#define KILN_HW_ASSERT_SIZE(type, size) \
	static_assert(sizeof(type) == (size), #type " layout")
#else
#define KILN_HW_ASSERT_SIZE(type, size) \
	_Static_assert(sizeof(type) == (size), #type " layout")
#endif

#define KILN_HW_BIT(n)		(1u << (n))
#define KILN_HW_BIT64(n)	(1ull << (n))

#endif /* KILN_HW_COMMON_H */
