/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE: host-vectorised kernels of the DPE and SE units.
 *
 * Each kernel exists for several host instruction sets (like QEMU's
 * util/bufferiszero.c, chosen once at run time from the host CPU). Every
 * variant gives bit-identical results: the DPE accumulates every element of
 * C in a fixed order with fused multiply-adds, the SE rounds each element
 * once, and NaN results are the canonical NaN (docs/pe-isa.md).
 */
#ifndef KILN_PE_SIMD_H
#define KILN_PE_SIMD_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_CANONICAL_NAN_F32 0x7fc00000u

typedef enum KilnSimdLevel {
    KILN_SIMD_GENERIC,      /* portable C */
    KILN_SIMD_AVX2,         /* x86-64 AVX2 + FMA + F16C */
    KILN_SIMD_AVX512,       /* x86-64 AVX-512 F/BW/VL + FMA + F16C */
    KILN_SIMD_AVX512_VNNI,  /* the same + AVX512_VNNI (int8 DPE) */
    KILN_SIMD_AVX512_BF16,  /* the same + AVX512_BF16 (fp32 -> bf16) */
    KILN_SIMD_LEVELS
} KilnSimdLevel;

typedef struct KilnSimdOps {
    const char *name;
    /*
     * C[i][j] (ldc) = fma(A[i][k-1], B[k-1][j], ... fma(A[i][0], B[0][j],
     * C[i][j])): one fused multiply-add per step in increasing k, a NaN
     * result is the canonical NaN. A is m x k (lda), B k x n (ldb).
     */
    void (*sgemm)(uint32_t m, uint32_t n, uint32_t k, const float *a,
                  uint64_t lda, const float *b, uint64_t ldb, float *c,
                  uint64_t ldc);
    /*
     * C[i][j] (ldc) += sum over p of A[i][p] * B[p][j] for int8 A (m x k,
     * element (i, p) at a[i * a_rs + p * a_cs]) and int8 B (k x n, element
     * (p, j) at b[p * b_rs + j * b_cs]), in int32 with wrap-around, so the
     * order of the sum does not matter. False if scratch memory for packed
     * operands could not be allocated (C is then unchanged).
     */
    bool (*igemm_i8)(uint32_t m, uint32_t n, uint32_t k, const int8_t *a,
                     uint64_t a_rs, uint64_t a_cs, const int8_t *b,
                     uint64_t b_rs, uint64_t b_cs, int32_t *c, uint64_t ldc);
    /*
     * One row of a fp32 SE op (KILN_SE_*, validated by the caller) over n
     * contiguous elements; b is unused for unary ops and for | SCALAR (s is
     * used instead), c only for FMA. d may equal a, b or c but not overlap
     * them otherwise.
     */
    void (*se_row)(uint32_t op, float *d, const float *a, const float *b,
                   const float *c, float s, uint32_t n);
    /* Element type conversions of n contiguous elements (pe_math.c rules) */
    void (*f32_to_bf16)(uint16_t *d, const float *s, uint32_t n);
    void (*f32_to_f16)(uint16_t *d, const float *s, uint32_t n);
    void (*f16_to_f32)(float *d, const uint16_t *s, uint32_t n);
} KilnSimdOps;

/* pe_math.c: element conversions and RISC-V min/max */
uint16_t kiln_f32_to_bf16(float f);
float kiln_bf16_to_f32(uint16_t h);
uint16_t kiln_f32_to_f16(float f);
float kiln_f16_to_f32(uint16_t h);
int8_t kiln_f32_to_i8(float f);
int32_t kiln_f32_to_i32(float f);
float kiln_fminf_rv(float a, float b);
float kiln_fmaxf_rv(float a, float b);

/* The variant for @level, or NULL if this host cannot run it */
const KilnSimdOps *kiln_simd_ops(KilnSimdLevel level);
/* The fastest variant this host runs (chosen once) */
const KilnSimdOps *kiln_simd_best(void);
/* One SE element, the definition every se_row follows */
float kiln_se_elem(uint32_t op, float a, float b, float c);

#ifdef __cplusplus
}
#endif

#endif /* KILN_PE_SIMD_H */
