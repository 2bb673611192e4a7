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

/*
 * Chunks of CH parameters per workgroup step, double-buffered: the DMA
 * brings chunk i + 1 of every input (tag 1 - buf) while the SE updates
 * chunk i, whose results leave with tag 2 + buf. Buffer set buf holds
 * `arrays` arrays of CH floats at LM_ARR(buf, a).
 */
#define LM_ARR(buf, a) (((buf) * 4 + (a)) * CH * 4)
#define LM_T (8 * CH * 4)

struct chunks {
    float *arr[3];              /* the state arrays, read and written back */
    const float *g;             /* the gradient, read only */
    uint32_t narr;
    uint64_t n;
};

static uint32_t chunk_len(const struct chunks *k, uint64_t c)
{
    return (uint32_t)(k->n - c < CH ? k->n - c : CH);
}

static void load_chunk(const struct chunks *k, uint64_t c, uint32_t buf)
{
    uint32_t len = chunk_len(k, c);

    for (uint32_t a = 0; a < k->narr; a++) {
        kiln_dma_copy(KILN_LM(float, LM_ARR(buf, a)), k->arr[a] + c, len * 4, buf);
    }
    kiln_dma_copy(KILN_LM(float, LM_ARR(buf, 3)), k->g + c, len * 4, buf);
}

/* Calls update(lm arrays, gradient, len, ctx) for every chunk of this workgroup */
static void run_chunks(const struct chunks *k,
                       void (*update)(float **la, float *lg, uint32_t len, const void *ctx),
                       const void *ctx)
{
    uint64_t stride = (uint64_t)kiln_num_wg() * CH, c = (uint64_t)kiln_wg_id() * CH;
    uint32_t buf = 0;

    if (c < k->n) {
        load_chunk(k, c, 0);
    }
    for (; c < k->n; c += stride, buf ^= 1) {
        uint32_t len = chunk_len(k, c);
        float *la[3];

        if (c + stride < k->n) {
            kiln_dma_wait(1u << (2 + (buf ^ 1)));
            load_chunk(k, c + stride, buf ^ 1);
        }
        kiln_dma_wait(1u << buf);
        for (uint32_t a = 0; a < k->narr; a++) {
            la[a] = KILN_LM(float, LM_ARR(buf, a));
        }
        update(la, KILN_LM(float, LM_ARR(buf, 3)), len, ctx);
        for (uint32_t a = 0; a < k->narr; a++) {
            kiln_dma_copy(k->arr[a] + c, la[a], len * 4, 2 + buf);
        }
    }
    kiln_dma_wait_all();
}

struct sgd_args {
    float lr, weight_decay;
};

static void sgd_update(float **la, float *lg, uint32_t len, const void *ctx)
{
    const struct sgd_args *s = ctx;
    float *lw = la[0];

    if (s->weight_decay != 0.0f) kiln_se_axpy(lg, lw, s->weight_decay, lg, len);
    kiln_se_axpy(lw, lg, -s->lr, lw, len);
}

/* w -= lr * (g + weight_decay * w) */
KILN_KERNEL void kiln_sgd(KILN_INOUT float *w, const float *g, uint64_t n, float lr,
                          float weight_decay)
{
    struct chunks k = { .arr = { w }, .g = g, .narr = 1, .n = n };
    struct sgd_args s = { lr, weight_decay };
    run_chunks(&k, sgd_update, &s);
}

struct momentum_args {
    float lr, momentum, weight_decay;
};

static void momentum_update(float **la, float *lg, uint32_t len, const void *ctx)
{
    const struct momentum_args *s = ctx;
    float *lw = la[0], *lv = la[1];

    if (s->weight_decay != 0.0f) kiln_se_axpy(lg, lw, s->weight_decay, lg, len);
    kiln_se_axpy(lv, lv, s->momentum, lg, len);         /* v = mu v + g */
    kiln_se_axpy(lw, lv, -s->lr, lw, len);
}

/* v = momentum * v + (g + weight_decay * w); w -= lr * v */
KILN_KERNEL void kiln_sgd_momentum(KILN_INOUT float *w, const float *g, KILN_INOUT float *v,
                                   uint64_t n, float lr, float momentum, float weight_decay)
{
    struct chunks k = { .arr = { w, v }, .g = g, .narr = 2, .n = n };
    struct momentum_args s = { lr, momentum, weight_decay };
    run_chunks(&k, momentum_update, &s);
}

struct adam_args {
    float lr, beta1, beta2, eps, bc1, bc2;
};

static void adam_update(float **la, float *lg, uint32_t len, const void *ctx)
{
    const struct adam_args *s = ctx;
    float *lw = la[0], *lm = la[1], *lv = la[2], *t = KILN_LM(float, LM_T);

    kiln_se_mul_s(lm, lm, s->beta1, len);
    kiln_se_axpy(lm, lg, 1.0f - s->beta1, lm, len);     /* m */
    kiln_se_mul(t, lg, lg, len);
    kiln_se_mul_s(lv, lv, s->beta2, len);
    kiln_se_axpy(lv, t, 1.0f - s->beta2, lv, len);      /* v */
    kiln_se_mul_s(t, lv, 1.0f / s->bc2, len);
    kiln_se_sqrt(t, t, len);
    kiln_se_add_s(t, t, s->eps, len);
    kiln_se_div(t, lm, t, len);
    kiln_se_axpy(lw, t, -s->lr / s->bc1, lw, len);
}

/*
 * Adam (step >= 1): m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * w -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps)
 */
KILN_KERNEL void kiln_adam(KILN_INOUT float *w, const float *g, KILN_INOUT float *m,
                           KILN_INOUT float *v, uint64_t n, float lr, float beta1, float beta2,
                           float eps, uint32_t step)
{
    struct chunks k = { .arr = { w, m, v }, .g = g, .narr = 3, .n = n };
    struct adam_args s = { lr, beta1, beta2, eps, 1.0f - powi(beta1, step),
                           1.0f - powi(beta2, step) };
    run_chunks(&k, adam_update, &s);
}
