/* SPDX-License-Identifier: MIT */
/*
 * out[cols x rows] = in[rows x cols]^T, fp32, 128 x 128 tiles through the
 * MLU, double-buffered: tile i + 1 comes in (tag 1 - buf) while the MLU
 * transposes tile i, which leaves with tag 2 + buf.
 */
#include "ops_common.h"

#define T 128
#define LM_IN(buf) ((buf) * T * T * 4)
#define LM_OUT(buf) ((2 + (buf)) * T * T * 4)

static void load_tile(const float *in, uint32_t rows, uint32_t cols, uint32_t t, uint32_t buf)
{
    uint32_t tc = (cols + T - 1) / T;
    uint32_t r0 = (t / tc) * T, c0 = (t % tc) * T;
    uint32_t r = kiln_min_u32(T, rows - r0), c = kiln_min_u32(T, cols - c0);

    kiln_dma_copy2d(KILN_LM(float, LM_IN(buf)), in + (uint64_t)r0 * cols + c0, c * 4, r,
                    (int64_t)c * 4, (int64_t)cols * 4, buf);
}

KILN_KERNEL void kiln_transpose(const float *in, KILN_OUT float *out, uint32_t rows,
                                uint32_t cols)
{
    uint32_t tr = (rows + T - 1) / T, tc = (cols + T - 1) / T;
    uint32_t step = kiln_num_wg(), t = kiln_wg_id(), buf = 0;

    if (t < tr * tc) {
        load_tile(in, rows, cols, t, 0);
    }
    for (; t < tr * tc; t += step, buf ^= 1) {
        uint32_t r0 = (t / tc) * T, c0 = (t % tc) * T;
        uint32_t r = kiln_min_u32(T, rows - r0), c = kiln_min_u32(T, cols - c0);
        float *a = KILN_LM(float, LM_IN(buf)), *b = KILN_LM(float, LM_OUT(buf));

        if (t + step < tr * tc) {
            load_tile(in, rows, cols, t + step, buf ^ 1);
        }
        kiln_dma_wait(1u << buf);
        kiln_dma_wait(1u << (2 + buf));     /* this output buffer's last tile is out */
        kiln_mlu_transpose(b, a, r, c, r, c, 4);
        kiln_dma_copy2d(out + (uint64_t)c0 * rows + r0, b, r * 4, c, (int64_t)rows * 4,
                        (int64_t)r * 4, 2 + buf);
    }
    kiln_dma_wait_all();
}
