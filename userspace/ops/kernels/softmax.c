/* SPDX-License-Identifier: MIT */
/*
 * Row-wise softmax and layer normalisation of a rows x cols fp32 matrix
 * (cols <= 16384), several rows per workgroup step.
 */
#include "ops_common.h"

#define LM_X 0
#define LM_CAP (64 * 1024)          /* floats of the row block: 256 KiB */
#define LM_V1 (LM_CAP * 4)          /* per-row vectors */
#define LM_V2 (LM_V1 + 4096 * 4)
#define LM_G (LM_V2 + 4096 * 4)     /* gamma / beta staging */

static void softmax_rows(float *x, uint32_t r, uint32_t cols, float *v1)
{
    kiln_re_max_rows(v1, x, r, cols, cols, 0);
    OPS_SE_ROWVEC(KILN_SE_SUB, x, x, v1, r, cols, 1);
    kiln_se_exp(x, x, r * cols);
    kiln_re_sum_rows(v1, x, r, cols, cols, 0);
    kiln_se_recip(v1, v1, r);
    OPS_SE_ROWVEC(KILN_SE_MUL, x, x, v1, r, cols, 1);
}

KILN_KERNEL void kiln_softmax(const float *x, KILN_OUT float *y, uint32_t rows, uint32_t cols)
{
    uint32_t rb = kiln_min_u32(4096, LM_CAP / (cols ? cols : 1));
    if (!rb || cols > 16384) {
        kiln_trap(1);
    }
    uint32_t nblk = (rows + rb - 1) / rb;
    for (uint32_t blk = kiln_wg_id(); blk < nblk; blk += kiln_num_wg()) {
        uint32_t r0 = blk * rb, r = kiln_min_u32(rb, rows - r0);
        float *lx = KILN_LM(float, LM_X);
        kiln_dma_copy(lx, x + (uint64_t)r0 * cols, r * cols * 4, 0);
        kiln_dma_wait(1);
        softmax_rows(lx, r, cols, KILN_LM(float, LM_V1));
        kiln_dma_copy(y + (uint64_t)r0 * cols, lx, r * cols * 4, 1);
        kiln_dma_wait(2);
    }
}

/* y = (x - mean) / sqrt(var + eps) * gamma + beta, per row; gamma/beta may be null */
KILN_KERNEL void kiln_layernorm(const float *x, const float *gamma, const float *beta,
                                KILN_OUT float *y, uint32_t rows, uint32_t cols, float eps)
{
    uint32_t rb = kiln_min_u32(4096, (LM_CAP - 2 * 16384) / (cols ? cols : 1));
    if (!rb || cols > 16384) {
        kiln_trap(1);
    }
    float *lg = KILN_LM(float, LM_G), *lb = lg + 16384;
    if (gamma) kiln_dma_copy(lg, gamma, cols * 4, 3);
    if (beta) kiln_dma_copy(lb, beta, cols * 4, 3);
    kiln_dma_wait(1u << 3);
    uint32_t nblk = (rows + rb - 1) / rb;
    for (uint32_t blk = kiln_wg_id(); blk < nblk; blk += kiln_num_wg()) {
        uint32_t r0 = blk * rb, r = kiln_min_u32(rb, rows - r0);
        float *lx = KILN_LM(float, LM_X), *v1 = KILN_LM(float, LM_V1);
        kiln_dma_copy(lx, x + (uint64_t)r0 * cols, r * cols * 4, 0);
        kiln_dma_wait(1);
        kiln_re_sum_rows(v1, lx, r, cols, cols, 0);
        kiln_se_mul_s(v1, v1, 1.0f / (float)cols, r);
        OPS_SE_ROWVEC(KILN_SE_SUB, lx, lx, v1, r, cols, 1);
        kiln_re_sumsq_rows(v1, lx, r, cols, cols, 0);
        kiln_se_mul_s(v1, v1, 1.0f / (float)cols, r);
        kiln_se_add_s(v1, v1, eps, r);
        kiln_se_rsqrt(v1, v1, r);
        OPS_SE_ROWVEC(KILN_SE_MUL, lx, lx, v1, r, cols, 1);
        if (gamma) OPS_SE_ROWVEC(KILN_SE_MUL, lx, lx, lg, r, cols, 0);
        if (beta) OPS_SE_ROWVEC(KILN_SE_ADD, lx, lx, lb, r, cols, 0);
        kiln_dma_copy(y + (uint64_t)r0 * cols, lx, r * cols * 4, 1);
        kiln_dma_wait(2);
    }
}

/*
 * Cross-entropy of row-wise softmax(logits) against integer labels:
 * loss[r] = -log(softmax(logits[r])[labels[r]]); if grad is not null,
 * grad[r] = (softmax(logits[r]) - onehot(labels[r])) * grad_scale.
 */
KILN_KERNEL void kiln_cross_entropy(const float *logits, const int32_t *labels,
                                    KILN_OUT float *loss, KILN_OUT float *grad, uint32_t rows,
                                    uint32_t cols, float grad_scale)
{
    uint32_t rb = kiln_min_u32(4096, LM_CAP / (cols ? cols : 1));
    if (!rb || cols > 16384) {
        kiln_trap(1);
    }
    uint32_t nblk = (rows + rb - 1) / rb;
    int32_t *lab = KILN_LM(int32_t, LM_G);
    float *ll = KILN_LM(float, LM_V2);
    for (uint32_t blk = kiln_wg_id(); blk < nblk; blk += kiln_num_wg()) {
        uint32_t r0 = blk * rb, r = kiln_min_u32(rb, rows - r0);
        float *lx = KILN_LM(float, LM_X);
        kiln_dma_copy(lx, logits + (uint64_t)r0 * cols, r * cols * 4, 0);
        kiln_dma_copy(lab, labels + r0, r * 4, 0);
        kiln_dma_wait(1);
        softmax_rows(lx, r, cols, KILN_LM(float, LM_V1));
        for (uint32_t i = 0; i < r; i++) {
            int32_t l = lab[i];
            if (l < 0 || (uint32_t)l >= cols) {
                kiln_trap(2);
            }
            float p = lx[(uint64_t)i * cols + (uint32_t)l];
            ll[i] = -kiln_logf(p > 1e-30f ? p : 1e-30f);
            lx[(uint64_t)i * cols + (uint32_t)l] = p - 1.0f;
        }
        kiln_dma_copy(loss + r0, ll, r * 4, 1);
        if (grad) {
            kiln_se_mul_s(lx, lx, grad_scale, r * cols);
            kiln_dma_copy(grad + (uint64_t)r0 * cols, lx, r * cols * 4, 1);
        }
        kiln_dma_wait(2);
    }
}
