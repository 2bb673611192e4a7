/* SPDX-License-Identifier: MIT */
/*
 * GEMM: C[m x n] = act(A[m x k] * B[k x n] (+ C) + bias[n]) over the PE grid.
 * int8: C and bias are int32 (wrap-around) and the only activation is relu.
 * Each workgroup computes 128 x 128 tiles of C; k is streamed in chunks of
 * 64 with double-buffered DMA (tags 0/1) overlapping the DPE.
 * flags: bit 0 A transposed (stored k x m), bit 1 B transposed (n x k),
 * bit 2 accumulate into C, bits 8..11 activation (KILN_ACT_*).
 */
#include "ops_common.h"

#define TM 128
#define TN 128
#define TK 64

#define GEMM_FLAG_TRANS_A 1u
#define GEMM_FLAG_TRANS_B 2u
#define GEMM_FLAG_ACCUM 4u

/* local memory layout (bytes) */
#define LM_A0 0
#define LM_A1 (TM * TK * 4)
#define LM_B0 (2 * TM * TK * 4)
#define LM_B1 (LM_B0 + TK * TN * 4)
#define LM_C (LM_B1 + TK * TN * 4)
#define LM_BIAS (LM_C + TM * TN * 4)

static void load_chunk(const uint8_t *a, const uint8_t *b, uint32_t es, uint32_t i0,
                       uint32_t j0, uint32_t p0, uint32_t mt, uint32_t nt, uint32_t kt,
                       uint32_t lda, uint32_t ldb, uint32_t flags, uint32_t buf)
{
    uint8_t *la = KILN_LM(uint8_t, buf ? LM_A1 : LM_A0);
    uint8_t *lb = KILN_LM(uint8_t, buf ? LM_B1 : LM_B0);

    if (flags & GEMM_FLAG_TRANS_A) {        /* A^T: kt rows of mt */
        kiln_dma_copy2d(la, a + ((uint64_t)p0 * lda + i0) * es, mt * es, kt, (int64_t)mt * es,
                        (int64_t)lda * es, buf);
    } else {
        kiln_dma_copy2d(la, a + ((uint64_t)i0 * lda + p0) * es, kt * es, mt, (int64_t)kt * es,
                        (int64_t)lda * es, buf);
    }
    if (flags & GEMM_FLAG_TRANS_B) {        /* B^T: nt rows of kt */
        kiln_dma_copy2d(lb, b + ((uint64_t)j0 * ldb + p0) * es, kt * es, nt, (int64_t)kt * es,
                        (int64_t)ldb * es, buf);
    } else {
        kiln_dma_copy2d(lb, b + ((uint64_t)p0 * ldb + j0) * es, nt * es, kt, (int64_t)nt * es,
                        (int64_t)ldb * es, buf);
    }
}

/* The int8 epilogue in exact int32 arithmetic (the SE works in fp32) */
static void i8_epilogue(int32_t *c, const int32_t *bias, uint32_t mt, uint32_t nt, int relu)
{
    for (uint32_t i = 0; i < mt; i++) {
        int32_t *row = c + (uint64_t)i * nt;
        for (uint32_t j = 0; j < nt; j++) {
            int32_t v = (int32_t)((uint32_t)row[j] + (uint32_t)(bias ? bias[j] : 0));
            row[j] = relu && v < 0 ? 0 : v;
        }
    }
}

static void gemm(const void *a_, const void *b_, void *c_, const void *bias, uint32_t m,
                 uint32_t n, uint32_t k, uint32_t lda, uint32_t ldb, uint32_t ldc,
                 uint32_t flags, uint32_t dtype, uint32_t es)
{
    const uint8_t *a = a_, *b = b_;
    uint8_t *c = c_;
    uint32_t tiles_m = (m + TM - 1) / TM, tiles_n = (n + TN - 1) / TN;
    uint32_t act = (flags >> 8) & 15;

    for (uint32_t t = kiln_wg_id(); t < tiles_m * tiles_n; t += kiln_num_wg()) {
        uint32_t i0 = (t / tiles_n) * TM, j0 = (t % tiles_n) * TN;
        uint32_t mt = kiln_min_u32(TM, m - i0), nt = kiln_min_u32(TN, n - j0);
        float *lc = KILN_LM(float, LM_C);
        uint32_t dflags = (flags & GEMM_FLAG_TRANS_A ? KILN_DPE_TRANS_A : 0) |
                          (flags & GEMM_FLAG_TRANS_B ? KILN_DPE_TRANS_B : 0);
        uint32_t nchunks = (k + TK - 1) / TK;

        if (flags & GEMM_FLAG_ACCUM) {
            kiln_dma_copy2d(lc, c + ((uint64_t)i0 * ldc + j0) * 4, nt * 4, mt, (int64_t)nt * 4,
                            (int64_t)ldc * 4, 2);
            kiln_dma_wait(1u << 2);
        } else if (k == 0) {
            kiln_se_fill(lc, 0.0f, mt * nt);
        }
        if (nchunks) {
            load_chunk(a, b, es, i0, j0, 0, mt, nt, kiln_min_u32(TK, k), lda, ldb, flags, 0);
        }
        for (uint32_t ci = 0; ci < nchunks; ci++) {
            uint32_t p0 = ci * TK, kt = kiln_min_u32(TK, k - p0), buf = ci & 1;
            if (ci + 1 < nchunks) {
                uint32_t p1 = p0 + TK;
                load_chunk(a, b, es, i0, j0, p1, mt, nt, kiln_min_u32(TK, k - p1), lda, ldb,
                           flags, buf ^ 1);
            }
            kiln_dma_wait(1u << buf);
            kiln_matmul(lc, KILN_LM(void, buf ? LM_A1 : LM_A0), KILN_LM(void, buf ? LM_B1 : LM_B0),
                        mt, nt, kt, (flags & GEMM_FLAG_TRANS_A) ? mt : kt,
                        (flags & GEMM_FLAG_TRANS_B) ? kt : nt, nt, dtype,
                        dflags | ((ci || (flags & GEMM_FLAG_ACCUM)) ? KILN_DPE_ACCUM : 0));
        }
        if (bias) {
            kiln_dma_copy(KILN_LM(float, LM_BIAS), (const uint8_t *)bias + (uint64_t)j0 * 4,
                          nt * 4, 3);
            kiln_dma_wait(1u << 3);
        }
        if (dtype == KILN_DTYPE_INT8) {
            if (bias || act) {
                i8_epilogue((int32_t *)lc, bias ? KILN_LM(int32_t, LM_BIAS) : 0, mt, nt,
                            act == KILN_ACT_RELU);
            }
        } else {
            if (bias) {
                OPS_SE_ROWVEC(KILN_SE_ADD, lc, lc, KILN_LM(float, LM_BIAS), mt, nt, 0);
            }
            ops_activation(lc, mt * nt, act);
        }
        kiln_dma_copy2d(c + ((uint64_t)i0 * ldc + j0) * 4, lc, nt * 4, mt, (int64_t)ldc * 4,
                        (int64_t)nt * 4, 4);
        kiln_dma_wait(1u << 4);
    }
}

KILN_KERNEL void kiln_gemm_f32(const float *a, const float *b, KILN_INOUT float *c,
                               const float *bias, uint32_t m, uint32_t n, uint32_t k,
                               uint32_t lda, uint32_t ldb, uint32_t ldc, uint32_t flags)
{
    gemm(a, b, c, bias, m, n, k, lda, ldb, ldc, flags, KILN_DTYPE_FP32, 4);
}

KILN_KERNEL void kiln_gemm_bf16(const kiln_bf16_t *a, const kiln_bf16_t *b, KILN_INOUT float *c,
                                const float *bias, uint32_t m, uint32_t n, uint32_t k,
                                uint32_t lda, uint32_t ldb, uint32_t ldc, uint32_t flags)
{
    gemm(a, b, c, bias, m, n, k, lda, ldb, ldc, flags, KILN_DTYPE_BF16, 2);
}

KILN_KERNEL void kiln_gemm_f16(const kiln_fp16_t *a, const kiln_fp16_t *b, KILN_INOUT float *c,
                               const float *bias, uint32_t m, uint32_t n, uint32_t k,
                               uint32_t lda, uint32_t ldb, uint32_t ldc, uint32_t flags)
{
    gemm(a, b, c, bias, m, n, k, lda, ldb, ldc, flags, KILN_DTYPE_FP16, 2);
}

/* int8 x int8 -> int32, + int32 bias[n] (wrap-around), relu or no activation */
KILN_KERNEL void kiln_gemm_i8(const int8_t *a, const int8_t *b, KILN_INOUT int32_t *c,
                              const int32_t *bias, uint32_t m, uint32_t n, uint32_t k,
                              uint32_t lda, uint32_t ldb, uint32_t ldc, uint32_t flags)
{
    if (((flags >> 8) & 15) > KILN_ACT_RELU) {
        kiln_trap(3);
    }
    gemm(a, b, c, bias, m, n, k, lda, ldb, ldc, flags, KILN_DTYPE_INT8, 1);
}
