/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE: DPE and SE kernels for several host instruction sets.
 *
 * The engine is built for the baseline of its host (QEMU: x86-64 with
 * SSE2); faster variants are compiled with function target attributes and
 * one is chosen once from the host CPU, as QEMU's util/bufferiszero.c does.
 * All variants compute the same bits (pe_simd.h): the DPE is a chain of
 * fused multiply-adds per element of C in increasing k, so register and
 * cache blocking may split k (C is reloaded and the chain continues) but
 * never reorder it; fp32 arithmetic is written with intrinsics, never as
 * a * b + c, so the compiler cannot contract or reassociate it.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "pe_internal.h"
#include "pe_simd.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define KILN_SIMD_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static float canon_f32(float v)
{
    uint32_t u = KILN_CANONICAL_NAN_F32;

    if (isnan(v)) {
        memcpy(&v, &u, 4);
    }
    return v;
}

static float gelu(float v)
{
    const float k0 = 0.7978845608028654f, k1 = 0.044715f;
    float inner = k0 * (v + k1 * v * v * v);

    return 0.5f * v * (1.0f + tanhf(inner));
}

float kiln_se_elem(uint32_t op, float a, float b, float c)
{
    float v;

    switch (op & ~(uint32_t)KILN_SE_SCALAR) {
    case KILN_SE_ADD: v = a + b; break;
    case KILN_SE_SUB: v = a - b; break;
    case KILN_SE_MUL: v = a * b; break;
    case KILN_SE_DIV: v = a / b; break;
    case KILN_SE_MIN: v = kiln_fminf_rv(a, b); break;
    case KILN_SE_MAX: v = kiln_fmaxf_rv(a, b); break;
    case KILN_SE_FMA: v = fmaf(a, b, c); break;
    case KILN_SE_EXP: v = expf(a); break;
    case KILN_SE_LOG: v = logf(a); break;
    case KILN_SE_SQRT: v = sqrtf(a); break;
    case KILN_SE_RSQRT: v = 1.0f / sqrtf(a); break;
    case KILN_SE_RELU: return a > 0.0f ? a : 0.0f;
    case KILN_SE_GELU: v = gelu(a); break;
    case KILN_SE_SIGMOID: v = 1.0f / (1.0f + expf(-a)); break;
    case KILN_SE_TANH: v = tanhf(a); break;
    /* sign and copy operations keep a NaN's payload, like fsgnj */
    case KILN_SE_NEG: return -a;
    case KILN_SE_ABS: return fabsf(a);
    case KILN_SE_COPY: return a;
    case KILN_SE_RECIP: v = 1.0f / a; break;
    default: v = 0; break;     /* the caller validated op */
    }
    return canon_f32(v);
}

/* ---- generic ------------------------------------------------------------ */

static void sgemm_generic(uint32_t m, uint32_t n, uint32_t k,
                          const float *a, uint64_t lda, const float *b,
                          uint64_t ldb, float *c, uint64_t ldc)
{
    for (uint32_t i = 0; i < m; i++) {
        float *cr = c + i * ldc;
        for (uint32_t p = 0; p < k; p++) {
            const float av = a[i * lda + p];
            const float *br = b + p * ldb;
            for (uint32_t j = 0; j < n; j++) {
                cr[j] = fmaf(av, br[j], cr[j]);
            }
        }
        for (uint32_t j = 0; j < n; j++) {
            cr[j] = canon_f32(cr[j]);
        }
    }
}

/*
 * int32 GEMM: exact modular arithmetic, so any order gives the same bits.
 * A 4 x (2 vectors) register block in GCC vector extensions, compiled once
 * per instruction set below.
 */
#define KILN_IGEMM_BODY(V, VL)                                                \
    uint32_t m4 = m & ~3u, nv = n - n % (2 * (VL));                           \
    for (uint32_t i = 0; i < m4; i += 4) {                                    \
        for (uint32_t j = 0; j < nv; j += 2 * (VL)) {                         \
            V acc[4][2];                                                      \
            for (uint32_t r = 0; r < 4; r++) {                                \
                memcpy(&acc[r][0], c + (i + r) * ldc + j, sizeof(V));         \
                memcpy(&acc[r][1], c + (i + r) * ldc + j + (VL), sizeof(V));  \
            }                                                                 \
            for (uint32_t p = 0; p < k; p++) {                                \
                V b0, b1;                                                     \
                memcpy(&b0, b + p * ldb + j, sizeof(V));                      \
                memcpy(&b1, b + p * ldb + j + (VL), sizeof(V));               \
                for (uint32_t r = 0; r < 4; r++) {                            \
                    uint32_t av = (uint32_t)a[(i + r) * lda + p];             \
                    acc[r][0] += av * b0;                                     \
                    acc[r][1] += av * b1;                                     \
                }                                                             \
            }                                                                 \
            for (uint32_t r = 0; r < 4; r++) {                                \
                memcpy(c + (i + r) * ldc + j, &acc[r][0], sizeof(V));         \
                memcpy(c + (i + r) * ldc + j + (VL), &acc[r][1], sizeof(V));  \
            }                                                                 \
        }                                                                     \
    }                                                                         \
    for (uint32_t i = 0; i < m; i++) {                                        \
        uint32_t j0 = i < m4 ? nv : 0;                                        \
        uint32_t *cr = (uint32_t *)c + i * ldc;                               \
        for (uint32_t p = 0; p < k; p++) {                                    \
            uint32_t av = (uint32_t)a[i * lda + p];                           \
            const int32_t *br = b + p * ldb;                                  \
            for (uint32_t j = j0; j < n; j++) {                               \
                cr[j] += av * (uint32_t)br[j];                                \
            }                                                                 \
        }                                                                     \
    }

typedef uint32_t KilnV4u __attribute__((vector_size(16)));

static void igemm_generic(uint32_t m, uint32_t n, uint32_t k,
                          const int32_t *a, uint64_t lda, const int32_t *b,
                          uint64_t ldb, int32_t *c, uint64_t ldc)
{
    KILN_IGEMM_BODY(KilnV4u, 4)
}

typedef void KilnIgemm32(uint32_t m, uint32_t n, uint32_t k, const int32_t *a,
                         uint64_t lda, const int32_t *b, uint64_t ldb,
                         int32_t *c, uint64_t ldc);

/* Without int8 dot products: widen both operands to int32, then IGEMM */
static bool igemm_i8_widened(KilnIgemm32 *igemm, uint32_t m, uint32_t n,
                             uint32_t k, const int8_t *a, uint64_t a_rs,
                             uint64_t a_cs, const int8_t *b, uint64_t b_rs,
                             uint64_t b_cs, int32_t *c, uint64_t ldc)
{
    int32_t *ap = malloc((uint64_t)m * k * 4);
    int32_t *bp = malloc((uint64_t)k * n * 4);

    if (ap && bp) {
        for (uint64_t i = 0; i < m; i++) {
            for (uint64_t p = 0; p < k; p++) {
                ap[i * k + p] = a[i * a_rs + p * a_cs];
            }
        }
        for (uint64_t p = 0; p < k; p++) {
            for (uint64_t j = 0; j < n; j++) {
                bp[p * n + j] = b[p * b_rs + j * b_cs];
            }
        }
        igemm(m, n, k, ap, k, bp, n, c, ldc);
    }
    free(ap);
    free(bp);
    return ap && bp;
}

#define KILN_IGEMM_I8_WIDENED(name, igemm)                                   \
    static bool name(uint32_t m, uint32_t n, uint32_t k, const int8_t *a,    \
                     uint64_t a_rs, uint64_t a_cs, const int8_t *b,          \
                     uint64_t b_rs, uint64_t b_cs, int32_t *c, uint64_t ldc) \
    {                                                                        \
        return igemm_i8_widened(igemm, m, n, k, a, a_rs, a_cs, b, b_rs,      \
                                b_cs, c, ldc);                               \
    }

KILN_IGEMM_I8_WIDENED(igemm_i8_generic, igemm_generic)

static void se_row_generic(uint32_t op, float *d, const float *a,
                           const float *b, const float *c, float s,
                           uint32_t n)
{
    bool scalar = op & KILN_SE_SCALAR;
    bool binary = op <= (KILN_SE_FMA | KILN_SE_SCALAR);

    for (uint32_t i = 0; i < n; i++) {
        float bv = binary ? (scalar ? s : b[i]) : 0.0f;
        float cv = (op & ~(uint32_t)KILN_SE_SCALAR) == KILN_SE_FMA ? c[i] : 0;

        d[i] = kiln_se_elem(op, a[i], bv, cv);
    }
}

static void f32_to_bf16_generic(uint16_t *d, const float *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        d[i] = kiln_f32_to_bf16(s[i]);
    }
}

static void f32_to_f16_generic(uint16_t *d, const float *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        d[i] = kiln_f32_to_f16(s[i]);
    }
}

static void f16_to_f32_generic(float *d, const uint16_t *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        d[i] = kiln_f16_to_f32(s[i]);
    }
}

static const KilnSimdOps ops_generic = {
    .name = "generic",
    .sgemm = sgemm_generic,
    .igemm_i8 = igemm_i8_generic,
    .se_row = se_row_generic,
    .f32_to_bf16 = f32_to_bf16_generic,
    .f32_to_f16 = f32_to_f16_generic,
    .f16_to_f32 = f16_to_f32_generic,
};

#ifdef KILN_SIMD_X86

/*
 * A row has one op: KILN_SE_ROW_DISPATCH calls the always-inlined LOOP with
 * the op and its scalar flag as constants, so every op gets a loop of its
 * own instead of a dispatch per vector. It expects op, d, a, b, c, s and n.
 */
#define KILN_SE_BINARY_CASE(LOOP, OP)                                   \
    case OP:                                                            \
        if (op & KILN_SE_SCALAR) {                                      \
            LOOP(OP, true, d, a, b, c, s, n);                           \
        } else {                                                        \
            LOOP(OP, false, d, a, b, c, s, n);                          \
        }                                                               \
        return
#define KILN_SE_UNARY_CASE(LOOP, OP)                                    \
    case OP:                                                            \
        LOOP(OP, false, d, a, b, c, s, n);                              \
        return
#define KILN_SE_ROW_DISPATCH(LOOP)                                      \
    switch (op & ~(uint32_t)KILN_SE_SCALAR) {                           \
    KILN_SE_BINARY_CASE(LOOP, KILN_SE_ADD);                             \
    KILN_SE_BINARY_CASE(LOOP, KILN_SE_SUB);                             \
    KILN_SE_BINARY_CASE(LOOP, KILN_SE_MUL);                             \
    KILN_SE_BINARY_CASE(LOOP, KILN_SE_DIV);                             \
    KILN_SE_BINARY_CASE(LOOP, KILN_SE_MIN);                             \
    KILN_SE_BINARY_CASE(LOOP, KILN_SE_MAX);                             \
    KILN_SE_BINARY_CASE(LOOP, KILN_SE_FMA);                             \
    KILN_SE_UNARY_CASE(LOOP, KILN_SE_SQRT);                             \
    KILN_SE_UNARY_CASE(LOOP, KILN_SE_RSQRT);                            \
    KILN_SE_UNARY_CASE(LOOP, KILN_SE_RECIP);                            \
    KILN_SE_UNARY_CASE(LOOP, KILN_SE_RELU);                             \
    KILN_SE_UNARY_CASE(LOOP, KILN_SE_NEG);                              \
    KILN_SE_UNARY_CASE(LOOP, KILN_SE_ABS);                              \
    case KILN_SE_COPY:                                                  \
        memmove(d, a, (uint64_t)n * 4);                                 \
        return;                                                         \
    default:                                                            \
        se_row_generic(op, d, a, b, c, s, n);                           \
        return;                                                         \
    }

#define KILN_ALWAYS_INLINE inline __attribute__((always_inline))

/* k-block: an 8 x KC block of A and a KC x 32 panel of B stay in L1 */
#define KILN_SGEMM_KC 256

/* ---- AVX2 ----------------------------------------------------------------- */

#define AVX2_TARGET __attribute__((target("avx2,fma,f16c")))

AVX2_TARGET
static inline __m256i avx2_mask(uint32_t cnt)
{
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);

    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)cnt), idx);
}

AVX2_TARGET
static inline __m256 avx2_canon(__m256 v)
{
    __m256 nan = _mm256_castsi256_ps(_mm256_set1_epi32(KILN_CANONICAL_NAN_F32));

    return _mm256_blendv_ps(v, nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/*
 * Pack the kc x nr block of B at @b (ldb) into kc rows of @w floats,
 * zero-padded: the micro-kernels read it sequentially from L1 whatever
 * ldb is (a row stride of a power of two would alias L1 sets).
 */
static void pack_b_panel(float *dst, const float *b, uint64_t ldb,
                         uint32_t kc, uint32_t nr, uint32_t w)
{
    for (uint32_t p = 0; p < kc; p++) {
        memcpy(dst + p * w, b + p * ldb, (uint64_t)nr * 4);
        memset(dst + p * w + nr, 0, (uint64_t)(w - nr) * 4);
    }
}

/*
 * The blocked GEMM around a micro-kernel pair: the full MR x NR block and a
 * one-row block for the bottom edge; mask(cnt) enables the first cnt of the
 * VL columns of one vector.
 */
#define KILN_SGEMM_DRIVER(MR, VL, mask, kern_full, kern_row)                   \
    float panel[KILN_SGEMM_KC * 2 * (VL)] __attribute__((aligned(64)));      \
    for (uint32_t p0 = 0; p0 < k; p0 += KILN_SGEMM_KC) {                      \
        uint32_t kc = k - p0 < KILN_SGEMM_KC ? k - p0 : KILN_SGEMM_KC;       \
        for (uint32_t j = 0; j < n; j += 2 * (VL)) {                          \
            uint32_t nr = n - j < 2 * (VL) ? n - j : 2 * (VL);                \
            uint32_t i = 0;                                                   \
            pack_b_panel(panel, b + p0 * ldb + j, ldb, kc, nr, 2 * (VL));     \
            for (; i + (MR) <= m; i += (MR)) {                                \
                kern_full(kc, a + i * lda + p0, lda, panel, c + i * ldc + j,  \
                          ldc, mask(nr), mask(nr > (VL) ? nr - (VL) : 0));    \
            }                                                                 \
            for (; i < m; i++) {                                              \
                kern_row(kc, a + i * lda + p0, lda, panel, c + i * ldc + j,   \
                         ldc, mask(nr), mask(nr > (VL) ? nr - (VL) : 0));     \
            }                                                                 \
        }                                                                     \
    }

/*
 * The micro-kernels: C[rows x cols] continues its chain over kc steps of
 * A (rows at lda) and a packed B panel. Columns beyond the masks are
 * neither read nor written. Written out per register so that every
 * accumulator stays in a register.
 */
#define AVX2_DECL(r)                                                          \
    __m256 c##r##0 = _mm256_maskload_ps(c + r * ldc, m0);                     \
    __m256 c##r##1 = _mm256_maskload_ps(c + r * ldc + 8, m1)
#define AVX2_STEP(r)                                                          \
    av = _mm256_broadcast_ss(a + r * lda + p);                                \
    c##r##0 = _mm256_fmadd_ps(av, b0, c##r##0);                               \
    c##r##1 = _mm256_fmadd_ps(av, b1, c##r##1)
#define AVX2_STORE(r)                                                         \
    _mm256_maskstore_ps(c + r * ldc, m0, avx2_canon(c##r##0));                \
    _mm256_maskstore_ps(c + r * ldc + 8, m1, avx2_canon(c##r##1))

AVX2_TARGET
static void avx2_6x16(uint32_t kc, const float *a, uint64_t lda,
                      const float *bp, float *c, uint64_t ldc, __m256i m0,
                      __m256i m1)
{
    AVX2_DECL(0); AVX2_DECL(1); AVX2_DECL(2);
    AVX2_DECL(3); AVX2_DECL(4); AVX2_DECL(5);
    for (uint32_t p = 0; p < kc; p++, bp += 16) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8), av;
        AVX2_STEP(0); AVX2_STEP(1); AVX2_STEP(2);
        AVX2_STEP(3); AVX2_STEP(4); AVX2_STEP(5);
    }
    AVX2_STORE(0); AVX2_STORE(1); AVX2_STORE(2);
    AVX2_STORE(3); AVX2_STORE(4); AVX2_STORE(5);
}

AVX2_TARGET
static void avx2_1x16(uint32_t kc, const float *a, uint64_t lda,
                      const float *bp, float *c, uint64_t ldc, __m256i m0,
                      __m256i m1)
{
    AVX2_DECL(0);
    for (uint32_t p = 0; p < kc; p++, bp += 16) {
        __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8), av;
        AVX2_STEP(0);
    }
    AVX2_STORE(0);
}

AVX2_TARGET
static void sgemm_avx2(uint32_t m, uint32_t n, uint32_t k, const float *a,
                       uint64_t lda, const float *b, uint64_t ldb, float *c,
                       uint64_t ldc)
{
    KILN_SGEMM_DRIVER(6, 8, avx2_mask, avx2_6x16, avx2_1x16)
}

typedef uint32_t KilnV8u __attribute__((vector_size(32)));

AVX2_TARGET
static void igemm_avx2(uint32_t m, uint32_t n, uint32_t k, const int32_t *a,
                       uint64_t lda, const int32_t *b, uint64_t ldb,
                       int32_t *c, uint64_t ldc)
{
    KILN_IGEMM_BODY(KilnV8u, 8)
}

KILN_IGEMM_I8_WIDENED(igemm_i8_avx2, igemm_avx2)

/* RISC-V fmin/fmax (the x86 ones return the second operand on NaN or ±0) */
AVX2_TARGET
static inline __m256 avx2_minmax(bool is_max, __m256 a, __m256 b)
{
    __m256 r = is_max ? _mm256_max_ps(a, b) : _mm256_min_ps(a, b);
    __m256 eq = _mm256_cmp_ps(a, b, _CMP_EQ_OQ);
    __m256 zs = is_max ? _mm256_and_ps(a, b) : _mm256_or_ps(a, b);

    r = _mm256_blendv_ps(r, zs, eq);
    return _mm256_blendv_ps(r, a, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}

/* base is a constant (KILN_SE_ROW_DISPATCH): the switch folds away */
AVX2_TARGET
static KILN_ALWAYS_INLINE __m256 avx2_se_vec(uint32_t base, __m256 av,
                                             __m256 bv, __m256 cv)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    const __m256 sign = _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN));

    switch (base) {
    case KILN_SE_ADD: return avx2_canon(_mm256_add_ps(av, bv));
    case KILN_SE_SUB: return avx2_canon(_mm256_sub_ps(av, bv));
    case KILN_SE_MUL: return avx2_canon(_mm256_mul_ps(av, bv));
    case KILN_SE_DIV: return avx2_canon(_mm256_div_ps(av, bv));
    case KILN_SE_MIN: return avx2_canon(avx2_minmax(false, av, bv));
    case KILN_SE_MAX: return avx2_canon(avx2_minmax(true, av, bv));
    case KILN_SE_FMA: return avx2_canon(_mm256_fmadd_ps(av, bv, cv));
    case KILN_SE_SQRT: return avx2_canon(_mm256_sqrt_ps(av));
    case KILN_SE_RSQRT: return avx2_canon(_mm256_div_ps(one, _mm256_sqrt_ps(av)));
    case KILN_SE_RECIP: return avx2_canon(_mm256_div_ps(one, av));
    /* maxps returns its second operand (+0) for NaN and -0, like a > 0 ? a : 0 */
    case KILN_SE_RELU: return _mm256_max_ps(av, _mm256_setzero_ps());
    case KILN_SE_NEG: return _mm256_xor_ps(av, sign);
    default: return _mm256_andnot_ps(sign, av);
    }
}

AVX2_TARGET
static KILN_ALWAYS_INLINE void avx2_se_loop(uint32_t base, bool scalar,
                                            float *d, const float *a,
                                            const float *b, const float *c,
                                            float s, uint32_t n)
{
    const __m256 sv = _mm256_set1_ps(s);
    uint32_t i = 0;

    for (; i + 8 <= n; i += 8) {
        __m256 av = _mm256_loadu_ps(a + i);
        __m256 bv = base > KILN_SE_FMA ? av : scalar ? sv : _mm256_loadu_ps(b + i);
        __m256 cv = base == KILN_SE_FMA ? _mm256_loadu_ps(c + i) : av;

        _mm256_storeu_ps(d + i, avx2_se_vec(base, av, bv, cv));
    }
    se_row_generic(base | (scalar ? KILN_SE_SCALAR : 0), d + i, a + i,
                   b && !scalar ? b + i : b, c ? c + i : c, s, n - i);
}

AVX2_TARGET
static void se_row_avx2(uint32_t op, float *d, const float *a, const float *b,
                        const float *c, float s, uint32_t n)
{
    KILN_SE_ROW_DISPATCH(avx2_se_loop)
}

AVX2_TARGET
static inline __m256i avx2_bf16_round(__m256i u)
{
    __m256i abs = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff)));
    __m256i q = _mm256_or_si256(u, _mm256_set1_epi32(0x400000));

    return _mm256_srli_epi32(_mm256_blendv_epi8(r, q, nan), 16);
}

AVX2_TARGET
static void f32_to_bf16_avx2(uint16_t *d, const float *s, uint32_t n)
{
    uint32_t i = 0;

    for (; i + 16 <= n; i += 16) {
        __m256i lo = avx2_bf16_round(_mm256_loadu_si256((const __m256i *)(s + i)));
        __m256i hi = avx2_bf16_round(_mm256_loadu_si256((const __m256i *)(s + i + 8)));
        /* packus works within 128-bit lanes: restore the element order */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xd8);
        _mm256_storeu_si256((__m256i *)(d + i), p);
    }
    f32_to_bf16_generic(d + i, s + i, n - i);
}

AVX2_TARGET
static void f32_to_f16_avx2(uint16_t *d, const float *s, uint32_t n)
{
    uint32_t i = 0;

    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(s + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(d + i), h);
    }
    f32_to_f16_generic(d + i, s + i, n - i);
}

AVX2_TARGET
static void f16_to_f32_avx2(float *d, const uint16_t *s, uint32_t n)
{
    uint32_t i = 0;

    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(s + i));
        _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
    }
    f16_to_f32_generic(d + i, s + i, n - i);
}

static const KilnSimdOps ops_avx2 = {
    .name = "avx2",
    .sgemm = sgemm_avx2,
    .igemm_i8 = igemm_i8_avx2,
    .se_row = se_row_avx2,
    .f32_to_bf16 = f32_to_bf16_avx2,
    .f32_to_f16 = f32_to_f16_avx2,
    .f16_to_f32 = f16_to_f32_avx2,
};

/* ---- AVX-512 -------------------------------------------------------------- */

#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))

AVX512_TARGET
static inline __mmask16 avx512_mask(uint32_t cnt)
{
    return cnt >= 16 ? 0xffff : (__mmask16)((1u << cnt) - 1);
}

AVX512_TARGET
static inline __m512 avx512_canon(__m512 v)
{
    __m512 nan = _mm512_castsi512_ps(_mm512_set1_epi32(KILN_CANONICAL_NAN_F32));

    return _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), nan);
}

#define AVX512_DECL(r)                                                        \
    __m512 c##r##0 = _mm512_maskz_loadu_ps(m0, c + r * ldc);                  \
    __m512 c##r##1 = _mm512_maskz_loadu_ps(m1, c + r * ldc + 16)
#define AVX512_STEP(r)                                                        \
    av = _mm512_set1_ps(a[r * lda + p]);                                      \
    c##r##0 = _mm512_fmadd_ps(av, b0, c##r##0);                               \
    c##r##1 = _mm512_fmadd_ps(av, b1, c##r##1)
#define AVX512_STORE(r)                                                       \
    _mm512_mask_storeu_ps(c + r * ldc, m0, avx512_canon(c##r##0));            \
    _mm512_mask_storeu_ps(c + r * ldc + 16, m1, avx512_canon(c##r##1))

/* As avx2_6x16: 16 accumulators of the 32 registers */
AVX512_TARGET
static void avx512_8x32(uint32_t kc, const float *a, uint64_t lda,
                        const float *bp, float *c, uint64_t ldc, __mmask16 m0,
                        __mmask16 m1)
{
    AVX512_DECL(0); AVX512_DECL(1); AVX512_DECL(2); AVX512_DECL(3);
    AVX512_DECL(4); AVX512_DECL(5); AVX512_DECL(6); AVX512_DECL(7);
    for (uint32_t p = 0; p < kc; p++, bp += 32) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16), av;
        AVX512_STEP(0); AVX512_STEP(1); AVX512_STEP(2); AVX512_STEP(3);
        AVX512_STEP(4); AVX512_STEP(5); AVX512_STEP(6); AVX512_STEP(7);
    }
    AVX512_STORE(0); AVX512_STORE(1); AVX512_STORE(2); AVX512_STORE(3);
    AVX512_STORE(4); AVX512_STORE(5); AVX512_STORE(6); AVX512_STORE(7);
}

AVX512_TARGET
static void avx512_1x32(uint32_t kc, const float *a, uint64_t lda,
                        const float *bp, float *c, uint64_t ldc, __mmask16 m0,
                        __mmask16 m1)
{
    AVX512_DECL(0);
    for (uint32_t p = 0; p < kc; p++, bp += 32) {
        __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16), av;
        AVX512_STEP(0);
    }
    AVX512_STORE(0);
}

AVX512_TARGET
static void sgemm_avx512(uint32_t m, uint32_t n, uint32_t k, const float *a,
                         uint64_t lda, const float *b, uint64_t ldb, float *c,
                         uint64_t ldc)
{
    KILN_SGEMM_DRIVER(8, 16, avx512_mask, avx512_8x32, avx512_1x32)
}

typedef uint32_t KilnV16u __attribute__((vector_size(64)));

AVX512_TARGET
static void igemm_avx512(uint32_t m, uint32_t n, uint32_t k, const int32_t *a,
                         uint64_t lda, const int32_t *b, uint64_t ldb,
                         int32_t *c, uint64_t ldc)
{
    KILN_IGEMM_BODY(KilnV16u, 16)
}

KILN_IGEMM_I8_WIDENED(igemm_i8_avx512, igemm_avx512)

AVX512_TARGET
static inline __m512 avx512_minmax(bool is_max, __m512 a, __m512 b)
{
    __m512 r = is_max ? _mm512_max_ps(a, b) : _mm512_min_ps(a, b);
    __mmask16 eq = _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ);
    __m512i ai = _mm512_castps_si512(a), bi = _mm512_castps_si512(b);
    __m512 zs = _mm512_castsi512_ps(is_max ? _mm512_and_si512(ai, bi)
                                           : _mm512_or_si512(ai, bi));

    r = _mm512_mask_mov_ps(r, eq, zs);
    return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), a);
}

/* base is a constant (KILN_SE_ROW_DISPATCH): the switch folds away */
AVX512_TARGET
static KILN_ALWAYS_INLINE __m512 avx512_se_vec(uint32_t base, __m512 av,
                                               __m512 bv, __m512 cv)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512i sign = _mm512_set1_epi32(INT32_MIN);
    const __m512i ai = _mm512_castps_si512(av);

    switch (base) {
    case KILN_SE_ADD: return avx512_canon(_mm512_add_ps(av, bv));
    case KILN_SE_SUB: return avx512_canon(_mm512_sub_ps(av, bv));
    case KILN_SE_MUL: return avx512_canon(_mm512_mul_ps(av, bv));
    case KILN_SE_DIV: return avx512_canon(_mm512_div_ps(av, bv));
    case KILN_SE_MIN: return avx512_canon(avx512_minmax(false, av, bv));
    case KILN_SE_MAX: return avx512_canon(avx512_minmax(true, av, bv));
    case KILN_SE_FMA: return avx512_canon(_mm512_fmadd_ps(av, bv, cv));
    case KILN_SE_SQRT: return avx512_canon(_mm512_sqrt_ps(av));
    case KILN_SE_RSQRT: return avx512_canon(_mm512_div_ps(one, _mm512_sqrt_ps(av)));
    case KILN_SE_RECIP: return avx512_canon(_mm512_div_ps(one, av));
    case KILN_SE_RELU: return _mm512_max_ps(av, _mm512_setzero_ps());
    case KILN_SE_NEG: return _mm512_castsi512_ps(_mm512_xor_si512(ai, sign));
    default: return _mm512_castsi512_ps(_mm512_andnot_si512(sign, ai));
    }
}

/* elements i .. i + 15 under mask mk; masked-off lanes load zeros, are not stored */
AVX512_TARGET
static KILN_ALWAYS_INLINE void avx512_se_step(uint32_t base, bool scalar,
                                              __mmask16 mk, float *d,
                                              const float *a, const float *b,
                                              const float *c, __m512 sv,
                                              uint32_t i)
{
    __m512 av = _mm512_maskz_loadu_ps(mk, a + i);
    __m512 bv = base > KILN_SE_FMA ? av : scalar ? sv : _mm512_maskz_loadu_ps(mk, b + i);
    __m512 cv = base == KILN_SE_FMA ? _mm512_maskz_loadu_ps(mk, c + i) : av;

    _mm512_mask_storeu_ps(d + i, mk, avx512_se_vec(base, av, bv, cv));
}

AVX512_TARGET
static KILN_ALWAYS_INLINE void avx512_se_loop(uint32_t base, bool scalar,
                                              float *d, const float *a,
                                              const float *b, const float *c,
                                              float s, uint32_t n)
{
    const __m512 sv = _mm512_set1_ps(s);
    uint32_t i = 0;

    for (; i + 64 <= n; i += 64) {
        avx512_se_step(base, scalar, 0xffff, d, a, b, c, sv, i);
        avx512_se_step(base, scalar, 0xffff, d, a, b, c, sv, i + 16);
        avx512_se_step(base, scalar, 0xffff, d, a, b, c, sv, i + 32);
        avx512_se_step(base, scalar, 0xffff, d, a, b, c, sv, i + 48);
    }
    for (; i + 16 <= n; i += 16) {
        avx512_se_step(base, scalar, 0xffff, d, a, b, c, sv, i);
    }
    if (i < n) {
        avx512_se_step(base, scalar, avx512_mask(n - i), d, a, b, c, sv, i);
    }
}

AVX512_TARGET
static void se_row_avx512(uint32_t op, float *d, const float *a,
                          const float *b, const float *c, float s, uint32_t n)
{
    KILN_SE_ROW_DISPATCH(avx512_se_loop)
}

/* kiln_f32_to_bf16 in the top half of each lane (the bottom is garbage) */
AVX512_TARGET
static inline __m512i avx512_bf16_round(__m512 v)
{
    __m512i u = _mm512_castps_si512(v);
    __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
    __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);

    return _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x400000));
}

AVX512_TARGET
static void f32_to_bf16_avx512(uint16_t *d, const float *s, uint32_t n)
{
    /* the odd (high) 16-bit halves of 2 x 16 lanes, in order */
    static const uint16_t odd[32] = {
        1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
        33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63,
    };
    const __m512i hi16 = _mm512_loadu_si512(odd);
    uint32_t i = 0;

    for (; i + 32 <= n; i += 32) {
        __m512i lo = avx512_bf16_round(_mm512_loadu_ps(s + i));
        __m512i hi = avx512_bf16_round(_mm512_loadu_ps(s + i + 16));
        _mm512_storeu_si512(d + i, _mm512_permutex2var_epi16(lo, hi16, hi));
    }
    for (; i < n; i += 16) {
        __mmask16 mk = avx512_mask(n - i);
        __m512i r = avx512_bf16_round(_mm512_maskz_loadu_ps(mk, s + i));
        _mm256_mask_storeu_epi16(d + i, mk, _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
    }
}

AVX512_TARGET
static void f32_to_f16_avx512(uint16_t *d, const float *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i += 16) {
        __mmask16 mk = avx512_mask(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mk, s + i),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(d + i, mk, h);
    }
}

AVX512_TARGET
static void f16_to_f32_avx512(float *d, const uint16_t *s, uint32_t n)
{
    for (uint32_t i = 0; i < n; i += 16) {
        __mmask16 mk = avx512_mask(n - i);
        __m256i h = _mm256_maskz_loadu_epi16(mk, s + i);
        _mm512_mask_storeu_ps(d + i, mk, _mm512_cvtph_ps(h));
    }
}

static const KilnSimdOps ops_avx512 = {
    .name = "avx512",
    .sgemm = sgemm_avx512,
    .igemm_i8 = igemm_i8_avx512,
    .se_row = se_row_avx512,
    .f32_to_bf16 = f32_to_bf16_avx512,
    .f32_to_f16 = f32_to_f16_avx512,
    .f16_to_f32 = f16_to_f32_avx512,
};

/* ---- AVX-512 VNNI ---------------------------------------------------------- */

#define AVX512VNNI_TARGET \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

/* two int8 as the int16 halves of a word, the operand layout of vpdpwssd */
static inline uint32_t int8_pair(int8_t lo, int8_t hi)
{
    return (uint16_t)(int16_t)lo | (uint32_t)(uint16_t)(int16_t)hi << 16;
}

/*
 * rows x 32 of C (masks m0, m1 for the two 16-column halves) from kp pairs
 * of k: vpdpwssd adds both products of a pair to each int32 lane, wrapping.
 */
AVX512VNNI_TARGET
static KILN_ALWAYS_INLINE void vnni_block(uint32_t rows, uint32_t kp,
                                          const uint32_t *ap, const uint32_t *bp,
                                          uint32_t n, int32_t *c, uint64_t ldc,
                                          __mmask16 m0, __mmask16 m1)
{
    __m512i acc[8][2];

    for (uint32_t r = 0; r < rows; r++) {
        acc[r][0] = _mm512_maskz_loadu_epi32(m0, c + r * ldc);
        acc[r][1] = _mm512_maskz_loadu_epi32(m1, c + r * ldc + 16);
    }
    for (uint32_t q = 0; q < kp; q++) {
        __m512i b0 = _mm512_maskz_loadu_epi32(m0, bp + (uint64_t)q * n);
        __m512i b1 = _mm512_maskz_loadu_epi32(m1, bp + (uint64_t)q * n + 16);

        for (uint32_t r = 0; r < rows; r++) {
            __m512i av = _mm512_set1_epi32((int32_t)ap[(uint64_t)r * kp + q]);

            acc[r][0] = _mm512_dpwssd_epi32(acc[r][0], av, b0);
            acc[r][1] = _mm512_dpwssd_epi32(acc[r][1], av, b1);
        }
    }
    for (uint32_t r = 0; r < rows; r++) {
        _mm512_mask_storeu_epi32(c + r * ldc, m0, acc[r][0]);
        _mm512_mask_storeu_epi32(c + r * ldc + 16, m1, acc[r][1]);
    }
}

AVX512VNNI_TARGET
static bool igemm_i8_vnni(uint32_t m, uint32_t n, uint32_t k, const int8_t *a,
                          uint64_t a_rs, uint64_t a_cs, const int8_t *b,
                          uint64_t b_rs, uint64_t b_cs, int32_t *c,
                          uint64_t ldc)
{
    uint64_t kp = (k + 1) / 2;
    uint32_t *ap = malloc(m * kp * 4), *bp = malloc(kp * n * 4);

    if (!ap || !bp) {
        free(ap);
        free(bp);
        return false;
    }
    /* an odd k is padded with a zero product */
    for (uint64_t r = 0; r < m; r++) {
        for (uint64_t q = 0; q < kp; q++) {
            const int8_t *e = a + r * a_rs + 2 * q * a_cs;

            ap[r * kp + q] = int8_pair(e[0], 2 * q + 1 < k ? e[a_cs] : 0);
        }
    }
    for (uint64_t q = 0; q < kp; q++) {
        for (uint64_t j = 0; j < n; j++) {
            const int8_t *e = b + 2 * q * b_rs + j * b_cs;

            bp[q * n + j] = int8_pair(e[0], 2 * q + 1 < k ? e[b_rs] : 0);
        }
    }
    for (uint32_t i = 0, rows; i < m; i += rows) {
        rows = m - i >= 8 ? 8 : 1;
        for (uint32_t j = 0; j < n; j += 32) {
            __mmask16 m0 = avx512_mask(n - j);
            __mmask16 m1 = n - j > 16 ? avx512_mask(n - j - 16) : 0;

            if (rows == 8) {
                vnni_block(8, kp, ap + i * kp, bp + j, n, c + i * ldc + j, ldc,
                           m0, m1);
            } else {
                vnni_block(1, kp, ap + i * kp, bp + j, n, c + i * ldc + j, ldc,
                           m0, m1);
            }
        }
    }
    free(ap);
    free(bp);
    return true;
}

static const KilnSimdOps ops_avx512_vnni = {
    .name = "avx512vnni",
    .sgemm = sgemm_avx512,
    .igemm_i8 = igemm_i8_vnni,
    .se_row = se_row_avx512,
    .f32_to_bf16 = f32_to_bf16_avx512,
    .f32_to_f16 = f32_to_f16_avx512,
    .f16_to_f32 = f16_to_f32_avx512,
};

/* ---- AVX-512 BF16 ---------------------------------------------------------- */

#define AVX512BF16_TARGET \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16," \
                          "avx2,fma,f16c")))

/* lanes of @v holding a denormal (exponent 0, mantissa not 0) */
AVX512BF16_TARGET
static inline __mmask16 avx512_denormal(__m512 v)
{
    __m512i u = _mm512_castps_si512(v);

    return _mm512_mask_test_epi32_mask(
        _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)), u,
        _mm512_set1_epi32(0x007fffff));
}

/*
 * vcvtne2ps2bf16 rounds as kiln_f32_to_bf16 does (nearest even; a NaN keeps
 * its sign and top payload and is quieted) but flushes denormals to zero,
 * so 32 elements with a denormal among them take the integer path.
 */
AVX512BF16_TARGET
static void f32_to_bf16_avx512bf16(uint16_t *d, const float *s, uint32_t n)
{
    uint32_t i = 0;

    for (; i + 32 <= n; i += 32) {
        __m512 lo = _mm512_loadu_ps(s + i), hi = _mm512_loadu_ps(s + i + 16);

        if (avx512_denormal(lo) | avx512_denormal(hi)) {
            f32_to_bf16_avx512(d + i, s + i, 32);
        } else {
            _mm512_storeu_si512(d + i, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
    f32_to_bf16_avx512(d + i, s + i, n - i);
}

static const KilnSimdOps ops_avx512_bf16 = {
    .name = "avx512bf16",
    .sgemm = sgemm_avx512,
    .igemm_i8 = igemm_i8_vnni,
    .se_row = se_row_avx512,
    .f32_to_bf16 = f32_to_bf16_avx512bf16,
    .f32_to_f16 = f32_to_f16_avx512,
    .f16_to_f32 = f16_to_f32_avx512,
};

static bool host_has(KilnSimdLevel level)
{
    unsigned int eax, ebx, ecx, edx;

    __builtin_cpu_init();
    /* F16C from CPUID: clang before 16 has no "f16c" for __builtin_cpu_supports */
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma") ||
        !__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_F16C)) {
        return false;
    }
    if (level == KILN_SIMD_AVX2) {
        return true;
    }
    if (!__builtin_cpu_supports("avx512f") ||
        !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512vl")) {
        return false;
    }
    if (level == KILN_SIMD_AVX512) {
        return true;
    }
    return __builtin_cpu_supports("avx512vnni") &&
           (level == KILN_SIMD_AVX512_VNNI ||
            __builtin_cpu_supports("avx512bf16"));
}
#endif /* KILN_SIMD_X86 */

const KilnSimdOps *kiln_simd_ops(KilnSimdLevel level)
{
    switch (level) {
    case KILN_SIMD_GENERIC:
        return &ops_generic;
#ifdef KILN_SIMD_X86
    case KILN_SIMD_AVX2:
        return host_has(level) ? &ops_avx2 : NULL;
    case KILN_SIMD_AVX512:
        return host_has(level) ? &ops_avx512 : NULL;
    case KILN_SIMD_AVX512_VNNI:
        return host_has(level) ? &ops_avx512_vnni : NULL;
    case KILN_SIMD_AVX512_BF16:
        return host_has(level) ? &ops_avx512_bf16 : NULL;
#endif
    default:
        return NULL;
    }
}

static const KilnSimdOps *best_ops;
static pthread_once_t best_once = PTHREAD_ONCE_INIT;

static void best_init(void)
{
    for (int l = KILN_SIMD_LEVELS - 1; l >= 0; l--) {
        best_ops = kiln_simd_ops((KilnSimdLevel)l);
        if (best_ops) {
            break;
        }
    }
}

const KilnSimdOps *kiln_simd_best(void)
{
    pthread_once(&best_once, best_init);
    return best_ops;
}
