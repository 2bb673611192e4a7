/* SPDX-License-Identifier: MIT */
/*
 * Kiln device-side kernel API: compile with kiln-cc.
 *
 *   #include <kiln/device/kiln_device.h>
 *
 *   KILN_KERNEL void scale(const float *x, float *y, float a, uint32_t n)
 *   {
 *       for (uint32_t i = kiln_wg_id(); i < n; i += kiln_num_wg())
 *           y[i] = a * x[i];
 *   }
 *
 * Buffers are device virtual addresses; scalar arguments are passed by
 * value. Local memory (kiln_local_size() bytes, stack at its top) is at
 * KILN_LOCAL_MEM_BASE; the fixed-function units work on local memory and
 * DMA moves data between device memory and local memory. See
 * docs/pe-isa.md.
 */
#ifndef KILN_DEVICE_H
#define KILN_DEVICE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "kiln/hw/kiln_isa.h"

#ifdef __cplusplus
#define KILN_EXTERN_C extern "C"
#else
#define KILN_EXTERN_C
#endif

typedef uint16_t kiln_bf16_t;
typedef uint16_t kiln_fp16_t;

/* Kernel entry points and their parameters */
/* kiln-cc reads these from clang's JSON AST, which shows an annotation's arguments but not
 * its string: so each also carries its KILN_ANNOT_* value (an integer: a string argument
 * would be emitted into the kernel's .rodata), KILN_LOCAL_MEM its bytes. */
enum kiln_annotation {
    KILN_ANNOT_KERNEL = 1, KILN_ANNOT_COOPERATIVE, KILN_ANNOT_LOCAL_MEM,
    KILN_ANNOT_IN, KILN_ANNOT_OUT, KILN_ANNOT_INOUT,
};
#define KILN_KERNEL             __attribute__((annotate("kiln_kernel", KILN_ANNOT_KERNEL)))
#define KILN_COOPERATIVE        __attribute__((annotate("kiln_cooperative", KILN_ANNOT_COOPERATIVE)))
#define KILN_LOCAL_MEM(bytes)   __attribute__((annotate("kiln_local_mem", KILN_ANNOT_LOCAL_MEM, (bytes))))
#define KILN_IN                 __attribute__((annotate("kiln_in", KILN_ANNOT_IN)))
#define KILN_OUT                __attribute__((annotate("kiln_out", KILN_ANNOT_OUT)))
#define KILN_INOUT              __attribute__((annotate("kiln_inout", KILN_ANNOT_INOUT)))

#define KILN_ALWAYS_INLINE      static inline __attribute__((always_inline))

/* A pointer into this PE's local memory at byte offset @off */
#define KILN_LM(type, off) ((type *)(uintptr_t)(KILN_LOCAL_MEM_BASE + (uint64_t)(off)))

/* ---- CSRs ------------------------------------------------------------------ */

#define KILN_CSR_READ(csr) ({                                               \
        uint64_t v_;                                                        \
        __asm__ volatile("csrr %0, %1" : "=r"(v_) : "i"(csr));              \
        v_; })

KILN_ALWAYS_INLINE uint32_t kiln_wg_id(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_WG_ID); }
KILN_ALWAYS_INLINE uint32_t kiln_num_wg(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_NUM_WG); }
KILN_ALWAYS_INLINE uint32_t kiln_wg_x(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_WG_X); }
KILN_ALWAYS_INLINE uint32_t kiln_wg_y(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_WG_Y); }
KILN_ALWAYS_INLINE uint32_t kiln_wg_z(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_WG_Z); }
KILN_ALWAYS_INLINE uint32_t kiln_grid_x(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_GRID_X); }
KILN_ALWAYS_INLINE uint32_t kiln_grid_y(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_GRID_Y); }
KILN_ALWAYS_INLINE uint32_t kiln_grid_z(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_GRID_Z); }
KILN_ALWAYS_INLINE uint32_t kiln_pe_id(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_PE_ID); }
KILN_ALWAYS_INLINE uint32_t kiln_num_pes(void) { return (uint32_t)KILN_CSR_READ(KILN_CSR_NUM_PES); }
KILN_ALWAYS_INLINE uint64_t kiln_cycles(void) { return KILN_CSR_READ(KILN_CSR_CYCLES); }
KILN_ALWAYS_INLINE uint64_t kiln_local_size(void) { return KILN_CSR_READ(KILN_CSR_LOCAL_SIZE); }

/* ---- raw custom instructions --------------------------------------------------- */

#define KILN_INSN_RR(unit, op, a, b) ({                                       \
        uint64_t r_;                                                        \
        __asm__ volatile(".insn r 0x0b, %1, %2, %0, %3, %4"                 \
                         : "=r"(r_) : "i"(unit), "i"(op), "r"(a), "r"(b)    \
                         : "memory");                                       \
        r_; })

/* ---- SYS ---------------------------------------------------------------------- */

KILN_ALWAYS_INLINE __attribute__((noreturn)) void kiln_exit(void)
{
    __asm__ volatile(".insn r 0x0b, 0, 0, x0, x0, x0" ::: "memory");
    __builtin_unreachable();
}

KILN_ALWAYS_INLINE __attribute__((noreturn)) void kiln_trap(uint64_t code)
{
    __asm__ volatile(".insn r 0x0b, 0, 1, x0, %0, x0" :: "r"(code) : "memory");
    __builtin_unreachable();
}

/* Every workgroup of a COOPERATIVE launch reaches this point before any continues */
KILN_ALWAYS_INLINE void kiln_barrier(void)
{
    __asm__ volatile(".insn r 0x0b, 0, 2, x0, x0, x0" ::: "memory");
}

KILN_ALWAYS_INLINE void kiln_putc(char c)
{
    __asm__ volatile(".insn r 0x0b, 0, 3, x0, %0, x0" :: "r"((uint64_t)(uint8_t)c) : "memory");
}

KILN_ALWAYS_INLINE void kiln_write(const char *s, uint64_t n)
{
    __asm__ volatile(".insn r 0x0b, 0, 4, x0, %0, %1" :: "r"(s), "r"(n) : "memory");
}

KILN_EXTERN_C int kiln_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
KILN_EXTERN_C int kiln_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
KILN_EXTERN_C int kiln_snprintf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
KILN_EXTERN_C void kiln_puts(const char *s);

/* ---- DMA -------------------------------------------------------------------------- */

/* Start a 2-D copy (tag 0..31); data is usable after kiln_dma_wait(1u << tag) */
KILN_ALWAYS_INLINE void kiln_dma_copy2d(void *dst, const void *src, uint32_t row_bytes,
                                        uint32_t rows, int64_t dst_stride,
                                        int64_t src_stride, uint32_t tag)
{
    struct kiln_dma_desc d = { (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)src,
                               dst_stride, src_stride, row_bytes, rows };
    __asm__ volatile(".insn r 0x0b, 1, 0, x0, %0, %1" :: "r"(&d), "r"((uint64_t)tag) : "memory");
}

KILN_ALWAYS_INLINE void kiln_dma_copy(void *dst, const void *src, uint32_t bytes, uint32_t tag)
{
    kiln_dma_copy2d(dst, src, bytes, 1, 0, 0, tag);
}

KILN_ALWAYS_INLINE void kiln_dma_gather(void *dst, const void *table, const void *indices,
                                        uint32_t count, uint32_t row_bytes,
                                        uint64_t table_stride, uint64_t num_rows,
                                        uint32_t dst_stride, uint32_t flags, uint32_t tag)
{
    struct kiln_gather_desc g = { (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)table,
                                  (uint64_t)(uintptr_t)indices, table_stride, num_rows,
                                  row_bytes, count, flags, dst_stride };
    __asm__ volatile(".insn r 0x0b, 1, 1, x0, %0, %1" :: "r"(&g), "r"((uint64_t)tag) : "memory");
}

KILN_ALWAYS_INLINE void kiln_dma_wait(uint32_t tag_mask)
{
    __asm__ volatile(".insn r 0x0b, 1, 2, x0, %0, x0" :: "r"((uint64_t)tag_mask) : "memory");
}

KILN_ALWAYS_INLINE void kiln_dma_wait_all(void)
{
    kiln_dma_wait(0xffffffffu);
}

/* ---- DPE --------------------------------------------------------------------------- */

/* C[m][n] (+)= A[m][k] * B[k][n]; all operands in local memory */
KILN_ALWAYS_INLINE void kiln_matmul(void *c, const void *a, const void *b, uint32_t m,
                                    uint32_t n, uint32_t k, uint32_t lda, uint32_t ldb,
                                    uint32_t ldc, uint32_t dtype, uint32_t flags)
{
    struct kiln_dpe_desc d = { (uint64_t)(uintptr_t)a, (uint64_t)(uintptr_t)b,
                               (uint64_t)(uintptr_t)c, m, n, k, lda, ldb, ldc, dtype, flags };
    __asm__ volatile(".insn r 0x0b, 2, 0, x0, %0, x0" :: "r"(&d) : "memory");
}

/* ---- SE ---------------------------------------------------------------------------- */

#define KILN_SE_EXEC(op, descp)                                                       \
    __asm__ volatile(".insn r 0x0b, 3, %0, x0, %1, x0" :: "i"(op), "r"(descp) : "memory")

/* dst[i] = a[i] <op> b[i] over n contiguous fp32 elements */
#define KILN_SE_BIN_FN(name, op)                                                      \
    KILN_ALWAYS_INLINE void kiln_se_##name(float *dst, const float *a, const float *b, \
                                          uint32_t n)                                 \
    {                                                                                 \
        struct kiln_se_desc d = { 0 };                                                \
        d.dst = (uint64_t)(uintptr_t)dst;                                             \
        d.a = (uint64_t)(uintptr_t)a;                                                 \
        d.b = (uint64_t)(uintptr_t)b;                                                 \
        d.rows = 1; d.cols = n; d.a_cs = 1; d.b_cs = 1;                               \
        KILN_SE_EXEC(op, &d);                                                         \
    }                                                                                 \
    KILN_ALWAYS_INLINE void kiln_se_##name##_s(float *dst, const float *a, float s,   \
                                              uint32_t n)                             \
    {                                                                                 \
        struct kiln_se_desc d = { 0 };                                                \
        d.dst = (uint64_t)(uintptr_t)dst;                                             \
        d.a = (uint64_t)(uintptr_t)a;                                                 \
        d.rows = 1; d.cols = n; d.a_cs = 1; d.scalar = s;                             \
        KILN_SE_EXEC((op) | KILN_SE_SCALAR, &d);                                      \
    }
KILN_SE_BIN_FN(add, KILN_SE_ADD)
KILN_SE_BIN_FN(sub, KILN_SE_SUB)
KILN_SE_BIN_FN(mul, KILN_SE_MUL)
KILN_SE_BIN_FN(div, KILN_SE_DIV)
KILN_SE_BIN_FN(min, KILN_SE_MIN)
KILN_SE_BIN_FN(max, KILN_SE_MAX)

#define KILN_SE_UN_FN(name, op)                                                       \
    KILN_ALWAYS_INLINE void kiln_se_##name(float *dst, const float *a, uint32_t n)    \
    {                                                                                 \
        struct kiln_se_desc d = { 0 };                                                \
        d.dst = (uint64_t)(uintptr_t)dst;                                             \
        d.a = (uint64_t)(uintptr_t)a;                                                 \
        d.rows = 1; d.cols = n; d.a_cs = 1;                                           \
        KILN_SE_EXEC(op, &d);                                                         \
    }
KILN_SE_UN_FN(exp, KILN_SE_EXP)
KILN_SE_UN_FN(log, KILN_SE_LOG)
KILN_SE_UN_FN(sqrt, KILN_SE_SQRT)
KILN_SE_UN_FN(rsqrt, KILN_SE_RSQRT)
KILN_SE_UN_FN(relu, KILN_SE_RELU)
KILN_SE_UN_FN(gelu, KILN_SE_GELU)
KILN_SE_UN_FN(sigmoid, KILN_SE_SIGMOID)
KILN_SE_UN_FN(tanh, KILN_SE_TANH)
KILN_SE_UN_FN(neg, KILN_SE_NEG)
KILN_SE_UN_FN(abs, KILN_SE_ABS)
KILN_SE_UN_FN(recip, KILN_SE_RECIP)
KILN_SE_UN_FN(copy, KILN_SE_COPY)

/* dst[i] = a[i] * b[i] + c[i] */
KILN_ALWAYS_INLINE void kiln_se_fma(float *dst, const float *a, const float *b,
                                    const float *c, uint32_t n)
{
    struct kiln_se_desc d = { 0 };
    d.dst = (uint64_t)(uintptr_t)dst;
    d.a = (uint64_t)(uintptr_t)a;
    d.b = (uint64_t)(uintptr_t)b;
    d.c = (uint64_t)(uintptr_t)c;
    d.rows = 1; d.cols = n; d.a_cs = 1; d.b_cs = 1; d.c_cs = 1;
    KILN_SE_EXEC(KILN_SE_FMA, &d);
}

/* dst[i] = a[i] * s + b[i] (axpy) */
KILN_ALWAYS_INLINE void kiln_se_axpy(float *dst, const float *a, float s, const float *b,
                                     uint32_t n)
{
    struct kiln_se_desc d = { 0 };
    d.dst = (uint64_t)(uintptr_t)dst;
    d.a = (uint64_t)(uintptr_t)a;
    d.c = (uint64_t)(uintptr_t)b;
    d.rows = 1; d.cols = n; d.a_cs = 1; d.c_cs = 1; d.scalar = s;
    KILN_SE_EXEC(KILN_SE_FMA | KILN_SE_SCALAR, &d);
}

KILN_ALWAYS_INLINE void kiln_se_fill(float *dst, float s, uint32_t n)
{
    struct kiln_se_desc d = { 0 };
    d.dst = (uint64_t)(uintptr_t)dst;
    d.rows = 1; d.cols = n; d.scalar = s;
    KILN_SE_EXEC(KILN_SE_FILL, &d);
}

/* Convert n elements between KILN_DTYPE_* types (RNE, saturating) */
KILN_ALWAYS_INLINE void kiln_se_cvt(void *dst, uint32_t dst_type, const void *src,
                                    uint32_t src_type, uint32_t n)
{
    struct kiln_se_desc d = { 0 };
    d.dst = (uint64_t)(uintptr_t)dst;
    d.a = (uint64_t)(uintptr_t)src;
    d.rows = 1; d.cols = n; d.a_cs = 1;
    d.src_type = (uint8_t)src_type; d.dst_type = (uint8_t)dst_type;
    KILN_SE_EXEC(KILN_SE_CVT, &d);
}

/* General 2-D form: fill a struct kiln_se_desc and issue any KILN_SE_* op */
#define kiln_se_exec(op, descp) KILN_SE_EXEC(op, descp)

/* ---- RE ----------------------------------------------------------------------------- */

#define KILN_RE_FN(name, op)                                                          \
    KILN_ALWAYS_INLINE float kiln_re_##name(float *dst, const float *src,             \
                                           uint32_t rows, uint32_t cols, uint32_t ld, \
                                           uint32_t flags)                            \
    {                                                                                 \
        struct kiln_re_desc d = { (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)src, \
                                  rows, cols, (int32_t)ld, flags };                   \
        uint64_t r;                                                                   \
        __asm__ volatile(".insn r 0x0b, 4, %1, %0, %2, x0"                             \
                         : "=r"(r) : "i"(op), "r"(&d) : "memory");                    \
        uint32_t b32 = (uint32_t)r;                                                   \
        float f;                                                                      \
        __builtin_memcpy(&f, &b32, 4);                                                \
        return f;                                                                     \
    }
KILN_RE_FN(sum_rows, KILN_RE_SUM_ROWS)
KILN_RE_FN(sum_cols, KILN_RE_SUM_COLS)
KILN_RE_FN(max_rows, KILN_RE_MAX_ROWS)
KILN_RE_FN(max_cols, KILN_RE_MAX_COLS)
KILN_RE_FN(min_rows, KILN_RE_MIN_ROWS)
KILN_RE_FN(min_cols, KILN_RE_MIN_COLS)
KILN_RE_FN(sumsq_rows, KILN_RE_SUMSQ_ROWS)
KILN_RE_FN(sumsq_cols, KILN_RE_SUMSQ_COLS)

/* Reduce n contiguous fp32 values in local memory */
KILN_ALWAYS_INLINE float kiln_reduce_sum(float *tmp, const float *src, uint32_t n)
{
    return kiln_re_sum_rows(tmp, src, 1, n, n, 0);
}
KILN_ALWAYS_INLINE float kiln_reduce_max(float *tmp, const float *src, uint32_t n)
{
    return kiln_re_max_rows(tmp, src, 1, n, n, 0);
}

/* ---- MLU ----------------------------------------------------------------------------- */

KILN_ALWAYS_INLINE void kiln_mlu_transpose(void *dst, const void *src, uint32_t rows,
                                           uint32_t cols, uint32_t dst_ld, uint32_t src_ld,
                                           uint32_t elem_size)
{
    struct kiln_mlu_desc d = { (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)src, rows,
                               cols, (int32_t)dst_ld, (int32_t)src_ld, elem_size, 0 };
    __asm__ volatile(".insn r 0x0b, 5, 0, x0, %0, x0" :: "r"(&d) : "memory");
}

KILN_ALWAYS_INLINE void kiln_mlu_copy2d(void *dst, const void *src, uint32_t rows,
                                        uint32_t cols, uint32_t dst_ld, uint32_t src_ld,
                                        uint32_t elem_size)
{
    struct kiln_mlu_desc d = { (uint64_t)(uintptr_t)dst, (uint64_t)(uintptr_t)src, rows,
                               cols, (int32_t)dst_ld, (int32_t)src_ld, elem_size, 0 };
    __asm__ volatile(".insn r 0x0b, 5, 1, x0, %0, x0" :: "r"(&d) : "memory");
}

/* ---- device runtime (userspace/device-rt) ----------------------------------------------- */

KILN_EXTERN_C void *memcpy(void *dst, const void *src, size_t n);
KILN_EXTERN_C void *memmove(void *dst, const void *src, size_t n);
KILN_EXTERN_C void *memset(void *dst, int c, size_t n);
KILN_EXTERN_C int memcmp(const void *a, const void *b, size_t n);
KILN_EXTERN_C float kiln_expf(float x);
KILN_EXTERN_C float kiln_logf(float x);
KILN_EXTERN_C float kiln_tanhf(float x);
KILN_EXTERN_C float kiln_bf16_to_f32(kiln_bf16_t h);
KILN_EXTERN_C kiln_bf16_t kiln_f32_to_bf16(float f);
KILN_EXTERN_C float kiln_f16_to_f32(kiln_fp16_t h);
KILN_EXTERN_C kiln_fp16_t kiln_f32_to_f16(float f);

KILN_ALWAYS_INLINE float kiln_sqrtf(float x) { return __builtin_sqrtf(x); }
KILN_ALWAYS_INLINE float kiln_fabsf(float x) { return __builtin_fabsf(x); }
KILN_ALWAYS_INLINE float kiln_fmaxf(float a, float b) { return __builtin_fmaxf(a, b); }
KILN_ALWAYS_INLINE float kiln_fminf(float a, float b) { return __builtin_fminf(a, b); }
KILN_ALWAYS_INLINE uint32_t kiln_min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }

#endif /* KILN_DEVICE_H */
