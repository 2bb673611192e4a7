/* SPDX-License-Identifier: MIT */
/*
 * Embedding-bag: out[b] = sum (or mean) of table rows indices[offsets[b] ..
 * offsets[b + 1]) (int32 indices, fp32 rows of dim elements, dim <= 16384),
 * with the DMA engine's accumulating indexed gather. mode: 0 sum, 1 mean.
 * Double-buffered: the offsets and first indices of the workgroup's next
 * bag come in (tag 1 - buf) while the gather sums the current one, whose
 * result leaves with tag 2 + buf.
 */
#include "ops_common.h"

#define MAX_IDX 16384
#define LM_ACC(buf) ((buf) * 16384 * 4)
#define LM_IDX(buf) (2 * 16384 * 4 + (buf) * MAX_IDX * 4)
#define LM_OFFS(buf) (2 * 16384 * 4 + 2 * MAX_IDX * 4 + (buf) * 16)
#define TAG_OFFS 4
#define TAG_GATHER 5

/* Offsets of bag @b, and its first chunk of indices started with tag @buf */
static void bag_prefetch(const int32_t *indices, const int32_t *offsets, uint32_t b,
                         uint32_t buf)
{
    int32_t *offs = KILN_LM(int32_t, LM_OFFS(buf));

    kiln_dma_copy(offs, offsets + b, 8, TAG_OFFS);
    kiln_dma_wait(1u << TAG_OFFS);
    if (offs[1] > offs[0]) {
        uint32_t cnt = (uint32_t)kiln_min_u32((uint32_t)(offs[1] - offs[0]), MAX_IDX);
        kiln_dma_copy(KILN_LM(int32_t, LM_IDX(buf)), indices + offs[0], cnt * 4, buf);
    }
}

KILN_KERNEL void kiln_embedding_bag(const float *table, uint64_t num_rows, uint32_t dim,
                                    const int32_t *indices, const int32_t *offsets,
                                    uint32_t bags, uint32_t mode, KILN_OUT float *out)
{
    uint32_t step = kiln_num_wg(), b = kiln_wg_id(), buf = 0;

    if (dim > 16384) {
        kiln_trap(1);
    }
    if (b < bags) {
        bag_prefetch(indices, offsets, b, 0);
    }
    for (; b < bags; b += step, buf ^= 1) {
        float *acc = KILN_LM(float, LM_ACC(buf));
        int32_t *idx = KILN_LM(int32_t, LM_IDX(buf));
        const int32_t *offs = KILN_LM(int32_t, LM_OFFS(buf));
        int32_t beg = offs[0], end = offs[1];

        if (b + step < bags) {
            kiln_dma_wait(1u << (2 + (buf ^ 1)));
            bag_prefetch(indices, offsets, b + step, buf ^ 1);
        }
        kiln_dma_wait(1u << buf);
        kiln_se_fill(acc, 0.0f, dim);
        for (int32_t s = beg; s < end; s += MAX_IDX) {
            uint32_t cnt = (uint32_t)(end - s < MAX_IDX ? end - s : MAX_IDX);
            if (s != beg) {
                kiln_dma_copy(idx, indices + s, cnt * 4, buf);
                kiln_dma_wait(1u << buf);
            }
            kiln_dma_gather(acc, table, idx, cnt, dim * 4, (uint64_t)dim * 4, num_rows, 0,
                            KILN_GATHER_ACCUM_F32, TAG_GATHER);
            kiln_dma_wait(1u << TAG_GATHER);
        }
        if (mode == 1 && end > beg) {
            kiln_se_mul_s(acc, acc, 1.0f / (float)(end - beg), dim);
        }
        kiln_dma_copy(out + (uint64_t)b * dim, acc, dim * 4, 2 + buf);
    }
    kiln_dma_wait_all();
}
