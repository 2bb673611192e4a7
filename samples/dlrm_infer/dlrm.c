// SPDX-License-Identifier: MIT
// Device kernels for DLRM-style inference: embedding-bag (sum pooling),
// feature interaction by concatenation, dense layers and a sigmoid head.
#include <kiln/device/kiln_device.h>

/* out[b, t*D .. t*D+D) = sum of table t rows indices[offsets[b*T+t] .. offsets[b*T+t+1]) */
KILN_KERNEL void embedding_bag(const float *tables, const uint32_t *indices, const uint32_t *offsets,
                               float *out, uint32_t batch, uint32_t num_tables, uint32_t rows, uint32_t dim,
                               uint32_t out_stride, uint32_t out_col)
{
    for (uint32_t bt = kiln_wg_id(); bt < batch * num_tables; bt += kiln_num_wg()) {
        uint32_t b = bt / num_tables, t = bt % num_tables;
        float *o = out + (uint64_t)b * out_stride + out_col + (uint64_t)t * dim;
        for (uint32_t d = 0; d < dim; d++)
            o[d] = 0.0f;
        for (uint32_t j = offsets[bt]; j < offsets[bt + 1]; j++) {
            uint32_t row = indices[j];
            if (row >= rows)
                kiln_trap(row);   /* bad index: report instead of reading out of bounds */
            const float *e = tables + ((uint64_t)t * rows + row) * dim;
            for (uint32_t d = 0; d < dim; d++)
                o[d] += e[d];
        }
    }
}

/* Y[B,O] = act(X[B,I] W[I,O] + b); act: 0 none, 1 ReLU, 2 sigmoid */
KILN_KERNEL void dense(const float *X, const float *W, const float *bias, float *Y,
                       uint32_t B, uint32_t I, uint32_t O, uint32_t act, uint32_t y_stride)
{
    for (uint32_t r = kiln_wg_id(); r < B; r += kiln_num_wg()) {
        float *y = Y + (uint64_t)r * y_stride;
        for (uint32_t o = 0; o < O; o++) {
            float acc = bias[o];
            for (uint32_t i = 0; i < I; i++)
                acc += X[(uint64_t)r * I + i] * W[(uint64_t)i * O + o];
            if (act == 1 && acc < 0.0f)
                acc = 0.0f;
            if (act == 2) {
                /* sigmoid(x) = 1 / (1 + e^-x) with a rational e^-x */
                float x = -acc;
                if (x > 30.0f) x = 30.0f;
                if (x < -30.0f) x = -30.0f;
                float e = 1.0f, term = 1.0f;
                for (int k = 1; k < 40; k++) {
                    term *= x / (float)k;
                    e += term;
                }
                acc = 1.0f / (1.0f + e);
            }
            y[o] = acc;
        }
    }
}
