/* SPDX-License-Identifier: MIT */
/* out[cols x rows] = in[rows x cols]^T, fp32, 128 x 128 tiles through the MLU */
#include "ops_common.h"

#define T 128

KILN_KERNEL void kiln_transpose(const float *in, KILN_OUT float *out, uint32_t rows,
                                uint32_t cols)
{
    uint32_t tr = (rows + T - 1) / T, tc = (cols + T - 1) / T;
    float *a = KILN_LM(float, 0), *b = KILN_LM(float, T * T * 4);
    for (uint32_t t = kiln_wg_id(); t < tr * tc; t += kiln_num_wg()) {
        uint32_t r0 = (t / tc) * T, c0 = (t % tc) * T;
        uint32_t r = kiln_min_u32(T, rows - r0), c = kiln_min_u32(T, cols - c0);
        kiln_dma_copy2d(a, in + (uint64_t)r0 * cols + c0, c * 4, r, (int64_t)c * 4,
                        (int64_t)cols * 4, 0);
        kiln_dma_wait(1);
        kiln_mlu_transpose(b, a, r, c, r, c, 4);
        kiln_dma_copy2d(out + (uint64_t)c0 * rows + r0, b, r * 4, c, (int64_t)rows * 4,
                        (int64_t)r * 4, 1);
        kiln_dma_wait(2);
    }
}
