/* SPDX-License-Identifier: MIT */
/*
 * Element-wise ops and activations over n fp32 elements, in chunks of
 * CH elements per workgroup step with double-buffered DMA.
 */
#include "ops_common.h"

#define CH 8192
/* buffers: A0 A1 B0 B1 OUT */
#define LM_A(i) ((i) * CH * 4)
#define LM_B(i) ((2 + (i)) * CH * 4)
#define LM_O (4 * CH * 4)

enum {
    ELT_ADD = 0, ELT_SUB = 1, ELT_MUL = 2, ELT_DIV = 3, ELT_MIN = 4, ELT_MAX = 5,
    ELT_ADD_SCALAR = 6, ELT_MUL_SCALAR = 7, ELT_FILL = 8, ELT_RELU_GRAD = 9,
};

/*
 * o = a * [b > 0] (ReLU backward: a the output gradient, b the ReLU's
 * output). b > 0 exactly when its bits, read as int32, are positive, so the
 * SE's integer mode makes the 0/1 mask, min(max(bits, 0), 1), without any
 * rounding; it is converted to fp32 into o and multiplied in place.
 */
static void relu_grad(float *o, const float *a, const float *b, uint32_t n)
{
    struct kiln_se_desc d = { 0 };

    d.dst = (uint64_t)(uintptr_t)o;
    d.a = (uint64_t)(uintptr_t)b;
    d.rows = 1;
    d.cols = n;
    d.a_cs = 1;
    d.src_type = KILN_DTYPE_INT32;
    d.dst_type = KILN_DTYPE_INT32;
    kiln_se_exec(KILN_SE_MAX | KILN_SE_SCALAR, &d);     /* scalar bits 0 */
    d.a = d.dst;
    d.scalar = 1.4e-45f;                                 /* the bits of int32 1 */
    kiln_se_exec(KILN_SE_MIN | KILN_SE_SCALAR, &d);
    kiln_se_cvt(o, KILN_DTYPE_FP32, o, KILN_DTYPE_INT32, n);
    kiln_se_mul(o, a, o, n);
}

static void binop(uint32_t op, float *o, const float *a, const float *b, float s, uint32_t n)
{
    switch (op) {
    case ELT_ADD: kiln_se_add(o, a, b, n); break;
    case ELT_SUB: kiln_se_sub(o, a, b, n); break;
    case ELT_MUL: kiln_se_mul(o, a, b, n); break;
    case ELT_DIV: kiln_se_div(o, a, b, n); break;
    case ELT_MIN: kiln_se_min(o, a, b, n); break;
    case ELT_MAX: kiln_se_max(o, a, b, n); break;
    case ELT_ADD_SCALAR: kiln_se_add_s(o, a, s, n); break;
    case ELT_MUL_SCALAR: kiln_se_mul_s(o, a, s, n); break;
    case ELT_RELU_GRAD: relu_grad(o, a, b, n); break;
    default: kiln_se_fill(o, s, n); break;
    }
}

/* out = a <op> b (or a <op> scalar); op: 0 add 1 sub 2 mul 3 div 4 min 5 max
 * 6 add-scalar 7 mul-scalar 8 fill(scalar) 9 relu-grad (a * [b > 0]) */
KILN_KERNEL void kiln_eltwise(uint32_t op, const float *a, const float *b, KILN_OUT float *out,
                              uint64_t n, float scalar)
{
    uint64_t nch = (n + CH - 1) / CH;
    uint32_t step = kiln_num_wg(), buf = 0;
    int need_a = op != ELT_FILL, need_b = op <= ELT_MAX || op == ELT_RELU_GRAD;
    uint64_t c = kiln_wg_id();

    if (c < nch) {
        uint32_t len = (uint32_t)(n - c * CH < CH ? n - c * CH : CH);
        if (need_a) kiln_dma_copy(KILN_LM(float, LM_A(0)), a + c * CH, len * 4, 0);
        if (need_b) kiln_dma_copy(KILN_LM(float, LM_B(0)), b + c * CH, len * 4, 0);
    }
    for (; c < nch; c += step, buf ^= 1) {
        uint32_t len = (uint32_t)(n - c * CH < CH ? n - c * CH : CH);
        uint64_t nx = c + step;
        if (nx < nch) {
            uint32_t l2 = (uint32_t)(n - nx * CH < CH ? n - nx * CH : CH);
            if (need_a) kiln_dma_copy(KILN_LM(float, LM_A(buf ^ 1)), a + nx * CH, l2 * 4, buf ^ 1);
            if (need_b) kiln_dma_copy(KILN_LM(float, LM_B(buf ^ 1)), b + nx * CH, l2 * 4, buf ^ 1);
        }
        kiln_dma_wait(1u << buf);
        kiln_dma_wait(1u << 2);     /* previous store out of LM_O */
        binop(op, KILN_LM(float, LM_O), KILN_LM(float, LM_A(buf)), KILN_LM(float, LM_B(buf)),
              scalar, len);
        kiln_dma_copy(out + c * CH, KILN_LM(float, LM_O), len * 4, 2);
    }
    kiln_dma_wait_all();
}

/* y = f(x); f: 0 relu 1 gelu 2 sigmoid 3 tanh 4 exp 5 log 6 sqrt 7 rsqrt 8 neg 9 abs
 * 10 recip */
KILN_KERNEL void kiln_activation(uint32_t fn, const float *x, KILN_OUT float *y, uint64_t n)
{
    uint64_t nch = (n + CH - 1) / CH;
    for (uint64_t c = kiln_wg_id(); c < nch; c += kiln_num_wg()) {
        uint32_t len = (uint32_t)(n - c * CH < CH ? n - c * CH : CH);
        float *l = KILN_LM(float, LM_A(0));
        kiln_dma_copy(l, x + c * CH, len * 4, 0);
        kiln_dma_wait(1);
        switch (fn) {
        case 0: kiln_se_relu(l, l, len); break;
        case 1: kiln_se_gelu(l, l, len); break;
        case 2: kiln_se_sigmoid(l, l, len); break;
        case 3: kiln_se_tanh(l, l, len); break;
        case 4: kiln_se_exp(l, l, len); break;
        case 5: kiln_se_log(l, l, len); break;
        case 6: kiln_se_sqrt(l, l, len); break;
        case 7: kiln_se_rsqrt(l, l, len); break;
        case 8: kiln_se_neg(l, l, len); break;
        case 9: kiln_se_abs(l, l, len); break;
        default: kiln_se_recip(l, l, len); break;
        }
        kiln_dma_copy(y + c * CH, l, len * 4, 1);
        kiln_dma_wait(2);
    }
}

/* Type conversion of n elements (KILN_DTYPE_* codes), RNE + saturation */
KILN_KERNEL void kiln_convert(const void *src, uint32_t src_type, KILN_OUT void *dst,
                              uint32_t dst_type, uint64_t n)
{
    static const uint8_t sz[5] = { 4, 2, 2, 1, 4 };
    uint32_t ss = sz[src_type < 5 ? src_type : 0], ds = sz[dst_type < 5 ? dst_type : 0];
    uint64_t nch = (n + CH - 1) / CH;
    for (uint64_t c = kiln_wg_id(); c < nch; c += kiln_num_wg()) {
        uint32_t len = (uint32_t)(n - c * CH < CH ? n - c * CH : CH);
        kiln_dma_copy(KILN_LM(void, LM_A(0)), (const uint8_t *)src + c * CH * ss, len * ss, 0);
        kiln_dma_wait(1);
        kiln_se_cvt(KILN_LM(void, LM_O), dst_type, KILN_LM(void, LM_A(0)), src_type, len);
        kiln_dma_copy((uint8_t *)dst + c * CH * ds, KILN_LM(void, LM_O), len * ds, 1);
        kiln_dma_wait(2);
    }
}
