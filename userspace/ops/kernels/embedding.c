/* SPDX-License-Identifier: MIT */
/*
 * Embedding-bag: out[b] = sum (or mean) of table rows indices[offsets[b] ..
 * offsets[b + 1]) (int32 indices, fp32 rows of dim elements, dim <= 16384),
 * with the DMA engine's accumulating indexed gather. mode: 0 sum, 1 mean.
 */
#include "ops_common.h"

#define MAX_IDX 16384

KILN_KERNEL void kiln_embedding_bag(const float *table, uint64_t num_rows, uint32_t dim,
                                    const int32_t *indices, const int32_t *offsets,
                                    uint32_t bags, uint32_t mode, KILN_OUT float *out)
{
    float *acc = KILN_LM(float, 0);
    int32_t *idx = KILN_LM(int32_t, 65536);
    int32_t *offs = KILN_LM(int32_t, 65536 + MAX_IDX * 4);

    if (dim > 16384) {
        kiln_trap(1);
    }
    for (uint32_t b = kiln_wg_id(); b < bags; b += kiln_num_wg()) {
        kiln_dma_copy(offs, offsets + b, 8, 0);
        kiln_dma_wait(1);
        int32_t beg = offs[0], end = offs[1];
        kiln_se_fill(acc, 0.0f, dim);
        for (int32_t s = beg; s < end; s += MAX_IDX) {
            uint32_t cnt = (uint32_t)(end - s < MAX_IDX ? end - s : MAX_IDX);
            kiln_dma_copy(idx, indices + s, cnt * 4, 0);
            kiln_dma_wait(1);
            kiln_dma_gather(acc, table, idx, cnt, dim * 4, (uint64_t)dim * 4, num_rows, 0,
                            KILN_GATHER_ACCUM_F32, 1);
            kiln_dma_wait(2);
        }
        if (mode == 1 && end > beg) {
            kiln_se_mul_s(acc, acc, 1.0f / (float)(end - beg), dim);
        }
        kiln_dma_copy(out + (uint64_t)b * dim, acc, dim * 4, 2);
        kiln_dma_wait(4);
    }
}
