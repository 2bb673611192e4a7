/* SPDX-License-Identifier: MIT */
/*
 * Kernels PyTorch's ATen ops need beyond the rest of the op library
 * (kiln_torch, docs/pytorch.md): strided copies (views, broadcasting,
 * .contiguous()), row reductions, exact GELU, NLL loss, int64 indices,
 * index_select and the scatter-add of embedding backward. They favour
 * simplicity over peak rate: the heavy math of a model is in the GEMMs.
 */
#include "ops_common.h"

#define CH 16384    /* elements of at most 4 bytes per chunk: 64 KiB */

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/*
 * dst[i0][i1][i2][i3] = src[i0][i1][i2][i3] for 4-D index spaces with
 * arbitrary element strides (0 for a broadcast dimension) on both sides.
 * Each work item is a chunk of the innermost dimension: one 2-D DMA gathers
 * it into local memory, one scatters it out (a stride-1 side is one row).
 */
KILN_KERNEL void kiln_strided_copy(const uint8_t *src, KILN_OUT uint8_t *dst, uint32_t elem,
                                   uint64_t n0, uint64_t n1, uint64_t n2, uint64_t n3,
                                   int64_t s0, int64_t s1, int64_t s2, int64_t s3,
                                   int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    uint64_t nch = (n3 + CH - 1) / CH, items = n0 * n1 * n2 * nch;
    uint8_t *l = KILN_LM(uint8_t, 0);

    for (uint64_t it = kiln_wg_id(); it < items; it += kiln_num_wg()) {
        uint64_t r = it / nch, c = it % nch;
        int64_t i2 = (int64_t)(r % n2), i1 = (int64_t)(r / n2 % n1), i0 = (int64_t)(r / (n2 * n1));
        int64_t first = (int64_t)(c * CH);
        uint32_t len = (uint32_t)min_u64(CH, n3 - c * CH);
        const uint8_t *s = src + (i0 * s0 + i1 * s1 + i2 * s2 + first * s3) * (int64_t)elem;
        uint8_t *d = dst + (i0 * d0 + i1 * d1 + i2 * d2 + first * d3) * (int64_t)elem;

        if (s3 == 1)
            kiln_dma_copy(l, s, len * elem, 0);
        else
            kiln_dma_copy2d(l, s, elem, len, elem, s3 * (int64_t)elem, 0);
        kiln_dma_wait(1);
        if (d3 == 1)
            kiln_dma_copy(d, l, len * elem, 1);
        else
            kiln_dma_copy2d(d, l, elem, len, d3 * (int64_t)elem, elem, 1);
        kiln_dma_wait(2);
    }
}

/* y[r] = scale * sum_c x[r][c] over a contiguous rows x cols matrix, on the RE */
KILN_KERNEL void kiln_sum_rows(const float *x, KILN_OUT float *y, uint64_t rows, uint64_t cols,
                               float scale)
{
    float *l = KILN_LM(float, 0), *tmp = KILN_LM(float, CH * 4);

    for (uint64_t r = kiln_wg_id(); r < rows; r += kiln_num_wg()) {
        float acc = 0;
        for (uint64_t c = 0; c < cols; c += CH) {
            uint32_t len = (uint32_t)min_u64(CH, cols - c);
            kiln_dma_copy(l, x + r * cols + c, len * 4, 0);
            kiln_dma_wait(1);
            acc += kiln_reduce_sum(tmp, l, len);
        }
        y[r] = acc * scale;
    }
}

/* erf, Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7) */
static float erf_f(float x)
{
    float ax = kiln_fabsf(x), t = 1.0f / (1.0f + 0.3275911f * ax);
    float p = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f +
                   t * (-1.453152027f + t * 1.061405429f))));
    float e = 1.0f - p * kiln_expf(-ax * ax);
    return x < 0 ? -e : e;
}

/*
 * PyTorch's default GELU is the exact one, x * Phi(x); the SE's is the tanh
 * approximation. backward: out = g * (Phi(x) + x * phi(x)); forward: g null.
 */
KILN_KERNEL void kiln_gelu_erf(const float *x, const float *g, KILN_OUT float *out, uint64_t n)
{
    float *l = KILN_LM(float, 0), *lg = KILN_LM(float, CH * 4);

    for (uint64_t c = (uint64_t)kiln_wg_id() * CH; c < n; c += (uint64_t)kiln_num_wg() * CH) {
        uint32_t len = (uint32_t)min_u64(CH, n - c);
        kiln_dma_copy(l, x + c, len * 4, 0);
        if (g)
            kiln_dma_copy(lg, g + c, len * 4, 0);
        kiln_dma_wait(1);
        for (uint32_t i = 0; i < len; i++) {
            float v = l[i], cdf = 0.5f * (1.0f + erf_f(v * 0.70710678f));
            l[i] = g ? lg[i] * (cdf + v * 0.39894228f * kiln_expf(-0.5f * v * v)) : v * cdf;
        }
        kiln_dma_copy(out + c, l, len * 4, 1);
        kiln_dma_wait(2);
    }
}

/*
 * NLL loss of log-probabilities logp[rows][cols] against int64 targets, in one
 * workgroup (rows are few; the sums stay in a fixed order, so deterministic).
 * reduction 0: loss[r] per row; 1: loss[0] = mean over the rows not ignored;
 * 2: their sum. total_weight[0] = the number of rows not ignored.
 * A target outside [0, cols) that is not ignore_index traps.
 */
KILN_KERNEL void kiln_nll_loss(const float *logp, const int64_t *target, KILN_OUT float *loss,
                               KILN_OUT float *total_weight, uint64_t rows, uint64_t cols,
                               int64_t ignore_index, uint32_t reduction)
{
    float sum = 0, count = 0;

    if (kiln_wg_id() != 0)
        return;
    for (uint64_t r = 0; r < rows; r++) {
        int64_t t = target[r];
        float v = 0;
        if (t != ignore_index) {
            if (t < 0 || (uint64_t)t >= cols)
                kiln_trap(2);
            v = -logp[r * cols + (uint64_t)t];
            count += 1;
        }
        if (reduction == 0)
            loss[r] = v;
        sum += v;
    }
    if (reduction == 1)
        loss[0] = sum / count;
    else if (reduction == 2)
        loss[0] = sum;
    total_weight[0] = count;
}

/*
 * Its backward into a zero-filled grad_in[rows][cols]:
 * grad_in[r][target[r]] = -grad_out (per row for reduction 0; / total_weight for mean).
 */
KILN_KERNEL void kiln_nll_loss_backward(const float *grad_out, const int64_t *target,
                                        const float *total_weight, KILN_INOUT float *grad_in,
                                        uint64_t rows, uint64_t cols, int64_t ignore_index,
                                        uint32_t reduction)
{
    for (uint64_t r = kiln_wg_id(); r < rows; r += kiln_num_wg()) {
        int64_t t = target[r];
        if (t == ignore_index)
            continue;
        if (t < 0 || (uint64_t)t >= cols)
            kiln_trap(2);
        float g = reduction == 0 ? grad_out[r] : grad_out[0];
        grad_in[r * cols + (uint64_t)t] = reduction == 1 ? -g / total_weight[0] : -g;
    }
}

/* dst[i] = (int32_t)src[i]: the embedding-bag kernel takes int32 indices and offsets */
KILN_KERNEL void kiln_narrow_i64(const int64_t *src, KILN_OUT int32_t *dst, uint64_t n)
{
    for (uint64_t i = kiln_wg_id(); i < n; i += kiln_num_wg())
        dst[i] = (int32_t)src[i];
}

/*
 * What embedding_bag's backward needs besides the output: the bag of every
 * index (offset2bag) and each bag's size. offsets has bags + 1 entries, the
 * last = the number of indices.
 */
KILN_KERNEL void kiln_bag_meta(const int64_t *offsets, uint64_t bags, KILN_OUT int64_t *offset2bag,
                               KILN_OUT int64_t *bag_size)
{
    for (uint64_t b = kiln_wg_id(); b < bags; b += kiln_num_wg()) {
        int64_t lo = offsets[b], hi = offsets[b + 1];
        bag_size[b] = hi > lo ? hi - lo : 0;
        for (int64_t i = lo; i < hi; i++)
            offset2bag[i] = (int64_t)b;
    }
}

/* out[i] = table[idx[i]] (rows of row_bytes; an index >= num_rows traps) */
KILN_KERNEL void kiln_index_select_rows(const uint8_t *table, const int64_t *idx,
                                        KILN_OUT uint8_t *out, uint64_t n, uint64_t num_rows,
                                        uint32_t row_bytes)
{
    uint8_t *l = KILN_LM(uint8_t, 0);
    int64_t *li = KILN_LM(int64_t, CH * 4);     /* the gather reads its indices from here */
    uint32_t per;

    if (row_bytes == 0 || row_bytes > CH * 4)
        kiln_trap(1);
    per = (uint32_t)min_u64(256, (CH * 4) / row_bytes);
    for (uint64_t i = (uint64_t)kiln_wg_id() * per; i < n; i += (uint64_t)kiln_num_wg() * per) {
        uint32_t cnt = (uint32_t)min_u64(per, n - i);
        kiln_dma_copy(li, idx + i, cnt * 8, 0);
        kiln_dma_wait(1);
        kiln_dma_gather(l, table, li, cnt, row_bytes, row_bytes, num_rows, row_bytes,
                        KILN_GATHER_IDX64, 0);
        kiln_dma_wait(1);
        kiln_dma_copy(out + i * row_bytes, l, cnt * row_bytes, 1);
        kiln_dma_wait(2);
    }
}

/*
 * Embedding (bag) backward into a zero-filled grad_w[num_rows][dim]:
 * grad_w[idx[i]] += grad[bag(i)] * (1 / bag_size[bag(i)] for mean bags), where
 * bag(i) = offset2bag[i], or i without bags. Rows are owned by workgroup
 * row % num_wg, so no two PEs add into one row; an index equal to padding_idx
 * (>= 0) is skipped, one out of range traps.
 */
KILN_KERNEL void kiln_embedding_backward(const float *grad, const int64_t *idx,
                                         const int64_t *offset2bag, const int64_t *bag_size,
                                         KILN_INOUT float *grad_w, uint64_t n, uint64_t num_rows,
                                         uint32_t dim, uint32_t mean, int64_t padding_idx)
{
    uint32_t w = kiln_wg_id(), nwg = kiln_num_wg();

    for (uint64_t i = 0; i < n; i++) {
        int64_t row = idx[i];
        if (row < 0 || (uint64_t)row >= num_rows)
            kiln_trap(2);
        if ((uint64_t)row % nwg != w || row == padding_idx)
            continue;
        uint64_t bag = offset2bag ? (uint64_t)offset2bag[i] : i;
        float scale = mean && bag_size[bag] ? 1.0f / (float)bag_size[bag] : 1.0f;
        const float *g = grad + bag * dim;
        float *o = grad_w + (uint64_t)row * dim;
        for (uint32_t c = 0; c < dim; c++)
            o[c] += g[c] * scale;
    }
}
