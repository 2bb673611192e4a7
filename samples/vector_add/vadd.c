// SPDX-License-Identifier: MIT
// Device kernel: c[i] = a[i] + b[i]. Each workgroup (one PE) takes every
// num_wg-th element. Compiled to vadd.kbin by kiln-cc at build time.
#include <kiln/device/kiln_device.h>

KILN_KERNEL void vadd(const float *a, const float *b, float *c, uint32_t n)
{
    for (uint32_t i = kiln_wg_id(); i < n; i += kiln_num_wg())
        c[i] = a[i] + b[i];
}
