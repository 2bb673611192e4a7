/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Test kernels exercising each custom instruction (host tests of the PE engine). */
#include <kiln/device/kiln_device.h>

/* Scalar code: integer/float mix, recursion, switch tables, printf */
static uint64_t fib(uint32_t n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }

KILN_KERNEL void scalar_mix(KILN_OUT uint64_t *out, uint32_t n, double x)
{
    uint32_t wg = kiln_wg_id();
    int64_t a = -(int64_t)n * 7;
    out[wg * 8 + 0] = fib(n);
    out[wg * 8 + 1] = (uint64_t)(a / 3);
    out[wg * 8 + 2] = (uint64_t)(a % 5);
    double y = x;
    for (uint32_t i = 0; i < n; i++) y = y * 1.5 - 0.25;
    __builtin_memcpy(&out[wg * 8 + 3], &y, 8);
    float f = (float)x;
    out[wg * 8 + 4] = (uint64_t)(int64_t)(f * 1000.0f);
    out[wg * 8 + 5] = wg * 1000 + kiln_pe_id();
    char buf[64];
    kiln_snprintf(buf, sizeof buf, "%d|%5u|%x|%s|%.3f", -42, 7u, 0xbeefu, "ok", 2.5);
    __builtin_memcpy(&out[wg * 8 + 6], buf, 16);
    if (wg < 2 || wg == 5) kiln_printf("hello from wg %u n=%u\n", wg, n);
    if (wg == 5) kiln_putc('!');   /* no newline: the record still ends here */
}

/* DMA in two vectors, SE op, DMA out; op selected at run time */
KILN_KERNEL void se_test(uint32_t op, const float *a, const float *b, const float *c,
                         KILN_OUT float *out, uint32_t n, float s)
{
    float *la = KILN_LM(float, 0), *lb = KILN_LM(float, 65536), *lc = KILN_LM(float, 131072);
    float *lo = KILN_LM(float, 196608);
    kiln_dma_copy(la, a, n * 4, 0);
    kiln_dma_copy(lb, b, n * 4, 1);
    kiln_dma_copy(lc, c, n * 4, 2);
    kiln_dma_wait(7);
    switch (op) {
    case 0: kiln_se_add(lo, la, lb, n); break;
    case 1: kiln_se_sub(lo, la, lb, n); break;
    case 2: kiln_se_mul(lo, la, lb, n); break;
    case 3: kiln_se_div(lo, la, lb, n); break;
    case 4: kiln_se_min(lo, la, lb, n); break;
    case 5: kiln_se_max(lo, la, lb, n); break;
    case 6: kiln_se_fma(lo, la, lb, lc, n); break;
    case 7: kiln_se_add_s(lo, la, s, n); break;
    case 8: kiln_se_mul_s(lo, la, s, n); break;
    case 9: kiln_se_exp(lo, la, n); break;
    case 10: kiln_se_log(lo, la, n); break;
    case 11: kiln_se_sqrt(lo, la, n); break;
    case 12: kiln_se_rsqrt(lo, la, n); break;
    case 13: kiln_se_relu(lo, la, n); break;
    case 14: kiln_se_gelu(lo, la, n); break;
    case 15: kiln_se_sigmoid(lo, la, n); break;
    case 16: kiln_se_tanh(lo, la, n); break;
    case 17: kiln_se_fill(lo, s, n); break;
    case 18: kiln_se_axpy(lo, la, s, lb, n); break;
    case 19: kiln_se_neg(lo, la, n); break;
    case 20: kiln_se_abs(lo, la, n); break;
    case 21: kiln_se_recip(lo, la, n); break;
    default: kiln_se_sub_s(lo, la, s, n); break;
    }
    kiln_dma_copy(out, lo, n * 4, 3);
    kiln_dma_wait(8);
}

/* Conversion src_type -> dst_type of n elements */
KILN_KERNEL void cvt_test(const void *src, uint32_t st, uint32_t ss, KILN_OUT void *dst,
                          uint32_t dt, uint32_t ds, uint32_t n)
{
    kiln_dma_copy(KILN_LM(void, 0), src, n * ss, 0);
    kiln_dma_wait(1);
    kiln_se_cvt(KILN_LM(void, 65536), dt, KILN_LM(void, 0), st, n);
    kiln_dma_copy(dst, KILN_LM(void, 65536), n * ds, 0);
    kiln_dma_wait(1);
}

/* DPE: C = A(m x k) * B(k x n) with dtype/flags, whole tiles in local memory */
KILN_KERNEL void dpe_test(const void *a, const void *b, KILN_OUT void *c, uint32_t m,
                          uint32_t n, uint32_t k, uint32_t es, uint32_t dtype, uint32_t flags)
{
    kiln_dma_copy(KILN_LM(void, 0), a, m * k * es, 0);
    kiln_dma_copy(KILN_LM(void, 131072), b, k * n * es, 0);
    kiln_dma_wait(1);
    uint32_t lda = (flags & KILN_DPE_TRANS_A) ? m : k;
    uint32_t ldb = (flags & KILN_DPE_TRANS_B) ? k : n;
    kiln_matmul(KILN_LM(void, 262144), KILN_LM(void, 0), KILN_LM(void, 131072), m, n, k, lda,
                ldb, n, dtype, flags);
    kiln_matmul(KILN_LM(void, 262144), KILN_LM(void, 0), KILN_LM(void, 131072), m, n, k, lda,
                ldb, n, dtype, flags | KILN_DPE_ACCUM);   /* doubled */
    kiln_dma_copy(c, KILN_LM(void, 262144), m * n * 4, 0);
    kiln_dma_wait(1);
}

/* RE + MLU on a rows x cols matrix: out = [sum_rows | sum_cols | max_rows | max_cols |
 * sumsq_rows | min_cols | transpose] */
KILN_KERNEL void re_mlu_test(const float *x, KILN_OUT float *out, uint32_t rows, uint32_t cols)
{
    float *lx = KILN_LM(float, 0), *lo = KILN_LM(float, 131072);
    kiln_dma_copy(lx, x, rows * cols * 4, 0);
    kiln_dma_wait(1);
    float first = kiln_re_sum_rows(lo, lx, rows, cols, cols, 0);
    lo += rows;
    kiln_re_sum_cols(lo, lx, rows, cols, cols, 0);
    lo += cols;
    kiln_re_max_rows(lo, lx, rows, cols, cols, 0);
    lo += rows;
    kiln_re_max_cols(lo, lx, rows, cols, cols, 0);
    lo += cols;
    kiln_re_sumsq_rows(lo, lx, rows, cols, cols, 0);
    lo += rows;
    kiln_re_min_cols(lo, lx, rows, cols, cols, 0);
    lo += cols;
    kiln_mlu_transpose(lo, lx, rows, cols, rows, cols, 4);
    lo += rows * cols;
    *lo++ = first;
    kiln_dma_copy(out, KILN_LM(float, 131072), (uint32_t)((uintptr_t)lo - (uintptr_t)KILN_LM(float, 131072)), 0);
    kiln_dma_wait(1);
}

/* 2-D strided DMA and gather */
KILN_KERNEL void dma_test(const float *src, KILN_OUT float *dst, uint32_t rows, uint32_t cols,
                          uint32_t src_ld, uint32_t dst_ld, const int32_t *idx, uint32_t nidx,
                          KILN_OUT float *gathered, KILN_OUT float *summed)
{
    float *l = KILN_LM(float, 0);
    kiln_dma_copy2d(l, src, cols * 4, rows, cols * 4, (int64_t)src_ld * 4, 5);
    kiln_dma_wait(1u << 5);
    kiln_dma_copy2d(dst, l, cols * 4, rows, (int64_t)dst_ld * 4, cols * 4, 6);
    int32_t *li = KILN_LM(int32_t, 100000);
    kiln_dma_copy(li, idx, nidx * 4, 7);
    kiln_dma_wait(1u << 7);
    float *g = KILN_LM(float, 120000);
    kiln_dma_gather(g, src, li, nidx, cols * 4, (uint64_t)src_ld * 4, rows, cols * 4, 0, 8);
    kiln_dma_copy(gathered, g, nidx * cols * 4, 9);
    float *acc = KILN_LM(float, 200000);
    kiln_se_fill(acc, 0.0f, cols);
    kiln_dma_gather(acc, src, li, nidx, cols * 4, (uint64_t)src_ld * 4, rows, 0,
                    KILN_GATHER_ACCUM_F32, 10);
    kiln_dma_copy(summed, acc, cols * 4, 11);
    kiln_dma_wait_all();
}

/* Barrier: each workgroup writes its id, syncs, then reads its neighbour's (twice) */
KILN_KERNEL KILN_COOPERATIVE void barrier_test(KILN_INOUT uint32_t *buf, KILN_OUT uint32_t *out)
{
    uint32_t wg = kiln_wg_id(), n = kiln_num_wg();
    buf[wg] = wg + 100;
    kiln_barrier();
    uint32_t v = buf[(wg + 1) % n];
    kiln_barrier();
    buf[wg] = v * 2;
    kiln_barrier();
    out[wg] = buf[(wg + 1) % n];
}

/* Faults on request */
KILN_KERNEL void fault_test(uint32_t kind, float *p)
{
    switch (kind) {
    case 0: kiln_trap(77);
    case 1: kiln_se_add(KILN_LM(float, 0), KILN_LM(float, 0), KILN_LM(float, 0), 1u << 20); break;
    case 2: kiln_dma_copy(KILN_LM(void, 0), p, 64, 0); break;   /* p unmapped */
    case 3: kiln_matmul(KILN_LM(void, 2), KILN_LM(void, 0), KILN_LM(void, 0), 4, 4, 4, 4, 4, 4,
                        KILN_DTYPE_FP32, 0); break;             /* misaligned C */
    case 4: kiln_barrier(); break;                              /* not cooperative */
    case 5: for (;;) { } break;
    case 6: { int32_t i = 1000; kiln_dma_gather(KILN_LM(void, 0), p, &i, 1, 4, 4, 10, 4, 0, 0); break; }
    default: break;
    }
}

/* ---- benchmark kernels (kiln_pe_bench) ---- */

KILN_KERNEL void bench_scalar(KILN_OUT uint64_t *out, uint32_t iters)
{
    uint32_t *lm = KILN_LM(uint32_t, 0);
    uint64_t x = 88172645463325252ull, acc = 0;
    for (uint32_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lm[i & 1023] += (uint32_t)x;
        acc += lm[(i * 7) & 1023];
    }
    out[0] = acc;
}

KILN_KERNEL void bench_dpe(uint32_t dim, uint32_t iters, uint32_t dtype)
{
    kiln_se_fill(KILN_LM(float, 0), 0.0f, 16384);
    kiln_se_fill(KILN_LM(float, 16384), 0.001f, 32768);
    for (uint32_t i = 0; i < iters; i++)
        kiln_matmul(KILN_LM(void, 0), KILN_LM(void, 65536), KILN_LM(void, 131072), dim, dim, dim,
                    dim, dim, dim, dtype, KILN_DPE_ACCUM);
}

/* Every workgroup adds to shared counters: AMOs and an LR/SC loop */
KILN_KERNEL void atomic_count(uint32_t *c32, uint64_t *c64, uint32_t *max_wg, uint32_t iters)
{
    for (uint32_t i = 0; i < iters; i++) {
        __atomic_fetch_add(c32, 1, __ATOMIC_RELAXED);
        uint64_t old = __atomic_load_n(c64, __ATOMIC_RELAXED);
        while (!__atomic_compare_exchange_n(c64, &old, old + 3, 1, __ATOMIC_ACQ_REL,
                                            __ATOMIC_RELAXED)) {
        }
    }
    __atomic_fetch_max(max_wg, kiln_wg_id(), __ATOMIC_RELAXED);
}

/* Spins until *flag reads non-zero: a remap while it runs must be seen */
KILN_KERNEL void wait_flag(const uint32_t *flag, KILN_OUT uint32_t *out)
{
    uint32_t v;
    while ((v = *(const volatile uint32_t *)flag) == 0) {
    }
    out[0] = v;
}

/* wait_flag, reading the flag by DMA into local memory */
KILN_KERNEL void wait_flag_dma(const uint32_t *flag, KILN_OUT uint32_t *out)
{
    volatile uint32_t *lv = KILN_LM(uint32_t, 0);
    do {
        kiln_dma_copy(KILN_LM(uint32_t, 0), flag, 4, 0);
        kiln_dma_wait(1);
    } while (*lv == 0);
    out[0] = *lv;
}

/* Fixed costs of a launch: each workgroup only writes its id */
KILN_KERNEL void bench_noop(KILN_OUT uint32_t *out)
{
    out[kiln_wg_id()] = kiln_wg_id();
}

/* SE over three n-element local-memory rows: op 0 fp32 add, 1 fp32 -> bf16 conversion */
KILN_KERNEL void bench_se(uint32_t n, uint32_t iters, uint32_t op)
{
    float *d = KILN_LM(float, 0), *a = KILN_LM(float, 4 * n), *b = KILN_LM(float, 8 * n);
    kiln_se_fill(a, 1.5f, n);
    kiln_se_fill(b, 0.25f, n);
    for (uint32_t i = 0; i < iters; i++) {
        if (op == 0)
            kiln_se_add(d, a, b, n);
        else
            kiln_se_cvt(d, KILN_DTYPE_BF16, a, KILN_DTYPE_FP32, n);
    }
}

/* C = A B, all n x n fp32 in device memory, as 128 x 128 tiles through local memory */
KILN_KERNEL void bench_gemm_tiled(const float *a, const float *b, KILN_OUT float *c, uint32_t n)
{
    const uint32_t t = 128;
    float *la = KILN_LM(float, 0), *lb = KILN_LM(float, 65536), *lc = KILN_LM(float, 131072);
    for (uint32_t i0 = 0; i0 < n; i0 += t) {
        for (uint32_t j0 = 0; j0 < n; j0 += t) {
            for (uint32_t p0 = 0; p0 < n; p0 += t) {
                kiln_dma_copy2d(la, a + (uint64_t)i0 * n + p0, t * 4, t, t * 4, n * 4, 0);
                kiln_dma_copy2d(lb, b + (uint64_t)p0 * n + j0, t * 4, t, t * 4, n * 4, 1);
                kiln_dma_wait(3);
                kiln_matmul(lc, la, lb, t, t, t, t, t, t, KILN_DTYPE_FP32, p0 ? KILN_DPE_ACCUM : 0);
            }
            kiln_dma_copy2d(c + (uint64_t)i0 * n + j0, lc, t * 4, t, n * 4, t * 4, 2);
            kiln_dma_wait(4);
        }
    }
}

/* Cost model: the first @active workgroups stream @bytes from @src into local memory */
KILN_KERNEL void dma_stream(const uint8_t *src, uint32_t bytes, uint32_t active)
{
    if (kiln_wg_id() >= active) {
        return;
    }
    kiln_dma_copy(KILN_LM(uint8_t, 0), src, bytes, 1);
    kiln_dma_wait_all();
}
