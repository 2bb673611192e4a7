/* SPDX-License-Identifier: MIT */
/*
 * Embedding-bag: out[b] = sum (or mean) of table rows indices[offsets[b] ..
 * offsets[b + 1]) (int32 indices, fp32 rows of dim elements, dim <= 16384),
 * with the DMA engine's accumulating indexed gather. mode: 0 sum, 1 mean.
 *
 * Each workgroup takes a contiguous range of bags and works through it in
 * blocks: one DMA brings a block's offsets, one its indices, then one gather
 * per bag sums into that bag's row of the block's accumulator, and one DMA
 * writes the block's rows out. Bags are small (a few rows each), so doing
 * them one by one would pay a DMA latency or two per bag; a block pays them
 * once. Blocks are double-buffered: the next block's offsets and indices
 * come in while this one is gathered, and a buffer is refilled only after
 * its results have left (tag 2 + buf).
 */
#include "ops_common.h"

#define ACC_BYTES (96u << 10)               /* accumulator rows per buffer */
#define MAX_IDX 16384                       /* indices per buffer */
#define MAX_BLOCK 256                       /* bags per block */
#define LM_ACC(buf) ((buf) * ACC_BYTES)
#define LM_IDX(buf) (2 * ACC_BYTES + (buf) * MAX_IDX * 4)
#define LM_OFFS(buf) (2 * ACC_BYTES + 2 * MAX_IDX * 4 + (buf) * (MAX_BLOCK + 1) * 4)
#define LM_SCALE (2 * ACC_BYTES + 2 * MAX_IDX * 4 + 2 * (MAX_BLOCK + 1) * 4)
#define TAG_OFFS 4
#define TAG_GATHER 5

struct block {
    uint32_t first, count;      /* bags [first, first + count) */
    int32_t base;               /* offsets[first]: where its indices start */
    uint32_t nidx;              /* indices loaded (capped at MAX_IDX) */
};

static uint32_t bag_len(const int32_t *offs, uint32_t i)
{
    return offs[i + 1] > offs[i] ? (uint32_t)(offs[i + 1] - offs[i]) : 0;
}

/*
 * Load the offsets of up to @max bags from @first, cut the block where its
 * indices would exceed MAX_IDX (a single larger bag is gathered in pieces),
 * and start loading its indices with tag @buf.
 */
static void block_load(struct block *bl, const int32_t *indices, const int32_t *offsets,
                       uint32_t first, uint32_t max, uint32_t buf)
{
    int32_t *offs = KILN_LM(int32_t, LM_OFFS(buf));
    uint32_t n = 0, total = 0;

    kiln_dma_copy(offs, offsets + first, (max + 1) * 4, TAG_OFFS);
    kiln_dma_wait(1u << TAG_OFFS);
    while (n < max && (n == 0 || total + bag_len(offs, n) <= MAX_IDX)) {
        total += bag_len(offs, n);
        n++;
    }
    bl->first = first;
    bl->count = n;
    bl->base = offs[0];
    bl->nidx = kiln_min_u32(total, MAX_IDX);
    if (bl->nidx) {
        kiln_dma_copy(KILN_LM(int32_t, LM_IDX(buf)), indices + offs[0], bl->nidx * 4, buf);
    }
}

KILN_KERNEL void kiln_embedding_bag(const float *table, uint64_t num_rows, uint32_t dim,
                                    const int32_t *indices, const int32_t *offsets,
                                    uint32_t bags, uint32_t mode, KILN_OUT float *out)
{
    uint32_t w = kiln_wg_id(), nwg = kiln_num_wg(), buf = 0;
    uint32_t b0 = (uint32_t)((uint64_t)bags * w / nwg), b1 = (uint32_t)((uint64_t)bags * (w + 1) / nwg);
    uint32_t per_block;
    struct block cur, next;

    if (dim == 0 || dim > 16384) {
        kiln_trap(1);
    }
    per_block = kiln_min_u32(MAX_BLOCK, ACC_BYTES / (dim * 4));     /* >= 1: a row is <= 64 KiB */
    if (b0 >= b1) {
        return;
    }
    block_load(&cur, indices, offsets, b0, kiln_min_u32(per_block, b1 - b0), 0);
    for (;;) {
        float *acc = KILN_LM(float, LM_ACC(buf));
        int32_t *idx = KILN_LM(int32_t, LM_IDX(buf));
        const int32_t *offs = KILN_LM(int32_t, LM_OFFS(buf));
        float *scale = KILN_LM(float, LM_SCALE);
        uint32_t nb = cur.first + cur.count;
        int more = nb < b1;

        if (more) {
            kiln_dma_wait(1u << (2 + (buf ^ 1)));   /* its results have left */
            block_load(&next, indices, offsets, nb, kiln_min_u32(per_block, b1 - nb), buf ^ 1);
        }
        kiln_dma_wait(1u << buf);
        kiln_se_fill(acc, 0.0f, cur.count * dim);
        for (uint32_t i = 0; i < cur.count; i++) {
            uint32_t cnt = bag_len(offs, i);
            float *row = acc + (uint64_t)i * dim;
            if (cnt <= MAX_IDX && (uint32_t)(offs[i] - cur.base) + cnt <= cur.nidx) {
                if (cnt) {
                    kiln_dma_gather(row, table, idx + (offs[i] - cur.base), cnt, dim * 4,
                                    (uint64_t)dim * 4, num_rows, 0, KILN_GATHER_ACCUM_F32,
                                    TAG_GATHER);
                }
            } else {
                /* a bag of more indices than the buffer holds (alone in its block) */
                for (uint32_t s = 0; s < cnt; s += MAX_IDX) {
                    uint32_t c = kiln_min_u32(cnt - s, MAX_IDX);
                    kiln_dma_wait(1u << TAG_GATHER);
                    kiln_dma_copy(idx, indices + offs[i] + s, c * 4, buf);
                    kiln_dma_wait(1u << buf);
                    kiln_dma_gather(row, table, idx, c, dim * 4, (uint64_t)dim * 4, num_rows, 0,
                                    KILN_GATHER_ACCUM_F32, TAG_GATHER);
                }
            }
            scale[i] = mode == 1 && cnt ? 1.0f / (float)cnt : 1.0f;
        }
        kiln_dma_wait(1u << TAG_GATHER);
        if (mode == 1) {
            OPS_SE_ROWVEC(KILN_SE_MUL, acc, acc, scale, cur.count, dim, 1);
        }
        kiln_dma_copy(out + (uint64_t)cur.first * dim, acc, cur.count * dim * 4, 2 + buf);
        if (!more) {
            break;
        }
        cur = next;
        buf ^= 1;
    }
    kiln_dma_wait_all();
}
