/* SPDX-License-Identifier: MIT */
/* Shared helpers of the Kiln op library kernels. */
#ifndef KILN_OPS_COMMON_H
#define KILN_OPS_COMMON_H

#include <kiln/device/kiln_device.h>

/* Activation codes (GEMM epilogue and kiln_activation) */
enum {
    KILN_ACT_NONE = 0,
    KILN_ACT_RELU = 1,
    KILN_ACT_GELU = 2,
    KILN_ACT_SIGMOID = 3,
    KILN_ACT_TANH = 4,
};

static inline void ops_activation(float *x, uint32_t n, uint32_t act)
{
    switch (act) {
    case KILN_ACT_RELU: kiln_se_relu(x, x, n); break;
    case KILN_ACT_GELU: kiln_se_gelu(x, x, n); break;
    case KILN_ACT_SIGMOID: kiln_se_sigmoid(x, x, n); break;
    case KILN_ACT_TANH: kiln_se_tanh(x, x, n); break;
    default: break;
    }
}

/* dst = max(a, 0) on n int32 elements: the SE's integer mode (src_type INT32), exact */
static inline void ops_se_relu_i32(int32_t *dst, const int32_t *a, uint32_t n)
{
    struct kiln_se_desc d = { 0 };
    d.dst = (uint64_t)(uintptr_t)dst;
    d.a = (uint64_t)(uintptr_t)a;
    d.rows = 1;
    d.cols = n;
    d.a_cs = 1;
    d.src_type = KILN_DTYPE_INT32;
    d.dst_type = KILN_DTYPE_INT32;
    kiln_se_exec(KILN_SE_RELU, &d);
}

/* 2-D SE op with a per-row (col-broadcast) or per-column (row-broadcast) b operand */
static inline void ops_se_rowvec(uint32_t op_unused, float *dst, const float *a,
                                 const float *b, uint32_t rows, uint32_t cols,
                                 int per_row, struct kiln_se_desc *d)
{
    (void)op_unused;
    d->dst = (uint64_t)(uintptr_t)dst;
    d->a = (uint64_t)(uintptr_t)a;
    d->b = (uint64_t)(uintptr_t)b;
    d->rows = rows;
    d->cols = cols;
    d->dst_ld = (int32_t)cols;
    d->a_ld = (int32_t)cols;
    d->a_cs = 1;
    if (per_row) {          /* b[r] */
        d->b_ld = 1;
        d->b_cs = 0;
    } else {                /* b[c] */
        d->b_ld = 0;
        d->b_cs = 1;
    }
}

#define OPS_SE_ROWVEC(op, dst, a, b, rows, cols, per_row) do {                \
        struct kiln_se_desc d_ = { 0 };                                        \
        ops_se_rowvec(op, dst, a, b, rows, cols, per_row, &d_);                \
        kiln_se_exec(op, &d_);                                                  \
    } while (0)

#endif
