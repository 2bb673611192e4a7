/* SPDX-License-Identifier: MIT */
/* Optimizer updates over n fp32 parameters, in chunks per workgroup. */
#include "ops_common.h"

#define CH 8192

static float powi(float b, uint32_t e)
{
    float r = 1.0f;
    while (e) {
        if (e & 1) r *= b;
        b *= b;
        e >>= 1;
    }
    return r;
}

/* w -= lr * (g + weight_decay * w) */
KILN_KERNEL void kiln_sgd(KILN_INOUT float *w, const float *g, uint64_t n, float lr,
                          float weight_decay)
{
    float *lw = KILN_LM(float, 0), *lg = KILN_LM(float, CH * 4);
    for (uint64_t c = (uint64_t)kiln_wg_id() * CH; c < n; c += (uint64_t)kiln_num_wg() * CH) {
        uint32_t len = (uint32_t)(n - c < CH ? n - c : CH);
        kiln_dma_copy(lw, w + c, len * 4, 0);
        kiln_dma_copy(lg, g + c, len * 4, 0);
        kiln_dma_wait(1);
        if (weight_decay != 0.0f) kiln_se_axpy(lg, lw, weight_decay, lg, len);
        kiln_se_axpy(lw, lg, -lr, lw, len);
        kiln_dma_copy(w + c, lw, len * 4, 1);
        kiln_dma_wait(2);
    }
}

/*
 * Adam (step >= 1): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * w -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps)
 */
KILN_KERNEL void kiln_adam(KILN_INOUT float *w, const float *g, KILN_INOUT float *m,
                           KILN_INOUT float *v, uint64_t n, float lr, float beta1, float beta2,
                           float eps, uint32_t step)
{
    float *lw = KILN_LM(float, 0), *lg = KILN_LM(float, CH * 4);
    float *lm = KILN_LM(float, 2 * CH * 4), *lv = KILN_LM(float, 3 * CH * 4);
    float *t = KILN_LM(float, 4 * CH * 4);
    float bc1 = 1.0f - powi(beta1, step), bc2 = 1.0f - powi(beta2, step);
    for (uint64_t c = (uint64_t)kiln_wg_id() * CH; c < n; c += (uint64_t)kiln_num_wg() * CH) {
        uint32_t len = (uint32_t)(n - c < CH ? n - c : CH);
        kiln_dma_copy(lw, w + c, len * 4, 0);
        kiln_dma_copy(lg, g + c, len * 4, 0);
        kiln_dma_copy(lm, m + c, len * 4, 0);
        kiln_dma_copy(lv, v + c, len * 4, 0);
        kiln_dma_wait(1);
        kiln_se_mul_s(lm, lm, beta1, len);
        kiln_se_axpy(lm, lg, 1.0f - beta1, lm, len);     /* m */
        kiln_se_mul(t, lg, lg, len);
        kiln_se_mul_s(lv, lv, beta2, len);
        kiln_se_axpy(lv, t, 1.0f - beta2, lv, len);      /* v */
        kiln_se_mul_s(t, lv, 1.0f / bc2, len);
        kiln_se_sqrt(t, t, len);
        kiln_se_add_s(t, t, eps, len);
        kiln_se_div(t, lm, t, len);
        kiln_se_axpy(lw, t, -lr / bc1, lw, len);
        kiln_dma_copy(w + c, lw, len * 4, 1);
        kiln_dma_copy(m + c, lm, len * 4, 1);
        kiln_dma_copy(v + c, lv, len * 4, 1);
        kiln_dma_wait(2);
    }
}
