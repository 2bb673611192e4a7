// SPDX-License-Identifier: MIT
// Device kernels for training an MLP: dense layers forward and backward,
// softmax cross-entropy, SGD with momentum. Workgroups split the rows.
#include <kiln/device/kiln_device.h>

static inline float k_exp(float x)
{
    if (x < -80.0f) return 0.0f;
    if (x > 80.0f) x = 80.0f;
    float t = x * 1.44269504f;              /* x * log2(e) */
    int n = (int)t;
    if ((float)n > t) n--;                   /* floor */
    float f = t - (float)n;                  /* [0, 1) */
    float p = 1.0f + f * (0.693147f + f * (0.240227f + f * (0.0555041f + f * (0.00961813f + f * 0.00133336f))));
    union { uint32_t u; float f; } s = { (uint32_t)(n + 127) << 23 };
    return p * s.f;
}

static inline float k_log(float x)
{
    union { float f; uint32_t u; } v = { x };
    int e = (int)((v.u >> 23) & 0xff) - 127;
    v.u = (v.u & 0x7fffff) | 0x3f800000;    /* mantissa in [1, 2) */
    float y = (v.f - 1.0f) / (v.f + 1.0f), y2 = y * y;
    return 2.0f * y * (1.0f + y2 * (1.0f / 3 + y2 * (1.0f / 5 + y2 * (1.0f / 7 + y2 / 9)))) + (float)e * 0.69314718f;
}

/* Y[B,O] = X[B,I] W[I,O] + b[O], optionally ReLU */
KILN_KERNEL void dense_fwd(const float *X, const float *W, const float *bias, float *Y,
                           uint32_t B, uint32_t I, uint32_t O, uint32_t relu)
{
    for (uint32_t r = kiln_wg_id(); r < B; r += kiln_num_wg()) {
        const float *x = X + (uint64_t)r * I;
        float *y = Y + (uint64_t)r * O;
        for (uint32_t o = 0; o < O; o++)
            y[o] = bias[o];
        for (uint32_t i = 0; i < I; i++) {
            float xi = x[i];
            const float *w = W + (uint64_t)i * O;
            for (uint32_t o = 0; o < O; o++)
                y[o] += xi * w[o];
        }
        if (relu)
            for (uint32_t o = 0; o < O; o++)
                if (y[o] < 0.0f) y[o] = 0.0f;
    }
}

/* G = (softmax(L) - onehot(y)) / B, loss[r] = -log softmax(L)[y], correct[r] = argmax == y */
KILN_KERNEL void softmax_xent(const float *L, const uint32_t *labels, float *G, float *loss,
                              uint32_t *correct, uint32_t B, uint32_t C)
{
    for (uint32_t r = kiln_wg_id(); r < B; r += kiln_num_wg()) {
        const float *l = L + (uint64_t)r * C;
        float *g = G + (uint64_t)r * C;
        float m = l[0];
        uint32_t best = 0;
        for (uint32_t c = 1; c < C; c++)
            if (l[c] > m) { m = l[c]; best = c; }
        float sum = 0.0f;
        for (uint32_t c = 0; c < C; c++) {
            g[c] = k_exp(l[c] - m);
            sum += g[c];
        }
        uint32_t y = labels[r];
        loss[r] = k_log(sum) - (l[y] - m);
        correct[r] = best == y;
        float inv = 1.0f / (sum * (float)B);
        for (uint32_t c = 0; c < C; c++)
            g[c] = g[c] * inv - (c == y ? 1.0f / (float)B : 0.0f);
    }
}

/* dX[B,I] = dY[B,O] W^T, times ReLU'(H) where H is the layer's input */
KILN_KERNEL void dense_bwd_data(const float *dY, const float *W, const float *H, float *dX,
                                uint32_t B, uint32_t I, uint32_t O)
{
    for (uint32_t r = kiln_wg_id(); r < B; r += kiln_num_wg())
        for (uint32_t i = 0; i < I; i++) {
            float acc = 0.0f;
            const float *w = W + (uint64_t)i * O, *dy = dY + (uint64_t)r * O;
            for (uint32_t o = 0; o < O; o++)
                acc += dy[o] * w[o];
            dX[(uint64_t)r * I + i] = H[(uint64_t)r * I + i] > 0.0f ? acc : 0.0f;
        }
}

/* dW[I,O] = X^T dY, db[O] = column sums of dY; workgroups split the rows of dW (+1 for db) */
KILN_KERNEL void dense_bwd_weight(const float *X, const float *dY, float *dW, float *db,
                                  uint32_t B, uint32_t I, uint32_t O)
{
    for (uint32_t i = kiln_wg_id(); i <= I; i += kiln_num_wg()) {
        float *out = i < I ? dW + (uint64_t)i * O : db;
        for (uint32_t o = 0; o < O; o++)
            out[o] = 0.0f;
        for (uint32_t r = 0; r < B; r++) {
            float x = i < I ? X[(uint64_t)r * I + i] : 1.0f;
            const float *dy = dY + (uint64_t)r * O;
            for (uint32_t o = 0; o < O; o++)
                out[o] += x * dy[o];
        }
    }
}

/* v = mu v + g; w -= lr v */
KILN_KERNEL void sgd_momentum(float *w, const float *g, float *v, uint32_t n, float lr, float mu)
{
    for (uint32_t i = kiln_wg_id(); i < n; i += kiln_num_wg()) {
        v[i] = mu * v[i] + g[i];
        w[i] -= lr * v[i];
    }
}
