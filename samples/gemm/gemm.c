// SPDX-License-Identifier: MIT
// Device kernels: C[MxN] = A[MxK] * B[KxN], row-major, fp32 accumulate.
// Workgroups split the rows of C.
#include <kiln/device/kiln_device.h>

static inline float bf16_to_f32(kiln_bf16_t v)
{
    union { uint32_t u; float f; } x = { (uint32_t)v << 16 };
    return x.f;
}

KILN_KERNEL void gemm_f32(const float *A, const float *B, float *C, uint32_t M, uint32_t N, uint32_t K)
{
    for (uint32_t i = kiln_wg_id(); i < M; i += kiln_num_wg()) {
        float *c = C + (uint64_t)i * N;
        for (uint32_t j = 0; j < N; j++)
            c[j] = 0.0f;
        for (uint32_t k = 0; k < K; k++) {
            float a = A[(uint64_t)i * K + k];
            const float *b = B + (uint64_t)k * N;
            for (uint32_t j = 0; j < N; j++)
                c[j] += a * b[j];
        }
    }
}

KILN_KERNEL void gemm_bf16(const kiln_bf16_t *A, const kiln_bf16_t *B, float *C, uint32_t M, uint32_t N, uint32_t K)
{
    for (uint32_t i = kiln_wg_id(); i < M; i += kiln_num_wg()) {
        float *c = C + (uint64_t)i * N;
        for (uint32_t j = 0; j < N; j++)
            c[j] = 0.0f;
        for (uint32_t k = 0; k < K; k++) {
            float a = bf16_to_f32(A[(uint64_t)i * K + k]);
            const kiln_bf16_t *b = B + (uint64_t)k * N;
            for (uint32_t j = 0; j < N; j++)
                c[j] += a * bf16_to_f32(b[j]);
        }
    }
}
