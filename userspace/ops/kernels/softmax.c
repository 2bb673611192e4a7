/* SPDX-License-Identifier: MIT */
/*
 * Row-wise softmax, layer normalisation and cross-entropy of a rows x cols
 * fp32 matrix (cols <= 16384), several rows per workgroup step. Row blocks
 * are double-buffered: the DMA brings block i + 1 (tag 1 - buf) while the
 * units work on block i, whose results leave with tag 2 + buf.
 */
#include "ops_common.h"

#define LM_CAP (24 * 1024)                  /* floats of one row block: 96 KiB */
#define LM_X(buf) ((buf) * LM_CAP * 4)
#define LM_V1 (2 * LM_CAP * 4)              /* per-row vectors */
#define LM_V2 (LM_V1 + 4096 * 4)
#define LM_G (LM_V2 + 4096 * 4)             /* 128 KiB: gamma, beta / labels, loss */

/* Rows per block for @cols columns; traps on an unsupported width */
static uint32_t row_block(uint32_t cols)
{
    uint32_t rb = kiln_min_u32(4096, LM_CAP / (cols ? cols : 1));
    if (!rb || cols > 16384) {
        kiln_trap(1);
    }
    return rb;
}

/*
 * Per-row int32 side input of a block (labels), double-buffered with x:
 * LM_G + buf * 16 KiB.
 */
#define LM_SIDE(buf) (LM_G + (buf) * 4096 * 4)
#define LM_OUT(buf) (LM_G + (2 + (buf)) * 4096 * 4)

struct rows_job {
    const float *x;
    float *y;                   /* null: fn stores what it produces */
    const int32_t *side;        /* null: none */
    uint32_t rows, cols;
    /* process rows [r0, r0 + r) at lx; may DMA results out with tag 2 + buf */
    void (*fn)(const struct rows_job *j, float *lx, uint32_t r0, uint32_t r, uint32_t buf);
    const float *gamma, *beta;  /* layernorm */
    float eps;
    float *loss;                /* cross-entropy */
    float grad_scale;
};

static void load_block(const struct rows_job *j, uint32_t blk, uint32_t rb, uint32_t buf)
{
    uint32_t r0 = blk * rb, r = kiln_min_u32(rb, j->rows - r0);

    kiln_dma_copy(KILN_LM(float, LM_X(buf)), j->x + (uint64_t)r0 * j->cols, r * j->cols * 4,
                  buf);
    if (j->side) {
        kiln_dma_copy(KILN_LM(int32_t, LM_SIDE(buf)), j->side + r0, r * 4, buf);
    }
}

static void run_rows(const struct rows_job *j)
{
    uint32_t rb = row_block(j->cols), nblk = (j->rows + rb - 1) / rb;
    uint32_t step = kiln_num_wg(), blk = kiln_wg_id(), buf = 0;

    if (blk < nblk) {
        load_block(j, blk, rb, 0);
    }
    for (; blk < nblk; blk += step, buf ^= 1) {
        uint32_t r0 = blk * rb, r = kiln_min_u32(rb, j->rows - r0);
        float *lx = KILN_LM(float, LM_X(buf));

        if (blk + step < nblk) {
            kiln_dma_wait(1u << (2 + (buf ^ 1)));   /* results of the other buffer are out */
            load_block(j, blk + step, rb, buf ^ 1);
        }
        kiln_dma_wait(1u << buf);
        j->fn(j, lx, r0, r, buf);
        if (j->y) {
            kiln_dma_copy(j->y + (uint64_t)r0 * j->cols, lx, r * j->cols * 4, 2 + buf);
        }
    }
    kiln_dma_wait_all();
}

static void softmax_rows(float *x, uint32_t r, uint32_t cols, float *v1)
{
    kiln_re_max_rows(v1, x, r, cols, cols, 0);
    OPS_SE_ROWVEC(KILN_SE_SUB, x, x, v1, r, cols, 1);
    kiln_se_exp(x, x, r * cols);
    kiln_re_sum_rows(v1, x, r, cols, cols, 0);
    kiln_se_recip(v1, v1, r);
    OPS_SE_ROWVEC(KILN_SE_MUL, x, x, v1, r, cols, 1);
}

static void softmax_fn(const struct rows_job *j, float *lx, uint32_t r0, uint32_t r,
                       uint32_t buf)
{
    (void)r0;
    (void)buf;
    softmax_rows(lx, r, j->cols, KILN_LM(float, LM_V1));
}

KILN_KERNEL void kiln_softmax(const float *x, KILN_OUT float *y, uint32_t rows, uint32_t cols)
{
    struct rows_job j = { .x = x, .y = y, .rows = rows, .cols = cols, .fn = softmax_fn };
    run_rows(&j);
}

static void layernorm_fn(const struct rows_job *j, float *lx, uint32_t r0, uint32_t r,
                         uint32_t buf)
{
    uint32_t cols = j->cols;
    float *v1 = KILN_LM(float, LM_V1);
    float *lg = KILN_LM(float, LM_G), *lb = lg + 16384;

    (void)r0;
    (void)buf;
    kiln_re_sum_rows(v1, lx, r, cols, cols, 0);
    kiln_se_mul_s(v1, v1, 1.0f / (float)cols, r);
    OPS_SE_ROWVEC(KILN_SE_SUB, lx, lx, v1, r, cols, 1);
    kiln_re_sumsq_rows(v1, lx, r, cols, cols, 0);
    kiln_se_mul_s(v1, v1, 1.0f / (float)cols, r);
    kiln_se_add_s(v1, v1, j->eps, r);
    kiln_se_rsqrt(v1, v1, r);
    OPS_SE_ROWVEC(KILN_SE_MUL, lx, lx, v1, r, cols, 1);
    if (j->gamma) OPS_SE_ROWVEC(KILN_SE_MUL, lx, lx, lg, r, cols, 0);
    if (j->beta) OPS_SE_ROWVEC(KILN_SE_ADD, lx, lx, lb, r, cols, 0);
}

/* y = (x - mean) / sqrt(var + eps) * gamma + beta, per row; gamma/beta may be null */
KILN_KERNEL void kiln_layernorm(const float *x, const float *gamma, const float *beta,
                                KILN_OUT float *y, uint32_t rows, uint32_t cols, float eps)
{
    struct rows_job j = { .x = x, .y = y, .rows = rows, .cols = cols, .fn = layernorm_fn,
                          .gamma = gamma, .beta = beta, .eps = eps };
    float *lg = KILN_LM(float, LM_G), *lb = lg + 16384;

    row_block(cols);
    if (gamma) kiln_dma_copy(lg, gamma, cols * 4, 4);
    if (beta) kiln_dma_copy(lb, beta, cols * 4, 4);
    kiln_dma_wait(1u << 4);
    run_rows(&j);
}

static void cross_entropy_fn(const struct rows_job *j, float *lx, uint32_t r0, uint32_t r,
                             uint32_t buf)
{
    uint32_t cols = j->cols;
    const int32_t *lab = KILN_LM(int32_t, LM_SIDE(buf));
    float *ll = KILN_LM(float, LM_OUT(buf));

    softmax_rows(lx, r, cols, KILN_LM(float, LM_V1));
    /* pick each row's probability on the scalar core; the logs are one SE op for the block */
    for (uint32_t i = 0; i < r; i++) {
        int32_t l = lab[i];
        if (l < 0 || (uint32_t)l >= cols) {
            kiln_trap(2);
        }
        float p = lx[(uint64_t)i * cols + (uint32_t)l];
        ll[i] = p;
        lx[(uint64_t)i * cols + (uint32_t)l] = p - 1.0f;
    }
    kiln_se_max_s(ll, ll, 1e-30f, r);
    kiln_se_log(ll, ll, r);
    kiln_se_neg(ll, ll, r);
    kiln_dma_copy(j->loss + r0, ll, r * 4, 2 + buf);
    if (j->y) {
        kiln_se_mul_s(lx, lx, j->grad_scale, r * cols);
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
    struct rows_job j = { .x = logits, .y = grad, .side = labels, .rows = rows, .cols = cols,
                          .fn = cross_entropy_fn, .loss = loss, .grad_scale = grad_scale };
    run_rows(&j);
}
