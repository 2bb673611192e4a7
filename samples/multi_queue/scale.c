// SPDX-License-Identifier: MIT
// Device kernel: y[i] = a * x[i] + b
#include <kiln/device/kiln_device.h>

KILN_KERNEL void axpb(const float *x, float *y, float a, float b, uint32_t n)
{
    for (uint32_t i = kiln_wg_id(); i < n; i += kiln_num_wg())
        y[i] = a * x[i] + b;
}
