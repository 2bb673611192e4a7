/* SPDX-License-Identifier: MIT */
/*
 * kiln::ccl's reduction step on the SE: out = cvt(a) <op> cvt(b), computed in
 * fp32 and converted (RNE) to out's type. a, b and out may each be fp32 or
 * bf16, so a bf16 reduction keeps its running value in an fp32 scratch
 * buffer and rounds to bf16 once, at the last step (docs/collectives.md,
 * "Order of reduction"). out may be a or b (element i is read before it is
 * written, within one chunk).
 */
#include <kiln/device/kiln_device.h>

#define CH 8192
/* fp32 working copies of a and b, the raw (maybe bf16) loads, the fp32 result
 * and its bf16 form: 3 * 32 KiB + 3 * 16 KiB. */
#define LM_FA   (0 * CH * 4)
#define LM_FB   (1 * CH * 4)
#define LM_FO   (2 * CH * 4)
#define LM_RA   (3 * CH * 4)
#define LM_RB   (LM_RA + CH * 2)
#define LM_RO   (LM_RB + CH * 2)

enum { CCL_SUM = 0, CCL_MAX = 1 };

static inline uint32_t esize(uint32_t t)
{
    return t == KILN_DTYPE_BF16 ? 2 : 4;
}

/* Load @len elements of @src (type @t) starting at element @first into
 * local memory as fp32: straight into @f32_off for fp32, else through
 * @raw_off and an SE conversion. */
static float *load(const void *src, uint32_t t, uint64_t first, uint32_t len,
                   uint32_t f32_off, uint32_t raw_off, uint32_t tag)
{
    uint32_t es = esize(t);
    const uint8_t *p = (const uint8_t *)src + first * es;

    kiln_dma_copy(KILN_LM(void, t == KILN_DTYPE_FP32 ? f32_off : raw_off), p, len * es, tag);
    return KILN_LM(float, f32_off);
}

KILN_KERNEL void kiln_ccl_reduce(uint32_t op, const void *a, uint32_t a_type,
                                 const void *b, uint32_t b_type,
                                 KILN_OUT void *out, uint32_t out_type, uint64_t n)
{
    uint64_t nch = (n + CH - 1) / CH;

    for (uint64_t c = kiln_wg_id(); c < nch; c += kiln_num_wg()) {
        uint64_t first = c * CH;
        uint32_t len = (uint32_t)(n - first < CH ? n - first : CH);
        float *fa = load(a, a_type, first, len, LM_FA, LM_RA, 0);
        float *fb = load(b, b_type, first, len, LM_FB, LM_RB, 1);
        float *fo = KILN_LM(float, LM_FO);

        kiln_dma_wait(3);
        if (a_type != KILN_DTYPE_FP32)
            kiln_se_cvt(fa, KILN_DTYPE_FP32, KILN_LM(void, LM_RA), a_type, len);
        if (b_type != KILN_DTYPE_FP32)
            kiln_se_cvt(fb, KILN_DTYPE_FP32, KILN_LM(void, LM_RB), b_type, len);
        if (op == CCL_MAX)
            kiln_se_max(fo, fa, fb, len);
        else
            kiln_se_add(fo, fa, fb, len);
        if (out_type == KILN_DTYPE_FP32) {
            kiln_dma_copy((uint8_t *)out + first * 4, fo, len * 4, 2);
        } else {
            kiln_se_cvt(KILN_LM(void, LM_RO), out_type, fo, KILN_DTYPE_FP32, len);
            kiln_dma_copy((uint8_t *)out + first * esize(out_type), KILN_LM(void, LM_RO),
                          len * esize(out_type), 2);
        }
        kiln_dma_wait(4);
    }
}

/* Fault injection (KILN_CCL_INJECT_FAULT, docs/collectives.md): a real
 * KERNEL_TRAP of the device, so a test exercises the path a faulting rank
 * takes, from the job status up to every rank's error. */
KILN_KERNEL void kiln_ccl_trap(uint32_t code)
{
    kiln_trap(code);
}
